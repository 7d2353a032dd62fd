// One benchmark trial, in a fresh process: `node --expose-gc bench/trial.mjs '<spec as JSON>'`.
// Prints one JSON line: { ns } (nanoseconds per operation) plus what the case adds; kernelAfter
// prints { ms } after a line of its own (see there). Run by bench/run.mjs, which repeats trials,
// interleaves them and takes medians.
import { createRequire } from 'node:module';
import { PerformanceObserver } from 'node:perf_hooks';
import { MemoryPool } from 'slabpool';

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

/** Runs op(i) in a warmed-up loop sized to take about `budgetMs`; returns ns per call. */
function time(op, budgetMs = spec.budgetMs ?? 250) {
  let n = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) op(i);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > budgetMs / 10 || n >= 1e8) {
      const total = Math.max(n, Math.ceil((n * budgetMs) / Math.max(ms, 1e-3)));
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < total; i++) op(i);
      return Number(process.hrtime.bigint() - t1) / total;
    }
    n *= 4;
  }
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

function getRun({ backend, k, n }) {
  const pool = new MemoryPool({ blockSize: 100, numBlocks: n, backend });
  const blocks = [];
  for (let i = 0; i < n; i++) blocks.push(pool.getBlock());
  const random = rng(42);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
  }
  for (let i = 0; i < n / 2; i++) pool.returnBlock(blocks[i]);
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
 * One construction per process, as a program makes its pool: after a small pool has loaded the
 * backend and compiled the code, time `new MemoryPool` once. (For pools of hundreds of MB, V8
 * answers the new ArrayBuffer memory with a full GC, which may land inside this window.)
 */
function construct({ backend, n }) {
  new MemoryPool({ blockSize: 100, numBlocks: 10, backend }).destroy();
  const t0 = process.hrtime.bigint();
  const pool = new MemoryPool({ blockSize: 100, numBlocks: n, backend });
  const ns = Number(process.hrtime.bigint() - t0);
  sink += pool.numBlocks;
  return { ns };
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
    result = construct(spec);
    break;
  case 'steadyState':
    result = await steadyState(spec);
    break;
  case 'kernelAfter':
    result = kernelAfter(spec);
    break;
  default:
    throw new Error(`unknown case ${spec.case}`);
}
process.stdout.write(`${JSON.stringify({ ...result, sink: sink % 2 })}\n`);
