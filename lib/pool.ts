import { AddressBook } from './addresses.js';
import { coalesceGate } from './auto-coalesce.js';
import { Counter, type Engine } from './engine.js';
import { checkFailed, destroyed, doubleReturn, foreignBlock, invalidRange, invalidType, notInUse, outOfMemory, pinned, slabDetached, type SlabpoolError } from './errors.js';
import { engineFactory } from './loader.js';
import { Lease, setLeaseEnd } from './lease.js';
import { Magazine } from './magazine.js';
import type { Backend, PoolArray, PoolConfig, PoolOptions } from './options.js';
import { hugePagesStats, prefaultStats, type PagesContext } from './pages.js';
import { blockStates, checkPool, runStates } from './pool-check.js';
import { Pin, PinTable } from './pin.js';
import { SlotTable } from './slots.js';
import { efficiencyPercent, fragmentationPercent, type PoolStats } from './stats.js';
import { requireInteger, validateOptions } from './validate.js';
import { INDEX, MARK, POOL, runOf, isBlockView, ViewState, ViewTable, isArrayOf, type PoolView } from './views.js';
import { PristineMemory, fillZero } from './zero-fill.js';

/*
 * The public pool: policy over an Engine (engine.ts). Its parts, one file each:
 *   slots.ts     one record per slab slot (blocks, buffer, base)
 *   views.ts     the views handed out and the marks on them
 *   magazine.ts  the magazine of free views that keeps the hot path in JavaScript
 *   auto-coalesce.ts  when a return must check fragmentation
 *   pin.ts       pins: native code holding a block's memory
 *   lease.ts     leases: a block given back when disposed
 *   addresses.ts the blocks' absolute addresses, made once
 *   zero-fill.ts which free memory is known to read zeros (getBlockZeroed, getRunZeroed)
 *   pool-check.ts     the pool half of check()
 * This class keeps the API, the counters and the hot path. Blocks in the magazine are free to the
 * pool and allocated to the engine; every metric counts them as free, so figures are exact at
 * every call.
 *
 * Invariants (check() verifies them):
 *   inUse = block views marked Held or Leased + blocks of live runs (run views whose run record's mark is #runMark)
 *   capacity - inUse = engine Free + magazine length
 *   the view of block i is a typed array over its slab at base + (i mod slabBlocks) * stride
 */

let poolSerial = 0;
/** Magazines' worth of blocks through the engine after which auto-coalescing re-arms (auto-coalesce.ts). */
const REARM_MAGAZINES = 4;
// The hot path's mark symbol as a module constant: CommonJS output reads an imported binding
// from its module object on every use.
const HOT_MARK: typeof MARK = MARK;
/** Above every block index. */
const NO_BLOCK = 2 ** 31 - 1; // block indices are int32; a small integer to V8 on 64-bit Node

export class MemoryPool<T extends PoolArray = Float64Array> implements Disposable {
  readonly #cfg: PoolConfig;
  readonly #engine: Engine;
  readonly #counters: Float64Array;
  /** blockSize's shape, frozen when first asked for. */
  #blockShape: readonly number[] | undefined;
  readonly #threshold: number;
  /** The block type's name (Function.prototype.name is a getter, ~25 ns a read). */
  readonly #typeName: string;
  readonly #poisonNaN: boolean;
  /** What zeroes an element of the block type: 0n for the BigInt arrays, else 0. */
  readonly #zero: number | bigint;
  /** Elements per stride (blocks of a run lie a stride apart). */
  readonly #strideLength: number;
  readonly #id = ++poolSerial;
  readonly #slots: SlotTable;
  readonly #views: ViewTable;
  readonly #magazine: Magazine;
  /** The magazine's stack and capacity, held here for the hot path (magazine.ts). */
  readonly #stack: PoolView[];
  #stackCap = 1;

