import { expect } from 'vitest';
import type { Backend, Lease, MemoryPool, Pin, PoolArray, PoolArrayConstructor, PoolOptions } from '../lib/index.js';
import { detachOptionDetaches, expectAligned, fillWith, fragmentationOf, largestRun, makePool, stampFor } from './helpers.js';
import { runSeeded, type Target } from './operations.js';

/**
 * A plainly written model of a pool: which blocks exist (per slab slot), which are free, what is
 * held, which free blocks the magazine caches, and every counter, following the rules of the
 * README and lib/: growth by slabs of numBlocks up to maxBlocks into the lowest empty slot; the
 * magazine (lib/magazine.ts: a stack of at most capacity / 8 blocks, up to 64, refilled with the
 * capacity / 16 lowest free blocks, up to 16, and half flushed when a return finds it full; a
 * returned block above the engine's lowest free block goes to its bottom while its top is at or
 * below that lowest block, any other on top);
 * address-ordered first fit for runs over the blocks the engine holds free, flushing the magazine
 * and then growing when none fits; and the auto-coalesce rule of lib/auto-coalesce.ts. So the
 * harness can predict which block or run every get hands out, and when the pool coalesces.
 * Everything is computed by brute force from the sets. Used by the model-based test and the
 * fast-check fuzzer.
 */

export interface Held {
  readonly start: number;
  readonly length: number; // blocks
  readonly run: boolean; // from getRun (a run of one block included), returned as a run
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
  /** Free blocks the magazine caches (allocated to the engine), bottom first. */
  readonly magazine: number[] = [];
  /** Auto-coalescing may fire; blocks through the engine since the last automatic coalesce. */
  armed = true;
  moved = 0;

