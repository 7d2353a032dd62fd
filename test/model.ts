import { expect } from 'vitest';
import type { Backend, MemoryPool, PoolArray, PoolArrayConstructor, PoolOptions } from '../lib/index.js';
import { expectAligned, fillWith, fragmentationOf, largestRun, makePool, stampFor } from './helpers.js';
import { runSeeded, type Target } from './operations.js';

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


/** A view given back. trim() makes it foreign if it was still the view the pool keeps for its block or run. */
interface Given {
  readonly view: PoolArray;
  readonly start: number;
  foreign: boolean;
}

/**
 * A pool driven beside its model. Every operation of test/operations.ts acts on the pool, predicts
 * the outcome from the model, and asserts it; `verify()` then runs check() and compares every
 * figure and every live block's stamp. Choices come in as numbers, so any driver can steer it:
 * the seeded random walk, and fast-check's commands, which can also shrink a failing sequence.
 */
export class Harness implements Target {
  readonly model: Model;
  readonly pool: MemoryPool<PoolArray>;
  readonly other: MemoryPool<PoolArray>;
  readonly type: PoolArrayConstructor;
  readonly stride: number;
  /** Every view given back, in order (again each time). */
  readonly returned: Given[] = [];
  destroyed = false;
  operations = 0;
  /** The pool's `detach` option. */
  readonly detach: boolean;
  /** What a released, undetached view reads: zeros (native memory, decommitted) or what it read before (V8's memory). */
  readonly released: 'zeros' | 'unchanged';
  #stamp = 1;
  /** The run view the pool keeps for each start: getRun replaces it when the length differs. */
  readonly #runViews = new Map<number, PoolArray>();
  /** Views from getRun, a run of one block included: they are not block views. */
  readonly #runs = new WeakSet<PoolArray>();
  #otherBlock: PoolArray | null = null;
  /** Views of slabs trim() released (the last 32), and what they read then. */
  readonly #released: { view: PoolArray; read: unknown[] }[] = [];

  constructor(backend: Backend, options: Omit<PoolOptions<PoolArray>, 'backend'>) {
    this.model = new Model(options);
    this.type = options.type ?? Float64Array;
    this.pool = makePool(backend, options);
    this.other = makePool(backend, options);
    this.stride = this.pool.stats().stride;
    this.detach = options.detach ?? process.env.SLABPOOL_DETACH === '1';
    this.released = this.pool.stats().memory === 'external' ? 'zeros' : 'unchanged';
  }

  getBlock(): void {
    const block = this.#acquire(1, () => this.pool.getBlock());
    if (block) this.#hold(block, 1);
  }

  getRun(want: number): void {
    const k = 1 + (want % this.model.slabBlocks);
    const run = this.#acquire(k, () => this.pool.getRun(k));
    if (run) {
      this.#hold(run, k);
      this.#runViews.set(this.pool.indexOf(run), run);
      this.#runs.add(run);
    }
  }

  lease(): void {
    const lease = this.#acquire(1, () => this.pool.lease());
    if (lease) this.#hold(lease.block, 1, lease);
  }

  returnHeld(pick: number): void {
    const h = this.#pickHeld(pick);
    if (!h) return;
    this.pool.returnBlock(h.view);
    this.#gave(h);
  }

  returnHeldByIndex(pick: number): void {
    const h = this.#pickHeld(pick);
    if (!h) return;
    this.pool.returnBlock(h.start);
    this.#gave(h);
  }

  endLease(pick: number): void {
    const h = pickFrom([...this.model.held.values()].filter((x) => x.lease), pick);
    if (!h) return;
    h.lease![Symbol.dispose]();
    this.#gave(h);
  }

  /**
   * Views are cached: a block handed out again comes back as the same view (a run as the same view
   * when it has the same start and length), so a stale view is taken back if it is held again.
   */
  returnStale(pick: number): void {
    const given = pickFrom(this.returned, pick);
    if (!given) return;
    const { view, start } = given;
    const h = this.model.held.get(start);
    if (given.foreign) {
      this.#refused('a view of a trimmed slab', () => this.pool.returnBlock(view), 'ERR_SLABPOOL_FOREIGN_BLOCK');
    } else if (h?.view === view) {
      this.pool.returnBlock(view);
      this.#gave(h);
    } else {
      this.#refused('a view given back twice', () => this.pool.returnBlock(view), 'ERR_SLABPOOL_DOUBLE_RETURN');
    }
  }

