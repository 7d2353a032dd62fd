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
import type { Backend, PoolArray, PoolConfig, PoolOptions } from './options.js';
import { efficiencyPercent, fragmentationPercent, type PoolStats } from './stats.js';
import { requireInteger, validateOptions } from './validate.js';

/*
 * Policy over an Engine (engine.ts). The hot path never leaves JavaScript: the views of free
 * blocks are cached in a small stack, the magazine (Bonwick), refilled from and flushed to the
 * engine in batches of indices. Blocks in the magazine are free to the pool and allocated to the
 * engine; every metric counts them as free, so figures are exact at every call.
 *
 * Invariants (check() verifies them):
 *   inUse = #block views held (HELD = +-serial) + blocks of live runs (state RUN, RUN_BODY)
 *   capacity - inUse = engine FREE + magazine length
 *   a view cached for block i is a typed array over its slab at base + (i mod slabBlocks) * stride
 */

// #state marks the blocks of live runs; whether a single block is handed out is on its view (HELD).
const RUN = 3; // first block of a live run
const RUN_BODY = 4; // other blocks of a live run
const HELD_STATE = 1; // what check() gives the engine for a block handed out singly

// Every view a pool creates carries its pool's serial number and an index: a block view its
// block's index, a run view -1 - its first block's index (so a stale run view can never pass as
// a live block). trim() sets the index of every view of a slab it frees to NaN, so a view of a
// trimmed slab never passes as a block of a slab grown later in the same slot.
const POOL = Symbol('slabpool.pool');
const INDEX = Symbol('slabpool.index');
// On block views: the pool's serial while the block is handed out, its negation while leased, 0
// while free. One load tells returnBlock that a view is this pool's and in use.
const HELD = Symbol('slabpool.held');
const RUN_TAG = Symbol('slabpool.run'); // on run views: blocks in the run
let poolSerial = 0;

const CHUNK_SHIFT = 10;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
const MAGAZINE_MAX = 64;
const REFILL_MAX = 16;

type TaggedView = PoolArray & { [POOL]?: number; [INDEX]?: number; [HELD]?: number; [RUN_TAG]?: number };

