// One benchmark trial, in a fresh process: `node --expose-gc bench/trial.mjs '<spec as JSON>'`.
// Prints one JSON line: { ns } (nanoseconds per operation) plus what the case adds (layouts: a
// row per layout instead); kernelAfter prints { ms } after a line of its own (see there). Run by bench/run.mjs, which repeats trials,
// interleaves them and takes medians.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { MemoryPool } from 'slabpool';
import { FirstFit } from './first-fit.mjs';
import { sharedHandOff, sharedPair, sharedThreads } from './shared.mjs';

const require = createRequire(import.meta.url);
const spec = JSON.parse(process.argv[2]);
let sink = 0; // results feed it so no loop is optimised away

function rng(seed) {
  let a = seed | 0; // int32 state: a uint32 would be boxed on every call
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let timedCalls = 0; // the calls of time()'s last timed loop

/**
 * Runs op(i) in a warmed-up loop sized to take about `budgetMs`; returns ns per call.
 * `beforeTimed()` runs just before the timed loop (to read counters over that loop alone).
 */
function time(op, budgetMs = spec.budgetMs ?? 250, beforeTimed = () => {}) {
  let n = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) op(i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > budgetMs / 10 || n >= 1e8) {
      const total = Math.max(n, Math.ceil((n * budgetMs) / Math.max(ms, 1e-3)));
      beforeTimed();
      timedCalls = total;
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < total; i++) op(i);
      return Number(process.hrtime.bigint() - t1) / total;
    }
    n *= 4;
  }
}

/**
 * Calls op(i) for about `ms`. An operation that is slow while cold (the magazine's refill and
 * flush and the engine's loops: ~20 us a call until V8 optimises them) would otherwise be timed
 * partly in V8's lower tiers, as time()'s own warm-up is sized for operations of nanoseconds.
 */
function warmUp(op, ms) {
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  for (let i = 0; process.hrtime.bigint() < end; i++) op(i);
}

/**
 * time() for operations that may take anything from nanoseconds to milliseconds (a first-fit walk
 * over a fragmented pool): batches that double from one call warm up for a quarter of
 * `budgetMs`, then a loop sized from the last batch takes about the rest. Returns ns per call.
 */
function timeWithin(op, budgetMs) {
  let n = 1;
  let spent = 0;
  let perCall = 0;
  let i = 0;
  while (spent < budgetMs / 4) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < n; j++) op(i++);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    spent += ms;
    perCall = ms / n;
    n *= 2;
  }
  const total = Math.max(1, Math.ceil((budgetMs * 3) / 4 / Math.max(perCall, 1e-6)));
  const t1 = process.hrtime.bigint();
  for (let j = 0; j < total; j++) op(i++);
  return Number(process.hrtime.bigint() - t1) / total;
}

function acquireRelease({ variant, blockLength }) {
  const blocks = blockLength >= 100_000 ? 64 : 1024;
  if (variant === 'floor') {
    const views = Array.from({ length: 64 }, () => new Float64Array(blockLength));
    return time((i) => {
      const v = views.pop();
      v[0] = i;
      views.push(v);
    });
  }
  if (variant === 'newFloat64Array') {
    return time((i) => {
      const a = new Float64Array(blockLength);
      a[0] = i;
      sink += a.length;
    });
  }
  if (variant === 'typedarrayPool') {
    const pool = require('typedarray-pool');
    return time((i) => {
      const a = pool.mallocDouble(blockLength);
      a[0] = i;
      pool.freeDouble(a);
    });
  }
  const pool = new MemoryPool({ blockSize: blockLength, numBlocks: blocks, backend: variant });
  return time((i) => {
    const b = pool.getBlock();
    b[0] = i;
    pool.returnBlock(b);
  });
}

/**
 * typedarray-pool's API: typedarray-pool itself, or slabpool/compat's process-wide pool, as
 * dependents get it (run.mjs picks its backend with SLABPOOL_BACKEND). 'same' mallocs and frees
 * 1024 doubles in a loop (an FFT called repeatedly); 'random' takes sizes from 1 to 4096 doubles
 * from a fixed random sequence. Both use mallocDouble/freeDouble, typedarray-pool's fastest pair
 * (its generic free costs twice as much).
 */
function typedarrayPoolApi({ variant, pattern }) {
  const pool = require(variant === 'typedarrayPool' ? 'typedarray-pool' : 'slabpool/compat');
  if (variant !== 'typedarrayPool' && pool.stats().backend !== variant) throw new Error(`compat runs on ${pool.stats().backend}, not ${variant}`);
  const random = rng(7);
  const sizes = Int32Array.from({ length: 4096 }, () => (pattern === 'same' ? 1024 : 1 + Math.floor(random() * 4096)));
  return time((i) => {
    const a = pool.mallocDouble(sizes[i & 4095]);
    a[0] = i;
    pool.freeDouble(a);
  });
}

/** Takes every block of a new pool, then returns a seeded random half: 50 % random occupancy. */
function randomHalf(pool, seed) {
  const n = pool.numBlocks;
  const blocks = [];
  for (let i = 0; i < n; i++) blocks.push(pool.getBlock());
  const random = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
  }
  for (let i = 0; i < n / 2; i++) pool.returnBlock(blocks[i]);
}

