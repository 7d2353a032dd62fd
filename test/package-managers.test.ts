import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, npmPack } from './helpers.js';
import { packageManagerSnippet } from './readme-blocks.js';

/*
 * README.md's "Replacing typedarray-pool", end to end, with each package manager: an application
 * that depends on ndarray-scratch (which requires typedarray-pool) adds the snippet README.md
 * gives its manager, read from the file, installs, and from then on ndarray-scratch allocates
 * from slabpool; the manager's check command shows the replacement. slabpool and its shim
 * package are not on the public registry, so every manager installs from a registry on
 * localhost that serves the two tarballs packed from this repository and forwards every other
 * request to the configured registry: each resolves the `npm:` alias exactly as it would for
 * users. The managers other than npm are installed from the npm registry into a cache
 * (SLABPOOL_CACHE, else ~/.cache/slabpool); where one cannot be installed or run, its cases skip
 * and print why.
 */

const root = path.resolve(__dirname, '..');
const { sourceHash } = createRequire(__filename)('../scripts/source-hash.js') as { sourceHash(): string };
let work: string;
let server: http.Server;
let registry: string;
/** What the exercise below computes (distinct values), on the real typedarray-pool as on slabpool. */
const EXPECTED_RESULTS = ['2', '256', 'float32', '1,1,1,1', '0'];

interface Local {
  readonly manifest: Record<string, unknown> & { name: string; version: string };
  readonly file: string;
  readonly bytes: Buffer;
}
const locals = new Map<string, Local>();

function pack(dir: string): Local {
  const file = npmPack(dir, work);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  return { manifest, file, bytes: fs.readFileSync(file) };
}

function packument(local: Local): unknown {
  const { manifest, file, bytes } = local;
  return {
    name: manifest.name,
    'dist-tags': { latest: manifest.version },
    versions: {
      [manifest.version]: {
        ...manifest,
        _id: `${manifest.name}@${manifest.version}`,
        dist: {
          tarball: `${registry}${manifest.name}/-/${path.basename(file)}`,
          integrity: `sha512-${crypto.createHash('sha512').update(bytes).digest('base64')}`,
          shasum: crypto.createHash('sha1').update(bytes).digest('hex'),
        },
      },
    },
  };
}