  // Made on first use, as the pins and the addresses: a pool that never leases, pins or asks for
  // an address pays nothing for them at construction (issue 12's construction target).
  #leases: Map<number, Lease<T>> | undefined;
  /** The mark of a view handed out by getBlock() / inside a lease; NaN once destroyed, so that no view passes as held any more. */
  #heldMark: number;
  #leasedMark: number;
  /** The marks of a held / leased block view while pinned (pin.ts); NaN once destroyed. */
  #pinnedHeldMark: number;
  #pinnedLeasedMark: number;
  #pins: PinTable | undefined;
  #addresses: AddressBook | undefined;
  readonly #pristine: PristineMemory;
  /** The mark of a run view while its run is live; NaN once destroyed. */
  #runMark: number;
  /** A return that leaves fewer blocks than this in use coalesces (auto-coalesce.ts); -1 while disarmed (an integer: a small-integer field for the hot path). */
  #gateInUse = -1;
  /** The engine's largest free run and the capacity the gate was last computed for. */
  #gateLargest = -1;
  #gateCapacity = -1;
  #gate = -Infinity;
  /** Auto-coalescing may fire (auto-coalesce.ts): true at first, false from an automatic coalesce until re-armed. */
  #armed = true;
  /** While disarmed, a get that leaves at least this many blocks in use re-arms (the engine's figure is then within the threshold); Infinity while armed. */
  #rearmInUse = Infinity;
  /**
   * A get that leaves at least this many blocks in use takes #getSlow (a new peak, or re-arming):
   * min(peak + 1, rearmInUse), at least -1, kept an integer so that the hot path's one compare
   * reads a small-integer field (#setSlowGetAt after every change to either).
   */
  #slowGetAt = 1;
  /** Blocks taken from or given to the engine since the last automatic coalesce. */
  #moved = 0;
  /**
   * The engine's lowest free block as of its last change (#engineChanged), NO_BLOCK if none: a
   * return above it goes to the magazine's bottom. An integer field (a small integer to V8): the
   * hot path's compare then costs ~0.3 ns, where a double field cost ~0.8 ns.
   */
  #lowest = NO_BLOCK;

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
    setLeaseEnd((pool, lease) => (pool as MemoryPool<PoolArray>).#endLease(lease));
  }

  /**
   * A pool of `numBlocks` blocks of `blockSize` elements of `type` (options.ts documents each
   * option). Throws ERR_SLABPOOL_INVALID_ARG for bad options, ERR_SLABPOOL_NATIVE_UNAVAILABLE for
   * backend 'native' or alignmentScope 'address' without a loadable addon, ERR_SLABPOOL_OUT_OF_MEMORY when the first slab
   * cannot be had.
   */
  constructor(options: PoolOptions<T>) {
    const cfg = validateOptions(options);
    this.#cfg = cfg;
    this.#threshold = cfg.autoCoalesceThreshold;
    this.#typeName = cfg.type.name;
    this.#poisonNaN = cfg.poison === 'nan';
    this.#zero = cfg.type === BigInt64Array || cfg.type === BigUint64Array ? 0n : 0;
    this.#strideLength = cfg.stride / cfg.type.BYTES_PER_ELEMENT;
    // mark(serial, state) (views.ts), written out: no call per mark while V8 still interprets this.
    const marks = this.#id * ViewState.Kinds;
    this.#heldMark = marks + ViewState.Held;
    this.#leasedMark = marks + ViewState.Leased;
    this.#pinnedHeldMark = marks + ViewState.PinnedHeld;
    this.#pinnedLeasedMark = marks + ViewState.PinnedLeased;
    this.#runMark = marks + ViewState.Run;
    // The validated options hold every EngineConfig field: no literal to copy them into (a
    // literal's second run, a program's second pool, is its costly one: validate.ts Config).
    this.#engine = engineFactory(cfg.backend, cfg.alignmentScope === 'address')(cfg);
    this.#counters = this.#engine.counters;
    this.#slots = new SlotTable(cfg.slabBlocks, cfg.stride);
    this.#pristine = new PristineMemory(cfg.slabBlocks);
    this.#views = new ViewTable(this.#id, cfg.type, cfg.blockLength, this.#slots);
    this.#magazine = new Magazine(this.#engine, this.#views);
    this.#stack = this.#magazine.stack;
    this.#addSlab(cfg.slabBlocks);
  }

  // ---- properties ----------------------------------------------------------------------------

  /** Elements per block. */
  get blockLength(): number {
    return this.#cfg.blockLength;
  }

