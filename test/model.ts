import { expect } from 'vitest';
import type { Backend, MemoryPool, PoolArray, PoolArrayConstructor, PoolOptions } from '../lib/index.js';
import { expectAligned, fillWith, fragmentationOf, largestRun, makePool, rng, stampFor } from './helpers.js';

/**
 * A trivially correct model of a pool: which blocks exist (per slab slot), which are free, what
 * is held, and every counter, following the rules of the README: growth by slabs of numBlocks up
 * to maxBlocks into the lowest empty slot, getRun(k) without growth iff the largest free run is
 * at least k, and auto-coalescing after a return that leaves fragmentation above the threshold.
 * Used by the model-based test and the fast-check fuzzer.
 */

export interface Held {
  readonly start: number;
  readonly length: number; // blocks
  readonly view: PoolArray;
  readonly stamp: number | bigint;
  readonly lease?: { [Symbol.dispose](): void };
}

export class Model {
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
  destroyed = false;

  constructor(options: Omit<PoolOptions<PoolArray>, 'backend'>) {
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


/**
 * A pool driven beside its model. Every operation acts on the pool, predicts the outcome from the
 * model, and asserts it; `verify()` then runs check() and compares every figure and every live
 * block's stamp. Choices come in as numbers (`pick`), so any driver can steer it: the seeded
 * random walk, and fast-check's commands, which can also shrink a failing sequence.
 */
export class Harness {
  readonly model: Model;
  readonly pool: MemoryPool<PoolArray>;
  readonly other: MemoryPool<PoolArray>;
  readonly type: PoolArrayConstructor;
  readonly stride: number;
  readonly freed: PoolArray[] = [];
  destroyed = false;
  operations = 0;
  #stamp = 1;

  constructor(backend: Backend, options: Omit<PoolOptions<PoolArray>, 'backend'>) {
    this.model = new Model(options);
    this.type = options.type ?? Float64Array;
    this.pool = makePool(backend, options);
    this.other = makePool(backend, options);
    this.stride = this.pool.stats().stride;
  }

  getBlock(): void {
    const block = this.#acquire(1, () => this.pool.getBlock());
    if (block) this.#hold(block, 1);
  }

  getRun(want: number): void {
    const k = 1 + (want % this.model.slabBlocks);
    const run = this.#acquire(k, () => this.pool.getRun(k));
    if (run) this.#hold(run, k);
  }

  lease(): void {
    const lease = this.#acquire(1, () => this.pool.lease());
    if (lease) this.#hold(lease.block, 1, lease);
  }

  /** Returns a held block or run: a lease by disposing it, otherwise by its view or its index. */
  returnHeld(pick: number, byIndex: boolean): void {
    const held = [...this.model.held.values()];
    if (held.length === 0) return;
    const h = held[pick % held.length]!;
    if (h.lease) h.lease[Symbol.dispose]();
    else this.pool.returnBlock(byIndex ? h.start : h.view);
    this.model.give(h);
    if (h.length === 1) this.freed.push(h.view);
  }

  coalesce(): void {
    this.pool.coalesce();
    this.model.coalesces++;
  }

  trim(): void {
    const { model } = this;
    let expected = 0;
    for (let slot = 1; slot < model.slots.length; slot++) {
      const blocks = model.slots[slot]!;
      const first = slot * model.slabBlocks;
      let empty = blocks > 0;
      for (let i = first; i < first + blocks && empty; i++) empty = model.free.has(i);
      if (!empty) continue;
      for (let i = first; i < first + blocks; i++) model.free.delete(i);
      model.slots[slot] = 0;
      model.trims++;
      expected += blocks * this.stride;
    }
    expect(this.pool.trim()).toBe(expected);
  }

  /** A wrong call, chosen by `kind`: it must throw its code and change nothing. */
  wrongReturn(kind: number, pick: number): void {
    const { model, pool } = this;
    const before = pool.stats();
    const stale = this.freed.filter((v) => v.length > 0 && model.free.has(pool.indexOf(v)));
    const held = [...model.held.values()];
    const free = [...model.free];
    const attempts: [string, () => unknown, string][] = [
      [`a plain ${this.type.name}`, () => pool.returnBlock(new this.type(new ArrayBuffer(pool.blockLength * this.type.BYTES_PER_ELEMENT), 0, pool.blockLength)), 'ERR_SLABPOOL_FOREIGN_BLOCK'],
      ['an index past the end', () => pool.returnBlock(model.slots.length * model.slabBlocks), 'ERR_SLABPOOL_INVALID_ARG'],
      ['index -1', () => pool.returnBlock(-1), 'ERR_SLABPOOL_INVALID_ARG'],
      ['a run longer than a slab', () => pool.getRun(model.slabBlocks + 1), 'ERR_SLABPOOL_INVALID_ARG'],
    ];
    const o = this.other.getBlock();
    if (o) attempts.push(["another pool's block", () => pool.returnBlock(o), 'ERR_SLABPOOL_FOREIGN_BLOCK']);
    if (stale.length > 0) attempts.push(['a block returned twice', () => pool.returnBlock(stale[pick % stale.length]!), 'ERR_SLABPOOL_DOUBLE_RETURN']);
    if (free.length > 0) attempts.push(['the index of a free block', () => pool.returnBlock(free[pick % free.length]!), 'ERR_SLABPOOL_DOUBLE_RETURN']);
    if (held.length > 0) {
      const h = held[pick % held.length]!;
      attempts.push(['a subarray of a block', () => pool.returnBlock(h.view.subarray(0, 1)), 'ERR_SLABPOOL_FOREIGN_BLOCK']);
      if (h.length > 1) attempts.push(['an index inside a run', () => pool.returnBlock(h.start + 1), 'ERR_SLABPOOL_INVALID_ARG']);
    }
    const [what, call, code] = attempts[kind % attempts.length]!;
    expect(call, what).toThrow(expect.objectContaining({ code }));
    expect(pool.stats(), `${what} changed the pool`).toEqual(before);
  }

  metrics(): void {
    const { model, pool } = this;
    expect(pool.getFragmentation()).toBe(model.fragmentation());
    expect(pool.getEfficiency()).toBe(model.capacity === 0 ? 0 : (100 * model.inUse) / model.capacity);
  }

  /** The end of a pool: every view it handed out goes dark and every call is refused. */
  destroy(): void {
    const views = [...this.model.held.values()].map((h) => h.view);
    this.pool.destroy();
    this.destroyed = true;
    this.model.destroyed = true;
    for (const v of views) {
      expect(v.length).toBe(0);
      expect(v[0]).toBeUndefined();
    }
    for (const call of [() => this.pool.getBlock(), () => this.pool.getRun(1), () => this.pool.returnBlock(0), () => this.pool.stats(), () => this.pool.trim()]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_DESTROYED' }));
    }
  }

  /** check(), every figure against the model, and the stamp of every live block. */
  verify(): void {
    this.operations++;
    if (this.destroyed) return;
    const { model, pool, stride } = this;
    pool.check();
    const s = pool.stats();
    const largest = model.largest();
    expect({
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
    }).toEqual({
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
      for (let i = 0; i < v.length; i++) if (v[i] !== held.stamp) throw new Error(`block ${held.start} lost its stamp ${held.stamp}`);
    }
  }

  dispose(): void {
    if (!this.destroyed) this.pool.destroy();
    this.other.destroy();
  }

  #hold(view: PoolArray, length: number, lease?: Held['lease']): void {
    const { model, pool } = this;
    const start = pool.indexOf(view);
    expect(start).toBeGreaterThanOrEqual(0);
    for (let i = start; i < start + length; i++) expect(model.free.has(i), `block ${i} handed out while not free`).toBe(true);
    expect(Math.floor(start / model.slabBlocks), 'a run crosses a slab').toBe(Math.floor((start + length - 1) / model.slabBlocks));
    expect(view.length).toBe(length * pool.blockLength);
    expectAligned(pool, view);
    const stamp = stampFor(this.type, this.#stamp++);
    fillWith(view, stamp);
    model.take(start, length);
    model.held.set(start, { start, length, view, stamp, ...(lease ? { lease } : {}) });
  }

  /**
   * Runs an acquisition of k blocks, predicting from the model whether it succeeds (growing if it
   * must and may): null is asserted and counted as a failure, else the result is returned.
   */
  #acquire<T>(k: number, take: () => T | null): T | undefined {
    const fits = k === 1 ? this.model.free.size > 0 : this.model.largest() >= k;
    if (!fits && !this.#expectGrowth(k)) {
      expect(take()).toBeNull();
      this.model.failures++;
      return undefined;
    }
    const result = take();
    expect(result).not.toBeNull();
    return result!;
  }

  #expectGrowth(k: number): boolean {
    const blocks = this.model.nextSlab();
    if (blocks < k) return false;
    this.model.addSlab(blocks);
    this.model.grows++;
    return true;
  }
}

/**
 * A seeded random walk of `steps` operations on the harness, weighted towards gets and returns,
 * verified after each; a failure names the seed and the step.
 */
export function randomWalk(h: Harness, seed: number, steps: number): void {
  const random = rng(seed);
  const n = () => Math.floor(random() * 2 ** 30);
  const operations: [number, () => void][] = [
    [30, () => h.getBlock()],
    [10, () => h.getRun(n())],
    [25, () => h.returnHeld(n(), false)],
    [10, () => h.returnHeld(n(), true)],
    [5, () => h.lease()],
    [3, () => h.coalesce()],
    [3, () => h.trim()],
    [8, () => h.wrongReturn(n(), n())],
    [6, () => h.metrics()],
  ];
  const total = operations.reduce((a, [w]) => a + w, 0);
  for (let step = 0; step < steps; step++) {
    let r = random() * total;
    const op = operations.find(([w]) => (r -= w) < 0)![1];
    try {
      op();
      h.verify();
    } catch (err) {
      (err as Error).message = `seed ${seed}, step ${step}: ${(err as Error).message}`;
      throw err;
    }
  }
}
