import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmPack } from './helpers.js';

/*
 * The package as users get it: `npm pack`, then `npm install <tarball>` into a new project, on a
 * machine with a compiler and on one without, with install scripts and without, with the
 * prebuild and without it.
 */

const root = path.resolve(__dirname, '..');
const platformArch = `${process.platform}-${process.arch}`;
const hasPrebuild = fs.existsSync(path.join(root, 'prebuilds', platformArch, 'slabpool.node'));
let work: string;
let tarball: string;
let tarballWithoutPrebuild: string;
let noCompilerPath: string;

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  // Keep the parent's npm settings (cache, node headers) but none of the variables that would
  // point node-gyp at a Python or a compiler.
  const base = { ...process.env };
  for (const key of Object.keys(base)) if (/^(npm_config_python|PYTHON|CXX|CC)$/i.test(key)) delete base[key];
  return spawnSync(cmd, args, { cwd, env: { ...base, ...env }, encoding: 'utf8', timeout: 120_000 });
}

function project(name: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}

function install(dir: string, file: string, extra: string[], env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return run('npm', ['install', file, '--prefer-offline', '--no-audit', '--no-fund', ...extra], dir, env);
}

function nodeIn(dir: string, script: string, env: NodeJS.ProcessEnv = {}): unknown {
  const result = run(process.execPath, ['-e', script], dir, env);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

const infoScript = `console.log(JSON.stringify(require('slabpool').backendInfo()))`;

const smokeScript = `
  const { MemoryPool } = require('slabpool');
  const pool = new MemoryPool({ blockSize: [10, 10], numBlocks: 8, grow: true, maxBlocks: 16 });
  const blocks = Array.from({ length: 10 }, () => pool.getBlock());
  blocks.forEach((b, i) => b.fill(i));
  const run = pool.getRun(4);
  for (const b of blocks.slice(0, 8)) pool.returnBlock(b);
  pool.check();
  const s = pool.stats();
  pool.returnBlock(run);
  for (const b of blocks.slice(8)) pool.returnBlock(b);
  const trimmed = pool.trim();
  pool.check();
  pool.destroy();
  console.log(JSON.stringify({ backend: s.backend, inUse: s.inUseBlocks, capacity: s.capacityBlocks, last: blocks[9].length, trimmed }));
`;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-pack-'));
  // dist/ is built by npm test before the suites run; --ignore-scripts keeps pack from rebuilding it.
  tarball = npmPack(root, work);

  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
  fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true, force: true });
  tarballWithoutPrebuild = path.join(work, 'without-prebuild.tgz');
  execFileSync('tar', ['-czf', tarballWithoutPrebuild, '-C', unpacked, 'package']);

  // A PATH with a shell, node and npm only: no compiler, no make, no Python.
  noCompilerPath = path.join(work, 'bin');
  fs.mkdirSync(noCompilerPath);
  fs.symlinkSync('/bin/sh', path.join(noCompilerPath, 'sh'));
  fs.symlinkSync(process.execPath, path.join(noCompilerPath, 'node'));
  fs.symlinkSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(), path.join(noCompilerPath, 'npm'));
}, 120_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships dist, native sources, binding.gyp, prebuilds, README and LICENSE, and nothing else of weight', () => {
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    const tops = new Set(list.map((f) => f.split('/')[0]));
    expect([...tops].sort()).toEqual(['LICENSE', 'README.md', 'binding.gyp', 'dist', 'native', 'package.json', 'prebuilds', 'scripts']);
    expect(list.filter((f) => f.startsWith('scripts/')).sort()).toEqual(['scripts/build-native.js', 'scripts/source-hash.js']);
    expect(list.some((f) => /^(test|build|lib|bench|examples)\//.test(f))).toBe(false);
    expect(list).toContain(`prebuilds/${platformArch}/slabpool.node`);
    // slabpool/prometheus: both entries and their types (prom-client itself is a peer, not shipped).
    expect(list).toEqual(expect.arrayContaining(['dist/prometheus.js', 'dist/prometheus.mjs', 'dist/prometheus.d.ts', 'dist/prometheus.d.mts']));
    // Built on Linux x64 by npm run prebuild (scripts/prebuild-targets.js): linux-arm64 and win32-x64 cross-compiled.
    expect(list).toEqual(expect.arrayContaining(['prebuilds/linux-x64/slabpool.node', 'prebuilds/linux-arm64/slabpool.node', 'prebuilds/win32-x64/slabpool.node']));
    // Without its prebuilds the package stays small (200 KB gzipped now, with SharedPool's six
    // modules and a 134 KB README); each prebuild is one stripped addon (the
    // Windows one carries libstdc++ linked statically, about 300 KB).
    expect(fs.statSync(tarballWithoutPrebuild).size).toBeLessThan(250_000);
    for (const dir of fs.readdirSync(path.join(root, 'prebuilds'))) {
      expect(fs.statSync(path.join(root, 'prebuilds', dir, 'slabpool.node')).size, dir).toBeLessThan(400_000);
    }
  });
});