function getRun({ backend, k, n }) {
  const pool = new MemoryPool({ blockSize: 100, numBlocks: n, backend });
  randomHalf(pool, 42);
  let found = 0;
  let calls = 0;
  const ns = time(() => {
    calls++;
    const run = pool.getRun(k);
    if (run !== null) {
      found++;
      run[0] = 1;
      pool.returnBlock(run);
    }
  });
  pool.check();
  return { ns, found: found / calls, fragmentation: pool.getFragmentation() };
}

/**
 * getBlock+returnBlock on a fragmented pool with the default options: 1000 blocks, all taken, a
 * seeded random half returned. Every return then leaves fragmentation above the auto-coalesce
 * threshold; `coalesces` is stats().coalesces per pair over the timed loop.
 */
function fragmented({ backend, warmupMs }) {
  const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend });
  randomHalf(pool, 1);
  const fragmentation = pool.getFragmentation();
  const pair = (i) => {
    const b = pool.getBlock();
    b[0] = i;
    pool.returnBlock(b);
  };
  warmUp(pair, warmupMs);
  let coalesces0 = 0;
  const ns = time(
    pair,
    undefined,
    () => {
      coalesces0 = pool.stats().coalesces;
    },
  );
  const coalesces = (pool.stats().coalesces - coalesces0) / timedCalls;
  pool.check();
  return { ns, coalesces, fragmentation };
}

/**
 * A zeroed block, ns per block. 'reused': the same blocks taken and returned, each written, so
 * every one comes back dirty: getBlock + fill(0) + returnBlock, what a user would write without
 * the zeroed call, and getBlockZeroed + returnBlock, timed in turn in this one process (the
 * better of five loops each), so that their ratio holds whatever a neighbour's load does to the
 * process. Fresh blocks (never handed out since their slab was added): every block of a new pool
 * taken in turn and kept, the pools made and destroyed outside the timing, with getBlock alone
 * ('freshGetBlock': what any first hand-out costs, the block's view made), getBlock + fill(0)
 * ('freshFill', which also pays the first touch of each page) and getBlockZeroed ('freshZeroed',
 * which touches nothing).
 */
function zeroed({ backend, variant, blockLength, budgetMs = 250 }) {
  const blocks = blockLength >= 100_000 ? 64 : 1024;
  const make = () => new MemoryPool({ blockSize: blockLength, numBlocks: blocks, backend });
  if (variant === 'reused') {
    const pool = make();
    const fill = (n) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const b = pool.getBlock().fill(0);
        b[0] = i;
        pool.returnBlock(b);
      }
      return Number(process.hrtime.bigint() - t0) / n;
    };
    const zeroedBlock = (n) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const b = pool.getBlockZeroed();
        b[0] = i;
        pool.returnBlock(b);
      }
      return Number(process.hrtime.bigint() - t0) / n;
    };
    let n = 1000;
    while (fill(n) * n < (budgetMs * 1e6) / 20 && n < 1e8) n *= 2;
    zeroedBlock(n); // warm-up
    const fills = [];
    const zeroeds = [];
    for (let r = 0; r < 5; r++) {
      fills.push(fill(n));
      zeroeds.push(zeroedBlock(n));
    }
    const [f, z] = [Math.min(...fills), Math.min(...zeroeds)];
    return { fill: f, zeroed: z, ratio: z / f };
  }
  const takeAll = {
    freshGetBlock: (pool) => {
      for (let i = 0; i < blocks; i++) sink += pool.getBlock().length;
    },
    freshFill: (pool) => {
      for (let i = 0; i < blocks; i++) sink += pool.getBlock().fill(0).length;
    },
    freshZeroed: (pool) => {
      for (let i = 0; i < blocks; i++) sink += pool.getBlockZeroed().length;
    },
  }[variant];
  /** One new pool emptied: ns of the taking alone. */
  const round = () => {
    const pool = make();
    const t0 = process.hrtime.bigint();
    takeAll(pool);
    const ns = Number(process.hrtime.bigint() - t0);
    pool.destroy();
    return ns;
  };
  let spent = 0;
  while (spent < budgetMs * 1e6 / 4) spent += round(); // warm-up
  let ns = 0;
  let taken = 0;
  while (ns < budgetMs * 1e6 || taken < 10 * blocks) {
    ns += round();
    taken += blocks;
  }
  return ns / taken;
}

/**
 * Growth: a pool of one-block slabs that may grow (numBlocks 1, grow), grown by getBlock to
 * `slabs` slabs; ns per growth over the last 1000 (each adds a slab: one ArrayBuffer, its views
 * and records). The figure at 5e4 slabs over the one at 2e3 says whether a growth costs O(1).
 */
function growth({ backend, slabs }) {
  const pool = new MemoryPool({ blockSize: 4, numBlocks: 1, grow: true, backend });
  for (let i = 0; i < slabs - 1000; i++) pool.getBlock();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) sink += pool.getBlock().length;
  const ns = Number(process.hrtime.bigint() - t0) / 1000;
  if (pool.stats().slabs !== slabs) throw new Error(`growth: ${pool.stats().slabs} slabs, not ${slabs}`);
  pool.destroy();
  return { ns };
}

