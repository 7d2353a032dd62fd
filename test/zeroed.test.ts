import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MemoryPool, PoolArray, PoolOptions } from '../lib/index.js';
import { BACKENDS, TYPES, fillWith, makePool, stampFor } from './helpers.js';

/*
 * Zeroed acquisition: getBlockZeroed, getRunZeroed, leaseZeroed hand out memory that reads zeros,
 * and fill only what may hold data (lib/zero-fill.ts). What a fill is, observably: a call of
 * TypedArray.prototype.fill on a view the pool hands out, which a spy counts with its arguments.
 * Every other test here reads the contents themselves. The model walk, the fuzzer and the
 * differential test run the three calls among every other operation (test/operations.ts).
 */

const TypedArrayPrototype = Object.getPrototypeOf(Int8Array.prototype) as { fill(...args: unknown[]): unknown };

/** Every element of `view` reads zero (0n for the BigInt arrays). */
function expectZeros(view: PoolArray, what = 'the view'): void {
  const zero = typeof view[0] === 'bigint' ? 0n : 0;
  const wrong = Array.prototype.findIndex.call(view, (x: number | bigint) => x !== zero);
  expect(wrong, `element ${wrong} of ${what} reads ${String(view[wrong])}`).toBe(-1);
}

describe.each(BACKENDS)('zeroed blocks and runs on the %s backend', (backend) => {
  /** The fills made on typed arrays since the test began (or last cleared): [view, start, end] each. */
  let fills: [PoolArray, number, number][];
  /** The fills on `pool`'s views, as [index of the block or run, start, end]. */
  const fillsOf = (pool: MemoryPool<PoolArray>) => fills.map(([view, start, end]) => [pool.indexOf(view), start, end]);
  beforeEach(() => {
    fills = [];
    const fill = TypedArrayPrototype.fill;
    vi.spyOn(TypedArrayPrototype, 'fill').mockImplementation(function (this: PoolArray, ...args: unknown[]) {
      fills.push([this, (args[1] as number | undefined) ?? 0, (args[2] as number | undefined) ?? this.length]);
      return fill.apply(this, args);
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const make = (options: Omit<PoolOptions, 'backend'>) => makePool(backend, options);
  /** Blocks of 4 doubles, stride 32 bytes: a run of k blocks is 4k contiguous elements. */
  const packed = (numBlocks: number, more: Partial<Omit<PoolOptions, 'backend'>> = {}) => make({ blockSize: 4, numBlocks, alignment: 32, ...more });

  it('a block returned holding data comes back zeroed: the same view, every element 0 (getBlock keeps the data)', () => {
    const pool = packed(64);
    const block = pool.getBlock()!;
    block.fill(9);
    pool.returnBlock(block);
    const again = pool.getBlock()!;
    expect(again).toBe(block);
    expect([...again]).toEqual([9, 9, 9, 9]); // getBlock does not fill: that is getBlockZeroed's job
    pool.returnBlock(again);
    fills.length = 0;
    const zeroed = pool.getBlockZeroed()!;
    expect(zeroed).toBe(block);
    expectZeros(zeroed);
    expect(fillsOf(pool)).toEqual([[0, 0, 4]]);
    expect(pool.stats()).toMatchObject({ inUseBlocks: 1, acquires: 3, returns: 2 });
    pool.check();
  });

  it.each(TYPES.map((t) => [t.name, t] as const))('zeroes %s blocks and runs (0n for the BigInt arrays)', (_name, type) => {
    const pool = makePool<PoolArray>(backend, { type, blockSize: 5, numBlocks: 16, alignment: 8 });
    const blocks = Array.from({ length: 6 }, () => pool.getBlock()!);
    blocks.forEach((b, i) => fillWith(b, stampFor(type, i + 1)));
    for (const b of blocks) pool.returnBlock(b);
    pool.coalesce();
    const run = pool.getRunZeroed(8)!;
    expectZeros(run, 'the run');
    pool.returnBlock(run);
    const zeroed = [pool.getBlockZeroed()!, pool.getBlockZeroed()!];
    zeroed.forEach((b) => expectZeros(b));
    pool.check();
  });

  describe('memory never handed out is not filled', () => {
    it('reads zeros on every backend, in heap and mapped slabs, grown ones included (the fact the skip relies on)', () => {
      // 8 blocks of 4 doubles: a 256-byte slab (posix_memalign + memset on native); of 1024: 32 KiB (mmap).
      for (const numBlocks of [8, 1024]) {
        const pool = packed(numBlocks, { grow: true, maxBlocks: 3 * numBlocks });
        const all = Array.from({ length: 3 * numBlocks }, () => pool.getBlock()!);
        expect(pool.stats().slabs).toBe(3);
        all.forEach((b, i) => expectZeros(b, `block ${i} of a new slab`));
        pool.destroy();
      }
    });

    it('getBlockZeroed, leaseZeroed and getRunZeroed on fresh memory make no fill', () => {
      const pool = packed(64);
      const blocks = Array.from({ length: 10 }, () => pool.getBlockZeroed()!);
      const lease = pool.leaseZeroed()!;
      const run = pool.getRunZeroed(20)!;
      expect(fills).toEqual([]);
      for (const b of [...blocks, lease.block, run]) expectZeros(b);
      expect(pool.indexOf(run)).toBe(12); // past the magazine's three refills of 4, on blocks never handed out
      pool.check();
    });

    it('a block refilled into the magazine and flushed back without being handed out is filled (conservative), and zero either way', () => {
      const pool = packed(64); // refills of 4 blocks
      pool.returnBlock(pool.getBlock()!); // blocks 0..3 went through the magazine; only 0 was handed out
      pool.coalesce();
      const run = pool.getRunZeroed(8)!;
      expect(pool.indexOf(run)).toBe(0);
      expect(fillsOf(pool)).toEqual([[0, 0, 16]]); // blocks 0..3: 16 elements; 4..7 never handed out
      expectZeros(run);
    });
  });

  describe('runs over blocks used before and fresh ones', () => {
    it('fills only up to the end of the last block that may hold data', () => {
      const pool = packed(64);
      const blocks = Array.from({ length: 4 }, () => pool.getBlock()!); // one refill: blocks 0..3
      blocks.forEach((b) => b.fill(7));
      for (const b of blocks) pool.returnBlock(b);
      pool.coalesce();
      fills.length = 0;
      const run = pool.getRunZeroed(10)!;
      expect(pool.indexOf(run)).toBe(0);
      expect(fillsOf(pool)).toEqual([[0, 0, 16]]);
      expectZeros(run);
      run.fill(3);
      pool.returnBlock(run);
      fills.length = 0;
      const longer = pool.getRunZeroed(12)!; // blocks 0..9 held data, 10..11 never did
      expect(fillsOf(pool)).toEqual([[0, 0, 40]]);
      expectZeros(longer);
      pool.check();
    });

    it('counts the padding between blocks, which a run spans: a padded run is filled by strides', () => {
      // 3 doubles (24 bytes) at alignment 64: stride 64 bytes = 8 elements; a run of k is 3k elements.
      const pool = make({ blockSize: 3, numBlocks: 64, alignment: 64 });
      const run = pool.getRun(6)!; // 18 elements: blocks 0 and 1 with their padding, and block 2's payload
      run.fill(5);
      pool.returnBlock(run);
      fills.length = 0;
      const blocks = Array.from({ length: 6 }, () => pool.getBlockZeroed()!);
      blocks.forEach((b, i) => expectZeros(b, `block ${i}`));
      // Blocks are recorded, not bytes: 0..5 lie in the run, so each is filled, though 3..5 were never written.
      expect(fillsOf(pool)).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, 0, 3]));
      for (const b of blocks) pool.returnBlock(b);
      pool.coalesce();
      fills.length = 0;
      // Blocks 0..7 went through the magazine (two refills of 4): the first 8 strides of 8 elements
      // may hold data, so 64 of the run's 90 elements are filled, not 8 blocks of 3.
      const again = pool.getRunZeroed(30)!;
      expect(fillsOf(pool)).toEqual([[0, 0, 64]]);
      expectZeros(again);
    });

    it('a block view made before a run covered its memory is filled, though never handed out itself', () => {
      const pool = packed(64);
      pool.returnBlock(pool.getBlock()!); // views of blocks 0..3 made; only 0 handed out
      pool.coalesce();
      const run = pool.getRun(8)!; // over blocks 0..7
      run.fill(7);
      pool.returnBlock(run);
      fills.length = 0;
      const blocks = Array.from({ length: 4 }, () => pool.getBlockZeroed()!);
      expect(blocks.map((b) => pool.indexOf(b))).toEqual([0, 1, 2, 3]);
      blocks.forEach((b, i) => expectZeros(b, `block ${i}`));
      expect(fillsOf(pool)).toEqual([0, 1, 2, 3].map((i) => [i, 0, 4]));
    });
  });

  it('trim and regrow: a slab grown again in a trimmed slot is fresh memory, not filled', () => {
    const pool = packed(8, { grow: true, maxBlocks: 16 });
    const first = Array.from({ length: 8 }, () => pool.getBlock()!);
    const second = Array.from({ length: 8 }, () => pool.getBlock()!);
    second.forEach((b) => b.fill(4));
    for (const b of second) pool.returnBlock(b);
    expect(pool.trim()).toBe(8 * 32);
    expect(pool.stats().slabs).toBe(1);
    fills.length = 0;
    const regrown = Array.from({ length: 8 }, () => pool.getBlockZeroed()!);
    expect(pool.stats()).toMatchObject({ slabs: 2, grows: 2 });
    expect(regrown.map((b) => pool.indexOf(b))).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    regrown.forEach((b) => expect(second).not.toContain(b)); // new views over the new slab
    regrown.forEach((b, i) => expectZeros(b, `block ${8 + i}`));
    expect(fills).toEqual([]);
    // The first slab's blocks were handed out: zeroed again, they are filled.
    first[0]!.fill(2);
    pool.returnBlock(first[0]!);
    fills.length = 0;
    expect(pool.getBlockZeroed()).toBe(first[0]);
    expect(fillsOf(pool)).toEqual([[0, 0, 4]]);
    expectZeros(first[0]!);
    pool.check();
  });

  it('with poison: a block poisoned at its return comes back zeroed, not NaN', () => {
    const pool = packed(16, { poison: 'nan' });
    const block = pool.getBlock()!;
    const run = pool.getRun(3)!;
    pool.returnBlock(block);
    pool.returnBlock(run);
    expect(Number.isNaN(block[0]) && Number.isNaN(run[11])).toBe(true);
    expectZeros(pool.getBlockZeroed()!);
    pool.coalesce();
    expectZeros(pool.getRunZeroed(4)!);
    pool.check();
  });

  it('leaseZeroed: a zeroed block returned when the lease is disposed', () => {
    const pool = packed(8);
    const block = pool.getBlock()!;
    block.fill(6);
    pool.returnBlock(block);
    {
      using lease = pool.leaseZeroed()!;
      expect(lease.block).toBe(block);
      expectZeros(lease.block);
      expect(pool.stats().inUseBlocks).toBe(1);
    }
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, returns: 2 });
    pool.check();
  });

  it('an exhausted pool gives null from each and counts a failure, unchanged otherwise', () => {
    const pool = packed(4);
    const all = Array.from({ length: 4 }, () => pool.getBlock()!);
    all.forEach((b) => b.fill(1));
    fills.length = 0;
    const failures = pool.stats().failures;
    expect(pool.getBlockZeroed()).toBeNull();
    expect(pool.leaseZeroed()).toBeNull();
    expect(pool.getRunZeroed(1)).toBeNull();
    expect(pool.stats()).toMatchObject({ failures: failures + 3, inUseBlocks: 4 });
    expect(fills).toEqual([]);
    all.forEach((b) => expect([...b]).toEqual([1, 1, 1, 1]));
    pool.check();
  });

  it('hands out the block or run getBlock or getRun would, with the same figures', () => {
    const script = (pool: MemoryPool, zeroed: boolean) => {
      const out: number[] = [];
      const held: Float64Array[] = [];
      for (let i = 0; i < 40; i++) {
        const view = i % 5 === 4 ? (zeroed ? pool.getRunZeroed(3) : pool.getRun(3)) : zeroed ? pool.getBlockZeroed() : pool.getBlock();
        out.push(view === null ? -1 : pool.indexOf(view));
        if (view) held.push(view);
        if (i % 3 === 2) pool.returnBlock(held.splice(i % held.length, 1)[0]!);
      }
      return { out, stats: pool.stats() };
    };
    expect(script(packed(24, { grow: true, maxBlocks: 48 }), true)).toEqual(script(packed(24, { grow: true, maxBlocks: 48 }), false));
  });
});