describe.skipIf(!hasPrebuild)('installing the tarball', () => {
  it('loads the native prebuild, with no build/ directory', () => {
    const dir = project('with-scripts');
    const result = install(dir, tarball, []);
    expect(result.status, result.stderr).toBe(0);
    expect(fs.existsSync(path.join(dir, 'node_modules', 'slabpool', 'build'))).toBe(false);
    const prebuild = path.join(dir, 'node_modules', 'slabpool', 'prebuilds', platformArch, 'slabpool.node');
    expect(nodeIn(dir, infoScript)).toEqual({
      backend: 'native',
      reason: `the native addon loaded from ${prebuild} on ${platformArch} (glibc)`,
      target: { platform: process.platform, arch: process.arch, libc: 'glibc' },
      attempts: [
        { path: path.join(dir, 'node_modules', 'slabpool', 'build', 'Release', 'slabpool.node'), error: 'not found' },
        { path: prebuild, error: null },
      ],
    });
    // Slab 1 (8 blocks of 832 bytes) is empty at the end, so trim gives it back.
    expect(nodeIn(dir, smokeScript)).toEqual({ backend: 'native', inUse: 6, capacity: 16, last: 100, trimmed: 8 * 832 });
    // The plain-node smoke test .ci/win32 runs under wine, here on this platform's prebuild.
    const plain = run(process.execPath, [path.join(root, 'test', 'plain', 'smoke.cjs'), platformArch], dir);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(new RegExp(`^smoke: \\d+ checks passed on native \\(${platformArch},`, 'm'));
  });

  it.each([
    ['SLABPOOL_BUILD_FROM_SOURCE=1', { SLABPOOL_BUILD_FROM_SOURCE: '1' }],
    ['npm_config_build_from_source=true', { npm_config_build_from_source: 'true' }],
  ])('builds from source in the install step when %s forces it, and loads that build', (_name, env) => {
    const dir = project(`forced-${Object.keys(env)[0]}`);
    const result = install(dir, tarball, [], env);
    expect(result.status, result.stderr).toBe(0);
    const built = path.join(dir, 'node_modules', 'slabpool', 'build', 'Release', 'slabpool.node');
    expect(fs.existsSync(built), `${result.stdout}${result.stderr}`).toBe(true);
    expect(nodeIn(dir, infoScript)).toMatchObject({ backend: 'native', reason: expect.stringContaining(`loaded from ${built} `), attempts: [{ path: built, error: null }] });
  }, 180_000);

  it('loads the prebuild with no compiler on the PATH and install scripts disabled', () => {
    const dir = project('no-compiler-no-scripts');
    expect(run('sh', ['-c', 'command -v g++ || command -v c++ || command -v cc || command -v make || command -v python3'], dir, { PATH: noCompilerPath }).status).not.toBe(0);
    const result = install(dir, tarball, ['--ignore-scripts'], { PATH: noCompilerPath });
    expect(result.status, result.stderr).toBe(0);
    expect(nodeIn(dir, infoScript)).toMatchObject({ backend: 'native', attempts: [{ error: 'not found' }, { error: null }] });
    expect(nodeIn(dir, smokeScript)).toMatchObject({ backend: 'native', inUse: 6 });
  });

  it('works with require, import and TypeScript from the installed package', () => {
    const dir = project('consumers');
    expect(install(dir, tarball, ['--ignore-scripts']).status).toBe(0);
    const cjs = run(process.execPath, ['-e', `const { MemoryPool } = require('slabpool'); const p = new MemoryPool({ blockSize: 3, numBlocks: 2 }); console.log(p.getBlock().length, p.backend)`], dir);
    expect(cjs.stdout.trim(), cjs.stderr).toBe('3 native');
    const esm = run(process.execPath, ['--input-type=module', '-e', `import { MemoryPool, backendInfo } from 'slabpool'; const p = new MemoryPool({ blockSize: [2, 2], numBlocks: 2 }); console.log(p.getBlock().length, backendInfo().backend)`], dir);
    expect(esm.stdout.trim(), esm.stderr).toBe('4 native');

    // Types resolve for both module systems; @ts-expect-error lines fail the compile if the
    // types were missing (any) or wrong.
    const consumer = `
      import { MemoryPool, backendInfo, type PoolOptions, type PoolStats, type BackendInfo, type SlabpoolError, type Pin } from 'slabpool';
      const options: PoolOptions = { blockSize: [10, 10], numBlocks: 8, alignment: 64, poison: 'nan' };
      const pool = new MemoryPool(options);
      const block: Float64Array | null = pool.getBlock();
      if (block) pool.returnBlock(block);
      const stats: PoolStats = pool.stats();
      const fragmentation: number = stats.fragmentation;
      const info: BackendInfo = backendInfo();
      const backend: 'native' | 'js' | null = info.backend; // null: SLABPOOL_BACKEND=native and no addon
      const lease = pool.lease();
      lease?.[Symbol.dispose]();
      const address: bigint | null = block ? pool.addressOf(block) : null;
      const held = pool.getBlock();
      const pin: Pin | null = held ? pool.pin(held) : null;
      const pinned: bigint | null = pin ? pin.address : null;
      pin?.[Symbol.dispose]();
      // @ts-expect-error a Pin's address is read-only
      if (pin) pin.address = 0n;
      function code(e: SlabpoolError): string { return e.code; }
      // @ts-expect-error getBlock takes no argument
      pool.getBlock(1);
      // @ts-expect-error poison is 'none' or 'nan'
      new MemoryPool({ blockSize: 4, numBlocks: 1, poison: 'zero' });
      // @ts-expect-error numBlocks is required
      new MemoryPool({ blockSize: 4 });
      export { fragmentation, backend, address, pinned, code };
    `;
    fs.writeFileSync(path.join(dir, 'consumer.ts'), consumer);
    fs.writeFileSync(path.join(dir, 'consumer.mts'), consumer);
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', lib: ['ES2022', 'ESNext.Disposable'], types: [] },
        files: ['consumer.ts', 'consumer.mts'],
      }),
    );
    const tsc = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    // slabpool/compat from both module systems: typed results per dtype, Node's Buffer (so its
    // users need @types/node, as any Node API user does).
    const compat = `
      import * as pool from 'slabpool/compat';
      import { createTypedArrayPool, type CompatStats } from 'slabpool/compat';
      const a: Float64Array = pool.mallocDouble(4);
      const b: Float32Array = pool.malloc(4, 'float');
      const c: ArrayBuffer = pool.malloc(4);
      const d: Buffer = pool.malloc(4, 'buffer');
      const e: DataView = pool.mallocDataView(4);
      const f = pool.malloc(4, 'nonsense' as string);
      // @ts-expect-error malloc(n, 'float') is not a Float64Array
      const g: Float64Array = pool.malloc(4, 'float');
      for (const x of [a, b, c, d, e, f, g]) pool.free(x);
      const stats: CompatStats = pool.stats();
      const own = createTypedArrayPool({ backend: 'js', strict: true });
      // @ts-expect-error backend is 'auto', 'native' or 'js'
      createTypedArrayPool({ backend: 'wasm' });
      export { stats, own };
    `;
    fs.writeFileSync(path.join(dir, 'compat.ts'), compat);
    fs.writeFileSync(path.join(dir, 'compat.mts'), `${compat}\nimport whole from 'slabpool/compat';\nwhole.clearCache();\n`);
    /** Type-checks `files` in dir, strict, under that module and resolution, with @types/node: no output, status 0. */
    const typecheck = (name: string, module: string, moduleResolution: string, files: string[]): void => {
      const config = path.join(dir, `tsconfig.${name}.json`);
      fs.writeFileSync(
        config,
        JSON.stringify({
          compilerOptions: {
            strict: true, noEmit: true, target: 'ES2022', module, moduleResolution, lib: ['ES2022', 'ESNext.Disposable'],
            types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
          },
          files,
        }),
      );
      const tsc = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], dir);
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    };
    typecheck('compat', 'node16', 'node16', ['compat.ts', 'compat.mts']);
    // Under the resolution `"module": "commonjs"` implies (node10), which reads no `exports`: the
    // subpath's types come from package.json's typesVersions.
    typecheck('node10', 'commonjs', 'node10', ['consumer.ts', 'compat.ts']);
    const both = run(process.execPath, ['--input-type=module', '-e', `import whole, { mallocDouble } from 'slabpool/compat'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url)('slabpool/compat'); console.log(whole.mallocDouble === mallocDouble && r.mallocDouble === mallocDouble, mallocDouble(3).length, r.stats().backend)`], dir);
    expect(both.stdout.trim(), both.stderr).toBe('true 3 native');
  });
});