async function serve(req: http.IncomingMessage, res: http.ServerResponse, upstream: string): Promise<void> {
  const url = decodeURIComponent(req.url ?? '/');
  const [, name, dash, file] = /^\/([^/]+)(?:\/(-)\/([^/]+))?$/.exec(url) ?? [];
  const local = name ? locals.get(name) : undefined;
  if (local) {
    if (dash && file === path.basename(local.file)) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(local.bytes);
    else if (!dash) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument(local)));
    else res.writeHead(404).end();
    return;
  }
  const headers: Record<string, string> = {};
  if (req.headers.accept) headers.accept = req.headers.accept;
  const answer = await fetch(new URL(req.url!.slice(1), upstream), { headers });
  const body = Buffer.from(await answer.arrayBuffer());
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' }).end(body);
}

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** npm against the local registry; asynchronous, since the registry answers from this process. */
function npm(args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('npm', [...args, '--no-audit', '--no-fund', '--registry', registry], { cwd, timeout: 300_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The override object README.md gives npm: the documented change, verbatim. */
function documentedOverride(): Record<string, string> {
  return (JSON.parse(packageManagerSnippet('npm', 'package.json')) as { overrides: Record<string, string> }).overrides;
}

/**
 * What an installed slabpool was built from, read in the app (`require` resolves as the app
 * does, Plug'n'Play included): the hash of its native sources and of its dist/index.js; null
 * where the app has no slabpool. A test
 * install that is not this checkout's (a manager's cache) must fail here, not test old code.
 */
const INSTALLED = `(() => {
  const fs = require('node:fs');
  let root;
  try { root = require('node:path').dirname(require.resolve('slabpool/package.json')); } catch { return null; }
  return {
    sourceHash: require(root + '/scripts/source-hash.js').sourceHash(root),
    dist: require('node:crypto').createHash('sha256').update(fs.readFileSync(root + '/dist/index.js')).digest('hex'),
  };
})()`;

function thisCheckout(): { sourceHash: string; dist: string } {
  return {
    sourceHash: sourceHash(),
    dist: crypto.createHash('sha256').update(fs.readFileSync(path.join(root, 'dist', 'index.js'))).digest('hex'),
  };
}

const exercise = `
  const path = require('node:path');
  const scratch = require('ndarray-scratch');
  const pool = require(require.resolve('typedarray-pool', { paths: [path.dirname(require.resolve('ndarray-scratch'))] }));
  const poolPackage = require(require.resolve('typedarray-pool/package.json', { paths: [path.dirname(require.resolve('ndarray-scratch'))] }));
  const before = typeof pool.stats === 'function' ? pool.stats().mallocs : null;
  const results = [];
  for (let i = 0; i < 100; i++) {
    const a = scratch.zeros([16, 16]);
    const b = scratch.ones([16, 16], 'float32');
    const c = scratch.clone(b);
    results.push(a.get(3, 4) + b.get(5, 6) + c.get(15, 15), a.data.length, c.dtype);
    scratch.free(a);
    scratch.free(b);
    scratch.free(c);
  }
  const eye = scratch.eye([4, 4]);
  results.push([0, 1, 2, 3].map((i) => eye.get(i, i)).join(','), eye.get(0, 1));
  scratch.free(eye);
  const stats = typeof pool.stats === 'function' ? pool.stats() : null;
  console.log(JSON.stringify({
    poolPackage: poolPackage.name,
    results: [...new Set(results.map(String))],
    mallocs: stats && stats.mallocs - before,
    frees: stats && stats.frees,
    doubleFrees: stats && stats.doubleFrees,
    foreignFrees: stats && stats.foreignFrees,
    live: stats && stats.classes.reduce((sum, c) => sum + c.liveBlocks, 0),
    backend: stats && stats.backend,
    installed: ${INSTALLED},
    sameAsSlabpool: stats !== null && pool.malloc === require('slabpool/compat').malloc,
  }));
`;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-override-'));
  const upstream = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim().replace(/\/?$/, '/');
  server = http.createServer((req, res) => {
    serve(req, res, upstream).catch((err: Error) => res.writeHead(502).end(String(err.message)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  for (const dir of [root, path.join(root, 'packages', 'slabpool-typedarray-pool')]) {
    const local = pack(dir);
    locals.set(local.manifest.name, local);
  }
}, 120_000);

afterAll(() => {
  server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('replacing typedarray-pool: npm', () => {
  it('moves ndarray-scratch from typedarray-pool onto slabpool, with the same results', async () => {
    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    const pkg = { name: 'app', version: '1.0.0', private: true, dependencies: { 'ndarray-scratch': '^1.2.0' } };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(pkg, null, 2));
    const first = await npm(['install'], app);
    expect(first.status, first.stderr).toBe(0);
    const before = JSON.parse(execFileSync(process.execPath, ['-e', exercise.replace("require('slabpool/compat')", 'null')], { cwd: app, encoding: 'utf8' }));
    expect(before.poolPackage).toBe('typedarray-pool');
    expect(before.mallocs).toBeNull(); // the real typedarray-pool has no stats()

    // The one change.
    const overrides = documentedOverride();
    expect(Object.keys(overrides)).toEqual(['typedarray-pool']);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ ...pkg, overrides }, null, 2));
    const second = await npm(['install'], app);
    expect(second.status, second.stderr).toBe(0);

    const after = JSON.parse(execFileSync(process.execPath, ['-e', exercise], { cwd: app, encoding: 'utf8' }));
    expect(after).toMatchObject({ poolPackage: 'slabpool-typedarray-pool', backend: 'native', sameAsSlabpool: true, doubleFrees: 0, foreignFrees: 0, live: 0 });
    expect(after.results).toEqual(before.results);
    expect(before.results).toEqual(EXPECTED_RESULTS);
    expect(after.mallocs).toBe(301); // 3 arrays in each of 100 rounds, and the identity matrix
    const tree = await npm(['ls', 'typedarray-pool', 'slabpool', '--all'], app);
    expect(tree.stdout).toMatch(/ndarray-scratch@1\.2\.\d+\n\s+└─┬ typedarray-pool@npm:slabpool-typedarray-pool@0\.1\.0\n\s+└── slabpool@0\.1\.0/);
  }, 600_000);
});

/*
 * The other managers. Each case: a new project depending on ndarray-scratch and on slabpool
 * itself (README: under pnpm and Plug'n'Play, code that reads require('slabpool/compat') must
 * list it), plus the manager's snippet from README.md; one install; then the same exercise.
 */

interface Manager {
  readonly label: string;
  /** What `npm install` fetches into the cache, and the file in it that runs the manager. */
  readonly spec: string;
  readonly bin: string;
}

const PNPM9: Manager = { label: 'pnpm 9', spec: 'pnpm@9', bin: 'node_modules/pnpm/bin/pnpm.cjs' };
const PNPM10: Manager = { label: 'pnpm 10', spec: 'pnpm@10', bin: 'node_modules/pnpm/bin/pnpm.cjs' };
const PNPM: Manager = { label: 'pnpm (latest)', spec: 'pnpm@latest', bin: 'node_modules/pnpm/pnpm' };
const YARN1: Manager = { label: 'Yarn 1', spec: 'yarn@1', bin: 'node_modules/yarn/bin/yarn.js' };
const YARN4: Manager = { label: 'Yarn 4', spec: '@yarnpkg/cli-dist@4', bin: 'node_modules/@yarnpkg/cli-dist/bin/yarn.js' };

const cache = path.join(process.env.SLABPOOL_CACHE || path.join(os.homedir(), '.cache', 'slabpool'), 'package-managers');
const installed = new Map<Manager, { run: string[]; version: string } | { skip: string }>();

/** The manager, installed from the npm registry into the cache once; or why it cannot run here. */
function managerFor(m: Manager): { run: string[]; version: string } | { skip: string } {
  const known = installed.get(m);
  if (known) return known;
  const dir = path.join(cache, m.spec.replace(/[@/]/g, '_'));
  const bin = path.join(dir, m.bin);
  let result: { run: string[]; version: string } | { skip: string };
  try {
    if (!fs.existsSync(bin) || Date.now() - fs.statSync(bin).mtimeMs > 7 * 86_400_000) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'package.json'), '{"private":true}');
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', m.spec], { cwd: dir, stdio: 'pipe', timeout: 300_000 });
    }
    const run = bin.endsWith('.js') || bin.endsWith('.cjs') ? [process.execPath, bin] : [bin];
    const version = execFileSync(run[0]!, [...run.slice(1), '--version'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    result = { run, version };
  } catch (err) {
    const e = err as Error & { stderr?: Buffer | string };
    result = { skip: `${m.label} (${m.spec}) cannot be installed or run here: ${String(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}` };
  }
  installed.set(m, result);
  return result;
}

function exec(command: string[], cwd: string, env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    // CI=true would make pnpm and Yarn 4 refuse to write a lockfile; these projects are new.
    const child = spawn(command[0]!, command.slice(1), { cwd, timeout: 300_000, env: { ...process.env, CI: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Yarn 4's settings for a test install: the localhost registry, and every cache in `store`. Its
 * global folder holds a mirror that it reads before the registry, keyed by name and version, so
 * a ~/.yarn/berry/cache from an earlier checkout would install that checkout's slabpool 0.1.0.
 */
function yarn4Env(linker: 'pnp' | 'node-modules', store: string): Record<string, string> {
  return {
    YARN_NPM_REGISTRY_SERVER: registry.replace(/\/$/, ''),
    YARN_UNSAFE_HTTP_WHITELIST: '127.0.0.1',
    YARN_NODE_LINKER: linker,
    YARN_ENABLE_GLOBAL_CACHE: 'false',
    YARN_ENABLE_MIRROR: 'false',
    YARN_GLOBAL_FOLDER: path.join(store, 'yarn4-global'),
    YARN_CACHE_FOLDER: path.join(store, 'yarn4'),
    YARN_ENABLE_TELEMETRY: '0',
    YARN_ENABLE_IMMUTABLE_INSTALLS: 'false',
    // Yarn 4 installs only versions published a day ago or more (README says so); these are new.
    YARN_NPM_MINIMAL_AGE_GATE: '0',
  };
}

interface Case {
  readonly manager: Manager;
  readonly title: string;
  /** The README snippet: which manager's, for which file. */
  readonly snippet: readonly [string, 'package.json' | 'pnpm-workspace.yaml'];
  readonly linker?: 'pnp' | 'node-modules';
  readonly why: string[];
  /** What the check command prints when typedarray-pool is replaced. */
  readonly shows: RegExp;
  /** A change to the snippet, for a case that tries a variant of it. */
  readonly edit?: (snippet: string) => string;
  /** The install must fail, printing this. */
  readonly fails?: RegExp;
}

// Yarn 4's `why typedarray-pool` prints nothing once it is replaced: the package is slabpool-typedarray-pool.
const YARN4_WHY = /└─ slabpool-typedarray-pool@npm:0\.1\.0 \(via npm:slabpool-typedarray-pool@\^0\.1\.0\)/;

const CASES: readonly Case[] = [
  { manager: PNPM9, title: 'pnpm 9, "pnpm.overrides" in package.json', snippet: ['pnpm9', 'package.json'], why: ['why', 'slabpool-typedarray-pool'], shows: /ndarray-scratch 1\.2\.\d+\n└── slabpool-typedarray-pool 0\.1\.0/ },
  { manager: PNPM10, title: 'pnpm 10, "pnpm.overrides" in package.json', snippet: ['pnpm9', 'package.json'], why: ['why', 'typedarray-pool'], shows: /slabpool-typedarray-pool/ },
  { manager: PNPM10, title: 'pnpm 10, overrides in pnpm-workspace.yaml', snippet: ['pnpm', 'pnpm-workspace.yaml'], why: ['why', 'typedarray-pool'], shows: /slabpool-typedarray-pool/ },
  { manager: PNPM, title: 'current pnpm, overrides and allowBuilds in pnpm-workspace.yaml', snippet: ['pnpm', 'pnpm-workspace.yaml'], why: ['why', 'typedarray-pool'], shows: /slabpool-typedarray-pool/ },
  {
    manager: PNPM,
    title: 'current pnpm, allowBuilds slabpool: true (the install script runs)',
    snippet: ['pnpm', 'pnpm-workspace.yaml'],
    edit: (yaml) => yaml.replace('slabpool: false', 'slabpool: true'),
    why: ['why', 'typedarray-pool'],
    shows: /slabpool-typedarray-pool/,
  },
  {
    manager: PNPM,
    title: 'current pnpm, without allowBuilds',
    snippet: ['pnpm', 'pnpm-workspace.yaml'],
    edit: (yaml) => yaml.replace(/^allowBuilds:\n {2}slabpool: false\n?/m, ''),
    fails: /ERR_PNPM_IGNORED_BUILDS/,
    why: [],
    shows: /$^/,
  },
  { manager: YARN1, title: 'Yarn 1, "resolutions"', snippet: ['yarn', 'package.json'], why: ['why', 'typedarray-pool'], shows: /Found "typedarray-pool@0\.1\.0"/ },
  { manager: YARN4, title: "Yarn 4 with node_modules, \"resolutions\"", snippet: ['yarn', 'package.json'], linker: 'node-modules', why: ['why', 'slabpool-typedarray-pool'], shows: YARN4_WHY },
  { manager: YARN4, title: "Yarn 4 with Plug'n'Play, \"resolutions\"", snippet: ['yarn', 'package.json'], linker: 'pnp', why: ['why', 'slabpool-typedarray-pool'], shows: YARN4_WHY },
];

describe.each(CASES)('replacing typedarray-pool: $title', (c) => {
  it('moves ndarray-scratch onto slabpool with the same results, and the check command shows it', async (ctx) => {
    const manager = managerFor(c.manager);
    if ('skip' in manager) {
      console.log(`skipped: ${manager.skip}`);
      ctx.skip(manager.skip);
      return;
    }
    const app = fs.mkdtempSync(path.join(work, 'app-'));
    const store = path.join(work, 'stores');
    let pkg: Record<string, unknown> = { name: 'app', version: '1.0.0', private: true, dependencies: { 'ndarray-scratch': '^1.2.0', slabpool: '^0.1.0' } };
    const snippet = (c.edit ?? ((text: string) => text))(packageManagerSnippet(...c.snippet));
    if (c.edit) expect(snippet).not.toBe(packageManagerSnippet(...c.snippet));
    if (c.snippet[1] === 'package.json') pkg = { ...pkg, ...(JSON.parse(snippet) as object) };
    else fs.writeFileSync(path.join(app, 'pnpm-workspace.yaml'), `${snippet}\n`);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(pkg, null, 2));

    const isYarn4 = c.manager === YARN4;
    const env: Record<string, string> = isYarn4 ? yarn4Env(c.linker!, store) : {};
    const args =
      c.manager === YARN1
        ? ['install', '--registry', registry, '--cache-folder', path.join(store, 'yarn1'), '--non-interactive', '--no-progress']
        : isYarn4
          ? ['install']
          : ['install', `--registry=${registry}`, `--store-dir=${path.join(store, 'pnpm')}`, '--no-frozen-lockfile', '--reporter=append-only'];
    const install = await exec([...manager.run, ...args], app, env);
    if (c.fails) {
      expect(install.status).not.toBe(0);
      expect(install.stdout + install.stderr).toMatch(c.fails);
      return;
    }
    expect(install.status, `${manager.version}: ${install.stdout}\n${install.stderr}`).toBe(0);

    const pnp = path.join(app, '.pnp.cjs');
    const nodeArgs = c.linker === 'pnp' ? ['-r', pnp] : [];
    if (c.linker === 'pnp') expect(fs.existsSync(pnp), 'Yarn 4 made no .pnp.cjs').toBe(true);
    const after = JSON.parse(execFileSync(process.execPath, [...nodeArgs, '-e', exercise], { cwd: app, encoding: 'utf8' }));
    expect(after).toMatchObject({ poolPackage: 'slabpool-typedarray-pool', sameAsSlabpool: true, doubleFrees: 0, foreignFrees: 0, live: 0, mallocs: 301 });
    // The prebuild loads without the install script (pnpm skips it; Plug'n'Play unplugs slabpool).
    expect(after.installed, 'the slabpool installed is not this checkout').toEqual(thisCheckout());
    expect(after.backend).toBe(BACKENDS.includes('native') ? 'native' : 'js');
    expect(after.results).toEqual(EXPECTED_RESULTS);

    const why = await exec([...manager.run, ...c.why], app, env);
    expect(why.status, why.stderr).toBe(0);
    expect(why.stdout, `${manager.version} ${c.why.join(' ')}`).toMatch(c.shows);
    // README.md names this check command for this manager.
    const command = `${c.manager === YARN1 || c.manager === YARN4 ? 'yarn' : 'pnpm'} ${c.why.join(' ')}`;
    expect(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).toContain(`\`${command}\``);
  }, 600_000);
});

/*
 * README.md's "Install": the packed tarball installed by path, with the command README.md gives
 * each manager, in a new project; slabpool then runs, on the native backend where the prebuild
 * loads (no manager here runs its install script to build anything).
 */

interface TarballCase {
  readonly manager: Manager | null;
  readonly title: string;
  readonly linker?: 'pnp' | 'node-modules';
  /** Write README's pnpm-workspace.yaml (allowBuilds) first. */
  readonly allowBuilds?: boolean;
  readonly fails?: RegExp;
}

const TARBALL_CASES: readonly TarballCase[] = [
  { manager: null, title: 'npm' },
  { manager: PNPM9, title: 'pnpm 9' },
  { manager: PNPM10, title: 'pnpm 10' },
  { manager: PNPM, title: 'current pnpm, with allowBuilds', allowBuilds: true },
  { manager: PNPM, title: 'current pnpm, without allowBuilds', fails: /ERR_PNPM_IGNORED_BUILDS/ },
  { manager: YARN1, title: 'Yarn 1' },
  { manager: YARN4, title: 'Yarn 4 with node_modules', linker: 'node-modules' },
  { manager: YARN4, title: "Yarn 4 with Plug'n'Play", linker: 'pnp' },
];

/** README's command for `tool` (npm, pnpm, yarn), with its tarball path made this one's. */
function tarballCommand(tool: string, tarball: string): string[] {
  const lines = packageManagerSnippet('tarball', 'commands').split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => l.split(/\s+/)[0] === tool);
  if (!line) throw new Error(`README.md gives no tarball command for ${tool}`);
  const words = line.split(/\s+/);
  expect(words.at(-1)).toBe('../slabpool/slabpool-0.1.0.tgz');
  return [...words.slice(1, -1), tarball];
}

describe.each(TARBALL_CASES)('installing the tarball: $title', (c) => {
  it('installs with the README command, and the pool runs', async (ctx) => {
    let run = ['npm'];
    if (c.manager) {
      const manager = managerFor(c.manager);
      if ('skip' in manager) {
        console.log(`skipped: ${manager.skip}`);
        ctx.skip(manager.skip);
        return;
      }
      run = manager.run;
    }
    const tool = c.manager === null ? 'npm' : c.manager === YARN1 || c.manager === YARN4 ? 'yarn' : 'pnpm';
    const app = fs.mkdtempSync(path.join(work, 'tarball-'));
    const store = path.join(work, 'stores');
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }, null, 2));
    if (c.allowBuilds) fs.writeFileSync(path.join(app, 'pnpm-workspace.yaml'), `${packageManagerSnippet('pnpm-builds', 'pnpm-workspace.yaml')}\n`);
    const tarball = locals.get('slabpool')!.file;
    // Dependencies (bindings, node-addon-api) come through the localhost registry, as above.
    const env: Record<string, string> = c.manager === YARN4 ? yarn4Env(c.linker!, store) : {};
    const extra =
      c.manager === null
        ? ['--no-audit', '--no-fund', '--registry', registry]
        : c.manager === YARN1
          ? ['--registry', registry, '--cache-folder', path.join(store, 'yarn1'), '--non-interactive', '--no-progress']
          : c.manager === YARN4
            ? []
            : [`--registry=${registry}`, `--store-dir=${path.join(store, 'pnpm')}`, '--reporter=append-only'];
    const install = await exec([...run, ...tarballCommand(tool, tarball), ...extra], app, env);
    if (c.fails) {
      expect(install.status).not.toBe(0);
      expect(install.stdout + install.stderr).toMatch(c.fails);
      return;
    }
    expect(install.status, `${install.stdout}\n${install.stderr}`).toBe(0);
    const nodeArgs = c.linker === 'pnp' ? ['-r', path.join(app, '.pnp.cjs')] : [];
    const script = `const s = require('slabpool'); const p = new s.MemoryPool({ blockSize: 3, numBlocks: 2 }); console.log(JSON.stringify({ backend: p.backend, length: p.getBlock().length, from: require.resolve('slabpool'), installed: ${INSTALLED} }))`;
    const out = JSON.parse(execFileSync(process.execPath, [...nodeArgs, '-e', script], { cwd: app, encoding: 'utf8' }));
    expect(out).toMatchObject({ backend: BACKENDS.includes('native') ? 'native' : 'js', length: 3 });
    expect(out.from.startsWith(root)).toBe(false); // the installed copy, not this checkout's files
    expect(out.installed, 'the slabpool installed is not this checkout').toEqual(thisCheckout());
  }, 600_000);
});
