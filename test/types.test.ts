import { describe, expect, it } from 'vitest';
import { MemoryPool, type PoolArray, type PoolArrayConstructor } from '../lib/index.js';
import { BACKENDS, expectAligned, expectRejected, expectReleasedView, fillWith, makePool, rng, stampFor, TYPES } from './helpers.js';
import { Harness, randomWalk } from './model.js';

/*
 * Blocks of every element type, on every backend: `type` picks the typed array, blockSize counts
 * its elements, alignment and stride stay in bytes. The model walk (test/model.ts) and the
 * differential comparison run for each type as well.
 */

const float = (type: PoolArrayConstructor) => type === Float64Array || type === Float32Array;

describe.each(BACKENDS)('element types on the %s backend', (backend) => {
  describe.each(TYPES.map((t) => [t.name, t] as const))('%s blocks', (name, type) => {
    const make = (options: { blockSize: number | number[]; numBlocks: number; alignment?: number; grow?: boolean }) =>
      makePool<PoolArray>(backend, { ...options, type });

    it('hands out arrays of the type with blockSize elements, strided in bytes', () => {
      const pool = make({ blockSize: [3, 5], numBlocks: 8, alignment: 64 });
      const bytes = 15 * type.BYTES_PER_ELEMENT;
      expect(pool.stats()).toMatchObject({ type: name, blockLength: 15, blockBytes: bytes, stride: Math.ceil(bytes / 64) * 64 });
      const a = pool.getBlock()!;
      const b = pool.getBlock()!;
      expect(a).toBeInstanceOf(type);
      expect([a.length, a.byteLength]).toEqual([15, bytes]);
      expectAligned(pool, a);
      expect(Math.abs(b.byteOffset - a.byteOffset) % pool.stats().stride).toBe(0);
      const run = pool.getRun(3)!;
      expect(run).toBeInstanceOf(type);
      expect(run.length).toBe(45);
      expectAligned(pool, run);
      pool.check();
    });

    it('keeps the contents of every block apart', () => {
      const pool = make({ blockSize: 7, numBlocks: 12, alignment: 8 });
      const blocks = Array.from({ length: 12 }, () => pool.getBlock()!);
      blocks.forEach((block, i) => fillWith(block, stampFor(type, i + 1)));
      blocks.forEach((block, i) => expect([...(block as Iterable<number | bigint>)]).toEqual(Array(7).fill(stampFor(type, i + 1))));
      for (const block of blocks) pool.returnBlock(block);
      expect(pool.stats().inUseBlocks).toBe(0);
      pool.check();
    });

    it('refuses an array of another type, and a plain one of its own', () => {
      const pool = make({ blockSize: 4, numBlocks: 4 });
      pool.getBlock();
      const other = type === Float64Array ? new Int32Array(4) : new Float64Array(4);
      expectRejected(pool as unknown as MemoryPool, () => pool.returnBlock(other as unknown as PoolArray), {
        name: 'TypeError',
        code: 'ERR_SLABPOOL_INVALID_ARG',
        message: new RegExp(`^Expected ${name} from getBlock\\(\\)/getRun\\(\\) or a block index for block but received an instance of ${other.constructor.name}`),
      });
      expectRejected(pool as unknown as MemoryPool, () => pool.indexOf(other as unknown as PoolArray), {
        name: 'TypeError',
        code: 'ERR_SLABPOOL_INVALID_ARG',
        message: new RegExp(`^Expected ${name} for block but received`),
      });
      expectRejected(pool as unknown as MemoryPool, () => pool.returnBlock(new type(new ArrayBuffer(4 * type.BYTES_PER_ELEMENT), 0, 4)), {
        name: 'TypeError',
        code: 'ERR_SLABPOOL_FOREIGN_BLOCK',
        message: /it was not created by this pool/,
      });
    });

    it(float(type) ? 'poisons returned blocks with NaN' : 'refuses poison: nan, which it cannot hold', () => {
      if (float(type)) {
        const pool = makePool<PoolArray>(backend, { blockSize: 3, numBlocks: 2, type, poison: 'nan' });
        const block = pool.getBlock()!;
        pool.returnBlock(block);
        expect([...(block as Float64Array)].every(Number.isNaN)).toBe(true);
      } else {
        expectRejected(undefined, () => new MemoryPool<PoolArray>({ blockSize: 3, numBlocks: 2, type, poison: 'nan', backend }), {
          name: 'RangeError',
          code: 'ERR_SLABPOOL_INVALID_ARG',
          message: new RegExp(`^Expected 'none' for ${name} blocks for poison but received 'nan' of type string \\(only Float64Array and Float32Array can hold NaN\\)$`),
        });
      }
    });

    it('sizes a slab by its element width', () => {
      // 2^32 bytes is one slab's limit whatever the type: the largest block shrinks as elements widen.
      const max = 2 ** 32 / type.BYTES_PER_ELEMENT;
      expectRejected(undefined, () => new MemoryPool<PoolArray>({ blockSize: max + 1, numBlocks: 1, type, backend }), {
        name: 'RangeError',
        code: 'ERR_SLABPOOL_INVALID_ARG',
        message: new RegExp(`^Expected integer from 1 to ${max} for blockSize but received ${max + 1} of type number$`),
      });
      // ... and the limit itself is a pool on every backend (the native one refused 4 GiB blocks once).
      const pool = new MemoryPool<PoolArray>({ blockSize: max, numBlocks: 1, type, backend, alignment: 4096 });
      expect(pool.stats()).toMatchObject({ blockBytes: 2 ** 32, stride: 2 ** 32, reservedBytes: 2 ** 32 });
      const block = pool.getBlock()!;
      fillWith(block.subarray(max - 2), stampFor(type, 5));
      expect(block[max - 1]).toBe(stampFor(type, 5));
      pool.returnBlock(block);
      pool.check();
      pool.destroy();
    });

    it('releases its blocks at destroy without detaching them', () => {
      const pool = make({ blockSize: 4, numBlocks: 4 });
      const memory = pool.stats().memory;
      const block = pool.getBlock()!;
      fillWith(block, stampFor(type, 3));
      pool.destroy();
      expectReleasedView(block, 4, memory, stampFor(type, 3));
    });

    it('passes the model-based random walk', () => {
      for (const [seed, options] of [
        [1, { blockSize: 3, numBlocks: 8, grow: true, maxBlocks: 30, type }],
        [2, { blockSize: 2, numBlocks: 40, autoCoalesceThreshold: 50, alignment: 8, type }],
      ] as const) {
        const h = new Harness(backend, options);
        randomWalk(h, seed, 600);
        expect(h.operations).toBe(600);
        h.dispose();
      }
    });
  });
});

