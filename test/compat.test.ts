import * as assert from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as util from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import * as shared from '../lib/compat.js';
import { createTypedArrayPool, type CompatStats, type Pooled, type TypedArrayPool } from '../lib/compat.js';
import { DTYPES, extent, kindOf, sizeOf } from './compat-helpers.js';
import { BACKENDS, MISSING, WRONG_VALUES, expectRejected, expectReleasedView, memoryOf, rng, type ExpectedError } from './helpers.js';

const requireHere = createRequire(__filename);
/** The real typedarray-pool 1.2, from its published package: the oracle for types and lengths. */
const tap = requireHere('typedarray-pool') as Record<string, (...args: unknown[]) => unknown>;

/** Stats without the fields that name the backend, for comparing backends. */
function comparable(stats: CompatStats): Omit<CompatStats, 'backend'> {
  const { backend: _backend, ...rest } = stats;
  return rest;
}

function expectCode(fn: () => unknown, name: ExpectedError['name'], code: string, message: RegExp): void {
  expectRejected(undefined, fn, { name, code, message });
}

afterEach(() => {
  delete process.env.SLABPOOL_COMPAT_STRICT;
});

describe('slabpool/compat module', () => {
  it('exports every function typedarray-pool 1.2 exports', () => {
    const names = Object.keys(tap);
    expect(names.length).toBeGreaterThan(30);
    for (const name of names) expect(typeof (shared as Record<string, unknown>)[name], name).toBe('function');
  });

  it('shares one process-wide pool between require and import', () => {
    // In plain Node (vitest's module runner would load the ES entry on its own), through the
    // package's exports map.
    const script = `
      import { createRequire } from 'node:module';
      const required = createRequire(import.meta.url)('slabpool/compat');
      const imported = await import('slabpool/compat');
      const a = required.mallocDouble(5);
      imported.free(a);
      console.log(JSON.stringify({
        same: imported.malloc === required.malloc && imported.default.free === required.free,
        live: required.stats().classes.map((c) => c.liveBlocks), frees: imported.stats().classes.map((c) => c.frees),
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ same: true, live: [0], frees: [1] });
  });

  it('validates createTypedArrayPool options', () => {
    expectCode(() => createTypedArrayPool({ backend: 'wasm' as 'js' }), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /backend but received 'wasm'/);
    expectCode(() => createTypedArrayPool({ strict: 1 as unknown as boolean }), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /boolean for strict but received 1/);
    expectCode(() => createTypedArrayPool({ strictt: true } as never), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /options\.strictt/);
    expectCode(() => createTypedArrayPool('js' as never), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /object for options/);
  });
});

const SIZES = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 1000, 4097, 70_000];

describe.each(BACKENDS)('slabpool/compat on the %s backend', (backend) => {
  const make = (strict?: boolean): TypedArrayPool => createTypedArrayPool(strict === undefined ? { backend } : { backend, strict });

  it('returns what typedarray-pool returns, type and length, for every dtype and size', () => {
    const pool = make();
    expect(pool.stats().backend).toBe(backend);
    for (const [dtype, fn] of DTYPES) {
      for (const n of SIZES) {
        const theirs = tap.malloc!(n, dtype);
        const ours = pool.malloc(n, dtype as string);
        const alias = (pool as unknown as Record<string, (n: number) => Pooled>)[fn]!(n);
        const label = `${String(dtype)} ${n}`;
        expect([kindOf(ours), sizeOf(ours)], label).toEqual([kindOf(theirs), sizeOf(theirs)]);
        expect([kindOf(alias), sizeOf(alias)], label).toEqual([kindOf(theirs), sizeOf(theirs)]);
        if (ArrayBuffer.isView(ours)) expect(ours).not.toBe(alias);
        tap.free!(theirs);
        pool.free(ours);
        pool.free(alias);
      }
    }
    const s = pool.stats();
    expect(s.classes.reduce((sum, c) => sum + c.liveBlocks, 0)).toBe(0);
    expect(s.arrayBuffers.live).toBe(0);
    expect([s.doubleFrees, s.foreignFrees]).toEqual([0, 0]);
  });

  it('returns null for a dtype typedarray-pool does not know, as it does', () => {
    const pool = make();
    for (const dtype of ['float16', 'Float64Array', '', 'DOUBLE']) {
      expect(tap.malloc!(4, dtype)).toBeNull();
      expect(pool.malloc(4, dtype)).toBeNull();
    }
    expect(pool.stats().classes).toEqual([]);
  });

  it('hands out typed arrays that are plain to the eye: equal, inspected and enumerated as ordinary ones', () => {
    const pool = make();
    const a = pool.mallocDouble(3);
    a.set([1, 2, 3]);
    assert.deepStrictEqual(a, new Float64Array([1, 2, 3]));
    expect(util.inspect(a)).toBe(util.inspect(new Float64Array([1, 2, 3])));
    expect(Object.getOwnPropertySymbols(a)).toEqual([]);
    expect(Object.getPrototypeOf(a)).toBe(Float64Array.prototype);
    const b = pool.mallocBuffer(5);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(b.length).toBe(8);
    b.write('slabpool');
    expect(b.toString()).toBe('slabpool');
    const dv = pool.mallocDataView(12);
    dv.setFloat64(4, Math.PI, true);
    expect(dv.getFloat64(4, true)).toBe(Math.PI);
    const big = pool.mallocBigInt64(2);
    big[1] = -(2n ** 62n);
    expect(big[1]).toBe(-(2n ** 62n));
  });

  it('reuses the same memory for a loop of the same size, and allocates no new view', () => {
    const pool = make();
    pool.free(pool.mallocDouble(100));
    const first = pool.mallocDouble(100); // the size came twice: from now on this view is reused
    pool.free(first);
    const reserved = pool.stats().reservedBytes;
    for (let i = 0; i < 10_000; i++) {
      const a = pool.mallocDouble(100);
      expect(a).toBe(first);
      a[99] = i;
      pool.freeDouble(a);
    }
    const cls = pool.stats().classes.find((c) => c.bytes === 1024)!;
    expect(cls).toMatchObject({ liveBlocks: 0, mallocs: 10_002, frees: 10_002, trims: 0 });
    expect([pool.stats().mallocs, pool.stats().frees]).toEqual([10_002, 10_002]);
    expect(pool.stats().reservedBytes).toBe(reserved);
  });

  it('puts each size in its power-of-two class and counts it there', () => {
    const pool = make();
    const a = pool.mallocFloat(5); // 20 bytes -> 32
    const b = pool.mallocUint8(1); // 1 byte -> the smallest class, 8
    const c = pool.mallocDouble(129); // 1032 bytes -> 2048
    const classes = pool.stats().classes;
    expect(classes.map((k) => [k.bytes, k.liveBlocks])).toEqual([
      [8, 1],
      [32, 1],
      [2048, 1],
    ]);
    expect(pool.stats().liveBytes).toBe(8 + 32 + 2048);
    for (const x of [a, b, c]) pool.free(x);
  });

  it('aligns every block of 64 bytes or more to 64: its address on native, its offset on the fallback', () => {
    const pool = make();
    const held: Float64Array[] = [];
    for (const n of [8, 9, 100, 1000, 5000]) {
      const a = pool.mallocDouble(n);
      held.push(a);
      const address = pool.addressOf(a);
      if (backend === 'native') expect(address! % 64n).toBe(0n);
      else expect([address, a.byteOffset % 64]).toEqual([null, 0]);
    }
    const b = pool.mallocBuffer(100);
    if (backend === 'native') expect(pool.addressOf(b)! % 64n).toBe(0n);
    pool.free(b);
    expectCode(() => pool.addressOf(b), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /\(it was freed\)/);
    expectCode(() => pool.addressOf(new Float64Array(8)), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /not returned by malloc/);
    expectCode(() => pool.addressOf(held[0]!.subarray(1)), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /not returned by malloc/);
    // Not a view at all: an invalid argument, as MemoryPool.addressOf says (both name the parameter).
    for (const wrong of [undefined, null, 5, {}, held[0]!.buffer]) {
      expectCode(() => pool.addressOf(wrong), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /Expected a typed array, Buffer or DataView from malloc for array but received/);
    }
    for (const a of held) pool.free(a);
  });

  it('ignores and counts a double free, and never hands the memory out twice', () => {
    const pool = make();
    const a = pool.mallocDouble(10);
    pool.free(a);
    const before = pool.stats();
    pool.free(a);
    pool.freeDouble(a);
    expect(pool.stats().doubleFrees).toBe(2);
    expect(comparable(pool.stats())).toEqual({ ...comparable(before), doubleFrees: 2 });
    const b = pool.mallocDouble(10);
    const c = pool.mallocDouble(10);
    const [bufB, startB, endB] = extent(b);
    const [bufC, startC, endC] = extent(c);
    expect(bufB !== bufC || endB <= startC || endC <= startB).toBe(true);
    pool.free(b);
    pool.free(c);
  });

  it('hands out cached views (a size asked twice in a row) and one-off views alike: plain, each freed once', () => {
    const pool = make();
    const views: Pooled[] = [];
    for (const n of [5, 5, 5, 6, 5, 5]) {
      const a = pool.mallocDouble(n);
      a.fill(n);
      assert.deepStrictEqual(a, new Float64Array(n).fill(n));
      expect(Object.getPrototypeOf(a) === Float64Array.prototype && a.constructor === Float64Array).toBe(true);
      expect(util.inspect(a)).toBe(util.inspect(new Float64Array(n).fill(n)));
      views.push(a);
      pool.free(a);
      pool.free(a); // the view freed last: a double free, marked or not
    }
    expect(views[2]).toBe(views[1]); // the third 5 reuses the view the second made (cached)
    expect(views[0]).not.toBe(views[1]);
    expect(pool.stats()).toMatchObject({ doubleFrees: 6, foreignFrees: 0, mallocs: 6, frees: 6 });
    // An older one-off view, freed again after its block went out and came back twice since,
    // carries no mark and is not the one freed last: never aliased, counted as foreign.
    const old = pool.mallocDouble(7); // 56 bytes; 6 and 5 doubles take the same 64-byte block
    pool.free(old);
    pool.free(pool.mallocDouble(6));
    const live = pool.mallocDouble(5);
    pool.free(old);
    expect(pool.stats()).toMatchObject({ doubleFrees: 6, foreignFrees: 1 });
    expect(extent(live)[1]).toBe(old.byteOffset); // old's block is live's: still live
    pool.free(live);
    pool.check();
  });

  it("counts another pool's arrays as foreign, cached (marked) or one-off, and never frees them into their owner", () => {
    const a = make();
    const b = make(true);
    a.free(a.mallocDouble(50));
    const cached = a.mallocDouble(50); // a size asked twice in a row: a marked view
    const oneOff = a.mallocDouble(70);
    const before = a.stats();
    for (const x of [cached, oneOff]) {
      expectCode(() => b.free(x), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /not returned by malloc/);
      expectCode(() => b.addressOf(x), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /not returned by malloc/);
    }
    expect(a.stats()).toEqual(before);
    expect(a.mallocDouble(50)).not.toBe(cached); // still a's: the next malloc gets other memory
    const lenient = make(false);
    lenient.free(cached);
    expect(lenient.stats().foreignFrees).toBe(1);
    a.check();
  });

  it('detects a stale view freed again after its block went to another size', () => {
    const pool = make();
    const a = pool.mallocDouble(10); // 80 bytes: class 128
    pool.free(a);
    const b = pool.mallocDouble(12); // 96 bytes: the same block, another view
    expect(extent(b)[1]).toBe(a.byteOffset);
    pool.free(a); // stale: must not free b's block
    expect(pool.stats().doubleFrees).toBe(1);
    const c = pool.mallocDouble(12);
    expect(c).not.toBe(b);
    expect(extent(c)[1]).not.toBe(b.byteOffset);
    pool.free(b);
    pool.free(c);
  });

  it('ignores and counts foreign arrays, leaving the pool unchanged', () => {
    const pool = make();
    const live = pool.mallocDouble(16);
    const before = pool.stats();
    const foreign: unknown[] = [new Float64Array(16), new ArrayBuffer(16), Buffer.alloc(16), live.subarray(1), {}, [], null, undefined, 5, 'x'];
    for (const x of foreign) pool.free(x);
    expect(pool.stats()).toEqual({ ...before, foreignFrees: foreign.length });
    // A foreign ArrayBuffer is never filed into the cache, so it is never handed out.
    const ab = new ArrayBuffer(16);
    pool.freeArrayBuffer(ab);
    expect(pool.mallocArrayBuffer(16)).not.toBe(ab);
    pool.free(live);
  });

  it('throws instead in strict mode, leaving the pool unchanged but for the counts', () => {
    const pool = make(true);
    const a = pool.mallocDouble(4);
    pool.free(a);
    const before = pool.stats();
    expect(before.strict).toBe(true);
    expectCode(() => pool.free(a), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /for array but received an instance of Float64Array of length 4, which was already freed/);
    expectCode(() => pool.free(new Float64Array(4)), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /for array but received an instance of Float64Array of length 4 \(it was not returned by malloc/);
    expectCode(() => pool.free(undefined), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /received undefined/);
    expect(pool.stats()).toEqual({ ...before, doubleFrees: 1, foreignFrees: 2 });
    pool.check();
  });

  it('follows SLABPOOL_COMPAT_STRICT=1 when strict is not set', () => {
    const pool = make();
    const lenient = make(false);
    process.env.SLABPOOL_COMPAT_STRICT = '1';
    expect(pool.stats().strict).toBe(true);
    expectCode(() => pool.free({}), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /an instance of Object/);
    lenient.free({});
    expect(lenient.stats().foreignFrees).toBe(1);
    process.env.SLABPOOL_COMPAT_STRICT = '0';
    pool.free({});
    expect(pool.stats()).toMatchObject({ strict: false, foreignFrees: 2 });
  });

  it('recycles ArrayBuffers, freed directly or through a view over them, as typedarray-pool does', () => {
    const pool = make();
    const ab = pool.mallocArrayBuffer(100);
    expect(ab.byteLength).toBe(128);
    pool.free(new Float32Array(ab));
    expect(pool.mallocArrayBuffer(128)).toBe(ab);
    pool.freeArrayBuffer(ab);
    pool.free(ab);
    expect(pool.stats().arrayBuffers).toEqual({ live: 0, cached: 1, cachedBytes: 128, mallocs: 2, frees: 2 });
    expect(pool.stats().doubleFrees).toBe(1);
  });

  it('keeps its ArrayBuffer cache bounded', () => {
    const pool = make();
    const bufs = Array.from({ length: 20 }, () => pool.mallocArrayBuffer(8 * 2 ** 20));
    for (const b of bufs) pool.free(b);
    const s = pool.stats().arrayBuffers;
    expect(s.cachedBytes).toBeLessThanOrEqual(64 * 2 ** 20);
    expect(s.cached).toBe(8);
  });

  it('rejects a size it cannot honour with a typed error, and truncates a fraction as typedarray-pool did', () => {
    const pool = make();
    const before = pool.stats();
    expectCode(() => pool.mallocDouble(-1), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /Expected integer from 0 to 268435456 for n but received -1/);
    expectCode(() => pool.malloc(NaN, 'float'), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /for n but received NaN/);
    expectCode(() => pool.mallocUint8(Infinity), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /for n but received Infinity/);
    expectCode(() => pool.mallocDouble(2 ** 28 + 1), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /at most 2147483648 bytes/);
    expectCode(() => pool.mallocArrayBuffer(2 ** 31 + 1), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /at most 2147483648 bytes/);
    expectCode(() => pool.malloc('10' as never, 'double'), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /non-negative integer for n but received '10'/);
    expectCode(() => pool.mallocBuffer(10n as never), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /received 10n/);
    expect(pool.stats()).toEqual(before);
    const a = pool.mallocDouble(2.5);
    expect([a.length, (tap.mallocDouble!(2.5) as Float64Array).length]).toEqual([2, 2]);
    pool.free(a);
  });

  it('clearCache() gives back every slab no live array uses, and detaches nothing', () => {
    const pool = make();
    const keep = pool.mallocDouble(100);
    keep.fill(7);
    const burst = Array.from({ length: 500 }, (_, i) => pool.mallocFloat(10 + (i % 300)));
    for (const a of burst) pool.free(a);
    const stale = burst[0]!;
    stale.fill(3); // a use after free, which compat cannot stop: it must never see another array's data
    const memory = memoryOf(pool.stats().backend);
    expect(pool.stats().reservedBytes).toBeGreaterThan(100_000);
    const released = pool.clearCache();
    const s = pool.stats();
    expect(s.classes.map((c) => c.bytes)).toEqual([1024]);
    expect(released).toBeGreaterThan(100_000);
    expect(s.reservedBytes).toBe(65_536);
    expectReleasedView(stale, 10, memory, 3); // its class is closed: its memory is given back (native) or left to V8
    expect(keep.every((x) => x === 7)).toBe(true);
    pool.free(keep);
    pool.clearCache();
    expect(pool.stats().reservedBytes).toBe(0);
    expect(pool.stats().classes).toEqual([]);
    expect([pool.stats().mallocs, pool.stats().frees]).toEqual([501, 501]);
  });

  it('gives a burst back on its own, and never trims a steady loop', () => {
    const pool = make();
    const burst = Array.from({ length: 10_000 }, () => pool.mallocDouble(100));
    const peak = pool.stats().reservedBytes;
    expect(peak).toBeGreaterThanOrEqual(10_000 * 1024);
    for (const a of burst) pool.free(a);
    for (let i = 0; i < 2000; i++) pool.free(pool.mallocDouble(100));
    const after = pool.stats().classes.find((c) => c.bytes === 1024)!;
    expect(after.reservedBytes).toBeLessThanOrEqual(2 * 65_536);
    expect(after.trims).toBeGreaterThan(100);

    // Two 1 MiB buffers per iteration (one block per slab): a loop that needs them keeps them.
    const steady = make();
    for (let i = 0; i < 2000; i++) {
      const x = steady.mallocDouble(2 ** 17);
      const y = steady.mallocDouble(2 ** 17);
      steady.free(x);
      steady.free(y);
    }
    const big = steady.stats().classes.find((c) => c.bytes === 2 ** 20)!;
    expect(big).toMatchObject({ trims: 0, slabs: 2, mallocs: 4000 });
  });

  it('trim() gives back empty slabs beyond the first of each class and the cached ArrayBuffers', () => {
    const pool = make();
    const held = Array.from({ length: 200 }, () => pool.mallocUint32(200)); // 800 B -> 1024, 64 per slab
    pool.free(pool.mallocArrayBuffer(1000));
    for (const a of held.slice(64)) pool.free(a);
    const before = pool.stats();
    const released = pool.trim();
    const after = pool.stats();
    expect(released).toBe(before.reservedBytes - after.reservedBytes + before.arrayBuffers.cachedBytes);
    expect(after.classes[0]).toMatchObject({ liveBlocks: 64, slabs: 1 });
    expect(after.arrayBuffers.cached).toBe(0);
    for (const a of held.slice(0, 64)) pool.free(a);
  });
});

/** True when two allocations share no byte. */
function disjoint(x: Pooled, y: Pooled): boolean {
  const [bx, sx, ex] = extent(x);
  const [by, sy, ey] = extent(y);
  return bx !== by || ex <= sy || ey <= sx;
}

/** Every mallocX that hands out a view (all but mallocArrayBuffer), once each. */
const VIEW_MALLOCS = [...new Set(DTYPES.map(([, fn]) => fn))].filter((fn) => fn !== 'mallocArrayBuffer');

/** The sequence: a stale free of an array after a repeated size handed its block out again. */
function staleFreeSequence(pool: TypedArrayPool, fn: string): { a: Pooled; b: Pooled; free: () => void } {
  const m = (pool as unknown as Record<string, (n: number) => Pooled>)[fn]!;
  pool.free(m(16));
  const a = m(16); // the size asked twice in a row
  pool.free(a);
  const b = m(16); // a's block again
  expect(extent(b)[0]).toBe(extent(a)[0]);
  expect(extent(b)[1]).toBe(extent(a)[1]);
  return { a, b, free: () => pool.free(a) };
}

// Each statement the README makes about recognising double frees, per mode.
describe.each(BACKENDS)('slabpool/compat double frees by mode on the %s backend', (backend) => {
  const make = (strict?: boolean): TypedArrayPool => createTypedArrayPool(strict === undefined ? { backend } : { backend, strict });

  it('default mode: a stale free of an array handed out again as the same object is its new holder\'s free, not recognised', () => {
    const pool = make(false);
    const { a, b, free } = staleFreeSequence(pool, 'mallocDouble');
    expect(b).toBe(a);
    free(); // indistinguishable from freeing b
    expect(pool.stats()).toMatchObject({ doubleFrees: 0, foreignFrees: 0, liveBytes: 0 });
    const c = pool.mallocDouble(16);
    expect(c).toBe(b); // b's holder and c's now share one block
    pool.free(c);
    pool.check();
  });

  it('default mode: the same, for an ArrayBuffer mallocArrayBuffer hands out again', () => {
    const pool = make(false);
    const a = pool.mallocArrayBuffer(16);
    pool.free(a);
    const b = pool.mallocArrayBuffer(16);
    expect(b).toBe(a);
    pool.free(a);
    expect(pool.stats()).toMatchObject({ doubleFrees: 0, arrayBuffers: { live: 0 } });
  });

  it('default mode: a cached (marked) array freed again after its block went out as another array is counted as a double free', () => {
    const pool = make(false);
    const { a, b: same } = staleFreeSequence(pool, 'mallocDouble');
    pool.free(same);
    const b = pool.mallocDouble(15); // 120 bytes: the same 128-byte block, another view
    expect(extent(b)[1]).toBe(extent(a)[1]);
    pool.free(b); // b is now its block's array freed last, not a
    const c = pool.mallocDouble(14);
    const before = pool.stats();
    pool.free(a);
    expect(pool.stats()).toEqual({ ...before, doubleFrees: 1 });
    expect(pool.stats().classes[0]!.liveBlocks).toBe(1); // c's block still live
    pool.free(c);
    pool.check();
  });

  it('an older array made for one malloc, freed again after its block went out: foreign by default, a double free in strict mode', () => {
    for (const strict of [false, true]) {
      const pool = make(strict);
      const old = pool.mallocDouble(7);
      pool.free(old);
      pool.free(pool.mallocDouble(6));
      const live = pool.mallocDouble(5);
      expect(extent(live)[1]).toBe(old.byteOffset);
      const before = pool.stats();
      if (strict) expectCode(() => pool.free(old), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /Float64Array of length 7, which was already freed/);
      else pool.free(old);
      expect(pool.stats()).toEqual(strict ? { ...before, doubleFrees: 1 } : { ...before, foreignFrees: 1 });
      pool.free(live);
      pool.check();
    }
  });

  it.each(VIEW_MALLOCS)('strict mode: %s hands out a new array each time, so the stale free throws and changes nothing but the count', (fn) => {
    const pool = make(true);
    const { a, b, free } = staleFreeSequence(pool, fn);
    expect(b).not.toBe(a);
    expect(Object.getPrototypeOf(b)).toBe(Object.getPrototypeOf(a)); // looks as plain as ever
    const before = pool.stats();
    expectCode(free, 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /which was already freed \(freed twice\?\)/);
    expect(pool.stats()).toEqual({ ...before, doubleFrees: 1 });
    const m = (pool as unknown as Record<string, (n: number) => Pooled>)[fn]!;
    const c = m(16);
    expect(disjoint(b, c)).toBe(true);
    expectCode(free, 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already freed/); // and forever after
    pool.free(b);
    pool.free(c);
    expect(pool.stats()).toMatchObject({ doubleFrees: 2, liveBytes: 0 });
    pool.check();
  });

  it('strict mode: the views over the same memory are plain typed arrays', () => {
    const pool = make(true);
    const { a, b } = staleFreeSequence(pool, 'mallocDouble');
    (b as Float64Array).fill(2);
    assert.deepStrictEqual(b, new Float64Array(16).fill(2));
    expect(util.inspect(b)).toBe(util.inspect(new Float64Array(16).fill(2)));
    expect((a as Float64Array)[0]).toBe(2); // a stale view still reads the block (a use after free compat cannot stop)
    pool.free(b);
  });

  it('strict mode: mallocArrayBuffer hands out a new buffer each time, so the stale free throws', () => {
    const pool = make(true);
    const a = pool.mallocArrayBuffer(16);
    pool.free(a);
    const b = pool.mallocArrayBuffer(16);
    expect(b).not.toBe(a);
    const before = pool.stats();
    expectCode(() => pool.free(a), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /an instance of ArrayBuffer.*already freed/);
    expectCode(() => pool.free(new Uint8Array(a)), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already freed/);
    expect(pool.stats()).toEqual({ ...before, doubleFrees: 2 });
    pool.free(b);
    expect(pool.stats().arrayBuffers).toMatchObject({ live: 0, cached: 0, cachedBytes: 0 });
    pool.check();
  });

  it('strict mode: a stale array of a class clearCache() closed is still recognised', () => {
    const pool = make(true);
    const a = pool.mallocDouble(16);
    pool.free(a);
    pool.clearCache();
    const b = pool.mallocDouble(16);
    expectCode(() => pool.free(a), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already freed/);
    expect(pool.stats().classes[0]!.liveBlocks).toBe(1);
    pool.free(b);
    pool.check();
  });

  it('SLABPOOL_COMPAT_STRICT=1 when the pool is made gives new arrays; set later, it throws only for what the default mode recognises', () => {
    process.env.SLABPOOL_COMPAT_STRICT = '1';
    const fromBirth = make();
    const lenient = make(false);
    const s1 = staleFreeSequence(fromBirth, 'mallocDouble');
    expect(s1.b).not.toBe(s1.a);
    expectCode(s1.free, 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already freed/);
    const s2 = staleFreeSequence(lenient, 'mallocDouble');
    expect(s2.b).toBe(s2.a);
    delete process.env.SLABPOOL_COMPAT_STRICT;
    const later = make();
    process.env.SLABPOOL_COMPAT_STRICT = '1';
    expect(later.stats().strict).toBe(true);
    const s3 = staleFreeSequence(later, 'mallocDouble');
    expect(s3.b).toBe(s3.a);
    s3.free(); // taken as s3.b's free: no throw
    expect(later.stats()).toMatchObject({ doubleFrees: 0, liveBytes: 0 });
    expectCode(s3.free, 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already freed/); // the array freed last
    expect(fromBirth.stats().doubleFrees).toBe(1);
  });
});

describe.each(BACKENDS)('the bad-input matrix for slabpool/compat on the %s backend', (backend) => {
  /** What malloc makes of n with elements of `size` bytes: 'ok', or the error class. */
  const verdict = (n: unknown, size: number): 'ok' | 'TypeError' | 'RangeError' =>
    typeof n !== 'number' ? 'TypeError' : n >= 0 && n * size <= 2 ** 31 ? 'ok' : 'RangeError';
  const sizes: Record<string, number> = { mallocArrayBuffer: 1, mallocBuffer: 1, mallocDataView: 1, mallocInt8: 1, mallocUint8: 1, mallocUint8Clamped: 1 };
  const malloc = DTYPES.map(([, fn]) => fn).filter((fn, i, all) => all.indexOf(fn) === i);

  it.each(malloc)('%s(n) against every kind of value, leaving the pool unchanged', (fn) => {
    const pool = createTypedArrayPool({ backend });
    const held = [pool.mallocDouble(10), pool.mallocArrayBuffer(10)];
    const size = sizes[fn] ?? (/16/.test(fn) ? 2 : /32|Float$/.test(fn) ? 4 : 8);
    const call = (pool as unknown as Record<string, (n?: unknown) => Pooled>)[fn]!;
    for (const [label, value] of WRONG_VALUES) {
      const expected = verdict(value === MISSING ? undefined : value, size);
      // A valid size that large is accepted (2^31 bytes); it is not worth allocating here.
      if (expected === 'ok' && (value as number) > 1) continue;
      const before = pool.stats();
      let thrown: (Error & { code?: string }) | undefined;
      try {
        const got = value === MISSING ? call() : call(value);
        expect(sizeOf(got), `${fn}(${label})`).toBeGreaterThanOrEqual(0);
        pool.free(got);
      } catch (err) {
        thrown = err as Error & { code?: string };
      }
      if (expected === 'ok') {
        expect(thrown, `${fn}(${label}) should be accepted`).toBeUndefined();
        continue;
      }
      expect({ name: thrown?.name, code: thrown?.code }, `${fn}(${label})`).toEqual({ name: expected, code: 'ERR_SLABPOOL_INVALID_ARG' });
      expect(thrown!.message).toMatch(/^Expected .+ for n but received /);
      expect(pool.stats(), `${fn}(${label}): stats changed`).toEqual(before);
    }
    pool.check();
    for (const x of held) pool.free(x);
  });

  it('free(anything) never throws, counts what it ignores, and changes nothing else', () => {
    const pool = createTypedArrayPool({ backend, strict: false });
    const held = pool.mallocFloat(7);
    const before = pool.stats();
    for (const [, value] of WRONG_VALUES) pool.free(value === MISSING ? undefined : value);
    expect(pool.stats()).toEqual({ ...before, foreignFrees: WRONG_VALUES.length });
    pool.check();
    pool.free(held);
  });
});

describe.runIf(BACKENDS.includes('native'))('slabpool/compat: the two backends agree', () => {
  it('on one random sequence of mallocs and frees over every dtype', () => {
    const seed = 20261125;
    const pools = { js: createTypedArrayPool({ backend: 'js' }), native: createTypedArrayPool({ backend: 'native' }) };
    const live = { js: [] as Pooled[], native: [] as Pooled[] };
    const next = rng(seed);
    for (let step = 0; step < 5000; step++) {
      const r = next();
      const dtype = DTYPES[Math.floor(next() * DTYPES.length)]![0];
      const n = Math.floor(next() ** 3 * 5000);
      const pick = Math.floor(next() * 1e9);
      for (const b of ['js', 'native'] as const) {
        const pool = pools[b];
        const list = live[b];
        if (r < 0.5 || list.length === 0) {
          list.push(pool.malloc(n, dtype as string)!);
          if (b === 'native') expect([kindOf(list.at(-1)), sizeOf(list.at(-1))], `seed ${seed} step ${step}`).toEqual([kindOf(live.js.at(-1)), sizeOf(live.js.at(-1))]);
        }
        else if (r < 0.95) pool.free(list.splice(pick % list.length, 1)[0]);
        else if (r < 0.98) pool.free(new Float64Array(4));
        else pool.trim();
      }
      if (step % 250 === 0) expect(comparable(pools.native.stats()), `seed ${seed} step ${step}`).toEqual(comparable(pools.js.stats()));
    }
    expect(comparable(pools.native.stats())).toEqual(comparable(pools.js.stats()));
    expect(pools.js.stats().foreignFrees).toBeGreaterThan(0);
  });
});
