import { describe, expect, it } from 'vitest';
import type { MemoryPool, PoolOptions } from '../lib/index.js';
import { BACKENDS, expectAligned, fragmentationOf, largestRun, makePool, rng } from './helpers.js';

/*
 * Model-based random testing: a trivially correct model (a set of free indices per slab) predicts
 * every figure the pool reports, whether each get/getRun succeeds, when the pool grows, what trim
 * frees and when auto-coalescing fires. check() runs after every operation, and every live block
 * carries a stamp that must survive everything done to the others.
 */

type Options = Omit<PoolOptions, 'backend'>;

interface Held {
  readonly start: number;
  readonly length: number; // blocks
  readonly view: Float64Array;
  readonly stamp: number;
  readonly lease?: { [Symbol.dispose](): void };
}

class Model {
  readonly slabBlocks: number;
  readonly maxBlocks: number;
  readonly grow: boolean;
  readonly threshold: number;
  readonly slots: number[] = [];
  readonly free = new Set<number>();
  readonly held = new Map<number, Held>();
  inUse = 0;
  peak = 0;
  acquires = 0;
  returns = 0;
  failures = 0;
  grows = 0;
  trims = 0;
  coalesces = 0;

  constructor(options: Options) {
    this.slabBlocks = options.numBlocks;
    this.grow = options.grow ?? false;
    this.maxBlocks = options.maxBlocks ?? (this.grow ? 2 ** 30 : options.numBlocks);
    this.threshold = options.autoCoalesceThreshold ?? 20;
    this.addSlab(options.numBlocks);
  }

  get capacity(): number {
    return this.slots.reduce((a, b) => a + b, 0);
  }

  addSlab(blocks: number): void {
    let slot = this.slots.indexOf(0);
    if (slot < 0) slot = this.slots.length;
    this.slots[slot] = blocks;
    for (let i = 0; i < blocks; i++) this.free.add(slot * this.slabBlocks + i);
  }

  /** Blocks a new slab would have, or 0 when growth is not possible. */
  nextSlab(): number {
    return this.grow ? Math.min(this.slabBlocks, this.maxBlocks - this.capacity) : 0;
  }

  largest(): number {
    return largestRun(this.free, this.slabBlocks);
  }

  fragmentation(): number {
    return fragmentationOf(this.largest(), this.free.size);
  }

  take(start: number, length: number): void {
    for (let i = start; i < start + length; i++) this.free.delete(i);
    this.inUse += length;
    this.peak = Math.max(this.peak, this.inUse);
    this.acquires++;
  }

  give(held: Held): void {
    for (let i = held.start; i < held.start + held.length; i++) this.free.add(i);
    this.held.delete(held.start);
    this.inUse -= held.length;
    this.returns++;
    if (this.fragmentation() > this.threshold) this.coalesces++;
  }
}