/**
 * addressOf() of held blocks and live runs in turn (backend native or js), or, for reference
 * (variant bigint), what making one bigint from a number costs (BigInt(n), a runtime call in V8 11).
 */
function addressOf({ backend, variant }) {
  const keep = new Array(256);
  if (variant === 'bigint') {
    const base = 2 ** 46;
    return { ns: time((i) => (keep[i & 255] = BigInt(base + (i & 1023) * 8))) };
  }
  const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend });
  const views = [...Array.from({ length: 56 }, () => pool.getBlock()), ...Array.from({ length: 8 }, () => pool.getRun(4))];
  const ns = time((i) => (keep[i & 255] = pool.addressOf(views[i & 63])));
  sink += keep.filter((a) => a !== null).length;
  pool.check();
  return { ns };
}

/** Long enough for getRun(64) with room to split; the adversarial layout's one long free run. */
const LONG_RUN = 128;

/** The operations timed on every layout; each leaves the pool's free blocks as it found them. */
const LAYOUT_OPS = ['getBlock', 'k1', 'k8', 'k64', 'largest'];

/**
 * One (backend, n): one pool with the default options, n blocks; for each layout (seeds 1..seeds
 * of 50 % random occupancy, then the adversarial one) each operation timed for `budgetMs`. A
 * getRun must find a run exactly when k <= largestFreeRun, and no operation may change the free
 * blocks or the largest free run; pool.check() runs at the end. Every operation is first warmed
 * up for `warmupMs` on the first layout.
 *
 * A layout is made on the same pool, not a new one: every free block is taken (the pool is then
 * full), then the layout's free blocks are returned. A random layout frees the first half of the
 * blocks in a seeded shuffle of index order, as randomHalf does on a new pool; the adversarial
 * one frees every other block of the lower half (n / 4 free runs of one block) and the top
 * LONG_RUN blocks, so that a getRun(k >= 2) that scans runs from the lowest passes every short run
 * before it reaches the long one. (A new 1e6-block pool per layout would spend seconds creating
 * its views and collecting the last pool's.)
 */