describe('installing without a prebuild and without a compiler', () => {
  let dir: string;
  let installed: SpawnSyncReturns<string>;

  beforeAll(() => {
    dir = project('fallback');
    // npm shows a dependency's install output only when asked (or when it fails).
    installed = install(dir, tarballWithoutPrebuild, ['--foreground-scripts'], { PATH: noCompilerPath });
  }, 120_000);

  it('succeeds, saying the fallback will be used', () => {
    expect(installed.status, installed.stderr).toBe(0);
    expect(installed.stdout + installed.stderr).toMatch(/could not build the native addon, and no prebuild loads here; the JavaScript fallback will be used/);
  });

  it('runs on the fallback, and backendInfo says why', () => {
    const info = nodeIn(dir, infoScript) as { backend: string; reason: string; attempts: { path: string; error: string }[] };
    const pkg = path.join(dir, 'node_modules', 'slabpool');
    expect(info.attempts).toEqual([
      { path: path.join(pkg, 'build', 'Release', 'slabpool.node'), error: 'not found' },
      { path: path.join(pkg, 'prebuilds', platformArch, 'slabpool.node'), error: 'not found' },
    ]);
    expect(info.backend).toBe('js');
    expect(info.reason).toBe(`no native addon loaded on ${platformArch} (glibc) (${info.attempts.map((a) => `${a.path}: not found`).join('; ')})`);
  });

  it('has the full API working on the fallback', () => {
    expect(nodeIn(dir, smokeScript)).toEqual({ backend: 'js', inUse: 6, capacity: 16, last: 100, trimmed: 8 * 832 });
  });

  it('throws an error naming every attempted path for SLABPOOL_BACKEND=native', () => {
    const out = nodeIn(
      dir,
      `try { new (require('slabpool').MemoryPool)({ blockSize: 1, numBlocks: 1 }); console.log('null'); } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })); }`,
      { SLABPOOL_BACKEND: 'native' },
    ) as { name: string; code: string; message: string };
    const pkg = path.join(dir, 'node_modules', 'slabpool');
    expect(out).toEqual({
      name: 'Error',
      code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE',
      message:
        "Expected a loadable native addon for backend 'native' but none loaded; attempts:" +
        `\n  - ${path.join(pkg, 'build', 'Release', 'slabpool.node')}: not found` +
        `\n  - ${path.join(pkg, 'prebuilds', platformArch, 'slabpool.node')}: not found`,
    });
  });

  it("throws for alignmentScope 'address' instead of falling back, naming every attempt; addressOf is null on the fallback", () => {
    const script =
      `const { MemoryPool } = require('slabpool'); const out = {};` +
      `try { new MemoryPool({ blockSize: 1, numBlocks: 1, alignmentScope: 'address' }); out.address = 'made'; } catch (e) { out.address = { name: e.name, code: e.code, message: e.message }; }` +
      `const p = new MemoryPool({ blockSize: 8, numBlocks: 4, alignment: 4096 }); const b = p.getBlock();` +
      `out.fallback = { scope: p.stats().alignmentScope, address: p.addressOf(b) };` +
      `console.log(JSON.stringify(out));`;
    const out = nodeIn(dir, script) as { address: { name: string; code: string; message: string }; fallback: { scope: string; address: null } };
    const pkg = path.join(dir, 'node_modules', 'slabpool');
    expect(out).toEqual({
      address: {
        name: 'Error',
        code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE',
        message:
          "Expected a loadable native addon for alignmentScope 'address' but none loaded; attempts:" +
          `\n  - ${path.join(pkg, 'build', 'Release', 'slabpool.node')}: not found` +
          `\n  - ${path.join(pkg, 'prebuilds', platformArch, 'slabpool.node')}: not found`,
      },
      fallback: { scope: 'buffer', address: null },
    });
  });
});
