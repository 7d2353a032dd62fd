import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { markAsUntransferable } from 'node:worker_threads';
import { expect } from 'vitest';
import { MemoryPool, backendInfo, type Backend, type PoolArray, type PoolArrayConstructor, type PoolOptions, type PoolStats } from '../lib/index.js';
import { POOL_TYPES } from '../lib/validate.js';

/** Stands for an argument left out, in WRONG_VALUES. */
export const MISSING = Symbol('missing');
/** The kinds of value the bad-input matrices try for every parameter. */
export const WRONG_VALUES: readonly [string, unknown][] = [
  ['missing', MISSING],
  ['undefined', undefined],
  ['null', null],
  ['a string', '8'],
  ['a boolean', true],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['-1', -1],
  ['0', 0],
  ['0.5', 0.5],
  ['2^31', 2 ** 31],
  ['2^53', 2 ** 53],
  ['1e300', 1e300],
  ['an object', {}],
  ['an array', []],
  ['a bigint', 8n],
  ['a Symbol', Symbol('x')],
];

/** Every element type a pool can hand out. */
export const TYPES: readonly PoolArrayConstructor[] = POOL_TYPES;

/**
 * A value of element type `type` that stands for the number n: distinct for nearby n, and
 * representable exactly (bigints for the 64-bit integer arrays, small numbers for narrow ones).
 */
export function stampFor(type: PoolArrayConstructor, n: number): number | bigint {
  if (type === BigInt64Array || type === BigUint64Array) return BigInt(n);
  const range = type.BYTES_PER_ELEMENT === 1 ? 127 : type.BYTES_PER_ELEMENT === 2 ? 32767 : 2 ** 24;
  return (n % range) + 1;
}

/** Fills a typed array of any element type with a stamp from stampFor. */
export function fillWith(view: PoolArray, value: number | bigint): void {
  (view as unknown as { fill(v: number | bigint): void }).fill(value);
}

/**
 * The backends every suite runs on. The JavaScript fallback always; the native addon whenever it
 * loads — and npm test sets SLABPOOL_REQUIRE_NATIVE=1 so that a native build that fails to load
 * fails the run instead of silently shrinking it.
 */
export const BACKENDS: readonly Backend[] = (() => {
  const list: Backend[] = ['js'];
  const info = backendInfo();
  if (info.backend === 'native') list.push('native');
  else if (process.env.SLABPOOL_REQUIRE_NATIVE === '1') throw new Error(`native backend required but unavailable: ${info.reason}`);
  return list;
})();

/**
 * What a view reads once its pool released its memory (trim, destroy), by the lifetime rule: its
 * full length, and zeros where native memory was decommitted ('external'), or what it held before
 * where V8 owns the memory ('v8'). Asserts every element.
 */
export function expectReleasedView(view: PoolArray, length: number, memory: 'external' | 'v8', held: number | bigint): void {
  expect(view.length).toBe(length);
  const zero = typeof held === 'bigint' ? 0n : 0;
  const want = memory === 'external' ? zero : held;
  const wrong = Array.prototype.findIndex.call(view, (x: number | bigint) => x !== want);
  expect(wrong, `element ${wrong} of a released view reads ${String(view[wrong])}, not ${String(want)}`).toBe(-1);
}

/** Where a pool on `backend` keeps its slabs ('external': native memory; 'v8': ArrayBuffers V8 allocated). */
export function memoryOf(backend: Backend): 'external' | 'v8' {
  const probe = new MemoryPool({ blockSize: 1, numBlocks: 1, backend });
  const { memory } = probe.stats();
  probe.destroy();
  return memory;
}

export function makePool<T extends PoolArray = Float64Array>(backend: Backend, options: Omit<PoolOptions<T>, 'backend'>): MemoryPool<T> {
  return new MemoryPool<T>({ ...options, backend } as PoolOptions<T>);
}

export interface ExpectedError {
  name: 'TypeError' | 'RangeError' | 'Error';
  code: string;
  message: RegExp;
}

/** What fn throws, asserted to be an Error. */
export function thrownBy(fn: () => unknown): Error & { code?: string } {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected the call to throw').toBeInstanceOf(Error);
  return thrown as Error & { code?: string };
}