function layouts({ backend, n, seeds, budgetMs, warmupMs }) {
  const t0 = process.hrtime.bigint();
  const pool = new MemoryPool({ blockSize: 100, numBlocks: n, backend });
  const views = [];
  for (let i = 0; i < n; i++) views.push(pool.getBlock());
  views.sort((a, b) => pool.indexOf(a) - pool.indexOf(b));
  const results = [];
  let buildNs = 0;
  const names = [...Array.from({ length: seeds }, (_, s) => `seed ${s + 1}`), 'adversarial'];
  for (const name of names) {
    const b0 = process.hrtime.bigint();
    for (let free = pool.stats().freeBlocks; free > 0; free--) pool.getBlock();
    if (name === 'adversarial') {
      for (let i = 0; i < n / 2; i += 2) pool.returnBlock(views[i]);
      for (let i = n - LONG_RUN; i < n; i++) pool.returnBlock(views[i]);
    } else {
      const order = views.slice();
      const random = rng(Number(name.slice(5)));
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let i = 0; i < n / 2; i++) pool.returnBlock(order[i]);
    }
    buildNs += Number(process.hrtime.bigint() - b0);
    const { freeBlocks, largestFreeRun } = pool.stats();
    const row = { name, freeBlocks, largestFreeRun, ns: {}, found: {} };
    for (const op of LAYOUT_OPS) {
      const k = op === 'getBlock' ? 1 : op === 'largest' ? largestFreeRun : Number(op.slice(1));
      let calls = 0;
      let found = 0;
      const timed =
        op === 'getBlock'
          ? (i) => {
              calls++;
              const b = pool.getBlock();
              b[0] = i;
              pool.returnBlock(b);
              found++;
            }
          : (i) => {
              calls++;
              const run = pool.getRun(k);
              if (run !== null) {
                found++;
                run[0] = i;
                pool.returnBlock(run);
              }
            };
      if (results.length === 0) {
        warmUp(timed, warmupMs);
        calls = found = 0;
      }
      row.ns[op] = timeWithin(timed, budgetMs);
      row.found[op] = found / calls;
      const expected = k <= largestFreeRun ? 1 : 0;
      if (row.found[op] !== expected) {
        throw new Error(`${backend} ${n} ${name} ${op}: found a run in ${found} of ${calls} calls, expected ${expected ? 'all' : 'none'} (largest free run ${largestFreeRun})`);
      }
      const after = pool.stats();
      if (after.freeBlocks !== freeBlocks || after.largestFreeRun !== largestFreeRun) {
        throw new Error(`${backend} ${n} ${name} ${op} changed the layout: ${after.freeBlocks} free blocks (was ${freeBlocks}), largest run ${after.largestFreeRun} (was ${largestFreeRun})`);
      }
    }
    results.push(row);
  }
  const c0 = process.hrtime.bigint();
  pool.check();
  const checkMs = Number(process.hrtime.bigint() - c0) / 1e6;
  return { layouts: results, buildMs: buildNs / 1e6, checkMs, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

const GET_BLOCK = 0;
const GET_RUN = 1;
const RETURN = 2;

/**
 * The churn trace: `operations` steps, each a getBlock, a getRun(k) with k from 2 to 32, or the
 * return of a random live allocation. The target occupancy is a triangle wave from 30 % to 90 % of
 * `blocks` and back every `period` steps; below the target a step allocates with probability
 * 0.6, above it 0.4 (half getBlock, half getRun), so occupancy follows the wave. The trace is
 * made as if every allocation succeeded, so that every allocator runs exactly the same steps: a
 * return of an allocation that failed does nothing. Allocation j is the j-th get of the trace.
 */
function churnTrace({ seed, operations, blocks, period }) {
  const random = rng(seed);
  const kind = new Uint8Array(operations);
  const arg = new Int32Array(operations); // the allocation a step makes or returns
  const sizes = new Int32Array(operations); // per allocation, its blocks (the k of a getRun)
  const live = new Int32Array(operations);
  let liveCount = 0;
  let allocations = 0;
  let used = 0;
  for (let i = 0; i < operations; i++) {
    const phase = (i % period) / period;
    const target = blocks * (0.3 + 0.6 * (phase < 0.5 ? 2 * phase : 2 - 2 * phase));
    if (liveCount === 0 || random() < (used < target ? 0.6 : 0.4)) {
      const k = random() < 0.5 ? 1 : 2 + Math.floor(random() * 31);
      kind[i] = k === 1 ? GET_BLOCK : GET_RUN;
      arg[i] = allocations;
      sizes[allocations] = k;
      live[liveCount++] = allocations++;
      used += k;
    } else {
      const j = Math.floor(random() * liveCount);
      const id = live[j];
      live[j] = live[--liveCount];
      kind[i] = RETURN;
      arg[i] = id;
      used -= sizes[id];
    }
  }
  return { kind, arg, sizes, allocations };
}

/** Between timed chunks of this many steps, fragmentation and occupancy are sampled. */
const CHURN_CHUNK = 1000;

/**
 * The churn trace on a pool with the default options (variant native or js) or on the bench's
 * textbook first fit (variant firstFit, bench/first-fit.mjs). The first `warmup` steps run first
 * on a pool of their own, for the JIT. Timing covers the steps alone, chunk by chunk; sampling
 * happens between chunks.
 */
function churn({ variant, seed, operations, blocks, period, warmup }) {
  const trace = churnTrace({ seed, operations, blocks, period });
  if (variant === 'firstFit') return churnFirstFit(trace, blocks, operations);
  const run = (pool, held, from, to, failed) => {
    const { kind, arg, sizes } = trace;
    for (let i = from; i < to; i++) {
      const op = kind[i];
      const id = arg[i];
      if (op === RETURN) {
        const view = held[id];
        if (view !== null) pool.returnBlock(view);
        held[id] = null;
      } else {
        const view = op === GET_BLOCK ? pool.getBlock() : pool.getRun(sizes[id]);
        if (view === null) failed[op]++;
        else view[0] = i;
        held[id] = view;
      }
    }
  };
  const make = () => new MemoryPool({ blockSize: 100, numBlocks: blocks, backend: variant });
  const warm = make();
  run(warm, new Array(trace.allocations).fill(null), 0, Math.min(warmup, operations), [0, 0]);
  warm.destroy();
  globalThis.gc();

  const pool = make();
  const held = new Array(trace.allocations).fill(null);
  const failed = [0, 0];
  const result = timeTrace(
    trace,
    operations,
    failed,
    (from, to) => run(pool, held, from, to, failed),
    () => [pool.getFragmentation(), pool.getEfficiency()],
  );
  const stats = pool.stats();
  if (stats.failures !== failed[GET_BLOCK] + failed[GET_RUN]) throw new Error(`churn: the pool counts ${stats.failures} failures, the trace ${failed}`);
  pool.check();
  return { ...result, coalesces: stats.coalesces };
}

/**
 * Runs `step(from, to)` over the trace in chunks of CHURN_CHUNK steps, timing the steps alone and
 * calling `sample()` ([fragmentation, occupancy], percent) between chunks; returns the churn
 * figures, with the failures `step` counted into `failed` ([getBlock, getRun]).
 */
function timeTrace(trace, operations, failed, step, sample) {
  let ns = 0;
  let fragmentation = 0;
  let occupancy = 0;
  let samples = 0;
  for (let from = 0; from < operations; from += CHURN_CHUNK) {
    const to = Math.min(operations, from + CHURN_CHUNK);
    const t0 = process.hrtime.bigint();
    step(from, to);
    ns += Number(process.hrtime.bigint() - t0);
    const [f, o] = sample();
    fragmentation += f;
    occupancy += o;
    samples++;
  }
  return {
    ns: ns / operations,
    fragmentation: fragmentation / samples,
    occupancy: occupancy / samples,
    getRunFailures: failed[GET_RUN],
    getBlockFailures: failed[GET_BLOCK],
    getRuns: trace.kind.reduce((c, op) => c + (op === GET_RUN), 0),
  };
}

/** The churn trace on the textbook first fit; the same sampling, and the same chunked timing. */
function churnFirstFit(trace, blocks, operations) {
  const { kind, arg, sizes } = trace;
  const ff = new FirstFit(blocks);
  const start = new Int32Array(trace.allocations).fill(-1);
  const failed = [0, 0];
  const step = (from, to) => {
    for (let i = from; i < to; i++) {
      const op = kind[i];
      const id = arg[i];
      if (op === RETURN) {
        if (start[id] >= 0) ff.release(start[id], sizes[id]);
        start[id] = -1;
      } else {
        const p = op === GET_BLOCK ? ff.getBlock() : ff.getRun(sizes[id]);
        if (p < 0) failed[op]++;
        start[id] = p;
      }
    }
  };
  return timeTrace(trace, operations, failed, step, () => [ff.fragmentation(), (100 * (blocks - ff.freeBlocks)) / blocks]);
}

/**
 * One construction per process, as a program makes its pool: after a small pool has loaded the
 * backend and compiled the code, time `new MemoryPool` once. Variant newArrayBuffer times V8's own
 * `new ArrayBuffer` of the pool's bytes (n * stride) the same way: the floor under any pool whose
 * memory V8 accounts for. For hundreds of MB, V8 answers the new ArrayBuffer memory by starting a
 * garbage collection inside the window, on both: gcNs is the GC work V8 reported as started in it.
 */
async function construct({ backend, n, variant }) {
  // The observer first: code run between the small pool and the window slowed the pool's cold
  // JavaScript (V8's lookup caches are shared) by ~50 us.
  const gcs = [];
  const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  let p0 = performance.now();
  const small = new MemoryPool({ blockSize: 100, numBlocks: 10, backend: backend ?? 'js' });
  const stride = small.stats().stride;
  small.destroy();
  if (variant === 'newArrayBuffer') sink += new ArrayBuffer(10 * stride).byteLength;
  p0 = performance.now();
  const t0 = process.hrtime.bigint();
  const made = variant === 'newArrayBuffer' ? new ArrayBuffer(n * stride) : new MemoryPool({ blockSize: 100, numBlocks: n, backend });
  const ns = Number(process.hrtime.bigint() - t0);
  const p1 = performance.now();
  sink += variant === 'newArrayBuffer' ? made.byteLength : made.numBlocks;
  await new Promise((resolve) => setTimeout(resolve, 50)); // V8 reports GCs after the loop turns
  observer.disconnect();
  const gcNs = gcs.filter((e) => e.startTime >= p0 && e.startTime < p1).reduce((sum, e) => sum + e.duration * 1e6, 0);
  return { ns, gcNs: Math.round(gcNs), bytes: n * stride };
}

async function steadyState({ variant, cycles }) {
  const op =
    variant === 'newFloat64Array'
      ? (i) => {
          const a = new Float64Array(100);
          a[0] = i;
          sink += a.length;
        }
      : (() => {
          const pool = new MemoryPool({ blockSize: 100, numBlocks: 1024, backend: variant });
          return (i) => {
            const b = pool.getBlock();
            b[0] = i;
            pool.returnBlock(b);
          };
        })();
  for (let i = 0; i < Math.min(200_000, cycles); i++) op(i); // warm up and compile
  // V8 reports GCs to observers after the event loop turns, never during a synchronous loop:
  // count in the callback, and let a turn pass before the baseline and after the loop.
  let gcEvents = 0;
  const observer = new PerformanceObserver((list) => {
    gcEvents += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  const turn = () => new Promise((resolve) => setTimeout(resolve, 50));
  globalThis.gc();
  await turn();
  gcEvents = 0;
  const rss0 = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < cycles; i++) op(i);
  const ns = Number(process.hrtime.bigint() - t0) / cycles;
  const rssGrowthBytes = process.memoryUsage().rss - rss0;
  await turn();
  observer.disconnect();
  return { ns, cycles, gcEvents, rssGrowthBytes };
}

/** A dot product plus an axpy, written as user code is: plain functions over their arguments. */
function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
function axpy(alpha, a, b) {
  for (let i = 0; i < a.length; i++) b[i] += alpha * a[i];
}

/**
 * The user's own numeric kernel after one pool operation: dot + axpy over two plain
 * Float64Array(1000), nothing of slabpool in the loop. The kernel is warmed up until optimised,
 * then the operation runs, then the kernel is timed, as in a program that keeps running. What can
 * slow the kernel for good: a detached ArrayBuffer anywhere in the process (V8's
 * ArrayBufferDetaching protector; run.mjs starts these trials with --trace-protector-invalidation
 * and reads whether it fell), or a property added to any Float64Array (its map stops being stable;
 * 'plainProperty' does that without slabpool).
 */
// The kernel's arrays are module-level constants, as numeric code keeps its state: TurboFan then
// compiles them in as constants, which is what a built-in map's transition takes away.
const kx = new Float64Array(1000).fill(1.5);
const ky = new Float64Array(1000).fill(0.5);
function kernel(n) {
  let s = 0;
  for (let r = 0; r < n; r++) {
    s += dot(kx, ky);
    axpy(1e-9, kx, ky);
  }
  return s;
}

function kernelAfter({ op, backend, detach, rounds }) {
  // Warm-up in many short calls (rounds / 2 in all), so that the kernel is optimized as a whole
  // function rather than entered on a loop (OSR): a few long calls made the timed code differ
  // from process to process by up to 2x.
  for (let i = 0; i < rounds / 50; i++) sink += kernel(25);
  // The same kernel timed before the operation, in the same process: the figure is after / before,
  // which cancels what differs between processes (measured: up to 2x from one process to the
  // next on this machine, whatever ran in them).
  globalThis.gc();
  let t0 = process.hrtime.bigint();
  sink += kernel(rounds);
  const before = Number(process.hrtime.bigint() - t0) / 1e6;
  const check = (ok, what) => {
    if (!ok) throw new Error(`kernelAfter ${op} ${backend ?? ''}: ${what}`);
  };
  if (op === 'destroy') {
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend, ...(detach === undefined ? {} : { detach }) });
    const held = pool.getBlock();
    held.fill(1);
    pool.destroy();
    check((held.length === 0) === (detach === true), 'a view was detached, or was not with detach: true');
  } else if (op === 'trim') {
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 100, grow: true, backend });
    const blocks = Array.from({ length: 250 }, () => pool.getBlock());
    for (const b of blocks.slice(100)) pool.returnBlock(b);
    const released = pool.trim();
    check(released > 0, 'trim released nothing');
    sink += released + pool.numBlocks;
  } else if (op === 'compatClearCache' || op === 'compatTrimPolicy') {
    const compat = require('slabpool/compat'); // the process-wide pool; run.mjs sets SLABPOOL_BACKEND
    check(compat.stats().backend === backend, `compat runs on ${compat.stats().backend}`);
    if (op === 'compatClearCache') {
      compat.free(compat.mallocDouble(1000));
      check(compat.clearCache() > 0, 'clearCache released nothing');
    } else {
      const burst = Array.from({ length: 10_000 }, () => compat.mallocDouble(100));
      for (const a of burst) compat.free(a);
      for (let i = 0; i < 2000; i++) compat.free(compat.mallocDouble(100));
      check(compat.stats().classes.some((c) => c.trims > 0), 'the trim policy did not run');
    }
  } else if (op === 'plainProperty') {
    const a = new Float64Array(4);
    a.tag = 1;
    sink += a.tag;
  } else {
    check(op === 'nothing', 'unknown operation');
  }
  globalThis.gc(); // the same heap state for every variant, whatever the operation allocated
  process.stdout.write('kernelAfter: timing\n'); // run.mjs reads V8's trace above this line
  t0 = process.hrtime.bigint();
  sink += kernel(rounds);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, before, ratio: ms / before };
}

