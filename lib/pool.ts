import { BLOCK_FREE, ES_CAPACITY, ES_FREE, ES_LARGEST, ES_RESERVED_BYTES, ES_SLABS, type Engine } from './engine.js';
import {
  checkFailed,
  destroyed,
  doubleReturn,
  foreignBlock,
  invalidRange,
  invalidType,
  outOfMemory,
} from './errors.js';
import { engineFactory } from './loader.js';
import type { Backend, PoolConfig, PoolOptions } from './options.js';
import { efficiencyPercent, fragmentationPercent, type PoolStats } from './stats.js';
import { requireInteger, validateOptions } from './validate.js';

/*
 * Policy over an Engine (engine.ts). The hot path never leaves JavaScript: free block indices are
 * cached in a small stack, the magazine (Bonwick), refilled from and flushed to the engine in
 * batches. Blocks in the magazine are free to the pool and allocated to the engine; every metric
 * counts them as free, so figures are exact at every call.
 *
 * Invariants (check() verifies them):
 *   inUse = #blocks in state LIVE or LEASED + blocks of live runs
 *   capacity - inUse = engine FREE + magTop
 *   a view cached for block i is a Float64Array over its slab at base + (i mod slabBlocks) * stride
 */

const LIVE = 1;
const LEASED = 2;
const RUN = 3; // first block of a live run
const RUN_BODY = 4; // other blocks of a live run

const TAG = Symbol('slabpool.block'); // on every view the pool creates: its (first) block index
const RUN_TAG = Symbol('slabpool.run'); // on run views: blocks in the run

const CHUNK_SHIFT = 10;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
const MAGAZINE_MAX = 64;
const REFILL_MAX = 16;

type TaggedView = Float64Array & { [TAG]?: number; [RUN_TAG]?: number };

interface LiveRun {
  readonly length: number;
  readonly view: Float64Array;
}

let endLease: (pool: MemoryPool, lease: Lease) => void;

/** A leased block, returned to its pool when disposed: `using lease = pool.lease()`. */
export class Lease implements Disposable {
  readonly #pool: MemoryPool;
  readonly #block: Float64Array;
  #disposed = false;

  /** @internal */
  constructor(pool: MemoryPool, block: Float64Array) {
    this.#pool = pool;
    this.#block = block;
  }

  get block(): Float64Array {
    return this.#block;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Returns the block. Idempotent; after the pool is destroyed it does nothing. */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    endLease(this.#pool, this);
  }
}

function isFloat64Array(value: unknown): value is Float64Array {
  return ArrayBuffer.isView(value) && (value as Float64Array)[Symbol.toStringTag] === 'Float64Array';
}

export class MemoryPool implements Disposable {
  readonly #cfg: PoolConfig;
  readonly #engine: Engine;
  readonly #es: Float64Array;
  readonly #blockShape: readonly number[];
  readonly #threshold: number;
  readonly #autoCoalesce: boolean;
  readonly #poisonNaN: boolean;

  #state: Uint8Array = new Uint8Array(0);
  #views: (TaggedView | undefined)[][] = [];
  readonly #slotBlocks: number[] = [];
  readonly #slotBuffers: (ArrayBuffer | undefined)[] = [];
  readonly #slotBases: number[] = [];
  readonly #runs = new Map<number, LiveRun>();
  readonly #runViews = new Map<number, TaggedView>();
  readonly #leases = new Map<number, Lease>();

  readonly #mag = new Int32Array(MAGAZINE_MAX);
  #magTop = 0;
  #magCap = 1;
  #refillSize = 1;

  #capacity = 0;
  #inUse = 0;
  #peak = 0;
  #acquires = 0;
  #returns = 0;
  #failures = 0;
  #grows = 0;
  #trims = 0;
  #coalesces = 0;
  #destroyed = false;

  static {
    endLease = (pool, lease) => pool.#endLease(lease);
  }