/** Asserts fn throws the expected error and that the pool is exactly as before. */
export function expectRejected(pool: MemoryPool | undefined, fn: () => unknown, expected: ExpectedError): void {
  const before = pool?.stats();
  const err = thrownBy(fn);
  expect({ name: err.name, code: err.code }).toEqual({ name: expected.name, code: expected.code });
  expect(err.message).toMatch(expected.message);
  if (pool) {
    pool.check();
    expect(pool.stats()).toEqual(before);
  }
}

/** Deterministic PRNG (mulberry32) so every random test prints a seed that reproduces it. */
export function rng(seed: number): () => number {
  let a = seed | 0; // int32 state: a uint32 would be boxed on every call
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Largest run of consecutive indices in `free` that stays inside one slab of slabBlocks. */
export function largestRun(free: Iterable<number>, slabBlocks: number): number {
  const sorted = [...free].sort((a, b) => a - b);
  let best = 0;
  let run = 0;
  for (let i = 0; i < sorted.length; i++) {
    const cur = sorted[i]!;
    const prev = sorted[i - 1];
    const contiguous = prev !== undefined && cur === prev + 1 && Math.floor(cur / slabBlocks) === Math.floor(prev / slabBlocks);
    run = contiguous ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}

/** Asserts the alignment a backend promises: the absolute address where it is known, else the offset in its buffer. */
export function expectAligned<T extends PoolArray>(pool: MemoryPool<T>, view: T): void {
  const address = pool.addressOf(view);
  if (address === null) expect(view.byteOffset % pool.alignment).toBe(0);
  else expect(address % BigInt(pool.alignment)).toBe(0n);
}

export function fragmentationOf(largest: number, free: number): number {
  return free === 0 ? 0 : 100 * (1 - largest / free);
}

export type { PoolStats };

/** `npm pack dir` into `destination` without running scripts (npm test has built dist/); the tarball's path. */
export function npmPack(dir: string, destination: string): string {
  const out = execFileSync('npm', ['pack', dir, '--ignore-scripts', '--pack-destination', destination], { cwd: destination, encoding: 'utf8' });
  return path.join(destination, out.trim().split('\n').at(-1)!);
}

/**
 * Settings of a fast-check suite: npm test runs `sliceRuns` runs with a fixed seed; `npm run fuzz`
 * (SLABPOOL_FUZZ=full) runs `fullRuns` with a fresh one. SLABPOOL_FUZZ_RUNS and _SEED override.
 */
export function fuzzSettings(fullRuns: number, sliceRuns: number, sliceSeed: number): { full: boolean; runs: number; seed: number } {
  const full = process.env.SLABPOOL_FUZZ === 'full';
  return {
    full,
    runs: Number(process.env.SLABPOOL_FUZZ_RUNS) || (full ? fullRuns : sliceRuns),
    seed: Number(process.env.SLABPOOL_FUZZ_SEED) || (full ? Date.now() % 2 ** 31 : sliceSeed),
  };
}

/**
 * Whether this runtime can detach (transfer, or let a web stream take) an ArrayBuffer marked
 * untransferable, told the way lib/native.ts tells it: Node 20 has no
 * ArrayBuffer.prototype.transfer and detaches marked buffers (napi_detach_arraybuffer, streams);
 * Node 22 transfers them; Node >= 24 refuses (a TypeError). Synchronous, for vitest's collection.
 */
export function markedBuffersDetachable(): boolean {
  const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;
  if (typeof transfer !== 'function') return true;
  const probe = new ArrayBuffer(8);
  markAsUntransferable(probe);
  try {
    transfer.call(probe);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the `detach` option detaches this backend's slabs here: the js backend's and native
 * external ones always; native V8-owned ones (marked untransferable) only where a marked buffer
 * can be detached (not on Node >= 24), else trim() and destroy() leave their views as without it.
 * `memory`: the pool's stats().memory where it is at hand (else a probe pool is made).
 */
export function detachOptionDetaches(backend: Backend, memory: 'external' | 'v8' = memoryOf(backend)): boolean {
  return backend === 'js' || memory === 'external' || markedBuffersDetachable();
}