/*
 * Large pools (issue 18; run.mjs --large): the hugePages and prefault options off and on, one
 * fresh process per variant and kind. `dense`: a pool of `bytes` in 100-double blocks, every
 * block taken and filled once (the first fill, which faults every page in), then random gathers
 * through the block views and through one flat view of the slab, dot products of random block
 * pairs, destroy(); then a second pool of the same bytes in 1024-double blocks, filled (a first fill
 * again) and used for dot products of those. `sparse`:
 * RSS after writing a random 10 % of a pool of 1024-double blocks (8 KiB: a few pages each), and
 * the latency of each first write to a fresh pool, one write per block in random order.
 */
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const RANDOM = (1 << 20) - 1; // random indices are drawn from tables of 2^20, read in turn

/** Every block of a new pool, in index order. */
function takeAll(pool) {
  const blocks = new Array(pool.numBlocks);
  for (let i = 0; i < blocks.length; i++) blocks[i] = pool.getBlock();
  return blocks;
}

function largeDense({ bytes, backend, hugePages, prefault, budgetMs }) {
  const options = { backend, hugePages, prefault };
  let t0 = process.hrtime.bigint();
  const pool = new MemoryPool({ blockSize: 100, numBlocks: Math.floor(bytes / 832), ...options }); // stride 832: 100 doubles at 64
  const constructMs = msSince(t0);
  const blocks = takeAll(pool);
  const n = blocks.length;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) blocks[i].fill(1);
  const fillMs = msSince(t0);
  const stats = pool.stats();
  const random = rng(11);
  const bi = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * n));
  const bj = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * 100));
  const gatherNs = time((i) => {
    sink += blocks[bi[i & RANDOM]][bj[i & RANDOM]];
  }, budgetMs);
  // One flat view over the whole slab (a pool of one slab): what code indexing a big array does.
  const flat = new Float64Array(blocks[0].buffer);
  const fi = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * flat.length));
  const flatGatherNs = time((i) => {
    sink += flat[fi[i & RANDOM]];
  }, budgetMs);
  const dot100Ns = time((i) => {
    sink += dot(blocks[bi[i & RANDOM]], blocks[bi[(i + 1) & RANDOM]]);
  }, budgetMs);
  t0 = process.hrtime.bigint();
  pool.destroy();
  const destroyMs = msSince(t0);

  // A second pool of the same bytes in this process: its first fill is met by memory the kernel
  // just took back (on the machine of the README, the first huge pages a process gets can cost the
  // kernel far more than later ones).
  const big = new MemoryPool({ blockSize: 1024, numBlocks: Math.floor(bytes / 8192), ...options });
  const bigBlocks = takeAll(big);
  t0 = process.hrtime.bigint();
  for (const b of bigBlocks) b.fill(1);
  const secondFillMs = msSince(t0);
  const m = bigBlocks.length;
  const bk = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * m));
  const dot1024Ns = time((i) => {
    sink += dot(bigBlocks[bk[i & RANDOM]], bigBlocks[bk[(i + 1) & RANDOM]]);
  }, budgetMs);
  big.destroy();
  return { constructMs, fillMs, secondFillMs, gatherNs, flatGatherNs, dot100Ns, dot1024Ns, destroyMs, hugeBytes: stats.hugePages.hugeBytes, reservedBytes: stats.reservedBytes };
}