  returnAnyIndex(n: number): void {
    const { model } = this;
    const index = (n % (3 * model.slabBlocks)) - 2;
    const slot = Math.floor(index / model.slabBlocks);
    const h = model.held.get(index);
    if (index < 0 || slot >= model.slots.length || index - slot * model.slabBlocks >= model.slots[slot]!) {
      this.#refused(`index ${index}, not a block`, () => this.pool.returnBlock(index), 'ERR_SLABPOOL_INVALID_ARG');
    } else if (h) {
      this.pool.returnBlock(index);
      this.#gave(h);
    } else if ([...model.held.values()].some((x) => x.start < index && index < x.start + x.length)) {
      this.#refused(`index ${index}, inside a run`, () => this.pool.returnBlock(index), 'ERR_SLABPOOL_INVALID_ARG');
    } else {
      expect(model.free.has(index), `block ${index} neither held nor free`).toBe(true);
      this.#refused(`index ${index}, free`, () => this.pool.returnBlock(index), 'ERR_SLABPOOL_DOUBLE_RETURN');
    }
  }

  returnFreeIndex(pick: number): void {
    const index = pickFrom([...this.model.free], pick);
    if (index === undefined) return;
    this.#refused('the index of a free block', () => this.pool.returnBlock(index), 'ERR_SLABPOOL_DOUBLE_RETURN');
  }

  returnInsideRun(pick: number): void {
    const run = pickFrom([...this.model.held.values()].filter((h) => h.length > 1), pick);
    if (!run) return;
    const index = run.start + 1 + (pick % (run.length - 1));
    this.#refused('an index inside a run', () => this.pool.returnBlock(index), 'ERR_SLABPOOL_INVALID_ARG');
  }

  returnHead(pick: number): void {
    const h = this.#pickHeld(pick);
    if (h) this.#refused('a subarray of a block', () => this.pool.returnBlock(h.view.subarray(0, 1)), 'ERR_SLABPOOL_FOREIGN_BLOCK');
  }

  returnTail(pick: number): void {
    const h = this.#pickHeld(pick);
    if (h) this.#refused('a block without its first element', () => this.pool.returnBlock(h.view.subarray(1)), 'ERR_SLABPOOL_FOREIGN_BLOCK');
  }

  returnPlainArray(): void {
    const { pool, type } = this;
    const plain = new type(new ArrayBuffer(pool.blockLength * type.BYTES_PER_ELEMENT), 0, pool.blockLength);
    this.#refused(`a plain ${type.name}`, () => pool.returnBlock(plain), 'ERR_SLABPOOL_FOREIGN_BLOCK');
  }

