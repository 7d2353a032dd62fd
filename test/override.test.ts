import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmPack } from './helpers.js';

/*
 * The README's one change, end to end: an application that depends on ndarray-scratch (which
 * requires typedarray-pool) adds the `overrides` entry printed in README.md, runs npm install,
 * and from then on ndarray-scratch allocates from slabpool. slabpool and its shim package are not
 * on the public registry, so npm installs from a registry on localhost that serves the two
 * tarballs packed from this repository and forwards every other request to the configured
 * registry: npm resolves the override's `npm:` alias exactly as it would for users.
 */

const root = path.resolve(__dirname, '..');
let work: string;
let server: http.Server;
let registry: string;

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

/** The override object in README.md's "Replacing typedarray-pool" section: the documented change, verbatim. */
function documentedOverride(): Record<string, string> {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Replacing typedarray-pool'));
  const block = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
  if (!block) throw new Error('README.md has no json block under "Replacing typedarray-pool"');
  return (JSON.parse(block) as { overrides: Record<string, string> }).overrides;
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

describe('replacing typedarray-pool with one override', () => {
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
    expect(after.mallocs).toBe(301); // 3 arrays in each of 100 rounds, and the identity matrix
    const tree = await npm(['ls', 'typedarray-pool', 'slabpool', '--all'], app);
    expect(tree.stdout).toMatch(/ndarray-scratch@1\.2\.\d+\n\s+└─┬ typedarray-pool@npm:slabpool-typedarray-pool@0\.1\.0\n\s+└── slabpool@0\.1\.0/);
  }, 600_000);
});