/**
 * `pair`: the gathers and dot products of `dense` on two pools of the same bytes in one process,
 * one without the options and one with hugePages, timed in alternation for `rounds` rounds: each
 * round's ratio (without / with) compares the two under the same conditions (a neighbour's load,
 * the state of V8's heap), and the medians of those ratios are the figures (issue 18 measured so).
 */
function largePair({ bytes, backend, budgetMs, rounds }) {
  const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  const make = (hugePages, blockSize, stride) => {
    const pool = new MemoryPool({ blockSize, numBlocks: Math.floor(bytes / stride), backend, hugePages });
    const blocks = takeAll(pool);
    for (const b of blocks) b.fill(1);
    return { pool, blocks };
  };
  const random = rng(13);
  const ratios = { gather: [], flatGather: [], dot100: [], dot1024: [] };
  const small = [make(false, 100, 832), make(true, 100, 832)];
  const n = small[0].blocks.length;
  const bi = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * n));
  const bj = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * 100));
  const flats = small.map(({ blocks }) => new Float64Array(blocks[0].buffer));
  const fi = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * flats[0].length));
  const hugeBytes = small[1].pool.stats().hugePages.hugeBytes;
  // One function per operation, given the pool's blocks: the same compiled code times both pools.
  const gather = (blocks) => time((i) => (sink += blocks[bi[i & RANDOM]][bj[i & RANDOM]]), budgetMs);
  const flatGather = (flat) => time((i) => (sink += flat[fi[i & RANDOM]]), budgetMs);
  const dots = (blocks) => time((i) => (sink += dot(blocks[bi[i & RANDOM]], blocks[bi[(i + 1) & RANDOM]])), budgetMs);
  for (let r = 0; r < rounds; r++) {
    ratios.gather.push(gather(small[0].blocks) / gather(small[1].blocks));
    ratios.flatGather.push(flatGather(flats[0]) / flatGather(flats[1]));
    ratios.dot100.push(dots(small[0].blocks) / dots(small[1].blocks));
  }
  for (const { pool } of small) pool.destroy();
  const big = [make(false, 1024, 8192), make(true, 1024, 8192)];
  const m = big[0].blocks.length;
  const bk = Int32Array.from({ length: RANDOM + 1 }, () => Math.floor(random() * m));
  const dots1024 = (blocks) => time((i) => (sink += dot(blocks[bk[i & RANDOM]], blocks[bk[(i + 1) & RANDOM]])), budgetMs);
  for (let r = 0; r < rounds; r++) ratios.dot1024.push(dots1024(big[0].blocks) / dots1024(big[1].blocks));
  for (const { pool } of big) pool.destroy();
  return { gatherRatio: median(ratios.gather), flatGatherRatio: median(ratios.flatGather), dot100Ratio: median(ratios.dot100), dot1024Ratio: median(ratios.dot1024), hugeBytes, rounds };
}