function run(backend: 'js' | 'native', seed: number, options: Options, steps: number): void {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const pool: MemoryPool = makePool(backend, options);
  const model = new Model(options);
  const stride = pool.stats().stride;
  const other = makePool(backend, options);
  const freed: Float64Array[] = [];
  let stamp = 1;
  let step = 0;
  const where = () => `seed ${seed}, step ${step}`;

  const hold = (view: Float64Array, length: number, lease?: Held['lease']) => {
    const start = pool.indexOf(view);
    expect(start, where()).toBeGreaterThanOrEqual(0);
    for (let i = start; i < start + length; i++) expect(model.free.has(i), `${where()}: block ${i} handed out while not free`).toBe(true);
    expect(Math.floor(start / model.slabBlocks), `${where()}: run crosses a slab`).toBe(Math.floor((start + length - 1) / model.slabBlocks));
    expect(view.length).toBe(length * pool.blockLength);
    expectAligned(pool, view);
    view.fill(stamp);
    model.take(start, length);
    model.held.set(start, { start, length, view, stamp: stamp++, ...(lease ? { lease } : {}) });
  };

  const expectGrowth = (k: number) => {
    const blocks = model.nextSlab();
    if (blocks >= k) {
      model.addSlab(blocks);
      model.grows++;
      return true;
    }
    return false;
  };

  const operations: [number, () => void][] = [
    [30, () => {
      if (model.free.size === 0 && !expectGrowth(1)) {
        expect(pool.getBlock(), where()).toBeNull();
        model.failures++;
        return;
      }
      hold(pool.getBlock()!, 1);
    }],
    [10, () => {
      const k = 1 + Math.floor(random() * Math.min(model.slabBlocks, 12));
      if (model.largest() < k && !expectGrowth(k)) {
        expect(pool.getRun(k), where()).toBeNull();
        model.failures++;
        return;
      }
      hold(pool.getRun(k)!, k);
    }],
    [25, () => {
      if (model.held.size === 0) return;
      const held = pick([...model.held.values()]);
      if (held.lease) held.lease[Symbol.dispose]();
      else pool.returnBlock(held.view);
      model.give(held);
      if (held.length === 1) freed.push(held.view);
    }],
    [10, () => {
      const singles = [...model.held.values()].filter((h) => !h.lease);
      if (singles.length === 0) return;
      const held = pick(singles);
      pool.returnBlock(held.start);
      model.give(held);
    }],
    [5, () => {
      if (model.free.size === 0 && !expectGrowth(1)) {
        expect(pool.lease(), where()).toBeNull();
        model.failures++;
        return;
      }
      const lease = pool.lease()!;
      hold(lease.block, 1, lease);
    }],
    [3, () => {
      pool.coalesce();
      model.coalesces++;
    }],
    [3, () => {
      let expected = 0;
      for (let slot = 1; slot < model.slots.length; slot++) {
        const blocks = model.slots[slot]!;
        const first = slot * model.slabBlocks;
        if (blocks === 0) continue;
        let empty = true;
        for (let i = first; i < first + blocks && empty; i++) empty = model.free.has(i);
        if (!empty) continue;
        for (let i = first; i < first + blocks; i++) model.free.delete(i);
        model.slots[slot] = 0;
        model.trims++;
        expected += blocks * stride;
      }
      expect(pool.trim(), where()).toBe(expected);
    }],
    [8, () => {
      // Wrong calls: each must throw its code and leave every figure as it was.
      const before = pool.stats();
      const stale = freed.filter((v) => v.length > 0 && model.free.has(pool.indexOf(v)));
      const attempts: [() => unknown, string][] = [
        [() => pool.returnBlock(new Float64Array(pool.blockLength)), 'ERR_SLABPOOL_FOREIGN_BLOCK'],
        [() => pool.returnBlock(model.capacity + model.slabBlocks * model.slots.length), 'ERR_SLABPOOL_INVALID_ARG'],
        [() => pool.returnBlock(-1), 'ERR_SLABPOOL_INVALID_ARG'],
        [() => pool.getRun(model.slabBlocks + 1), 'ERR_SLABPOOL_INVALID_ARG'],
      ];
      const o = other.getBlock();
      if (o) attempts.push([() => pool.returnBlock(o), 'ERR_SLABPOOL_FOREIGN_BLOCK']);
      if (stale.length > 0) attempts.push([() => pool.returnBlock(pick(stale)), 'ERR_SLABPOOL_DOUBLE_RETURN']);
      if (model.held.size > 0) {
        const h = pick([...model.held.values()]);
        attempts.push([() => pool.returnBlock(h.view.subarray(0, 1)), 'ERR_SLABPOOL_FOREIGN_BLOCK']);
        if (h.length > 1) attempts.push([() => pool.returnBlock(h.start + 1), 'ERR_SLABPOOL_INVALID_ARG']);
      }
      const freeIndex = [...model.free].find(() => random() < 0.2);
      if (freeIndex !== undefined) attempts.push([() => pool.returnBlock(freeIndex), 'ERR_SLABPOOL_DOUBLE_RETURN']);
      const [call, code] = pick(attempts);
      expect(call, where()).toThrow(expect.objectContaining({ code }));
      expect(pool.stats(), where()).toEqual(before);
    }],
    [6, () => {
      expect(pool.getFragmentation(), where()).toBe(model.fragmentation());
      expect(pool.getEfficiency(), where()).toBe(model.capacity === 0 ? 0 : (100 * model.inUse) / model.capacity);
    }],
  ];
  const total = operations.reduce((a, [w]) => a + w, 0);

  for (step = 0; step < steps; step++) {
    let r = random() * total;
    const op = operations.find(([w]) => (r -= w) < 0)![1];
    op();
    pool.check();
    const s = pool.stats();
    const largest = model.largest();
    expect(
      {
        capacity: s.capacityBlocks,
        inUse: s.inUseBlocks,
        free: s.freeBlocks,
        peak: s.peakInUseBlocks,
        largest: s.largestFreeRun,
        fragmentation: s.fragmentation,
        slabs: s.slabs,
        reserved: s.reservedBytes,
        acquires: s.acquires,
        returns: s.returns,
        failures: s.failures,
        grows: s.grows,
        trims: s.trims,
        coalesces: s.coalesces,
        numBlocks: pool.numBlocks,
      },
      where(),
    ).toEqual({
      capacity: model.capacity,
      inUse: model.inUse,
      free: model.free.size,
      peak: model.peak,
      largest,
      fragmentation: fragmentationOf(largest, model.free.size),
      slabs: model.slots.filter((b) => b > 0).length,
      reserved: model.capacity * stride,
      acquires: model.acquires,
      returns: model.returns,
      failures: model.failures,
      grows: model.grows,
      trims: model.trims,
      coalesces: model.coalesces,
      numBlocks: model.capacity,
    });
    for (const held of model.held.values()) {
      const v = held.view;
      if (v[0] !== held.stamp || v[v.length - 1] !== held.stamp || !v.every((x) => x === held.stamp)) {
        throw new Error(`${where()}: block ${held.start} lost its stamp ${held.stamp}`);
      }
    }
  }
  pool.destroy();
  other.destroy();
}

const configs: [string, Options, number][] = [
  ['a small growing pool', { blockSize: 3, numBlocks: 8, grow: true, maxBlocks: 30 }, 3000],
  ['a fixed pool with a high threshold', { blockSize: [2, 2], numBlocks: 40, autoCoalesceThreshold: 50 }, 3000],
  ['a large pool that fills its magazine', { blockSize: 1, numBlocks: 300, grow: true, maxBlocks: 1000, alignment: 8 }, 3000],
  ['no auto-coalescing, poisoned', { blockSize: 5, numBlocks: 33, grow: true, autoCoalesceThreshold: 100, poison: 'nan', alignment: 256 }, 2000],
  ['a threshold of 0', { blockSize: 2, numBlocks: 64, autoCoalesceThreshold: 0 }, 2000],
];

describe.each(BACKENDS)('model-based random operations on the %s backend', (backend) => {
  it.each(configs)('%s', (_label, options, steps) => {
    for (const seed of [1, 2, 3]) run(backend, seed * 7919, options, steps);
  });
});