function tag(view: PoolArray, serial: number, index: number, runLength?: number): TaggedView {
  Object.defineProperty(view, POOL, { value: serial });
  Object.defineProperty(view, INDEX, { value: index, writable: true });
  if (runLength === undefined) Object.defineProperty(view, HELD, { value: 0, writable: true });
  else Object.defineProperty(view, RUN_TAG, { value: runLength });
  return view;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let endLease: (pool: MemoryPool<any>, lease: Lease<any>) => void;

/** A leased block, returned to its pool when disposed: `using lease = pool.lease()`. */
export class Lease<T extends PoolArray = Float64Array> implements Disposable {
  readonly #pool: MemoryPool<T>;
  readonly #block: T;
  #disposed = false;

  /** @internal */
  constructor(pool: MemoryPool<T>, block: T) {
    this.#pool = pool;
    this.#block = block;
  }

  get block(): T {
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

/** A typed array of the named type (by its tag, so that arrays from other realms count too). */
function isArrayOf(value: unknown, typeName: string): boolean {
  return ArrayBuffer.isView(value) && (value as PoolArray)[Symbol.toStringTag] === typeName;
}

export class MemoryPool<T extends PoolArray = Float64Array> implements Disposable {
  readonly #cfg: PoolConfig;
  readonly #engine: Engine;
  readonly #es: Float64Array;
  readonly #blockShape: readonly number[];
  readonly #threshold: number;
  readonly #poisonNaN: boolean;

  #state: Uint8Array = new Uint8Array(0);
  #views: (TaggedView | undefined)[][] = [];
  readonly #slotBlocks: number[] = [];
  readonly #slotBuffers: (ArrayBuffer | undefined)[] = [];
  readonly #slotBases: number[] = [];
  /** The view of the run that starts at each index; the run is live while its first block is RUN. */
  readonly #runViews = new Map<number, TaggedView>();
  readonly #leases = new Map<number, Lease<T>>();

  readonly #id = ++poolSerial;
  /** #id while the pool lives; NaN once destroyed, so that no view passes as held any more. */
  #serial = this.#id;
  /** The magazine: views of free blocks, popped by getBlock and pushed by returnBlock. */
  #mag: TaggedView[] = [];
  /** Block indices for the engine: the magazine's, or a batch in flight. */
  readonly #scratch = new Int32Array(MAGAZINE_MAX);
  #magCap = 1;
  #refillSize = 1;
  /** From this many blocks in use down, a return must check fragmentation exactly; see #sync(). */
  #gateInUse = -Infinity;

  #capacity = 0;
  #inUse = 0;
  #peak = 0;
  #acquires = 0;
  // Returns are not counted on the hot path: every acquisition not yet returned is a live block
  // or a live run, so returns = acquires - (inUse - runBlocks) - liveRuns.
  #runBlocks = 0;
  #liveRuns = 0;
  #failures = 0;
  #grows = 0;
  #trims = 0;
  #coalesces = 0;
  #destroyed = false;

  static {
    endLease = (pool, lease) => pool.#endLease(lease);
  }

  constructor(options: PoolOptions<T>) {
    const cfg = validateOptions(options);
    this.#cfg = cfg;
    this.#blockShape = Object.freeze([...cfg.blockShape]);
    this.#threshold = cfg.autoCoalesceThreshold;
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
  getBlock(): T | null {
    const view = this.#mag.pop() ?? this.#refill();
    if (view === undefined) return null;
    view[HELD] = this.#serial;
    if (++this.#inUse > this.#peak) this.#peak = this.#inUse;
    this.#acquires++;
    return view as T;
  }

  /**
   * Gives a block back: the view itself (a block or a run from getRun), or a block's index.
   * Throws, leaving the pool unchanged, for anything that is not a block in use.
   */
  returnBlock(block: T | number): void {
    if (typeof block === 'object' && block !== null && (block as TaggedView)[HELD] === this.#serial) {
      this.#releaseBlock(block);
      return;
    }
    this.#returnSlow(block);
  }

  /** `count` contiguous blocks inside one slab as one typed array, or null. Return it with returnBlock. */
  getRun(count: number): T | null {
    this.#live('getRun');
    const slabBlocks = this.#cfg.slabBlocks;
    // The detail is phrased only for a number: comparing anything else could throw or run user code.
    const tooLong = typeof count === 'number' && count > slabBlocks;
    const k = requireInteger('count', count, 1, slabBlocks, tooLong ? `a run must fit in one slab of ${slabBlocks} blocks` : undefined);
    const engine = this.#engine;
    let start = engine.acquireRun(k);
    if (start < 0 && this.#mag.length > 0) {
      this.#flush(this.#mag.length);
      start = engine.acquireRun(k);
    }
    if (start < 0 && this.#growFor(k)) start = engine.acquireRun(k);
    this.#sync();
    if (start < 0) {
      this.#failures++;
      return null;
    }
    this.#state[start] = RUN;
    this.#state.fill(RUN_BODY, start + 1, start + k);
    this.#inUse += k;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    this.#acquires++;
    this.#runBlocks += k;
    this.#liveRuns++;
    let view = this.#runViews.get(start);
    if (view === undefined || view[RUN_TAG] !== k) {
      view = tag(this.#viewOver(start, k * this.#cfg.blockLength), this.#id, -1 - start, k);
      this.#runViews.set(start, view);
    }
    return view as T;
  }

  /** A block that is returned when the lease is disposed (`using lease = pool.lease()`), or null. */
  lease(): Lease<T> | null {
    const block = this.getBlock();
    if (block === null) return null;
    const idx = (block as TaggedView)[INDEX]!;
    const lease = new Lease<T>(this, block);
    (block as TaggedView)[HELD] = -this.#serial;
    this.#leases.set(idx, lease);
    return lease;
  }

  /** The index of a view this pool created (a block, or the first block of a run); -1 otherwise. */
  indexOf(block: T): number {
    this.#live('indexOf');
    if (!isArrayOf(block, this.#cfg.type.name)) throw invalidType('block', this.#cfg.type.name, block);
    const tagged = block as TaggedView;
    const index = tagged[INDEX];
    if (tagged[POOL] !== this.#id || index === undefined || Number.isNaN(index)) return -1;
    if (index < 0) return this.#runViews.get(-1 - index) === block ? -1 - index : -1;
    return this.#cachedView(index) === block ? index : -1;
  }

  /**
   * The absolute address of a block or run this pool created, for handing to native code; null on
   * the JavaScript fallback, which cannot know it. Valid while the block is held.
   */
  addressOf(block: T): bigint | null {
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
    this.#flush(this.#mag.length);
    const slabBlocks = this.#cfg.slabBlocks;
    let released = 0;
    for (let slot = 1; slot < this.#slotBlocks.length; slot++) {
      const blocks = this.#slotBlocks[slot]!;
      if (blocks === 0 || this.#engine.slabFree(slot) !== blocks) continue;
      const first = slot * slabBlocks;
      for (let idx = first; idx < first + blocks; idx++) {
        const chunk = this.#views[idx >>> CHUNK_SHIFT];
        const view = chunk?.[idx & CHUNK_MASK];
        if (view === undefined) continue;
        view[INDEX] = NaN; // the slab is gone: this view can no longer name a block
        chunk![idx & CHUNK_MASK] = undefined;
      }
      for (const [start, view] of this.#runViews) {
        if (start < first || start >= first + blocks) continue;
        view[INDEX] = NaN;
        this.#runViews.delete(start);
      }
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
    this.#sync();
    return released;
  }

  /** Detaches every view the pool created and frees its memory. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#serial = NaN;
    this.#engine.destroy();
    this.#views = [];
    this.#state = new Uint8Array(0);
    this.#runViews.clear();
    this.#leases.clear();
    this.#slotBlocks.length = 0;
    this.#slotBuffers.length = 0;
    this.#slotBases.length = 0;
    this.#mag = [];
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
      type: cfg.type.name,
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
      returns: this.#acquires - (this.#inUse - this.#runBlocks) - this.#liveRuns,
      failures: this.#failures,
      grows: this.#grows,
      trims: this.#trims,
      coalesces: this.#coalesces,
    };
  }

  /** Walks the whole structure, both the pool's and the engine's; throws ERR_SLABPOOL_CHECK_FAILED at the first broken invariant. */
  check(): void {
    this.#live('check');
    const problem = this.#engine.check(this.#blockStates(), this.#scratch, this.#magazineIndices()) ?? this.#checkPool();
    if (problem !== null) throw checkFailed(problem);
  }

  // ---- internals -----------------------------------------------------------------------------

  #live(method: string): void {
    if (this.#destroyed) throw destroyed(method);
  }

  /** The view cached for block idx, if one was made. */
  #cachedView(idx: number): TaggedView | undefined {
    return this.#views[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK];
  }

  /** A new typed array of `length` elements starting at block idx, in its slab's buffer. */
  #viewOver(idx: number, length: number): PoolArray {
    const slabBlocks = this.#cfg.slabBlocks;
    const slot = Math.floor(idx / slabBlocks);
    const byteOffset = this.#slotBases[slot]! + (idx - slot * slabBlocks) * this.#cfg.stride;
    return new this.#cfg.type(this.#slotBuffers[slot]!, byteOffset, length);
  }

  #makeView(idx: number): TaggedView {
    const view = tag(this.#viewOver(idx, this.#cfg.blockLength), this.#id, idx);
    (this.#views[idx >>> CHUNK_SHIFT] ??= new Array<TaggedView | undefined>(CHUNK_MASK + 1))[idx & CHUNK_MASK] = view;
    return view;
  }

  /** Refills the empty magazine from the engine, growing if allowed, and pops it; undefined if exhausted. */
  #refill(): TaggedView | undefined {
    this.#live('getBlock');
    const batch = this.#scratch;
    let n = this.#engine.acquire(batch, this.#refillSize);
    if (n === 0 && this.#growFor(1)) n = this.#engine.acquire(batch, this.#refillSize);
    this.#sync();
    if (n === 0) {
      this.#failures++;
      return undefined;
    }
    // The batch is highest first, so the lowest block ends on top.
    for (let j = 0; j < n; j++) {
      const idx = batch[j]!;
      this.#mag.push(this.#cachedView(idx) ?? this.#makeView(idx));
    }
    return this.#mag.pop();
  }

  #releaseBlock(block: TaggedView): void {
    block[HELD] = 0;
    if (this.#poisonNaN) (block as Float64Array).fill(NaN); // float types only (validated)
    const mag = this.#mag;
    if (mag.length === this.#magCap) this.#flush(mag.length - (mag.length >>> 1));
    mag.push(block);
    if (--this.#inUse < this.#gateInUse) this.#autoCoalesceCheck();
  }

  #releaseRun(start: number, view: TaggedView): void {
    const k = view[RUN_TAG]!;
    if (this.#poisonNaN) (view as Float64Array).fill(NaN); // float types only (validated)
    this.#engine.releaseRun(start, k);
    this.#state.fill(BLOCK_FREE, start, start + k);
    this.#runBlocks -= k;
    this.#liveRuns--;
    this.#sync();
    if ((this.#inUse -= k) < this.#gateInUse) this.#autoCoalesceCheck();
  }

  /**
   * The seed's rule: coalesce when a return leaves fragmentation above the threshold. Called when
   * the cheap gate cannot rule that out; the exact figure counts the magazine, which on the
   * native backend is a crossing into C++.
   */
  #autoCoalesceCheck(): void {
    if (fragmentationPercent(this.#largestFreeRun(), this.#capacity - this.#inUse) > this.#threshold) this.#coalesce();
  }

  /**
   * Called after every change to the engine (the only time its largest free run changes).
   * Cached blocks only lengthen free runs, so the engine's largest run L is a lower bound of the
   * true one, and with F free blocks fragmentation is at most 100 * (1 - L / F), which grows with
   * F. With G the largest F for which that bound is within the threshold, a return that leaves
   * at most G blocks free (at least capacity - G in use) needs no exact check.
   */
  #sync(): void {
    const threshold = this.#threshold;
    if (threshold >= 100) return; // fragmentation never exceeds 100: auto-coalescing is off
    const largest = this.#es[ES_LARGEST]!;
    let gate = Math.floor(largest / (1 - threshold / 100));
    while (gate > 0 && fragmentationPercent(largest, gate) > threshold) gate--;
    this.#gateInUse = this.#capacity - gate;
  }

  #coalesce(): void {
    this.#flush(this.#mag.length);
    this.#engine.coalesce();
    this.#coalesces++;
  }

  /** Hands the bottom (least recently returned) `count` magazine entries back to the engine. */
  #flush(count: number): void {
    if (count === 0) return;
    const mag = this.#mag;
    for (let j = 0; j < count; j++) this.#scratch[j] = mag[j]![INDEX]!;
    this.#engine.release(this.#scratch, count);
    mag.copyWithin(0, count);
    mag.length -= count;
    this.#sync();
  }

  /** Writes the magazine's block indices to #scratch; returns how many. */
  #magazineIndices(): number {
    const mag = this.#mag;
    for (let j = 0; j < mag.length; j++) this.#scratch[j] = mag[j]![INDEX]!;
    return mag.length;
  }

  #largestFreeRun(): number {
    return this.#capacity === this.#inUse ? 0 : this.#engine.largestRunWith(this.#scratch, this.#magazineIndices());
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
    this.#sync();
  }

  /** Small pools get a small magazine, so cached blocks never hide much of the free space. */
  #sizeMagazine(): void {
    this.#magCap = Math.max(1, Math.min(MAGAZINE_MAX, this.#capacity >>> 3));
    this.#refillSize = Math.max(1, Math.min(REFILL_MAX, this.#capacity >>> 4));
    if (this.#mag.length > this.#magCap) this.#flush(this.#mag.length - this.#magCap);
  }

  #returnSlow(block: unknown): void {
    this.#live('returnBlock');
    if (typeof block === 'number') {
      this.#returnIndex(block);
      return;
    }
    const typeName = this.#cfg.type.name;
    if (!isArrayOf(block, typeName)) throw invalidType('block', `${typeName} from getBlock()/getRun() or a block index`, block);
    const tagged = block as TaggedView;
    const index = tagged[INDEX];
    if (index === undefined) {
      const ours = this.#slotBuffers.includes(tagged.buffer as ArrayBuffer);
      throw foreignBlock('block', block, ours ? 'it is a subarray of pool memory; return the block itself' : 'it was not created by this pool');
    }
    if (tagged[POOL] !== this.#id) throw foreignBlock('block', block, 'it belongs to another pool');
    if (Number.isNaN(index)) throw foreignBlock('block', block, 'its memory was released by trim() or destroy()');
    if (index < 0) {
      const start = -1 - index;
      if (this.#state[start] === RUN && this.#runViews.get(start) === block) return this.#releaseRun(start, tagged);
      throw doubleReturn('block', start);
    }
    // A view of this pool with an index is the one cached for its block.
    if (tagged[HELD] === -this.#serial) return this.#releaseLeased(index, tagged);
    throw doubleReturn('block', index);
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
    const view = this.#cachedView(index);
    if (view?.[HELD] === this.#serial) return this.#releaseBlock(view);
    if (view?.[HELD] === -this.#serial) return this.#releaseLeased(index, view);
    if (state === RUN) return this.#releaseRun(index, this.#runViews.get(index)!);
    if (state === RUN_BODY) {
      let start = index;
      while (this.#state[start] !== RUN) start--;
      throw invalidRange('index', 'index of a block or of the first block of a run', index, `it is inside the run that starts at ${start}; return the run or index ${start}`);
    }
    throw doubleReturn('index', index);
  }

  #releaseLeased(idx: number, block: TaggedView): void {
    this.#leases.delete(idx);
    this.#releaseBlock(block);
  }

  /** Every block's state for the engine's check: #state's runs plus the blocks held singly. */
  #blockStates(): Uint8Array {
    const states = this.#state.slice();
    for (const chunk of this.#views) {
      if (chunk === undefined) continue;
      for (const view of chunk) if (view !== undefined && view[HELD] !== 0) states[view[INDEX]!] = HELD_STATE;
    }
    return states;
  }

  #endLease(lease: Lease<T>): void {
    if (this.#destroyed) return;
    const idx = (lease.block as TaggedView)[INDEX]!;
    if (this.#leases.get(idx) !== lease) throw doubleReturn('lease', idx);
    this.#releaseLeased(idx, lease.block);
  }

  #checkPool(): string | null {
    const cfg = this.#cfg;
    const es = this.#es;
    if (this.#capacity !== es[ES_CAPACITY]) return `pool counts capacity ${this.#capacity}, engine ${es[ES_CAPACITY]}`;
    const cached = this.#mag.length;
    if (this.#capacity - this.#inUse !== es[ES_FREE]! + cached) {
      return `pool counts ${this.#capacity - this.#inUse} free blocks, engine ${es[ES_FREE]} plus ${cached} cached`;
    }
    if (cached > this.#magCap) return `magazine holds ${cached} blocks, over its capacity ${this.#magCap}`;
    if (this.#peak < this.#inUse) return `peak ${this.#peak} is below blocks in use ${this.#inUse}`;
    let capacity = 0;
    let inUse = 0;
    let leased = 0;
    let runBlocks = 0;
    let liveRuns = 0;
    for (let slot = 0; slot < this.#slotBlocks.length; slot++) {
      const blocks = this.#slotBlocks[slot]!;
      const first = slot * cfg.slabBlocks;
      capacity += blocks;
      if (blocks > 0 && this.#slotBuffers[slot] !== this.#engine.slabBuffer(slot)) return `slab ${slot} buffer differs from the engine's`;
      for (let idx = first; idx < first + cfg.slabBlocks; idx++) {
        const state = this.#state[idx]!;
        const view = this.#cachedView(idx);
        if (idx - first >= blocks) {
          if (state !== BLOCK_FREE || view !== undefined) return `block ${idx} does not exist but has state ${state} or a view`;
          continue;
        }
        const held = view?.[HELD] ?? 0;
        if (held !== 0) {
          if (Math.abs(held) !== this.#serial) return `block ${idx} is marked held by pool ${held}`;
          if (state !== BLOCK_FREE) return `block ${idx} is held singly and in a run`;
          inUse++;
          if (held < 0) leased++;
        }
        if (state === RUN) {
          const k = this.#runViews.get(idx)?.[RUN_TAG];
          if (k === undefined) return `block ${idx} starts a run the pool has no view of`;
          for (let j = 1; j < k; j++) if (this.#state[idx + j] !== RUN_BODY) return `run at ${idx} of ${k} has block ${idx + j} in state ${this.#state[idx + j]}`;
          if (this.#state[idx + k] === RUN_BODY) return `run at ${idx} of ${k} is followed by a stray run block`;
          inUse += k;
          runBlocks += k;
          liveRuns++;
        }
        if (view !== undefined) {
          const expected = this.#slotBases[slot]! + (idx - first) * cfg.stride;
          if (view.buffer !== this.#slotBuffers[slot] || view.byteOffset !== expected || view.length !== cfg.blockLength || view[INDEX] !== idx || view[POOL] !== this.#id) {
            return `cached view of block ${idx} does not map its memory`;
          }
        }
      }
    }
    for (const view of this.#mag) {
      const idx = view[INDEX]!;
      if (this.#cachedView(idx) !== view) return `magazine holds a view that is not block ${idx}'s`;
      if (this.#state[idx] !== BLOCK_FREE || view[HELD] !== 0) return `cached free block ${idx} is in state ${this.#state[idx]}, held ${view[HELD]}`;
    }
    if (capacity !== this.#capacity) return `slabs hold ${capacity} blocks, pool counts ${this.#capacity}`;
    if (inUse !== this.#inUse) return `blocks in use: pool counts ${this.#inUse}, states say ${inUse}`;
    if (leased !== this.#leases.size) return `${this.#leases.size} leases for ${leased} leased blocks`;
    if (runBlocks !== this.#runBlocks || liveRuns !== this.#liveRuns) {
      return `pool counts ${this.#liveRuns} runs of ${this.#runBlocks} blocks, states say ${liveRuns} of ${runBlocks}`;
    }
    return null;
  }
}