  returnOtherPoolsBlock(): void {
    const block = (this.#otherBlock ??= this.other.getBlock()!);
    this.#refused("another pool's block", () => this.pool.returnBlock(block), 'ERR_SLABPOOL_FOREIGN_BLOCK');
  }

  returnPastTheEnd(): void {
    const index = this.model.slots.length * this.model.slabBlocks;
    this.#refused('an index past the end', () => this.pool.returnBlock(index), 'ERR_SLABPOOL_INVALID_ARG');
  }

  returnNegativeIndex(): void {
    this.#refused('index -1', () => this.pool.returnBlock(-1), 'ERR_SLABPOOL_INVALID_ARG');
  }

  getRunTooLong(): void {
    const k = this.model.slabBlocks + 1;
    this.#refused('a run longer than a slab', () => this.pool.getRun(k), 'ERR_SLABPOOL_INVALID_ARG');
  }

  coalesce(): void {
    this.pool.coalesce();
    this.model.coalesces++;
  }

  trim(): void {
    const { model } = this;
    let expected = 0;
    const stale: PoolArray[] = [];
    for (let slot = 1; slot < model.slots.length; slot++) {
      const blocks = model.slots[slot]!;
      const first = slot * model.slabBlocks;
      let empty = blocks > 0;
      for (let i = first; i < first + blocks && empty; i++) empty = model.free.has(i);
      if (!empty) continue;
      for (let i = first; i < first + blocks; i++) model.free.delete(i);
      model.slots[slot] = 0;
      model.trims++;
      this.#forgetViews(first, first + blocks);
      expected += blocks * this.stride;
      for (const given of this.returned) if (given.start >= first && given.start < first + blocks) stale.push(given.view);
    }
    const before = stale.map((v) => [v[0], v[v.length - 1]]);
    expect(this.pool.trim()).toBe(expected);
    stale.forEach((v, i) => {
      this.#expectReleased(v, before[i]!);
      this.#released.push({ view: v, read: [v[0], v[v.length - 1]] });
    });
    this.#released.splice(0, this.#released.length - 32);
  }

  /**
   * What a view reads once its memory is released (the lifetime rule of the `detach` option):
   * detached, length 0; else its full length, reading zeros where the native backend gave the
   * pages back, or what it read before where V8 owns the memory (js, native in V8 memory).
   */
  #expectReleased(v: PoolArray, before: readonly (number | bigint | undefined)[]): void {
    if (this.detach) {
      expect(v.length).toBe(0);
      expect(v[0]).toBeUndefined();
      return;
    }
    expect(v.length).toBeGreaterThan(0);
    const zero = typeof v[0] === 'bigint' ? 0n : 0;
    // toEqual, unlike ===, takes NaN (a poisoned block) as equal to NaN.
    expect([v[0], v[v.length - 1]], 'a released view does not read what the lifetime rule says').toEqual(this.released === 'zeros' ? [zero, zero] : before);
  }

  metrics(): void {
    const { model, pool } = this;
    expect(pool.getFragmentation()).toBe(model.fragmentation());
    expect(pool.getEfficiency()).toBe(model.capacity === 0 ? 0 : (100 * model.inUse) / model.capacity);
  }

  /** The end of a pool: every view it handed out reads what the lifetime rule says, and every call is refused. */
  destroy(): void {
    const views = [...this.model.held.values()].map((h) => ({ view: h.view, stamp: h.stamp }));
    this.pool.destroy();
    this.destroyed = true;
    this.model.destroyed = true;
    for (const { view, stamp } of views) this.#expectReleased(view, [stamp, stamp]);
    for (const call of [() => this.pool.getBlock(), () => this.pool.getRun(1), () => this.pool.returnBlock(0), () => this.pool.stats(), () => this.pool.trim()]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_DESTROYED' }));
    }
  }

  /** check(), every figure against the model, and the stamp of every live block. */
  verify(): void {
    this.operations++;
    // A released range is never given to a later slab while a view over it lives: those views
    // keep reading what they read at release, whatever the pool did since.
    for (const { view, read } of this.#released) {
      expect([view[0], view[view.length - 1]], 'a view of a trimmed slab reads memory given to something else').toEqual(read);
    }
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

  #pickHeld(pick: number): Held | undefined {
    return pickFrom([...this.model.held.values()], pick);
  }

  #gave(h: Held): void {
    this.model.give(h);
    this.returned.push({ view: h.view, start: h.start, foreign: false });
  }

  /** What trim() does to the views of blocks from `first` to `end`: every kept one stops naming a block. */
  #forgetViews(first: number, end: number): void {
    for (const given of this.returned) {
      if (given.start < first || given.start >= end) continue;
      if (!this.#runs.has(given.view) || this.#runViews.get(given.start) === given.view) given.foreign = true;
    }
    for (const start of this.#runViews.keys()) if (start >= first && start < end) this.#runViews.delete(start);
  }

  /** A call that must throw `code` and change nothing. */
  #refused(what: string, call: () => unknown, code: string): void {
    const before = this.pool.stats();
    expect(call, what).toThrow(expect.objectContaining({ code }));
    expect(this.pool.stats(), `${what} changed the pool`).toEqual(before);
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

function pickFrom<T>(candidates: readonly T[], pick: number): T | undefined {
  return candidates.length === 0 ? undefined : candidates[pick % candidates.length];
}

/**
 * A seeded random walk of `steps` operations of test/operations.ts on the harness, verified after
 * each, then destroy(); a failure names the seed, the step and the call.
 */
export function randomWalk(h: Harness, seed: number, steps: number): void {
  runSeeded(h, seed, steps, () => h.verify());
}
