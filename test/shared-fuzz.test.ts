import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedPool, type PoolArray, type PoolArrayConstructor } from '../lib/index.js';
import { BACKENDS, fuzzSettings, rng } from './helpers.js';
import { rawBlocks, start, type Started } from './shared-workers.js';

/*
 * The concurrent fuzz of SharedPool: 2 to 4 workers (test/shared-worker.cjs, mode 'fuzz') doing
 * seeded random getBlock, getRun, returns by view and by index, hand-offs to one another, wrong
 * returns of every kind the pool must refuse whatever the others do, and check() while the others
 * run, with a stamp written into every block a worker owns and verified by its owner (and by the
 * receiver of a hand-off). At quiescence: check(), then an exact account of every block (none
 * owned twice, none lost, each reads its owner's stamp from this thread too), then every block
 * returned and the pool whole again. npm test runs a few seeded rounds; SLABPOOL_FUZZ=full (npm
 * run fuzz sets it) runs many more operations with a fresh seed; SLABPOOL_FUZZ_RUNS sets the
 * operations per worker and SLABPOOL_FUZZ_SEED the seed.
 */

const { full, runs, seed } = fuzzSettings(200_000, 20_000, 20261202);
const rounds = full ? 6 : 3;

interface Quiescent {
  slot: number;
  owned: { index: number; k: number; stamp: number }[];
  counts: Record<string, number>;
}

describe('SharedPool concurrent fuzz', () => {
  it(`runs ${rounds} rounds of 2-4 workers, ${runs} operations each (seed ${seed})`, async () => {
    const random = rng(seed);
    const totals: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const workers = 2 + Math.floor(random() * 3);
      const type: PoolArrayConstructor = random() < 0.5 ? Float64Array : Int32Array;
      const blockSize = 1 + Math.floor(random() * 8);
      const numBlocks = 32 + Math.floor(random() * 200);
      const alignment = [8, 64, 256][Math.floor(random() * 3)]!;
      const backend = BACKENDS[round % BACKENDS.length]!; // both engines, in turn
      const where = `round ${round} (seed ${seed}): ${backend}, ${workers} workers, ${type.name} blocks of ${blockSize}, ${numBlocks} blocks, alignment ${alignment}`;
      const pool = new SharedPool<PoolArray>({ backend, blockSize, numBlocks, type, alignment });
      // A port to every other worker: ports[i][j] is worker i's end of the channel to worker j.
      const ports: MessagePort[][] = Array.from({ length: workers }, () => []);
      for (let i = 0; i < workers; i++) {
        for (let j = i + 1; j < workers; j++) {
          const { port1, port2 } = new MessageChannel();
          ports[i]!.push(port1);
          ports[j]!.push(port2);
        }
      }
      const barrier = new SharedArrayBuffer(64);
      const started: Started[] = ports.map((peers, me) =>
        start({ mode: 'fuzz', handle: pool.handle, me, seed: seed + round * 100 + me, ops: runs, peers, barrier }, peers),
      );
      const reports = await Promise.all(started.map((w) => w.next<Quiescent>()));

      // Quiescent: every worker has stopped and drained its hand-offs.
      pool.check();
      const stats = pool.stats();
      const owner = new Map<number, number>();
      let ownedBlocks = 0;
      const stride = stats.stride;
      const raw = rawBlocks(pool);
      for (const [w, report] of reports.entries()) {
        for (const { index, k, stamp } of report.owned) {
          for (let j = index; j < index + k; j++) {
            expect(owner.get(j), `${where}: block ${j} owned by workers ${owner.get(j)} and ${w}`).toBeUndefined();
            owner.set(j, w);
          }
          ownedBlocks += k;
          // This thread reads the owner's stamp through a view of its own: the same memory.
          const read = Array.from(new type(raw, index * stride, k * blockSize) as ArrayLike<number>);
          expect(read.every((x) => x === stamp), `${where}: block ${index} does not read worker ${w}'s stamp here`).toBe(true);
        }
        for (const [name, n] of Object.entries(report.counts)) totals[name] = (totals[name] ?? 0) + n;
      }
      expect({ inUse: stats.inUseBlocks, transit: stats.inTransitBlocks, orphaned: stats.orphanedBlocks }, where).toEqual({ inUse: ownedBlocks, transit: 0, orphaned: 0 });
      expect(stats.depotBlocks + stats.cachedBlocks + stats.inUseBlocks, where).toBe(numBlocks);
      expect(stats.handOffs, where).toBe(stats.claims);
      const outstanding = reports.reduce((n, r) => n + r.owned.length, 0);
      expect(stats.acquires - stats.returns, `${where}: acquisitions not yet returned`).toBe(outstanding);

      for (const w of started) w.worker.postMessage({ release: true });
      await Promise.all(started.map((w) => w.next()));
      await Promise.all(started.map((w) => w.exited));
      pool.check();
      expect(pool.stats(), where).toMatchObject({ inUseBlocks: 0, freeBlocks: numBlocks, cachedBlocks: 0, depotBlocks: numBlocks, threads: 1, acquires: stats.acquires, returns: stats.acquires });
      pool.close();
    }
    console.log(`fuzz: shared pool: ${rounds} rounds of ${runs} operations per worker, ${JSON.stringify(totals)} (seed ${seed})`);
    // The fuzz must have exercised every path it exists for.
    for (const name of ['get', 'run', 'ret', 'handOut', 'handIn', 'wrong', 'checks']) expect(totals[name], name).toBeGreaterThan(0);
  });
});