describe.skipIf(!BACKENDS.includes('native'))('both backends agree for every element type', () => {
  it.each(TYPES.map((t) => [t.name, t] as const))('%s', (_name, type) => {
    const random = rng(99);
    const pools = (['js', 'native'] as const).map((backend) => makePool<PoolArray>(backend, { blockSize: 5, numBlocks: 16, grow: true, maxBlocks: 64, type }));
    const held: PoolArray[][] = [[], []];
    for (let step = 0; step < 800; step++) {
      const r = random();
      const k = 1 + Math.floor(random() * 6);
      const pick = Math.floor(random() * 1000);
      const results = pools.map((pool, side) => {
        if (r < 0.45) {
          const b = pool.getBlock();
          if (b) held[side]!.push(b);
          return b ? pool.indexOf(b) : null;
        }
        if (r < 0.6) {
          const run = pool.getRun(k);
          if (run) held[side]!.push(run);
          return run ? pool.indexOf(run) : null;
        }
        if (r < 0.95 && held[side]!.length > 0) {
          const [b] = held[side]!.splice(pick % held[side]!.length, 1);
          pool.returnBlock(b!);
          return 'returned';
        }
        return pool.trim();
      });
      expect(results[1], `step ${step}`).toEqual(results[0]);
      const [a, b] = pools.map((p) => p.stats());
      expect({ ...b!, backend: 'x', alignmentScope: 'x', memory: 'x' }).toEqual({ ...a!, backend: 'x', alignmentScope: 'x', memory: 'x' });
    }
    for (const pool of pools) pool.destroy();
  });
});