  constructor(options: PoolOptions) {
    const cfg = validateOptions(options);
    this.#cfg = cfg;
    this.#blockShape = Object.freeze([...cfg.blockShape]);
    this.#threshold = cfg.autoCoalesceThreshold;
    this.#autoCoalesce = cfg.autoCoalesceThreshold < 100;
    this.#poisonNaN = cfg.poison === 'nan';
    this.#engine = engineFactory(cfg.backend)({
      blockBytes: cfg.blockBytes,
      stride: cfg.stride,
      alignment: cfg.alignment,
      slabBlocks: cfg.slabBlocks,
    });
    this.#es = this.#engine.state;
    this.#addSlab(cfg.slabBlocks);
  }

  // ---- properties ----------------------------------------------------------------------------

  /** Elements per block. */
  get blockLength(): number {
    return this.#cfg.blockLength;
  }

  /** The block's shape, as given in blockSize (a number n gives [n]). */
  get blockShape(): readonly number[] {
    return this.#blockShape;
  }

  /** Current capacity in blocks (grows with `grow`, shrinks with `trim()`; 0 once destroyed). */
  get numBlocks(): number {
    return this.#capacity;
  }

  get alignment(): number {
    return this.#cfg.alignment;
  }

  get backend(): Backend {
    return this.#engine.kind;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  // ---- blocks --------------------------------------------------------------------------------

  /** A free block, or null when the pool is exhausted and may not grow. */
  getBlock(): Float64Array | null {
    let top = this.#magTop;
    if (top === 0) {
      top = this.#refill();
      if (top === 0) return null;
    }
    const idx = this.#mag[--top]!;
    this.#magTop = top;
    this.#state[idx] = LIVE;
    if (++this.#inUse > this.#peak) this.#peak = this.#inUse;
    this.#acquires++;
    return this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK] ?? this.#makeView(idx);
  }

  /**
   * Gives a block back: the view itself (a block or a run from getRun), or a block's index.
   * Throws, leaving the pool unchanged, for anything that is not a block in use.
   */
  returnBlock(block: Float64Array | number): void {
    if (typeof block === 'object' && block !== null) {
      const idx = (block as TaggedView)[TAG];
      if (idx !== undefined && this.#state[idx] === LIVE && this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK] === block) {
        this.#releaseBlock(idx, block);
        return;
      }
    }
    this.#returnSlow(block);
  }

  /** `count` contiguous blocks inside one slab as one Float64Array, or null. Return it with returnBlock. */
  getRun(count: number): Float64Array | null {
    this.#live('getRun');
    const slabBlocks = this.#cfg.slabBlocks;
    const k = requireInteger('count', count, 1, slabBlocks, count > slabBlocks ? `a run must fit in one slab of ${slabBlocks} blocks` : undefined);
    const engine = this.#engine;
    let start = engine.acquireRun(k);
    if (start < 0 && this.#magTop > 0) {
      this.#flush(this.#magTop);
      start = engine.acquireRun(k);
    }
    if (start < 0 && this.#growFor(k)) start = engine.acquireRun(k);
    if (start < 0) {
      this.#failures++;
      return null;
    }
    this.#state[start] = RUN;
    this.#state.fill(RUN_BODY, start + 1, start + k);
    this.#inUse += k;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    this.#acquires++;
    let view = this.#runViews.get(start);
    if (view === undefined || view[RUN_TAG] !== k) {
      const slot = Math.floor(start / slabBlocks);
      const byteOffset = this.#slotBases[slot]! + (start - slot * slabBlocks) * this.#cfg.stride;
      view = new Float64Array(this.#slotBuffers[slot]!, byteOffset, k * this.#cfg.blockLength);
      Object.defineProperty(view, TAG, { value: start });
      Object.defineProperty(view, RUN_TAG, { value: k });
      this.#runViews.set(start, view);
    }
    this.#runs.set(start, { length: k, view });
    return view;
  }

  /** A block that is returned when the lease is disposed (`using lease = pool.lease()`), or null. */
  lease(): Lease | null {
    const block = this.getBlock();
    if (block === null) return null;
    const idx = (block as TaggedView)[TAG]!;
    const lease = new Lease(this, block);
    this.#state[idx] = LEASED;
    this.#leases.set(idx, lease);
    return lease;
  }

  /** The index of a view this pool created (a block, or the first block of a run); -1 otherwise. */
  indexOf(block: Float64Array): number {
    this.#live('indexOf');
    if (!isFloat64Array(block)) throw invalidType('block', 'Float64Array', block);
    const idx = (block as TaggedView)[TAG];
    if (idx === undefined) return -1;
    if (this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK] === block || this.#runViews.get(idx) === block) return idx;
    return -1;
  }

  /**
   * The absolute address of a block or run this pool created, for handing to native code; null on
   * the JavaScript fallback, which cannot know it. Valid while the block is held.
   */
  addressOf(block: Float64Array): bigint | null {
    this.#live('addressOf');
    const idx = this.indexOf(block);
    if (idx < 0) throw foreignBlock('block', block, 'it was not created by this pool');
    const slot = Math.floor(idx / this.#cfg.slabBlocks);
    const base = this.#engine.slabAddress(slot);
    return base === null ? null : base + BigInt(block.byteOffset - this.#slotBases[slot]!);
  }

  // ---- maintenance ---------------------------------------------------------------------------

  /**
   * Returns cached free blocks to the allocator core so the next acquisitions take the lowest
   * addresses first. It never moves a live block, so it does not change fragmentation; it keeps
   * future allocations packed low and the high slabs empty for trim().
   */
  coalesce(): void {
    this.#live('coalesce');
    this.#coalesce();
  }

  /** Gives wholly empty slabs (never the first) back to the system; returns the bytes released. */
  trim(): number {
    this.#live('trim');
    this.#flush(this.#magTop);
    const slabBlocks = this.#cfg.slabBlocks;
    let released = 0;
    for (let slot = 1; slot < this.#slotBlocks.length; slot++) {
      const blocks = this.#slotBlocks[slot]!;
      if (blocks === 0 || this.#engine.slabFree(slot) !== blocks) continue;
      const first = slot * slabBlocks;
      for (let idx = first; idx < first + blocks; idx++) {
        const chunk = this.#views[idx >>> CHUNK_SHIFT];
        if (chunk) chunk[idx & CHUNK_MASK] = undefined;
      }
      for (const start of this.#runViews.keys()) if (start >= first && start < first + blocks) this.#runViews.delete(start);
      released += this.#engine.freeSlab(slot);
      this.#slotBlocks[slot] = 0;
      this.#slotBuffers[slot] = undefined;
      this.#capacity -= blocks;
      this.#trims++;
    }
    while (this.#slotBlocks.length > 1 && this.#slotBlocks.at(-1) === 0) {
      this.#slotBlocks.pop();
      this.#slotBuffers.pop();
      this.#slotBases.pop();
    }
    this.#sizeMagazine();
    return released;
  }

  /** Detaches every view the pool created and frees its memory. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#engine.destroy();
    this.#views = [];
    this.#state = new Uint8Array(0);
    this.#runs.clear();
    this.#runViews.clear();
    this.#leases.clear();
    this.#slotBlocks.length = 0;
    this.#slotBuffers.length = 0;
    this.#slotBases.length = 0;
    this.#magTop = 0;
    this.#capacity = 0;
    this.#inUse = 0;
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  // ---- metrics -------------------------------------------------------------------------------

  /** Percent: 100 * (1 - largest free run / free blocks); 0 when nothing is free. */
  getFragmentation(): number {
    this.#live('getFragmentation');
    const free = this.#capacity - this.#inUse;
    return fragmentationPercent(this.#largestFreeRun(), free);
  }

  /** Percent: 100 * blocks in use / capacity. */
  getEfficiency(): number {
    this.#live('getEfficiency');
    return efficiencyPercent(this.#inUse, this.#capacity);
  }

  stats(): PoolStats {
    this.#live('stats');
    const cfg = this.#cfg;
    const free = this.#capacity - this.#inUse;
    const largest = this.#largestFreeRun();
    return {
      backend: this.#engine.kind,
      alignmentScope: this.#engine.alignmentScope,
      alignment: cfg.alignment,
      memory: this.#engine.memory,
      blockLength: cfg.blockLength,
      blockBytes: cfg.blockBytes,
      stride: cfg.stride,
      slabBlocks: cfg.slabBlocks,
      slabs: this.#es[ES_SLABS]!,
      capacityBlocks: this.#capacity,
      inUseBlocks: this.#inUse,
      freeBlocks: free,
      peakInUseBlocks: this.#peak,
      reservedBytes: this.#es[ES_RESERVED_BYTES]!,
      inUseBytes: this.#inUse * cfg.stride,
      peakInUseBytes: this.#peak * cfg.stride,
      largestFreeRun: largest,
      fragmentation: fragmentationPercent(largest, free),
      efficiency: efficiencyPercent(this.#inUse, this.#capacity),
      internalWaste: 100 * (1 - cfg.blockBytes / cfg.stride),
      acquires: this.#acquires,
      returns: this.#returns,
      failures: this.#failures,
      grows: this.#grows,
      trims: this.#trims,
      coalesces: this.#coalesces,
    };
  }

  /** Walks the whole structure, both the pool's and the engine's; throws ERR_SLABPOOL_CHECK_FAILED at the first broken invariant. */
  check(): void {
    this.#live('check');
    const problem = this.#engine.check(this.#state, this.#mag, this.#magTop) ?? this.#checkPool();
    if (problem !== null) throw checkFailed(problem);
  }

  // ---- internals -----------------------------------------------------------------------------

  #live(method: string): void {
    if (this.#destroyed) throw destroyed(method);
  }

  #makeView(idx: number): TaggedView {
    const slabBlocks = this.#cfg.slabBlocks;
    const slot = Math.floor(idx / slabBlocks);
    const byteOffset = this.#slotBases[slot]! + (idx - slot * slabBlocks) * this.#cfg.stride;
    const view: TaggedView = new Float64Array(this.#slotBuffers[slot]!, byteOffset, this.#cfg.blockLength);
    Object.defineProperty(view, TAG, { value: idx });
    (this.#views[idx >>> CHUNK_SHIFT] ??= new Array<TaggedView | undefined>(CHUNK_MASK + 1))[idx & CHUNK_MASK] = view;
    return view;
  }

  /** Refills the empty magazine from the engine, growing if allowed; returns the new magTop. */
  #refill(): number {
    this.#live('getBlock');
    let n = this.#engine.acquire(this.#mag, this.#refillSize);
    if (n === 0 && this.#growFor(1)) n = this.#engine.acquire(this.#mag, this.#refillSize);
    if (n === 0) this.#failures++;
    this.#magTop = n;
    return n;
  }

  #releaseBlock(idx: number, block: Float64Array): void {
    this.#state[idx] = BLOCK_FREE;
    if (this.#poisonNaN) block.fill(NaN);
    this.#inUse--;
    this.#returns++;
    let top = this.#magTop;
    if (top === this.#magCap) top = this.#flush(top - (top >>> 1));
    this.#mag[top] = idx;
    this.#magTop = top + 1;
    if (this.#autoCoalesce) this.#afterReturn();
  }

  #releaseRun(start: number, run: LiveRun): void {
    if (this.#poisonNaN) run.view.fill(NaN);
    this.#engine.releaseRun(start, run.length);
    this.#state.fill(BLOCK_FREE, start, start + run.length);
    this.#runs.delete(start);
    this.#inUse -= run.length;
    this.#returns++;
    if (this.#autoCoalesce) this.#afterReturn();
  }

  /** The seed's rule: coalesce when a return leaves fragmentation above the threshold. */
  #afterReturn(): void {
    // The engine's largest run ignores cached blocks, so it is a lower bound of the true one and
    // this first figure can only overestimate fragmentation: the exact one (which counts the
    // cache, a crossing into C++ on the native backend) is needed only when the bound is over.
    const free = this.#capacity - this.#inUse;
    if (fragmentationPercent(this.#es[ES_LARGEST]!, free) <= this.#threshold) return;
    if (fragmentationPercent(this.#largestFreeRun(), free) > this.#threshold) this.#coalesce();
  }

  #coalesce(): void {
    this.#flush(this.#magTop);
    this.#engine.coalesce();
    this.#coalesces++;
  }

  /** Hands the bottom `count` magazine entries back to the engine; returns the new magTop. */
  #flush(count: number): number {
    const top = this.#magTop;
    if (count === 0) return top;
    this.#engine.release(this.#mag, count);
    this.#mag.copyWithin(0, count, top);
    this.#magTop = top - count;
    return this.#magTop;
  }

  #largestFreeRun(): number {
    return this.#capacity === this.#inUse ? 0 : this.#engine.largestRunWith(this.#mag, this.#magTop);
  }

  /** Adds a slab if growth is allowed and the new slab can hold a run of k. */
  #growFor(k: number): boolean {
    if (!this.#cfg.grow) return false;
    const blocks = Math.min(this.#cfg.slabBlocks, this.#cfg.maxBlocks - this.#capacity);
    if (blocks < k) return false;
    this.#addSlab(blocks);
    this.#grows++;
    return true;
  }

  #addSlab(blocks: number): void {
    const slabBlocks = this.#cfg.slabBlocks;
    let slot = this.#slotBlocks.indexOf(0);
    if (slot < 0) slot = this.#slotBlocks.length;
    const needed = (slot + 1) * slabBlocks;
    if (this.#state.length < needed) {
      const state = new Uint8Array(Math.max(needed, Math.min(2 * this.#state.length, this.#cfg.maxBlocks + slabBlocks)));
      state.set(this.#state);
      this.#state = state;
    }
    if (!this.#engine.addSlab(slot, blocks)) {
      throw outOfMemory(`a slab of ${blocks} blocks`, blocks * this.#cfg.stride);
    }
    this.#slotBlocks[slot] = blocks;
    this.#slotBuffers[slot] = this.#engine.slabBuffer(slot);
    this.#slotBases[slot] = this.#engine.slabBase(slot);
    this.#capacity += blocks;
    this.#sizeMagazine();
  }

  /** Small pools get a small magazine, so cached blocks never hide much of the free space. */
  #sizeMagazine(): void {
    this.#magCap = Math.max(1, Math.min(MAGAZINE_MAX, this.#capacity >>> 3));
    this.#refillSize = Math.max(1, Math.min(REFILL_MAX, this.#capacity >>> 4));
    if (this.#magTop > this.#magCap) this.#flush(this.#magTop - this.#magCap);
  }

  #returnSlow(block: unknown): void {
    this.#live('returnBlock');
    if (typeof block === 'number') {
      this.#returnIndex(block);
      return;
    }
    if (!isFloat64Array(block)) {
      throw invalidType('block', 'Float64Array from getBlock()/getRun() or a block index', block);
    }
    const tagged = block as TaggedView;
    const idx = tagged[TAG];
    if (idx === undefined) {
      const ours = this.#slotBuffers.includes(block.buffer as ArrayBuffer);
      throw foreignBlock('block', block, ours ? 'it is a subarray of pool memory; return the block itself' : 'it was not created by this pool');
    }
    const runLength = tagged[RUN_TAG];
    if (runLength !== undefined) {
      const run = this.#runs.get(idx);
      if (run?.view === block) return this.#releaseRun(idx, run);
      if (this.#runViews.get(idx) === block) throw doubleReturn('block', idx);
    } else if (this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK] === block) {
      const state = this.#state[idx];
      if (state === LEASED) return this.#releaseLeased(idx, block);
      throw doubleReturn('block', idx);
    }
    if (block.length === 0) throw foreignBlock('block', block, 'its memory was released by trim() or destroy()');
    throw foreignBlock('block', block, 'it belongs to another pool');
  }

  #returnIndex(index: number): void {
    const slabBlocks = this.#cfg.slabBlocks;
    const last = this.#slotBlocks.length * slabBlocks - 1;
    if (!Number.isInteger(index) || index < 0 || index > last) {
      throw invalidRange('index', `integer index of a block from 0 to ${last}`, index);
    }
    const slot = Math.floor(index / slabBlocks);
    if (index - slot * slabBlocks >= this.#slotBlocks[slot]!) {
      throw invalidRange('index', 'index of an existing block', index, `block ${index} does not exist: its slab was trimmed or is smaller`);
    }
    const state = this.#state[index];
    if (state === LIVE) return this.#releaseBlock(index, this.#views[index >>> CHUNK_SHIFT]![index & CHUNK_MASK]!);
    if (state === LEASED) return this.#releaseLeased(index, this.#views[index >>> CHUNK_SHIFT]![index & CHUNK_MASK]!);
    if (state === RUN) return this.#releaseRun(index, this.#runs.get(index)!);
    if (state === RUN_BODY) {
      let start = index;
      while (this.#state[start] !== RUN) start--;
      throw invalidRange('index', 'index of a block or of the first block of a run', index, `it is inside the run that starts at ${start}; return the run or index ${start}`);
    }
    throw doubleReturn('index', index);
  }

  #releaseLeased(idx: number, block: Float64Array): void {
    this.#leases.delete(idx);
    this.#releaseBlock(idx, block);
  }

  #endLease(lease: Lease): void {
    if (this.#destroyed) return;
    const idx = (lease.block as TaggedView)[TAG]!;
    if (this.#leases.get(idx) !== lease) throw doubleReturn('lease', idx);
    this.#releaseLeased(idx, lease.block);
  }

  #checkPool(): string | null {
    const cfg = this.#cfg;
    const es = this.#es;
    if (this.#capacity !== es[ES_CAPACITY]) return `pool counts capacity ${this.#capacity}, engine ${es[ES_CAPACITY]}`;
    if (this.#capacity - this.#inUse !== es[ES_FREE]! + this.#magTop) {
      return `pool counts ${this.#capacity - this.#inUse} free blocks, engine ${es[ES_FREE]} plus ${this.#magTop} cached`;
    }
    if (this.#magTop > this.#magCap) return `magazine holds ${this.#magTop} blocks, over its capacity ${this.#magCap}`;
    if (this.#peak < this.#inUse) return `peak ${this.#peak} is below blocks in use ${this.#inUse}`;
    let capacity = 0;
    let inUse = 0;
    let leased = 0;
    for (let slot = 0; slot < this.#slotBlocks.length; slot++) {
      const blocks = this.#slotBlocks[slot]!;
      const first = slot * cfg.slabBlocks;
      capacity += blocks;
      if (blocks > 0 && this.#slotBuffers[slot] !== this.#engine.slabBuffer(slot)) return `slab ${slot} buffer differs from the engine's`;
      for (let idx = first; idx < first + cfg.slabBlocks; idx++) {
        const state = this.#state[idx]!;
        const view = this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK];
        if (idx - first >= blocks) {
          if (state !== BLOCK_FREE || view !== undefined) return `block ${idx} does not exist but has state ${state} or a view`;
          continue;
        }
        if (state === LIVE || state === LEASED) inUse++;
        if (state === LEASED) leased++;
        if (state === RUN) {
          const run = this.#runs.get(idx);
          if (!run) return `block ${idx} starts a run the pool does not know`;
          for (let j = 1; j < run.length; j++) if (this.#state[idx + j] !== RUN_BODY) return `run at ${idx} of ${run.length} has block ${idx + j} in state ${this.#state[idx + j]}`;
          if (this.#state[idx + run.length] === RUN_BODY) return `run at ${idx} of ${run.length} is followed by a stray run block`;
          inUse += run.length;
        }
        if (view !== undefined) {
          const expected = this.#slotBases[slot]! + (idx - first) * cfg.stride;
          if (view.buffer !== this.#slotBuffers[slot] || view.byteOffset !== expected || view.length !== cfg.blockLength || view[TAG] !== idx) {
            return `cached view of block ${idx} does not map its memory`;
          }
        }
      }
    }
    for (let j = 0; j < this.#magTop; j++) {
      const idx = this.#mag[j]!;
      if (this.#state[idx] !== BLOCK_FREE) return `cached free block ${idx} is in state ${this.#state[idx]}`;
    }
    if (capacity !== this.#capacity) return `slabs hold ${capacity} blocks, pool counts ${this.#capacity}`;
    if (inUse !== this.#inUse) return `blocks in use: pool counts ${this.#inUse}, states say ${inUse}`;
    if (leased !== this.#leases.size) return `${this.#leases.size} leases for ${leased} leased blocks`;
    return null;
  }
}
