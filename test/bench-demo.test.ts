import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

// The benchmark and the demo as programs: what they print, not how fast anything is (speed is the
// benchmark's business, measured by `npm run bench`).
const root = path.resolve(__dirname, '..');
const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('npm run bench --json', () => {
  it('prints exactly one JSON object with every figure the README and the targets use', { timeout: 240_000 }, () => {
    // The command itself, build step included (after npm test's build it compiles nothing, so
    // dist/ is not rewritten under the suites running beside this one).
    // npm's own --json moves its banner to stderr and tells the script (npm_config_json); with
    // `-- --json` npm 10 and 11 print the banner on stdout first, which only npm can leave out.
    const run = spawnSync('npm', ['run', 'bench', '--json', '--', '--smoke'], { cwd: root, encoding: 'utf8', timeout: 240_000, shell: process.platform === 'win32' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^slabpool: (native addon up to date|built the native addon)/m); // build-native's line, on stderr
    const report = JSON.parse(run.stdout); // the whole of stdout: one JSON object, nothing else
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
    expect(report.construct.newArrayBuffer).toEqual({ '1e3': number, '1e6': number });
    for (const v of [...BACKENDS, 'newArrayBuffer']) expect(report.constructGc[v]).toEqual({ '1e3': number, '1e6': number });
    // A fragmented pool's getBlock+returnBlock, beside the floor of the same run.
    expect(Object.keys(report.fragmented).sort()).toEqual(['floor', ...BACKENDS].sort());
    for (const b of BACKENDS) expect(report.fragmented[b]).toEqual({ ns: number, coalesces: number, fragmentation: number });
    expect(report.addressOf).toEqual(Object.fromEntries([...BACKENDS, 'bigint'].map((v) => [v, number])));
    // Zeroed blocks: per backend and block length, reused and fresh, beside getBlock + fill(0).
    const zeroedRow = { fill: number, zeroed: number, ratio: number, freshGetBlock: number, freshFill: number, freshZeroed: number };
    expect(report.zeroed).toEqual(Object.fromEntries(BACKENDS.map((b) => [b, { 100: zeroedRow, 1000: zeroedRow, 100000: zeroedRow }])));
    // Layouts: per backend, size and operation, the median and worst over layouts.
    const ops = ['getBlock', 'k1', 'k8', 'k64', 'largest'];
    expect(report.layouts).toMatchObject({ seeds: 2, budgetMs: 1 });
    expect(Object.keys(report.layouts).sort()).toEqual(['seeds', 'budgetMs', 'trialSeconds', ...BACKENDS].sort());
    const layoutNames = ['seed 1', 'seed 2', 'adversarial'];
    for (const b of BACKENDS) {
      expect(Object.keys(report.layouts[b])).toEqual(['1e3', '1e5', '1e6']);
      expect(Object.keys(report.layouts.trialSeconds[b])).toEqual(['1e3', '1e5', '1e6']);
      for (const size of ['1e3', '1e5', '1e6']) {
        expect(Object.keys(report.layouts[b][size])).toEqual(ops);
        for (const op of ops) {
          const row = report.layouts[b][size][op];
          expect(row).toEqual({ median: number, worst: number, worstLayout: expect.any(String), adversarial: number, found: number, ...(op === 'largest' ? { kRange: [number, number] } : {}) });
          expect(layoutNames).toContain(row.worstLayout);
          expect(row.worst).toBeGreaterThanOrEqual(row.median);
          expect(row.found).toBeGreaterThanOrEqual(0);
          expect(row.found).toBeLessThanOrEqual(1);
        }
        // Every layout has a free block and a largest free run to find.
        for (const op of ['getBlock', 'k1', 'largest']) expect(report.layouts[b][size][op].found).toBe(1);
      }
    }
    // Churn: one trace per seed (one seed in --smoke) for every allocator; both backends place blocks alike.
    expect(report.churn).toMatchObject({ seeds: [1], operations: 20_000, blocks: 1000, period: 10_000, warmup: 2000 });
    const medianWorst = { median: number, worst: number };
    for (const v of [...BACKENDS, 'firstFit']) {
      const extra = v === 'firstFit' ? {} : { fragmentationVsFirstFit: medianWorst, failuresVsFirstFit: medianWorst, seeds: [expect.objectContaining({ seed: 1, ns: number, fragmentation: number, firstFit: number, getRunFailures: number, firstFitFailures: number })] };
      expect(report.churn[v]).toEqual({ ns: medianWorst, fragmentation: medianWorst, occupancy: number, getRunFailures: medianWorst, getBlockFailures: number, getRuns: number, ...extra });
      expect(report.churn[v].getRuns).toBe(report.churn.js.getRuns);
      expect(report.churn[v].occupancy).toBeGreaterThan(30);
    }
    for (const b of BACKENDS) {
      expect(report.churn[b].fragmentation).toEqual(report.churn.js.fragmentation);
      expect(report.churn[b].getRunFailures).toEqual(report.churn.js.getRunFailures);
      // Each seed's ratio is against first fit on the same trace.
      const seed = report.churn[b].seeds[0];
      expect(report.churn[b].fragmentationVsFirstFit.median).toBeCloseTo(seed.fragmentation / seed.firstFit, 2);
      expect(report.churn[b].failuresVsFirstFit.median).toBe(seed.getRunFailures - seed.firstFitFailures);
    }
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
    // Per backend: 3 acquireRelease, 2 steadyState, 2 compat, 2 construct, 3 getRun, 1 fragmented,
    // 8 layouts, 2 churn placement, 4 zeroed, 1 growth; and churn speed, js's own and native's over js's; with both
    // backends, native over js on every layouts row (3 sizes x 5 operations).
    const nativeOverJs = report.targets.filter((t: { name: string }) => t.name.startsWith('native / js: '));
    expect(nativeOverJs).toHaveLength(BACKENDS.includes('native') ? 15 : 0);
    for (const t of nativeOverJs) expect(t.limit).toBe('<= 1.2');
    // Plus, with native, its addressOf target.
    const addressTargets = report.targets.filter((t: { name: string }) => t.name.startsWith('native: addressOf'));
    expect(addressTargets.map((t: { limit: string }) => t.limit)).toEqual(BACKENDS.includes('native') ? ['<= 50'] : []);
    // SharedPool (issue 16): its pair beside a private MemoryPool of each backend, within 2x (a target per backend).
    const sharedTargets = report.targets.filter((t: { name: string }) => t.name.startsWith('SharedPool '));
    expect(sharedTargets.map((t: { name: string; limit: string }) => `${t.name}: ${t.limit}`).sort()).toEqual(BACKENDS.map((b) => `SharedPool getBlock+returnBlock / MemoryPool ${b}'s, one thread, timed in turn: <= 2`).sort());
    for (const b of BACKENDS) expect(sharedTargets.find((t: { name: string }) => t.name.includes(`MemoryPool ${b}'s`)).value).toBe(report.shared.pair[b].ratio);
    expect(report.targets.length).toBe(BACKENDS.length * 29 + kernelTargets.length + nativeOverJs.length + addressTargets.length + sharedTargets.length);
    // Growth: ns per growth at two slab counts (2,000 and 3,000 in --smoke), and a target per backend on their ratio.
    for (const b of BACKENDS) {
      expect(report.growth[b]).toEqual({ 2000: number, 3000: number });
      expect(report.targets.filter((t: { name: string }) => t.name === `${b}: one growth at 3000 slabs / at 2000`)).toHaveLength(1);
    }
    for (const t of report.targets) expect(t).toEqual({ name: expect.any(String), value: number, limit: expect.any(String), met: expect.any(Boolean) });
    // SharedPool: ns per pair beside each MemoryPool backend and their ratio; million pairs per
    // second by one worker and by two (on one SharedPool, and on private pools for reference);
    // us per message handed off and copied, at three lengths (toy ones in --smoke).
    const positive = (x: unknown) => {
      expect(x).toEqual(number);
      expect(x).toBeGreaterThan(0);
    };
    expect(Object.keys(report.shared)).toEqual(['pair', 'threads', 'handOff']);
    expect(Object.keys(report.shared.pair).sort()).toEqual(['blockLength', ...BACKENDS].sort());
    expect(report.shared.pair.blockLength).toBe(100);
    for (const b of BACKENDS) {
      expect(Object.keys(report.shared.pair[b])).toEqual(['shared', 'memoryPool', 'ratio']);
      for (const v of Object.values(report.shared.pair[b])) positive(v);
    }
    // Bursts of twice the magazine (capacity / 16, at most 64): the magazine refills and flushes.
    expect(report.shared.threads).toMatchObject({ burst: 128, magazine: 64, numBlocks: 1024 });
    for (const which of ['shared', 'private']) {
      expect(Object.keys(report.shared.threads[which])).toEqual(['one', 'two', 'ratio']);
      for (const v of Object.values(report.shared.threads[which])) positive(v);
    }
    expect(Object.keys(report.shared.handOff)).toEqual(['100', '1000', '10000']);
    for (const row of Object.values(report.shared.handOff)) {
      expect(Object.keys(row as object)).toEqual(['handOffUs', 'copyUs', 'ratio']);
      for (const v of Object.values(row as object)) positive(v);
    }
    expect(report.machine).toMatchObject({ node: process.version, cores: number });
  });
});

describe('the large-pool rows of the benchmark (--large, run by --check)', () => {
  it('measure every variant of the hugePages and prefault options and report each figure, with its targets', { timeout: 120_000 }, () => {
    const run = node([path.join('bench', 'run.mjs'), '--only', 'large', '--smoke', '--json']);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    const number = expect.any(Number);
    expect(report.large).toMatchObject({ bytes: 64 * 2 ** 20, latencyBytes: 16 * 2 ** 20, trials: { dense: 1, sparse: 1 } });
    const native = BACKENDS.includes('native') ? ['plain', 'hugePages', 'prefault', 'both'] : [];
    // Without and with hugePages in one process, per-round ratios (the target's figure).
    expect(report.large.sideBySide).toEqual(native.length > 0 ? { gatherRatio: number, flatGatherRatio: number, dot100Ratio: number, dot1024Ratio: number, rounds: 1 } : undefined);
    expect(Object.keys(report.large.variants)).toEqual([...native, 'jsPlain', 'jsPrefault']);
    const sparse = { sparseConstructMs: number, constructRssMiB: number, rssMiB: number, residentMiB: expect.anything(), p50Us: number, p999Us: number, maxUs: number, rewriteP50Us: number, rewriteP999Us: number, coldRewriteP50Us: number, coldRewriteP999Us: number, evictMiB: 16, writes: 2048, timerNs: number };
    for (const v of native) {
      const huge = v === 'hugePages' || v === 'both';
      expect(report.large.variants[v]).toEqual({
        label: expect.any(String),
        constructMs: number,
        fillMs: number,
        secondFillMs: number,
        gatherNs: number,
        flatGatherNs: number,
        dot100Ns: number,
        dot1024Ns: number,
        destroyMs: number,
        hugeBytes: huge ? number : null,
        touchedHugeBytes: huge ? number : null,
        ...sparse,
      });
    }
    for (const v of ['jsPlain', 'jsPrefault']) expect(report.large.variants[v]).toEqual({ label: expect.any(String), touchedHugeBytes: null, ...sparse });
    // A pre-faulted slab is resident whatever is written, a plain one only where written.
    // (The fallback's slab is found by its mapping's size, which the kernel may have merged with a neighbour's: then null.)
    if (process.platform === 'linux') {
      const resident = (v: string) => report.large.variants[v].residentMiB as number | null;
      for (const v of native) expect(resident(v), v).toBeGreaterThan(0);
      for (const v of ['prefault', 'both'].filter((x) => native.includes(x))) expect(resident(v), v).toBeGreaterThanOrEqual(64);
      if (resident('jsPrefault') !== null) expect(resident('jsPrefault')).toBeGreaterThanOrEqual(64);
    }
    expect(report.targets.map((t: { name: string; limit: string }) => [t.name, t.limit])).toEqual(
      native.length > 0
        ? [
            ['native: random gather blocks[i][j] over 64 MiB, without / with hugePages, side by side', '>= 1.1'],
            ['native: first write p99.9 with prefault (16 MiB pool), us', '<= 2'],
            ['native: first write p99.9 with prefault / the same writes, no fault possible, caches as cold', '<= 1.25'],
          ]
        : [],
    );
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

  it('--metrics prints the pool\'s Prometheus scrape at the end, every series labelled with the pool', () => {
    const run = node([path.join('examples', 'demo.mjs'), '--iterations', '100', '--backend', 'js', '--metrics']);
    expect(run.status, run.stderr).toBe(0);
    const tail = run.stdout.slice(run.stdout.indexOf('# HELP'));
    expect(tail).toMatch(/^# HELP slabpool_capacity_blocks /);
    const samples = tail.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples).toHaveLength(13);
    for (const line of samples) expect(line).toMatch(/^slabpool_[a-z_]+\{pool="demo",backend="js"\} [\d.e+-]+$/);
    expect(Number(/^slabpool_acquires_total\{[^}]*\} (\S+)$/m.exec(tail)?.[1])).toBeGreaterThan(0);
  });

  it('rejects an unknown option, saying which options exist', () => {
    const run = node([path.join('examples', 'demo.mjs'), '--iterations', '0']);
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe('--iterations takes a positive integer');
    const other = node([path.join('examples', 'demo.mjs'), '--fast']);
    expect(other.stderr.trim()).toBe('unknown option --fast (options: --iterations N, --backend auto|native|js, --workers N, --json, --metrics)');
  });
});

describe('npm start -- --workers N (the swarm evaluated in worker threads, buffers from one SharedPool)', () => {
  const demo = (...args: string[]) => node([path.join('examples', 'demo.mjs'), ...args]);

  it('finds the best value of the single-thread run, with two hand-offs per evaluation, and ends on its own', () => {
    const iterations = 150;
    const single = demo('--iterations', String(iterations), '--json');
    const run = demo('--iterations', String(iterations), '--workers', '2', '--json');
    for (const r of [single, run]) {
      expect(r.signal, r.stderr).toBeNull(); // not killed by the timeout: the workers ended
      expect(r.status, r.stderr).toBe(0);
    }
    const reference = JSON.parse(single.stdout);
    const summary = JSON.parse(run.stdout);
    expect(reference.workers).toBeUndefined();
    expect(summary).toMatchObject({ iterations, particles: 50, sameBest: true });
    // The same best value as the single-thread program and as the runs beside it in this one.
    expect(summary.workers.best).toBe(reference.slabpool.best);
    expect(summary.workers.best).toBe(summary.slabpool.best);
    expect(summary.workers.best).toBe(summary.newFloat64Array.best);
    expect(summary.movedAgain).toBe(reference.movedAgain);
    // What the run implies: 50 particles evaluated at the start and in each iteration, and again
    // after the swarm's best moved earlier in the iteration (counted by the single-thread run);
    // each evaluation hands the position to a worker and back.
    const evaluations = 50 * (iterations + 1) + reference.movedAgain;
    expect(reference.movedAgain).toBeGreaterThan(0);
    expect(summary.workers).toEqual({
      threads: 2,
      label: 'SharedPool, 2 workers',
      ms: expect.any(Number),
      gcEvents: expect.any(Number),
      rssGrowthBytes: expect.any(Number),
      best: expect.any(Number),
      handOffs: 2 * evaluations,
      evaluations,
      movedAgain: reference.movedAgain,
      handOffMs: expect.any(Number),
      perHandOffUs: expect.any(Number),
      batches: expect.any(Number),
      waitMs: expect.any(Number),
      perBatchUs: expect.any(Number),
    });
    // One batch an iteration and one at the start, plus one for each move of the best that sends particles again.
    expect(summary.workers.batches).toBeGreaterThan(iterations);
    expect(summary.workers.batches).toBeLessThanOrEqual(iterations + 1 + reference.movedAgain);
    expect(summary.workers.handOffMs).toBeGreaterThan(0);
    expect(summary.workers.perHandOffUs).toBeCloseTo((summary.workers.handOffMs * 1e3) / summary.workers.handOffs, 6);
  });

  it('prints the hand-off count and time in its summary, and a third column with the same best value', () => {
    const run = demo('--iterations', '100', '--workers', '1', '--backend', 'js');
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ +slabpool +new Float64Array +SharedPool, 1 worker$/m);
    const best = /^best value +(\S+) +(\S+) +(\S+)$/m.exec(run.stdout);
    expect(best?.slice(1)).toEqual([best?.[1], best?.[1], best?.[1]]);
    const handOffs = /^hand-offs: ([\d,]+), each position to a worker and back for ([\d,]+) evaluations \(50 particles x 101, the start included, and ([\d,]+) moved again after the swarm's best moved\)$/m.exec(run.stdout);
    expect(handOffs, run.stdout).not.toBeNull();
    const [count, evaluations, again] = handOffs!.slice(1).map((n) => Number(n.replaceAll(',', '')));
    expect(evaluations).toBe(50 * 101 + again!);
    expect(count).toBe(2 * evaluations!);
    const time = /^hand-off time: ([\d.]+) ms in handOff\(\) and blockAt\(\) over all threads, ([\d.]+) us per hand-off; the main thread waited (\d+) ms for ([\d,]+) batches to come back \(([\d.]+) us each\)$/m.exec(run.stdout);
    expect(time, run.stdout).not.toBeNull();
    expect(Number(time![1])).toBeGreaterThan(0);
    expect(Number(time![2])).toBeCloseTo((Number(time![1]) * 1e3) / count!, 2);
    expect(run.stdout).toMatch(/^identical best value in all three runs; slabpool was [\d.]+x as fast as new Float64Array$/m);
  });

  it.each([
    ['0', '--workers takes a positive integer, not 0'],
    ['-2', '--workers takes a positive integer, not -2'],
    ['1.5', '--workers takes a positive integer, not 1.5'],
    ['two', '--workers takes a positive integer, not two'],
    ['51', '--workers takes at most 50 (the swarm has 50 particles), not 51'],
  ])('refuses --workers %s with a message saying what it takes', (value, message) => {
    const run = demo('--workers', value);
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(message);
    expect(run.stdout).toBe('');
  });

  it('refuses --workers without a value', () => {
    const run = demo('--iterations', '10', '--workers');
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe('--workers needs a value');
  });
});