  /** The block's shape, as given in blockSize (a number n gives [n]). */
  get blockShape(): readonly number[] {
    return (this.#blockShape ??= Object.freeze(this.#cfg.blockShape.slice()));
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

  /**
   * A free block (a typed array of blockLength elements), or null when the pool is exhausted and
   * may not grow. The hot path: a pop from the magazine and two counters, a few ns; every
   * magazine-size acquisitions, one engine call refills a batch.
   */
  getBlock(): T | null {
    const view = this.#stack.pop() ?? this.#refill();
    if (view === undefined) return null;
    // A view has length 0 only when something outside the pool detached its slab (a web stream).
    if (view.length === 0) this.#refuseDetached(view, 'getBlock');
    view[HOT_MARK] = this.#heldMark;
    if (++this.#inUse >= this.#slowGetAt) this.#getSlow();
    this.#acquires++;
    return view as T;
  }

  /**
   * A free block whose every element is zero, or null as getBlock() (exhausted and not allowed
   * to grow, counted in `failures`). getBlock's zero-filling twin, named as allocators name
   * theirs (Rust's `alloc_zeroed`, Linux's `kmem_cache_zalloc`, C's calloc; Node's `Buffer.alloc`
   * is the filled and `allocUnsafe` the unfilled one): getBlock stays the unfilled, fastest call,
   * and hands out the same block this would. Fills only a block that may hold data: one never
   * handed out since its slab was added already reads zeros (zero-fill.ts says how that is known
   * on each backend) and is handed out as it is. Cost: getBlock's, plus `fill(0)` of
   * blockLength elements for a block used before. Throws, leaving the pool unchanged,
   * ERR_SLABPOOL_DETACHED for a block of a slab detached outside the pool, and
   * ERR_SLABPOOL_DESTROYED after destroy().
   */
  getBlockZeroed(): T | null {
    return this.#takeZeroed('getBlockZeroed');
  }

  /**
   * Gives a block back: the view itself (a block or a run from getRun), or a block's index.
   * Throws, leaving the pool unchanged, for anything that is not a block in use:
   * ERR_SLABPOOL_FOREIGN_BLOCK, ERR_SLABPOOL_DOUBLE_RETURN, ERR_SLABPOOL_INVALID_ARG. The hot
   * path (a block view): one mark compare and a push onto the magazine.
   */
  returnBlock(block: T | number): void {
    if (typeof block === 'object' && block !== null) {
      const m = (block as PoolView)[HOT_MARK];
      // The identity check: a Proxy of a held block reads the same marks through its target, but
      // has no brand. A view with this pool's held mark and the brand is this pool's view of block
      // INDEX: marks hold the pool's serial, and a view leaves the table only when free (trim) or
      // when the pool is destroyed (its held mark becomes NaN).
      if (m === this.#heldMark && isBlockView(block)) {
        this.#releaseBlock(block);
        return;
      }
      // A run view's record carries the run mark exactly while its run is live (getRun sets it, a return clears it).
      const run = runOf(block as PoolView);
      if (run !== undefined && run.mark === this.#runMark) {
        this.#releaseRun(run.start, block);
        return;
      }
    }
    this.#returnSlow(block);
  }

  /**
   * `count` contiguous blocks inside one slab as one typed array (count * blockLength
   * elements), or null. First fit: the lowest run that is long enough. Return it with
   * returnBlock. Throws ERR_SLABPOOL_INVALID_ARG unless 1 <= count <= the numBlocks option (one slab).
   */
  getRun(count: number): T | null {
    return this.#getRun('getRun', count, false);
  }

  /**
   * getRun(count) with every element zero: `count` contiguous blocks inside one slab as one
   * typed array of count * blockLength zeros, or null as getRun. Fills only the part of the run
   * that may hold data: blocks never handed out since their slab was added read zeros already
   * (zero-fill.ts), so a run on fresh memory costs what getRun does, and one that overlaps blocks
   * used before fills up to the end of the last of them. Throws as getRun:
   * ERR_SLABPOOL_INVALID_ARG (TypeError or RangeError) unless `count` is an integer from 1 to the
   * numBlocks option (one slab), ERR_SLABPOOL_DETACHED, ERR_SLABPOOL_DESTROYED; the pool
   * unchanged.
   */
  getRunZeroed(count: number): T | null {
    return this.#getRun('getRunZeroed', count, true);
  }

  /** getRun and getRunZeroed (`method`, for errors); `zeroed`: fill what may hold data. */
  #getRun(method: string, count: number, zeroed: boolean): T | null {
    this.#live(method);
    const slabBlocks = this.#cfg.slabBlocks;
    // The detail is phrased only for a number: comparing anything else could throw or run user code.
    const tooLong = typeof count === 'number' && count > slabBlocks;
    const k = requireInteger('count', count, 1, slabBlocks, tooLong ? `a run must fit in one slab of ${slabBlocks} blocks` : undefined);
    let start = this.#acquireRun(k);
    if (start < 0 && this.#magazine.length > 0) {
      this.#flush(this.#magazine.length);
      start = this.#acquireRun(k);
    }
    if (start < 0 && this.#growFor(k)) start = this.#acquireRun(k);
    if (start >= 0) {
      // A run in a slab detached outside the pool gets no view: it goes back, and the pool is unchanged.
      const detached = this.#views.detachedSlotAt(start);
      if (detached >= 0) {
        this.#engine.releaseRun(start, k);
        throw slabDetached(method, detached);
      }
    }
    this.#engineChanged(start < 0 ? 0 : k);
    if (start < 0) {
      this.#failures++;
      return null;
    }
    this.#inUse += k;
    if (this.#inUse >= this.#slowGetAt) this.#getSlow();
    this.#acquires++;
    this.#runBlocks += k;
    this.#liveRuns++;
    const view = this.#views.run(start, k, method);
    runOf(view)!.mark = this.#runMark;
    const dirty = this.#pristine.runHandedOut(start, k);
    // The blocks of a run lie a stride apart: the first `dirty` of them end before element dirty * strideLength.
    if (zeroed && dirty > 0) fillZero(view, this.#zero, Math.min(view.length, dirty * this.#strideLength));
    return view as T;
  }

  /**
   * The engine's first fit for k blocks, or -1. The engine's largest free run is readable without
   * a call (its counters), and acquireRun fails exactly when it is shorter than k: such a request
   * does not cross into C++ on the native backend.
   */
  #acquireRun(k: number): number {
    return k <= this.#counters[Counter.Largest]! ? this.#engine.acquireRun(k) : -1;
  }

  /** A block that is returned when the lease is disposed (`using lease = pool.lease()`), or null. */
  lease(): Lease<T> | null {
    this.#live('lease');
    let block: T | null;
    try {
      block = this.getBlock();
    } catch (err) {
      // getBlock's refusal of a detached slab, told as this call's (the pool is unchanged).
      if ((err as SlabpoolError).code === 'ERR_SLABPOOL_DETACHED') (err as Error).message = (err as Error).message.replace('getBlock()', 'lease()');
      throw err;
    }
    return block === null ? null : this.#leased(block);
  }

  /**
   * lease() of a zeroed block (getBlockZeroed): `using lease = pool.leaseZeroed()`, every element
   * of lease.block zero; null when exhausted. Throws as getBlockZeroed.
   */
  leaseZeroed(): Lease<T> | null {
    this.#live('leaseZeroed');
    const block = this.#takeZeroed('leaseZeroed');
    return block === null ? null : this.#leased(block);
  }

  /** A lease of a block just handed out. */
  #leased(block: T): Lease<T> {
    const view = block as PoolView;
    const lease = new Lease<T>(this, block);
    view[MARK] = this.#leasedMark;
    (this.#leases ??= new Map()).set(view[INDEX]!, lease);
    return lease;
  }

  /** The index of a view this pool created (a block, or the first block of a run); -1 otherwise. */
  indexOf(block: T): number {
    this.#live('indexOf');
    if (!isArrayOf(block, this.#typeName)) throw invalidType('block', this.#typeName, block);
    const view = block as PoolView;
    const run = runOf(view);
    if (run !== undefined) return run.pool === this.#id && this.#views.runAt(run.start) === block ? run.start : -1;
    const index = view[INDEX];
    if (view[POOL] !== this.#id || index === undefined || Number.isNaN(index)) return -1;
    return this.#views.block(index) === block ? index : -1;
  }

  /**
   * The absolute address of a block or run this pool created, for handing to native code; null on
   * the JavaScript fallback, which cannot know it. Valid while the block is held (and, for native
   * work that outlives the call, pinned: pin()). Made once per block or run and kept
   * (addresses.ts): ~10 ns a call after the first. Throws ERR_SLABPOOL_FOREIGN_BLOCK for a view
   * this pool does not keep (a Proxy of a block included), ERR_SLABPOOL_INVALID_ARG for one not
   * in use (returned: its address will be the next owner's).
   */
  addressOf(block: T): bigint | null {
    // Fast: a block in use carries its pool's mark (so it is this pool's view of block INDEX), a live run its record.
    if (typeof block === 'object' && block !== null) {
      const view = block as PoolView;
      const m = view[HOT_MARK];
      if ((m === this.#heldMark || m === this.#pinnedHeldMark || m === this.#leasedMark || m === this.#pinnedLeasedMark) && isBlockView(view)) {
        // Length 0: its slab was detached outside the pool, and its memory is no longer the block's.
        if (view.length === 0) throw slabDetached('addressOf', this.#slots.slotOf(view[INDEX]!));
        return this.#addressBook().block(view[INDEX]!, view.byteOffset);
      }
      const run = runOf(view);
      if (run !== undefined && run.mark === this.#runMark) {
        if (view.length === 0) throw slabDetached('addressOf', this.#slots.slotOf(run.start));
        return (run.address ??= this.#addressBook().at(this.#slots.slotOf(run.start), view.byteOffset));
      }
    }
    this.#live('addressOf');
    const idx = this.indexOf(block);
    if (idx < 0) throw foreignBlock('block', block, this.#foreignReason(block as PoolView) ?? 'it is a run view the pool no longer keeps');
    // A view of this pool that is not in use (the fast path takes every one that is): its address is the next owner's.
    throw notInUse('block', runOf(block as PoolView) === undefined ? `block ${idx}` : `the run view at block ${idx}`);
  }

  /**
   * Pins a block or run in use (held from getBlock(), inside a lease, or a live run from getRun()):
   * until the returned Pin is released (`using pin = pool.pin(block)`, or `pin.release()`), the
   * block cannot be returned (ERR_SLABPOOL_PINNED) and destroy() leaves its slab's memory as it
   * is. pin.ts says when to pin. Throws ERR_SLABPOOL_FOREIGN_BLOCK for a view this pool does not
   * keep, ERR_SLABPOOL_INVALID_ARG for a free block or a returned run, a TypeError (same code)
   * for anything that is not a typed array of the pool's type.
   */
  pin(block: T): Pin<T> {
    this.#live('pin');
    const typeName = this.#typeName;
    if (!isArrayOf(block, typeName)) throw invalidType('block', `${typeName} from getBlock()/getRun()`, block);
    const view = block as PoolView;
    const why = this.#foreignReason(view);
    if (why !== null) throw foreignBlock('block', block, why);
    const run = runOf(view);
    let start: number;
    if (run !== undefined) {
      start = run.start;
      if (run.mark !== this.#runMark || this.#views.runAt(start) !== view) throw notInUse('block', `the run view at block ${start}`);
    } else {
      start = view[INDEX]!;
      const m = view[MARK];
      if (m !== this.#heldMark && m !== this.#leasedMark && m !== this.#pinnedHeldMark && m !== this.#pinnedLeasedMark) throw notInUse('block', `block ${start}`);
    }
    const slot = this.#slots.slotOf(start);
    if (view.length === 0) throw slabDetached('pin', slot); // its slab was detached outside the pool
    const address = this.addressOf(block); // in use, so its fast path: cached after the first
    this.#engine.pin(slot); // first: it may refuse (an engine bug), with nothing changed yet
    const pins = (this.#pins ??= new PinTable());
    if (run !== undefined) pins.pinRun(run);
    else pins.pinBlock(view, view[MARK] === this.#leasedMark || view[MARK] === this.#pinnedLeasedMark ? this.#pinnedLeasedMark : this.#pinnedHeldMark);
    return new Pin<T>(block, address, () => this.#unpin(view, slot));
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

  /**
   * Gives wholly empty slabs (never the first) back to the system; returns the bytes released.
   * Nothing is detached (see the `detach` option): returnBlock and addressOf refuse a view kept
   * from a released slab (ERR_SLABPOOL_FOREIGN_BLOCK) and indexOf gives -1; it reads zeros on the
   * native backend, whose pages go back to the OS at once; on the js backend V8 frees the slab
   * when no view is left.
   */
  trim(): number {
    this.#live('trim');
    this.#flush(this.#magazine.length);
    const slabBlocks = this.#cfg.slabBlocks;
    const slots = this.#slots;
    let released = 0;
    for (let slot = 1; slot < slots.length; slot++) {
      const blocks = slots.at(slot).blocks;
      if (blocks === 0 || this.#engine.slabFree(slot) !== blocks) continue;
      this.#views.retire(slot * slabBlocks, blocks); // the slab is gone: its views can no longer name a block
      released += this.#engine.freeSlab(slot);
      slots.empty(slot);
      this.#addresses?.forget(slot, slot * slabBlocks, blocks);
      this.#capacity -= blocks;
      this.#trims++;
    }
    this.#resizeMagazine();
    this.#engineChanged(0);
    return released;
  }

  /**
   * Frees the pool's memory, blocks still held included: on the native backend its pages go back
   * to the OS at once and every view left reads zeros; on the js backend (and native in V8 memory)
   * V8 frees it when no view is left. Nothing is detached unless the `detach` option is on. Every
   * later call but destroy() throws ERR_SLABPOOL_DESTROYED; destroy() again does nothing.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#heldMark = NaN;
    this.#leasedMark = NaN;
    this.#pinnedHeldMark = NaN;
    this.#pinnedLeasedMark = NaN;
    this.#runMark = NaN;
    this.#engine.destroy(); // pinned slabs' memory stays until their pins are released
    this.#pins?.clear();
    this.#addresses?.clear();
    this.#pristine.clear();
    this.#views.clear();
    this.#leases?.clear();
    this.#slots.clear();
    this.#magazine.clear();
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
    // Asked of the engine only when an option is on: hugePages reads back from the kernel.
    const pages: PagesContext = {
      backend: this.#engine.kind,
      memory: this.#engine.memory,
      slabs: this.#counters[Counter.Slabs]!,
      reservedBytes: this.#counters[Counter.ReservedBytes]!,
      pages: cfg.hugePages || cfg.prefault ? this.#engine.pages(cfg.hugePages) : null,
    };
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
      slabs: this.#counters[Counter.Slabs]!,
      capacityBlocks: this.#capacity,
      inUseBlocks: this.#inUse,
      freeBlocks: free,
      peakInUseBlocks: this.#peak,
      reservedBytes: this.#counters[Counter.ReservedBytes]!,
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
      hugePages: hugePagesStats(cfg.hugePages, pages),
      prefault: prefaultStats(cfg.prefault, pages),
    };
  }

  /** Walks the whole structure, both the pool's and the engine's; throws ERR_SLABPOOL_CHECK_FAILED at the first broken invariant. */
  check(): void {
    this.#live('check');
    const states = runStates(this.#views, this.#slots.length * this.#cfg.slabBlocks, this.#runMark);
    const problem =
      this.#slots.detachedSlot() ??
      this.#engine.check(blockStates(this.#views, states), this.#magazine.indices()) ??
      checkPool({
        slabBlocks: this.#cfg.slabBlocks,
        counters: this.#counters,
        engine: this.#engine,
        slots: this.#slots,
        views: this.#views,
        magazine: this.#magazine,
        states,
        serial: this.#id,
        runMark: this.#runMark,
        leases: this.#leases?.size ?? 0,
        pinnedBlocks: this.#pins?.blocks ?? 0,
        pinnedRuns: this.#pins?.runs ?? 0,
        capacity: this.#capacity,
        inUse: this.#inUse,
        peak: this.#peak,
        runBlocks: this.#runBlocks,
        liveRuns: this.#liveRuns,
      }) ??
      this.#pristine.check(this.#slots, this.#views, this.#runMark);
    if (problem !== null) throw checkFailed(problem);
  }

  // ---- internals -----------------------------------------------------------------------------

  #live(method: string): void {
    if (this.#destroyed) throw destroyed(method);
  }

  /** getBlock's refusal of a view whose slab was detached: the view goes back, the pool is unchanged. */
  #refuseDetached(view: PoolView, method: string): never {
    this.#stack.push(view);
    throw slabDetached(method, this.#slots.slotOf(view[INDEX]!));
  }

  /**
   * Refills the empty magazine from the engine, growing if allowed, and pops it; undefined if
   * exhausted. `method`: the public call that found the magazine empty, for its errors.
   */
  #refill(method = 'getBlock'): PoolView | undefined {
    this.#live(method);
    const magazine = this.#magazine;
    let n = magazine.refill(method);
    if (n === 0 && this.#growFor(1)) n = magazine.refill(method);
    this.#pristine.refilled(magazine.scratch, n); // from here getBlock may hand them out unseen
    this.#engineChanged(n);
    if (n === 0) {
      this.#failures++;
      return undefined;
    }
    return magazine.pop();
  }

  /**
   * getBlockZeroed and leaseZeroed (`method`, for errors): getBlock's steps, then a fill unless
   * the block reads zeros already. Its mark is read before getBlock's step overwrites it.
   */
  #takeZeroed(method: string): T | null {
    const view = this.#stack.pop() ?? this.#refill(method);
    if (view === undefined) return null;
    if (view.length === 0) this.#refuseDetached(view, method);
    // A block returned before is marked Free: one compare sends it to the fill.
    const pristine = view[HOT_MARK] === ViewState.Pristine && this.#pristine.isPristine(view);
    view[HOT_MARK] = this.#heldMark;
    if (++this.#inUse >= this.#slowGetAt) this.#getSlow();
    this.#acquires++;
    if (!pristine) (view as Float64Array).fill(this.#zero as number); // 0n for the BigInt arrays
    return view as T;
  }

  #releaseBlock(block: PoolView): void {
    block[HOT_MARK] = ViewState.Free;
    if (this.#poisonNaN) (block as Float64Array).fill(NaN); // float types only (validated)
    const stack = this.#stack;
    if (stack.length === this.#stackCap) this.#flush(stack.length - (stack.length >>> 1));
    // Address-ordered reuse, so that getBlock keeps taking the lowest free blocks as first fit
    // would, instead of reusing a high block while a lower one waits in the magazine (issue 12).
    // A block above the engine's lowest free block goes to the bottom of the magazine (handed out
    // last, flushed first) when the magazine's top is a low block, one at or below the engine's
    // lowest, which getBlock then hands out first; otherwise on top, as any other (when the top
    // is high too, the bottom would buy nothing, and a pool in that state, such as one grown and
    // emptied, keeps its LIFO hot path). The unshift moves at most 63 views.
    const idx = block[INDEX]!;
    if (idx > this.#lowest && stack.length > 0 && stack[stack.length - 1]![INDEX]! <= this.#lowest) stack.unshift(block);
    else stack.push(block);
    if (--this.#inUse < this.#gateInUse) this.#autoCoalesce();
  }

  /** `name`: the returnBlock parameter as an error names it ('block', or 'index' for a return by index). */
  #releaseRun(start: number, view: PoolView, name = 'block'): void {
    const run = runOf(view)!;
    if (run.pins !== 0) throw pinned(name, `the run at block ${start}`, run.pins);
    const k = run.length;
    run.mark = ViewState.Free;
    if (this.#poisonNaN) (view as Float64Array).fill(NaN); // float types only (validated)
    this.#engine.releaseRun(start, k);
    this.#runBlocks -= k;
    this.#liveRuns--;
    this.#engineChanged(k);
    if ((this.#inUse -= k) < this.#gateInUse) this.#autoCoalesce();
  }

  /** A return left fragmentation possibly above the threshold while armed (auto-coalesce.ts): coalesce, and disarm. */
  #autoCoalesce(): void {
    this.#coalesce();
    this.#armed = false;
    this.#moved = 0;
    this.#gateInUse = -1;
    this.#rearmInUse = this.#gate;
    this.#setSlowGetAt();
  }

  /** Fragmentation by the engine's figures is back within the threshold after a get: arm the rule again. */
  #rearm(): void {
    this.#armed = true;
    this.#gateInUse = Math.max(-1, this.#gate);
    this.#rearmInUse = Infinity;
    this.#setSlowGetAt();
  }

  /** A get reached #slowGetAt: records a new peak, re-arms auto-coalescing if due. */
  #getSlow(): void {
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    if (this.#inUse >= this.#rearmInUse) this.#rearm();
    this.#setSlowGetAt();
  }

  #setSlowGetAt(): void {
    this.#slowGetAt = Math.max(-1, Math.min(this.#peak + 1, this.#rearmInUse));
  }

  /**
   * Called after every change to the engine (the only time its largest free run, and so the
   * gate, can change), with the blocks it took or was given: re-arms auto-coalescing when the
   * engine's figures show fragmentation within the threshold, or once four magazines' worth of
   * blocks have moved since the last automatic coalesce; then sets the gates. O(1). (A get
   * re-arms too when it leaves the figure within the threshold: getBlock and getRun compare.)
   */
  #engineChanged(moved: number): void {
    const lowest = this.#counters[Counter.Lowest]!;
    this.#lowest = lowest === Infinity ? NO_BLOCK : lowest;
    const largest = this.#counters[Counter.Largest]!;
    if (largest !== this.#gateLargest || this.#capacity !== this.#gateCapacity) {
      this.#gate = coalesceGate(this.#threshold, largest, this.#capacity);
      this.#gateLargest = largest;
      this.#gateCapacity = this.#capacity;
    }
    const gate = this.#gate;
    if (!this.#armed) {
      this.#moved += moved;
      if (this.#inUse >= gate || this.#moved >= REARM_MAGAZINES * this.#stackCap) this.#armed = true;
    }
    this.#gateInUse = this.#armed ? Math.max(-1, gate) : -1;
    this.#rearmInUse = this.#armed ? Infinity : gate;
    this.#setSlowGetAt();
  }

  #coalesce(): void {
    this.#flush(this.#magazine.length);
    this.#coalesces++;
  }

  /** Hands the bottom (least recently returned) `count` magazine entries back to the engine. */
  #flush(count: number): void {
    if (count === 0) return;
    this.#magazine.flush(count);
    this.#engineChanged(count);
  }

  #resizeMagazine(): void {
    this.#magazine.resize(this.#capacity);
    this.#stackCap = this.#magazine.capacity;
  }

  #largestFreeRun(): number {
    if (this.#capacity === this.#inUse) return 0;
    const magazine = this.#magazine;
    return this.#engine.largestRunWith(magazine.indices());
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
    const slot = this.#slots.nextFree();
    if (!this.#engine.addSlab(slot, blocks)) {
      throw outOfMemory(`a slab of ${blocks} blocks`, blocks * this.#cfg.stride);
    }
    this.#slots.fill(slot, blocks, this.#engine.slabBuffer(slot), this.#engine.slabBase(slot));
    this.#addresses?.forget(slot);
    this.#pristine.slabAdded(slot);
    this.#capacity += blocks;
    this.#resizeMagazine();
    this.#engineChanged(0);
  }

  #returnSlow(block: unknown): void {
    this.#live('returnBlock');
    if (typeof block === 'number') {
      this.#returnIndex(block);
      return;
    }
    const typeName = this.#typeName;
    if (!isArrayOf(block, typeName)) throw invalidType('block', `${typeName} from getBlock()/getRun() or a block index`, block);
    const view = block as PoolView;
    const why = this.#foreignReason(view);
    if (why !== null) throw foreignBlock('block', block, why);
    const run = runOf(view);
    if (run !== undefined) {
      const start = run.start;
      if (run.mark === this.#runMark && this.#views.runAt(start) === block) return this.#releaseRun(start, view);
      throw doubleReturn('block', start, 'run');
    }
    const index = view[INDEX]!;
    // A view of this pool with an index is the one made for its block.
    if (view[MARK] === this.#leasedMark) return this.#releaseLeased(index, view);
    const pins = this.#pinsOf(view);
    if (pins !== 0) throw pinned('block', `block ${index}`, pins);
    throw doubleReturn('block', index);
  }

  /** Why a typed array of the pool's type is not a view this pool keeps (ERR_SLABPOOL_FOREIGN_BLOCK), or null when it is one. */
  #foreignReason(view: PoolView): string | null {
    const run = runOf(view);
    if (run !== undefined) {
      if (run.pool !== this.#id) return 'it belongs to another pool';
      if (Number.isNaN(run.start)) return 'its memory was released by trim() or destroy()';
      return null;
    }
    const index = view[INDEX];
    if (index === undefined) return this.#slots.holds(view.buffer) ? 'it is a subarray of pool memory; return the block itself' : 'it was not created by this pool';
    if (view[POOL] !== this.#id) return 'it belongs to another pool';
    if (Number.isNaN(index)) return 'its memory was released by trim() or destroy()';
    return null;
  }

  #returnIndex(index: number): void {
    const slabBlocks = this.#cfg.slabBlocks;
    const last = this.#slots.length * slabBlocks - 1;
    if (!Number.isInteger(index) || index < 0 || index > last) {
      throw invalidRange('index', `integer index of a block from 0 to ${last}`, index);
    }
    if (!this.#slots.exists(index)) {
      throw invalidRange('index', 'index of an existing block', index, `block ${index} does not exist: its slab was trimmed or is smaller`);
    }
    const view = this.#views.block(index);
    if (view?.[MARK] === this.#heldMark) return this.#releaseBlock(view);
    if (view?.[MARK] === this.#leasedMark) return this.#releaseLeased(index, view);
    if (view !== undefined && this.#pinsOf(view) !== 0) throw pinned('index', `block ${index}`, this.#pinsOf(view));
    const runView = this.#views.runAt(index);
    if (runView !== undefined && runOf(runView)!.mark === this.#runMark) return this.#releaseRun(index, runView, 'index');
    // The live run holding index, if any, is the nearest live one starting before it in its slab (runs never overlap).
    let start = -1;
    for (let s = index - 1; s >= index - (index % slabBlocks); s--) {
      const run = this.#views.runRecordAt(s);
      if (run?.mark !== this.#runMark) continue;
      if (index < s + run.length) start = s;
      break;
    }
    if (start >= 0) {
      throw invalidRange('index', 'index of a block or of the first block of a run', index, `it is inside the run that starts at ${start}; return the run or index ${start}`);
    }
    throw doubleReturn('index', index);
  }

  /** A Pin's release: the engine's slab pin always (also after destroy()); the view's pin while the pool lives. */
  #unpin(view: PoolView, slot: number): void {
    this.#engine.unpin(slot);
    if (this.#destroyed) return;
    const run = runOf(view);
    if (run !== undefined) this.#pins!.unpinRun(run);
    else this.#pins!.unpinBlock(view, view[MARK] === this.#pinnedLeasedMark ? this.#leasedMark : this.#heldMark);
  }

  /** Live pins on a block view (pin.ts). */
  #pinsOf(view: PoolView): number {
    return this.#pins === undefined ? 0 : this.#pins.pinsOf(view);
  }

  /** The pool's AddressBook, made when an address is first asked for. */
  #addressBook(): AddressBook {
    return (this.#addresses ??= new AddressBook(this.#engine, this.#slots));
  }

  #releaseLeased(idx: number, block: PoolView): void {
    this.#leases!.delete(idx);
    this.#releaseBlock(block);
  }

  #endLease(lease: Lease<T>): void {
    if (this.#destroyed) return;
    const idx = (lease.block as PoolView)[INDEX]!;
    if (this.#leases?.get(idx) !== lease) throw doubleReturn('lease', idx);
    if (this.#pinsOf(lease.block) !== 0) throw pinned('lease', `block ${idx}`, this.#pinsOf(lease.block));
    this.#releaseLeased(idx, lease.block);
  }
}

