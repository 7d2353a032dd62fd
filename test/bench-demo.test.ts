import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

// The benchmark and the demo as programs: what they print, not how fast anything is (speed is the
// benchmark's business, measured by `npm run bench`).
const root = path.resolve(__dirname, '..');
const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('npm run bench -- --json', () => {
  it('prints exactly one JSON object with every figure the README and the targets use', () => {
    const run = node([path.join('bench', 'run.mjs'), '--smoke', '--json']);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout); // the whole of stdout: one object, nothing else
    const number = expect.any(Number);
    const variants = ['floor', 'newFloat64Array', 'typedarrayPool', ...BACKENDS];
    expect(Object.keys(report.acquireRelease).sort()).toEqual([...variants].sort());
    for (const v of variants) expect(report.acquireRelease[v]).toBeGreaterThan(0);
    expect(report).toMatchObject({ blockLength: 100, smoke: true, trials: 1 });
    for (const b of BACKENDS) {
      expect(report.steadyState[b]).toMatchObject({ cycles: 10_000, gcEvents: number, rssGrowthBytes: number });
      expect(report.construct[b]).toEqual({ '1e3': number, '1e6': number });
      for (const k of ['k1', 'k8', 'k64']) expect(report.getRun[b][k]).toEqual({ '1e3': number, '1e6': number });
    }
    expect(report.steadyState.newFloat64Array.cycles).toBe(10_000);
    for (const pattern of ['same', 'random']) {
      expect(Object.keys(report.compat[pattern]).sort()).toEqual(['typedarrayPool', ...BACKENDS].sort());
      for (const v of Object.values(report.compat[pattern])) expect(v).toBeGreaterThan(0);
    }
    // The user's own kernel before and after each pool operation, and around nothing.
    const kernelVariants = ['nothing', ...BACKENDS.flatMap((b) => [`${b}Destroy`, `${b}Trim`]), 'compatClearCache', 'compatTrimPolicy', 'detachDestroy', 'plainProperty'];
    expect(report.kernelAfter).toMatchObject({ rounds: 2000, trials: 1 });
    expect(Object.keys(report.kernelAfter.variants).sort()).toEqual([...kernelVariants].sort());
    for (const v of kernelVariants) {
      const row = report.kernelAfter.variants[v];
      expect(row).toEqual({ label: expect.any(String), before: number, ms: number, ratio: number, protectorInvalidated: expect.any(Boolean) });
      expect(row.before).toBeGreaterThan(0);
      expect(row.ms).toBeGreaterThan(0);
      expect(row.ratio).toBeGreaterThan(0);
    }
    // V8's trace, read by the benchmark: only the detach reference detaches.
    for (const v of kernelVariants) expect(report.kernelAfter.variants[v].protectorInvalidated, v).toBe(v === 'detachDestroy');
    const kernelTargets = report.targets.filter((t: { name: string }) => t.name.startsWith('kernel after '));
    expect(kernelTargets.map((t: { name: string }) => t.name).sort()).toEqual(
      [...BACKENDS.flatMap((b) => [`kernel after ${b} destroy() / before it`, `kernel after ${b} trim() / before it`]), 'kernel after compat clearCache() / before it', "kernel after compat's trim policy / before it"].sort(),
    );
    for (const t of kernelTargets) expect(t.limit).toBe('<= 1.15');
    expect(report.targets.length).toBe(BACKENDS.length * 11 + kernelTargets.length);
    for (const t of report.targets) expect(t).toEqual({ name: expect.any(String), value: number, limit: expect.any(String), met: expect.any(Boolean) });
    expect(report.machine).toMatchObject({ node: process.version, cores: number });
  });
});

describe.each(BACKENDS)('npm start (the demo) on the %s backend', (backend) => {
  it('finds the identical best value with pooled and with new Float64Array buffers', () => {
    const run = node([path.join('examples', 'demo.mjs'), '--iterations', '300', '--backend', backend, '--json']);
    expect(run.status, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ iterations: 300, dimensions: 30, particles: 50, backend, sameBest: true });
    expect(summary.slabpool.best).toBe(summary.newFloat64Array.best);
    expect(summary.slabpool.best).toBeGreaterThan(0);
    // 50 particles take 4 buffers an iteration, plus a few for improvements and the start.
    expect(summary.buffersTaken).toBeGreaterThanOrEqual(300 * 50 * 4);
    for (const side of [summary.slabpool, summary.newFloat64Array]) {
      expect(side).toEqual({ label: expect.any(String), ms: expect.any(Number), gcEvents: expect.any(Number), rssGrowthBytes: expect.any(Number), best: expect.any(Number) });
    }
  });
});

describe('the demo as a program', () => {
  it('prints plain status lines and a summary when its output is not a terminal', () => {
    const run = node([path.join('examples', 'demo.mjs'), '--iterations', '200']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout.match(/^iteration +\d+\/200 +best [\d.]+ +pool: \d+\/\d+ blocks, efficiency [\d.]+ %, fragmentation [\d.]+ % +rss [\d.]+ MB$/gm)?.length).toBe(10);
    expect(run.stdout).toMatch(/^GC events +\d+ +\d+$/m);
    expect(run.stdout).toMatch(/identical best value; slabpool was [\d.]+x as fast/);
  });

  it('rejects an unknown option, saying which options exist', () => {
    const run = node([path.join('examples', 'demo.mjs'), '--iterations', '0']);
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe('--iterations takes a positive integer');
    const other = node([path.join('examples', 'demo.mjs'), '--fast']);
    expect(other.stderr.trim()).toBe('unknown option --fast (options: --iterations N, --backend auto|native|js, --json)');
  });
});
