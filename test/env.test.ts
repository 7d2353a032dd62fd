import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

/*
 * Every environment variable README.md lists ("Environment variables"), each in a fresh process
 * since they are read when a pool is made or a module loads: the values it accepts take effect,
 * any other throws ERR_SLABPOOL_INVALID_ARG naming the variable. And the build script's
 * variables: SLABPOOL_REQUIRE_NATIVE=0 lets `npm test` go on without a compiler, and a forced
 * source build that fails says which backend will run.
 */

const root = path.resolve(__dirname, '..');
const dist = JSON.stringify(path.join(root, 'dist', 'index.js'));
const compat = JSON.stringify(path.join(root, 'dist', 'compat.js'));

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(script: string, env: Record<string, string>, args: string[] = []): Ran {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLABPOOL_')));
  const r = spawnSync(process.execPath, [...args, '-e', script], { cwd: root, env: { ...clean, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON a script printed, failing with its stderr when it did not exit 0. */
function json(script: string, env: Record<string, string>): Record<string, unknown> {
  const r = run(script, env);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

const catchCode = (body: string): string =>
  `try { ${body}; console.log(JSON.stringify({ threw: false })); } catch (e) { console.log(JSON.stringify({ threw: true, name: e.name, code: e.code, message: e.message })); }`;

describe('SLABPOOL_COMPAT_STRICT', () => {
  for (const [value, strict] of [['1', true], ['true', true], ['0', false], ['false', false], ['', false]] as const) {
    it(`'${value}' makes the shared compat pool ${strict ? 'strict' : 'lenient'}`, () => {
      const out = json(`const c = require(${compat}); const a = c.mallocDouble(4); c.free(a); ${catchCode('c.free(a)')}`, { SLABPOOL_COMPAT_STRICT: value });
      expect(out.threw).toBe(strict);
      if (strict) expect(out.code).toBe('ERR_SLABPOOL_DOUBLE_RETURN');
    });
  }
  it("rejects any other value ('yes') when slabpool/compat loads", () => {
    const out = json(catchCode(`require(${compat})`), { SLABPOOL_COMPAT_STRICT: 'yes' });
    expect(out).toMatchObject({ threw: true, name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG' });
    expect(out.message).toBe("Expected '1', 'true', '0', 'false' or unset for the SLABPOOL_COMPAT_STRICT environment variable but received 'yes' of type string");
  });
});

describe('slabpool/compat and the variables its pools read', () => {
  // A bad value fails when slabpool/compat loads, never inside a later malloc (where, with the
  // typedarray-pool override, it would be a third-party library's call that throws).
  for (const [name, value] of [['SLABPOOL_HUGE_PAGES', 'yes'], ['SLABPOOL_PREFAULT', 'yes'], ['SLABPOOL_DETACH', 'on'], ['SLABPOOL_NATIVE_MEMORY', 'V8']] as const) {
    it(`rejects ${name}='${value}' when slabpool/compat loads`, () => {
      const out = json(catchCode(`require(${compat})`), { [name]: value });
      expect(out).toMatchObject({ threw: true, name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG' });
      expect(out.message).toContain(`for the ${name} environment variable but received '${value}'`);
    });
  }
});

describe('SLABPOOL_DETACH', () => {
  it("'true' detaches what destroy() releases, with the warning; 'false' does not", () => {
    const script = `const { MemoryPool } = require(${dist}); const p = new MemoryPool({ blockSize: 4, numBlocks: 2, backend: 'js' }); const b = p.getBlock(); p.destroy(); console.log(JSON.stringify({ length: b.length }));`;
    const on = run(script, { SLABPOOL_DETACH: 'true' });
    expect(on.status, on.stderr).toBe(0);
    expect(JSON.parse(on.stdout)).toEqual({ length: 0 });
    expect(on.stderr).toMatch(/\[SLABPOOL_DETACH\] Warning/);
    expect(json(script, { SLABPOOL_DETACH: 'false' })).toEqual({ length: 4 });
  });
  it("rejects 'on' when a pool is made", () => {
    const out = json(catchCode(`new (require(${dist}).MemoryPool)({ blockSize: 4, numBlocks: 2 })`), { SLABPOOL_DETACH: 'on' });
    expect(out).toMatchObject({ threw: true, code: 'ERR_SLABPOOL_INVALID_ARG' });
    expect(out.message).toMatch(/for the SLABPOOL_DETACH environment variable but received 'on'/);
  });
});

describe('SLABPOOL_BACKEND', () => {
  it("'js' puts 'auto' pools on the fallback, and backendInfo() says so", () => {
    const out = json(`const s = require(${dist}); console.log(JSON.stringify({ info: s.backendInfo().backend, pool: new s.MemoryPool({ blockSize: 1, numBlocks: 1 }).backend }))`, { SLABPOOL_BACKEND: 'js' });
    expect(out).toEqual({ info: 'js', pool: 'js' });
  });
  it("'native' with no loadable addon: backendInfo().backend is null and making a pool throws ERR_SLABPOOL_NATIVE_UNAVAILABLE", () => {
    const env = { SLABPOOL_BACKEND: 'native', SLABPOOL_NATIVE_PATH: path.join(root, 'no-such-addon.node') };
    const info = json(`console.log(JSON.stringify(require(${dist}).backendInfo()))`, env);
    const out = { ...json(catchCode(`new (require(${dist}).MemoryPool)({ blockSize: 1, numBlocks: 1 })`), env), info: info.backend, reason: info.reason };
    expect(out).toMatchObject({ info: null, threw: true, code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE' });
    expect(out.reason).toMatch(/^SLABPOOL_BACKEND=native, and no native addon loaded on .*: creating a pool throws ERR_SLABPOOL_NATIVE_UNAVAILABLE/);
  });
  it('SLABPOOL_NATIVE_PATH that does not load: a warning says so, and auto pools run on the fallback', () => {
    const file = path.join(root, 'no-such-addon.node');
    const r = run(`const s = require(${dist}); console.log(JSON.stringify({ info: s.backendInfo().backend, pool: new s.MemoryPool({ blockSize: 1, numBlocks: 1 }).backend }))`, { SLABPOOL_NATIVE_PATH: file });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ info: 'js', pool: 'js' });
    expect(r.stderr.match(/\[SLABPOOL_NATIVE_PATH\] Warning: SLABPOOL_NATIVE_PATH=\S+no-such-addon\.node did not load \(not found\); no other place is tried/g)).toHaveLength(1);
  });
  it("rejects 'wasm' in backendInfo() and when a pool is made", () => {
    for (const body of [`require(${dist}).backendInfo()`, `new (require(${dist}).MemoryPool)({ blockSize: 1, numBlocks: 1 })`]) {
      const out = json(catchCode(body), { SLABPOOL_BACKEND: 'wasm' });
      expect(out).toMatchObject({ threw: true, name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG' });
      expect(out.message).toMatch(/for the SLABPOOL_BACKEND environment variable but received 'wasm'/);
    }
  });
});

describe.runIf(BACKENDS.includes('native'))('SLABPOOL_NATIVE_MEMORY', () => {
  it("'v8' puts native slabs in V8 memory; other values are rejected", () => {
    const script = `const { MemoryPool } = require(${dist}); ${catchCode("globalThis.m = new MemoryPool({ blockSize: 1, numBlocks: 1, backend: 'native' }).stats().memory").replace('threw: false', 'threw: false, memory: globalThis.m')}`;
    expect(json(script, { SLABPOOL_NATIVE_MEMORY: 'v8' })).toEqual({ threw: false, memory: 'v8' });
    expect(json(script, {})).toEqual({ threw: false, memory: 'external' });
    expect(json(script, { SLABPOOL_NATIVE_MEMORY: 'V8' })).toMatchObject({ threw: true, code: 'ERR_SLABPOOL_INVALID_ARG' });
  });
});

describe('the build script without a compiler', () => {
  // A copy of what the build needs, and a PATH holding only node: node-gyp cannot be found.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-nocc-'));
  for (const part of ['scripts', 'native', 'prebuilds', 'binding.gyp', 'package.json']) fs.cpSync(path.join(root, part), path.join(dir, part), { recursive: true });
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.symlinkSync(process.execPath, path.join(dir, 'bin', 'node'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = (env: Record<string, string>, args: string[] = []): Ran => {
    const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-native.js'), ...args], { cwd: dir, env: { PATH: path.join(dir, 'bin'), HOME: os.homedir(), ...env }, encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('npm test\'s build step fails, unless SLABPOOL_REQUIRE_NATIVE=0', () => {
    expect(build({}).status).toBe(1);
    const r = build({ SLABPOOL_REQUIRE_NATIVE: '0' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/building the native addon failed; SLABPOOL_REQUIRE_NATIVE=0/);
  });

  it('a forced source build that fails at install names the backend that will run', () => {
    const platformArch = `${process.platform}-${process.arch}`;
    const prebuild = fs.existsSync(path.join(dir, 'prebuilds', platformArch, 'slabpool.node')) && BACKENDS.includes('native');
    const r = build({ SLABPOOL_BUILD_FROM_SOURCE: '1' }, ['--install']);
    expect(r.status).toBe(0);
    if (prebuild) expect(r.stderr).toMatch(new RegExp(`the prebuild prebuilds/${platformArch}/slabpool.node loads and will be used`));
    fs.rmSync(path.join(dir, 'prebuilds'), { recursive: true });
    const none = build({ SLABPOOL_BUILD_FROM_SOURCE: '1' }, ['--install']);
    expect(none.status).toBe(0);
    expect(none.stderr).toMatch(/no prebuild loads here; the JavaScript fallback will be used/);
  });

  it("SLABPOOL_BUILD_FROM_SOURCE='yes' fails the install, naming the variable", () => {
    const r = build({ SLABPOOL_BUILD_FROM_SOURCE: 'yes' }, ['--install']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/for the SLABPOOL_BUILD_FROM_SOURCE environment variable but received 'yes'/);
  });
});

describe("README.md's list of environment variables", () => {
  it('names every variable the library, the install script and the test config read', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Environment variables'), readme.indexOf('\n## ', readme.indexOf('## Environment variables') + 1));
    const listed = new Set([...section.matchAll(/^\| (.*?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`(SLABPOOL_[A-Z_]+)`/g)].map((n) => n[1]!)));
    const sources = [
      ...fs.readdirSync(path.join(root, 'lib')).map((f) => path.join(root, 'lib', f)),
      path.join(root, 'scripts', 'build-native.js'),
      path.join(root, 'vitest.config.mts'),
    ];
    const read = new Set<string>();
    for (const file of sources) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/process\.env\.(SLABPOOL_[A-Z_]+)|envFlag\('(SLABPOOL_[A-Z_]+)'\)/g)) read.add(m[1] ?? m[2]!);
    }
    expect(read.size).toBeGreaterThanOrEqual(7);
    expect([...read].filter((name) => !listed.has(name))).toEqual([]);
  });
});