  constructor(options: Omit<PoolOptions<PoolArray>, 'backend'>) {
    this.slabBlocks = options.numBlocks;
    this.grow = options.grow ?? false;
    this.maxBlocks = options.maxBlocks ?? (this.grow ? 2 ** 30 : options.numBlocks);
    this.threshold = options.autoCoalesceThreshold ?? 20;
    this.addSlab(options.numBlocks);
    this.engineChanged(0);
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

  /** Free blocks the engine holds: free and not cached (nor in `taken`, a run the engine has just handed out). */
  engineFree(taken?: readonly [number, number]): Set<number> {
    const cached = new Set(this.magazine);
    return new Set([...this.free].filter((i) => !cached.has(i) && !(taken && i >= taken[0] && i < taken[1])));
  }

  get magazineCapacity(): number {
    return Math.max(1, Math.min(64, this.capacity >>> 3));
  }

  /** getBlock: the block it hands out, or -1 (counted as a failure). */
  getBlock(): number {
    if (this.magazine.length === 0) {
      let n = this.refill();
      if (n === 0 && this.growFor(1)) n = this.refill();
      this.engineChanged(n);
      if (n === 0) {
        this.failures++;
        return -1;
      }
    }
    return this.magazine.pop()!;
  }

  /** getRun(k): the start of the run it hands out, or -1 (counted as a failure). */
  getRun(k: number): number {
    let start = this.firstFit(k);
    if (start < 0 && this.magazine.length > 0) {
      this.flush(this.magazine.length);
      start = this.firstFit(k);
    }
    if (start < 0 && this.growFor(k)) start = this.firstFit(k);
    // The engine has taken the run; the pool counts it in use after this.
    this.engineChanged(start < 0 ? 0 : k, start < 0 ? undefined : [start, start + k]);
    if (start < 0) this.failures++;
    return start;
  }

  /** A held block or run given back, as the pool does it: a block onto the magazine, a run to the engine; then the auto-coalesce rule. */
  giveBack(held: Held): void {
    if (held.run) {
      for (let i = held.start; i < held.start + held.length; i++) this.free.add(i);
      this.engineChanged(held.length); // before the pool counts the run as returned
    } else if (this.magazine.length === this.magazineCapacity) {
      this.flush(this.magazine.length - (this.magazine.length >>> 1));
    }
    if (!held.run) {
      // Above the engine's lowest free block while the magazine's top is at or below it: to the
      // bottom (handed out last, flushed first); else on top.
      let lowest = Infinity;
      for (const i of this.engineFree()) if (i < lowest) lowest = i;
      const top = this.magazine.length > 0 ? this.magazine[this.magazine.length - 1]! : Infinity;
      if (held.start > lowest && top <= lowest) this.magazine.unshift(held.start);
      else this.magazine.push(held.start);
    }
    this.give(held);
    if (this.armed && this.engineFragmentation() > this.threshold) {
      this.flush(this.magazine.length);
      this.coalesces++;
      this.armed = false;
      this.moved = 0;
    }
  }

  /** coalesce(): the magazine goes back to the engine. */
  coalesce(): void {
    this.flush(this.magazine.length);
    this.coalesces++;
  }

  /** The start of trim(): the magazine goes back to the engine. */
  flushForTrim(): void {
    this.flush(this.magazine.length);
  }

  /** The end of trim(), once slabs are gone. */
  trimmed(): void {
    this.engineChanged(0);
  }

  /** The lowest run of k blocks free in the engine within one slab, or -1. */
  firstFit(k: number): number {
    const free = this.engineFree();
    for (let slot = 0; slot < this.slots.length; slot++) {
      let run = 0;
      for (let a = 0; a < this.slots[slot]!; a++) {
        run = free.has(slot * this.slabBlocks + a) ? run + 1 : 0;
        if (run === k) return slot * this.slabBlocks + a - k + 1;
      }
    }
    return -1;
  }

  /** The fragmentation the auto-coalesce rule judges by: the engine's largest free run, every free block. */
  engineFragmentation(taken?: readonly [number, number]): number {
    return fragmentationOf(Math.max(1, largestRun(this.engineFree(taken), this.slabBlocks)), this.capacity - this.inUse);
  }

  /** The rule's re-arming, after any change to the engine that moved `moved` blocks. */
  engineChanged(moved: number, taken?: readonly [number, number]): void {
    if (this.armed) return;
    this.moved += moved;
    if (this.engineFragmentation(taken) <= this.threshold || this.moved >= 4 * this.magazineCapacity) this.armed = true;
  }

  /** Refill: the lowest engine-free blocks, up to capacity / 16 (at most 16), the lowest on top. */
  refill(): number {
    const batch = [...this.engineFree()].sort((a, b) => a - b).slice(0, Math.max(1, Math.min(16, this.capacity >>> 4)));
    for (let j = batch.length - 1; j >= 0; j--) this.magazine.push(batch[j]!);
    return batch.length;
  }

  /** The bottom `count` cached blocks go back to the engine. */
  flush(count: number): void {
    if (count === 0) return;
    this.magazine.splice(0, count);
    this.engineChanged(count);
  }

  /** Adds a slab if growth is allowed and it can hold k blocks. */
  growFor(k: number): boolean {
    const blocks = this.nextSlab();
    if (blocks < k) return false;
    this.addSlab(blocks);
    this.grows++;
    this.engineChanged(0);
    return true;
  }

  take(start: number, length: number): void {
    for (let i = start; i < start + length; i++) this.free.delete(i);
    this.inUse += length;
    this.peak = Math.max(this.peak, this.inUse);
    this.acquires++;
    // A get that leaves the engine's figure within the threshold re-arms the rule.
    if (!this.armed && this.engineFragmentation() <= this.threshold) this.armed = true;
  }

  give(held: Held): void {
    for (let i = held.start; i < held.start + held.length; i++) this.free.add(i);
    this.held.delete(held.start);
    this.inUse -= held.length;
    this.returns++;
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
  /** The live pins of each pinned view, oldest first. */
  readonly #pins = new Map<PoolArray, Pin<PoolArray>[]>();
  /** Views of slabs trim() released (the last 32), and what they read then. */
  readonly #released: { view: PoolArray; read: unknown[] }[] = [];

  constructor(backend: Backend, options: Omit<PoolOptions<PoolArray>, 'backend'>) {
    this.model = new Model(options);
    this.type = options.type ?? Float64Array;
    this.pool = makePool(backend, options);
    this.other = makePool(backend, options);
    this.stride = this.pool.stats().stride;
    const memory = this.pool.stats().memory;
    // Where the option cannot detach (native V8-owned slabs on Node >= 24), released views stay as without it.
    this.detach = (options.detach ?? process.env.SLABPOOL_DETACH === '1') && detachOptionDetaches(backend, memory);
    this.released = memory === 'external' ? 'zeros' : 'unchanged';
  }

  getBlock(): void {
    this.#getBlock('getBlock()', () => this.pool.getBlock(), false);
  }

  getRun(want: number): void {
    this.#getRun(want, 'getRun', (k) => this.pool.getRun(k), false);
  }

  lease(): void {
    this.#lease('lease()', () => this.pool.lease(), false);
  }

  /** The block getBlock would hand out (the model predicts it alike), reading zeros. */
  getBlockZeroed(): void {
    this.#getBlock('getBlockZeroed()', () => this.pool.getBlockZeroed(), true);
  }

  getRunZeroed(want: number): void {
    this.#getRun(want, 'getRunZeroed', (k) => this.pool.getRunZeroed(k), true);
  }

  leaseZeroed(): void {
    this.#lease('leaseZeroed()', () => this.pool.leaseZeroed(), true);
  }

  #getBlock(call: string, get: () => PoolArray | null, zeroed: boolean): void {
    const expected = this.model.getBlock();
    const block = get();
    if (!this.#handedOut(call, block, expected)) return;
    if (zeroed) expectZeros(call, block!);
    this.#hold(block!, 1, false);
  }

  #getRun(want: number, name: string, get: (k: number) => PoolArray | null, zeroed: boolean): void {
    const k = 1 + (want % this.model.slabBlocks);
    const expected = this.model.getRun(k);
    const run = get(k);
    if (!this.#handedOut(`${name}(${k})`, run, expected)) return;
    if (zeroed) expectZeros(`${name}(${k})`, run!);
    this.#hold(run!, k, true);
    this.#runViews.set(this.pool.indexOf(run!), run!);
    this.#runs.add(run!);
  }

  #lease(call: string, get: () => Lease<PoolArray> | null, zeroed: boolean): void {
    const expected = this.model.getBlock();
    const lease = get();
    if (!this.#handedOut(call, lease?.block ?? null, expected)) return;
    if (zeroed) expectZeros(call, lease!.block);
    this.#hold(lease!.block, 1, false, lease!);
  }

  returnHeld(pick: number): void {
    const h = this.#pickHeld(pick);
    if (h) this.#giveBack(h, 'returnBlock(view)', () => this.pool.returnBlock(h.view));
  }

  returnHeldByIndex(pick: number): void {
    const h = this.#pickHeld(pick);
    if (h) this.#giveBack(h, 'returnBlock(index)', () => this.pool.returnBlock(h.start));
  }

  endLease(pick: number): void {
    const h = pickFrom([...this.model.held.values()].filter((x) => x.lease), pick);
    if (h) this.#giveBack(h, 'lease[Symbol.dispose]()', () => h.lease![Symbol.dispose]());
  }

  pin(pick: number): void {
    const h = this.#pickHeld(pick);
    if (!h) return;
    const pin = this.pool.pin(h.view);
    expect([pin.block === h.view, pin.released, pin.address, pin.byteLength]).toEqual([true, false, this.pool.addressOf(h.view), h.view.byteLength]);
    const pins = this.#pins.get(h.view) ?? [];
    pins.push(pin);
    this.#pins.set(h.view, pins);
  }

  unpin(pick: number): void {
    const pinned = [...this.#pins.values()];
    const pins = pickFrom(pinned, pick);
    if (!pins) return;
    const pin = pins.shift()!;
    if (pins.length === 0) this.#pins.delete(pin.block);
    pin.release();
    expect(pin.released).toBe(true);
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
      this.#giveBack(h, 'returnBlock(a view held again)', () => this.pool.returnBlock(view));
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
      this.#giveBack(h, `returnBlock(${index})`, () => this.pool.returnBlock(index));
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
    this.model.coalesce();
  }

  trim(): void {
    const { model } = this;
    model.flushForTrim();
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
    model.trimmed();
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

  /**
   * The end of a pool: every view it handed out reads what the lifetime rule says, but those on a
   * slab with a pin: a pinned slab is left as it is (not decommitted, not detached) until its
   * last pin goes, so they keep their stamps. Then every call is refused.
   */
  destroy(): void {
    const { slabBlocks } = this.model;
    const pinnedSlots = new Set([...this.#pins.keys()].map((view) => Math.floor(this.pool.indexOf(view) / slabBlocks)));
    const views = [...this.model.held.values()].map((h) => ({ view: h.view, stamp: h.stamp, pinned: pinnedSlots.has(Math.floor(h.start / slabBlocks)) }));
    this.pool.destroy();
    this.destroyed = true;
    this.model.destroyed = true;
    for (const { view, stamp, pinned } of views) {
      if (pinned) expect([view.length > 0, view[0], view[view.length - 1]], 'a view on a pinned slab after destroy()').toEqual([true, stamp, stamp]);
      else this.#expectReleased(view, [stamp, stamp]);
    }
    for (const pins of this.#pins.values()) for (const pin of pins) pin.release();
    this.#pins.clear();
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

  /** A return of a held view: refused with ERR_SLABPOOL_PINNED while it is pinned, else taken back. */
  #giveBack(h: Held, what: string, call: () => void): void {
    if (this.#pins.has(h.view)) {
      this.#refused(`${what} of a pinned view`, call, 'ERR_SLABPOOL_PINNED');
      return;
    }
    call();
    this.#gave(h);
  }

  #gave(h: Held): void {
    this.model.giveBack(h);
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

  #hold(view: PoolArray, length: number, run: boolean, lease?: Held['lease']): void {
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
    model.held.set(start, { start, length, run, view, stamp, ...(lease ? { lease } : {}) });
  }

  /** Whether a get handed out something; asserts that it is the block or run the model predicts (-1: null). */
  #handedOut(call: string, view: PoolArray | null, expected: number): boolean {
    if (expected < 0) {
      expect(view, `${call} handed out a block where the model has none`).toBeNull();
      return false;
    }
    expect(view, `${call} gave null where the model hands out ${expected}`).not.toBeNull();
    expect(this.pool.indexOf(view!), `${call} handed out the wrong block`).toBe(expected);
    return true;
  }
}

/** Every element of what a zeroed call handed out reads zero (0n for the BigInt arrays). */
function expectZeros(call: string, view: PoolArray): void {
  const zero = typeof view[0] === 'bigint' ? 0n : 0;
  const wrong = Array.prototype.findIndex.call(view, (x: number | bigint) => x !== zero);
  expect(wrong, `${call} handed out element ${wrong} reading ${String(view[wrong])}`).toBe(-1);
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
