import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

/*
 * typedarray-pool's own test file, from its published package, run unchanged against compat. It
 * sits where it sits in typedarray-pool (test/test.js beside pool.js) in a directory laid out as
 * npm lays out an override: node_modules/typedarray-pool is our shim package
 * (packages/slabpool-typedarray-pool), node_modules/slabpool is this repository, and the file's
 * `require("../pool.js")` is typedarray-pool's entry, which loads `require('typedarray-pool')`.
 * A preload prints compat's counters at exit, so the run proves slabpool served every call.
 */

const root = path.resolve(__dirname, '..');
const published = path.join(root, 'node_modules', 'typedarray-pool');
const shim = path.join(root, 'packages', 'slabpool-typedarray-pool');
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-tap-suite-'));
  fs.mkdirSync(path.join(work, 'test'));
  fs.copyFileSync(path.join(published, 'test', 'test.js'), path.join(work, 'test', 'test.js'));
  fs.writeFileSync(path.join(work, 'pool.js'), "module.exports = require('typedarray-pool')\n");
  const modules = path.join(work, 'node_modules');
  fs.mkdirSync(path.join(modules, 'typedarray-pool'), { recursive: true });
  for (const file of ['package.json', 'index.js']) fs.copyFileSync(path.join(shim, file), path.join(modules, 'typedarray-pool', file));
  fs.symlinkSync(root, path.join(modules, 'slabpool'), 'dir');
  fs.writeFileSync(
    path.join(work, 'report.js'),
    `process.on('exit', () => { const s = require('slabpool/compat').stats(); process.stderr.write('compat-stats ' + JSON.stringify(s) + '\\n'); });\n`,
  );
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.each(BACKENDS)("typedarray-pool's own test file against compat on the %s backend", (backend) => {
  it('passes unchanged', () => {
    const file = path.join(work, 'test', 'test.js');
    expect(fs.readFileSync(file)).toEqual(fs.readFileSync(path.join(published, 'test', 'test.js')));
    const run = spawnSync(process.execPath, ['-r', path.join(work, 'report.js'), file], {
      cwd: work,
      // tape and dup, the file's own dependencies, from our devDependencies.
      env: { ...process.env, NODE_PATH: path.join(root, 'node_modules'), SLABPOOL_BACKEND: backend, SLABPOOL_COMPAT_STRICT: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const tests = Number(/^# tests (\d+)$/m.exec(run.stdout)?.[1]);
    const pass = Number(/^# pass {2}(\d+)$/m.exec(run.stdout)?.[1]);
    expect(tests).toBeGreaterThan(5000);
    expect(pass).toBe(tests);
    expect(run.stdout).not.toMatch(/^not ok/m);
    const stats = JSON.parse(/^compat-stats (.*)$/m.exec(run.stderr)![1]!);
    expect(stats.backend).toBe(backend);
    // Strict mode was on: no double or foreign free happened; every malloc was freed.
    expect([stats.doubleFrees, stats.foreignFrees]).toEqual([0, 0]);
    expect(stats.mallocs).toBeGreaterThan(2500); // 29 per size, 99 sizes
    expect(stats.arrayBuffers.mallocs).toBeGreaterThan(0);
    expect(stats.frees).toBe(stats.mallocs);
    // The file ends with clearCache(): every class was idle, so every slab went back.
    expect([stats.classes, stats.reservedBytes]).toEqual([[], 0]);
  });
});

describe('the shim package', () => {
  it('carries the version of slabpool and depends on exactly that version', () => {
    const own = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const pkg = JSON.parse(fs.readFileSync(path.join(shim, 'package.json'), 'utf8'));
    expect(pkg.version).toBe(own.version);
    expect(pkg.dependencies).toEqual({ slabpool: own.version });
    expect(pkg.files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts']));
  });
});