/** Each write's latency: one first write per block, in the order given, timed by performance.now(). */
function timeWrites(blocks, order, samples) {
  for (let k = 0; k < order.length; k++) {
    const b = blocks[order[k]];
    const t = performance.now();
    b[0] = 1;
    samples[k] = performance.now() - t;
  }
}

function shuffled(n, seed) {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const random = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/**
 * Writes, then reads one double per 64-byte line of, a new buffer of `bytes`: with `bytes` over the
 * last-level cache, what was cached before (data lines, page-table entries) is evicted, and the TLB
 * holds this buffer's pages. The buffer is dropped after.
 */
function evictCaches(bytes) {
  const sweep = new Float64Array(bytes / 8);
  sweep.fill(1);
  let sum = 0;
  for (let i = 0; i < sweep.length; i += 8) sum += sweep[i];
  sink += sum;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * The bytes of the pool's one slab in physical memory. Native: from the kernel's page map of its
 * address range (/proc/self/pagemap, bit 63: present). The fallback, whose address JavaScript
 * cannot know: the Rss of the one anonymous mapping of the slab's size and up to two pages more
 * (V8's calloc maps a large ArrayBuffer on its own), from /proc/self/smaps; null if none is.
 */
function residentBytes(pool, first) {
  if (process.platform !== 'linux') return null;
  const address = pool.addressOf(first);
  if (address === null) {
    const bytes = pool.stats().reservedBytes;
    const found = [];
    let size = -1;
    for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ 0\s*$/.exec(line); // anonymous: inode 0, no path
      if (head) size = Number(BigInt(`0x${head[2]}`) - BigInt(`0x${head[1]}`));
      else if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) size = -1;
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss && size >= bytes && size <= bytes + 8192) found.push(Number(rss[1]) * 1024);
    }
    return found.length === 1 ? found[0] : null;
  }
  const pages = pool.stats().reservedBytes / 4096;
  const map = Buffer.alloc(8 * pages);
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  fs.readSync(fd, map, 0, map.length, Number((address / 4096n) * 8n));
  fs.closeSync(fd);
  let present = 0;
  for (let i = 0; i < pages; i++) present += Number(map.readBigUInt64LE(8 * i) >> 63n);
  return present * 4096;
}

