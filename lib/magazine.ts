import { SCRATCH_LENGTH, type Engine } from './engine.js';
import { INDEX, type PoolView, type ViewTable } from './views.js';

const MAGAZINE_MAX = SCRATCH_LENGTH;
const REFILL_MAX = 16;

/**
 * The magazine (Bonwick, "Magazines and Vmem", USENIX 2001): a small stack of views of free
 * blocks that getBlock pops and returnBlock pushes without calling the engine, refilled from it
 * and flushed to it in batches of block indices, one call each. Blocks in the magazine are free
 * to the pool and allocated to the engine.
 *
 * Capacity follows the pool's size (capacity / 8, at most 64; refills of capacity / 16, at most
 * 16), so that cached blocks never hide much of a small pool's free space.
 * Invariant: length <= capacity.
 */
export class Magazine {
  readonly #engine: Engine;
  readonly #views: ViewTable;
  /**
   * The cached views, bottom (least recently returned) first. The pool's hot path pops and pushes
   * this array directly (one load fewer than a call through the magazine, ~0.7 ns a pair,
   * measured); everything else goes through the methods. The array is never replaced.
   */
  readonly stack: PoolView[] = [];
  /** The engine's list of block indices (Engine.scratch): the magazine's, or a batch in flight. */
  readonly scratch: Int32Array;
  #capacity = 1;
  #refillSize = 1;

  constructor(engine: Engine, views: ViewTable) {
    this.#engine = engine;
    this.#views = views;
    this.scratch = engine.scratch;
  }

  get length(): number {
    return this.stack.length;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** The most recently pushed view, or undefined when empty. O(1), no call into the engine. */
  pop(): PoolView | undefined {
    return this.stack.pop();
  }

  /**
   * Takes a batch of the lowest free blocks from the engine (the caller grows the pool first if
   * it may) and pushes their views, lowest on top; returns how many came, whose indices stay in
   * scratch[0..n) until the next engine call. `method`: the public call, for ERR_SLABPOOL_DETACHED.
   */
  refill(method: string): number {
    const batch = this.scratch;
    const n = this.#engine.acquire(this.#refillSize);
    const before = this.stack.length;
    try {
      // The batch is highest first, so the lowest block ends on top.
      for (let j = 0; j < n; j++) this.stack.push(this.#views.blockOrNew(batch[j]!, method));
    } catch (err) {
      // A view could not be made (its slab was detached outside the pool): the batch goes back.
      this.stack.length = before;
      this.#engine.release(n);
      throw err;
    }
    return n;
  }

  /** Hands the bottom (least recently returned) `count` views' blocks back to the engine. */
  flush(count: number): void {
    if (count === 0) return;
    const stack = this.stack;
    for (let j = 0; j < count; j++) this.scratch[j] = stack[j]![INDEX]!;
    this.#engine.release(count);
    stack.copyWithin(0, count);
    stack.length -= count;
  }

  /** Hands every cached block back to the engine. */
  flushAll(): void {
    this.flush(this.stack.length);
  }

  /** Sizes the magazine for a pool of `capacityBlocks`, flushing what no longer fits. */
  resize(capacityBlocks: number): void {
    this.#capacity = Math.max(1, Math.min(MAGAZINE_MAX, capacityBlocks >>> 3));
    this.#refillSize = Math.max(1, Math.min(REFILL_MAX, capacityBlocks >>> 4));
    if (this.stack.length > this.#capacity) this.flush(this.stack.length - this.#capacity);
  }

  /** Writes the cached block indices to scratch; returns how many. */
  indices(): number {
    const stack = this.stack;
    for (let j = 0; j < stack.length; j++) this.scratch[j] = stack[j]![INDEX]!;
    return stack.length;
  }

  /** Drops every cached view without telling the engine (it is being destroyed). */
  clear(): void {
    this.stack.length = 0;
  }
}