function largeSparse({ bytes, latencyBytes, evictBytes, backend, hugePages, prefault }) {
  const options = { backend, hugePages, prefault };
  const rss = () => {
    globalThis.gc();
    return process.memoryUsage().rss;
  };
  const r0 = rss();
  let t0 = process.hrtime.bigint();
  const pool = new MemoryPool({ blockSize: 1024, numBlocks: Math.floor(bytes / 8192), ...options });
  const constructMs = msSince(t0);
  const r1 = rss();
  const blocks = takeAll(pool);
  const r2 = rss(); // the block views, on V8's heap, are not the pool's memory
  const order = shuffled(blocks.length, 5);
  for (let k = 0; k < blocks.length / 10; k++) blocks[order[k]].fill(1);
  const r3 = rss();
  const touchedStats = pool.stats();
  const residentMiB = residentBytes(pool, blocks[0]) / 2 ** 20;
  pool.destroy();

  // The timing loop compiled first, on blocks already written (the same view map as the pool's below).
  const warm = new MemoryPool({ blockSize: 1024, numBlocks: 64, backend });
  const warmBlocks = takeAll(warm);
  for (const b of warmBlocks) b.fill(0);
  const warmOrder = shuffled(64, 6);
  const warmSamples = new Float64Array(64);
  for (let r = 0; r < 2000; r++) timeWrites(warmBlocks, warmOrder, warmSamples);
  const timerNs = [...warmSamples].sort((a, b) => a - b)[32] * 1e6; // a write that never faults, and the two clock reads
  const fresh = new MemoryPool({ blockSize: 1024, numBlocks: Math.floor(latencyBytes / 8192), ...options });
  const freshBlocks = takeAll(fresh);
  const samples = new Float64Array(freshBlocks.length);
  const freshOrder = shuffled(freshBlocks.length, 7);
  timeWrites(freshBlocks, freshOrder, samples);
  // The same writes again, in the same order: no page can fault now, so this is the floor of a
  // random write here (TLB misses, interrupts, a neighbour's load), the first writes' reference.
  const again = new Float64Array(freshBlocks.length);
  timeWrites(freshBlocks, freshOrder, again);
  // And once more after a sweep of more memory than the last-level cache holds: no page can
  // fault, but the blocks' lines and their page-table entries are as cold as before the first
  // writes, which a pre-faulted pool's first writes can at best equal (a first write right after
  // the pages were added misses the caches and the TLB: populating a page does not warm them).
  evictCaches(evictBytes);
  const cold = new Float64Array(freshBlocks.length);
  timeWrites(freshBlocks, freshOrder, cold);
  fresh.destroy();
  warm.destroy();
  const sorted = [...samples].sort((a, b) => a - b);
  const sortedAgain = [...again].sort((a, b) => a - b);
  const sortedCold = [...cold].sort((a, b) => a - b);
  return {
    constructMs,
    constructRssMiB: (r1 - r0) / 2 ** 20,
    rssMiB: (r1 - r0 + r3 - r2) / 2 ** 20,
    residentMiB,
    hugeBytes: touchedStats.hugePages.hugeBytes,
    p50Us: percentile(sorted, 0.5) * 1e3,
    p999Us: percentile(sorted, 0.999) * 1e3,
    maxUs: sorted[sorted.length - 1] * 1e3,
    rewriteP50Us: percentile(sortedAgain, 0.5) * 1e3,
    rewriteP999Us: percentile(sortedAgain, 0.999) * 1e3,
    coldRewriteP50Us: percentile(sortedCold, 0.5) * 1e3,
    coldRewriteP999Us: percentile(sortedCold, 0.999) * 1e3,
    evictMiB: evictBytes / 2 ** 20,
    writes: sorted.length,
    timerNs,
  };
}

let result;
switch (spec.case) {
  case 'acquireRelease':
    result = { ns: acquireRelease(spec) };
    break;
  case 'typedarrayPoolApi':
    result = { ns: typedarrayPoolApi(spec) };
    break;
  case 'getRun':
    result = getRun(spec);
    break;
  case 'construct':
    result = await construct(spec);
    break;
  case 'fragmented':
    result = fragmented(spec);
    break;
  case 'addressOf':
    result = addressOf(spec);
    break;
  case 'growth':
    result = growth(spec);
    break;
  case 'zeroed': {
    const r = zeroed(spec);
    result = typeof r === 'number' ? { ns: r } : r;
    break;
  }
  case 'layouts':
    result = layouts(spec);
    break;
  case 'churn':
    result = churn(spec);
    break;
  case 'steadyState':
    result = await steadyState(spec);
    break;
  case 'kernelAfter':
    result = kernelAfter(spec);
    break;
  case 'shared':
    result = spec.kind === 'pair' ? sharedPair(spec) : spec.kind === 'threads' ? await sharedThreads(spec) : await sharedHandOff(spec);
    break;
  case 'large':
    result = spec.kind === 'dense' ? largeDense(spec) : spec.kind === 'pair' ? largePair(spec) : largeSparse(spec);
    break;
  default:
    throw new Error(`unknown case ${spec.case}`);
}
process.stdout.write(`${JSON.stringify({ ...result, sink: sink % 2 })}\n`);
