import { Buffer } from 'node:buffer';
import type { CompatClassStats } from './compat.js';
import { Stamp } from './compat-stamp.js';
import { checkFailed, type SlabpoolError, slabDetached } from './errors.js';
import type { Backend, PoolArray } from './options.js';
import { SlabIndex } from './compat-slab-index.js';
import {
  OwnBigInt64Array,
  OwnBigUint64Array,
  OwnBuffer,
  OwnDataView,
  OwnFloat32Array,
  OwnFloat64Array,
  OwnInt16Array,
  OwnInt32Array,
  OwnInt8Array,
  OwnUint16Array,
  OwnUint32Array,
  OwnUint8Array,
  OwnUint8ClampedArray,
  plain,
} from './own-map.js';
import { MemoryPool } from './pool.js';

/*
 * compat's power-of-two size classes: one MemoryPool of Uint8Array blocks of 2^k bytes per class,
 * opened at the first malloc of that size, each with its trim policy and one parked block; the
 * record compat keeps of each block; and the views malloc makes over a block, cached on its
 * record. compat.ts's malloc and free update a class's and a record's fields directly (that is
 * the hot path); everything else about them is here.
 *
 * Views: one made for a single malloc is a plain typed array (or Buffer, DataView), unmarked, and
 * free() finds its record through the slab index (compat-slab-index.ts); one made for a size
 * asked twice in a row is cached on the record, and marked (a ViewMark names the record) on a map
 * of its own (own-map.ts): marking a view of a built-in map would slow the user's typed arrays.
 * A strict pool makes a new marked view for every malloc and caches none (freshViewFor).
 *
 * Invariants (check() verifies them, with every class pool's own check()):
 *   a view is live  <=> it is its block's record.live
 *   record.live !== null  => the block is held from its class pool
 *   so freeing a view twice never frees its block again, even after the block went out again
 *   (counted as a double free when the view is marked or its record's lastFreed, else foreign),
 *   unless the block went out again as that same cached view: then it is live again, and the
 *   free is its new holder's. A strict pool caches no view, so that never happens there.
 *   class pool's inUseBlocks = class.live + (class.parked ? 1 : 0)
 *   class.parked.live === null: a parked block is free to compat, held from the pool
 *   class.live <= class.peak, class.live <= class.epochPeak
 */

/** Blocks are at least 8 bytes (the smallest alignment); smaller requests share that class. */
const MIN_CLASS = 3;
/** Slabs of small classes hold about this many bytes; from this size up, one block per slab. */
const SLAB_BYTES = 1 << 16;
/** A class reconsiders its size after this many frees, or its capacity if larger. */
const EPOCH_FREES = 256;

/** Kinds of view: the index of a view's two slots in its block's record. */
export const enum ViewKind {
  Int8 = 0,
  Int16 = 1,
  Int32 = 2,
  Uint8 = 3,
  Uint16 = 4,
  Uint32 = 5,
  Float32 = 6,
  Float64 = 7,
  Uint8Clamped = 8,
  BigInt64 = 9,
  BigUint64 = 10,
  Buffer = 11,
  DataView = 12,
}
const KINDS = ViewKind.DataView + 1;

/** The log2 of the block bytes of the class that serves `bytes` (at most 2^31). */
export function classOf(bytes: number): number {
  return bytes <= 1 << MIN_CLASS ? MIN_CLASS : 32 - Math.clz32(bytes - 1);
}

/** On the views malloc hands out: the record of the block they view. */
class ViewMark extends Stamp {
  readonly #record: BlockRecord;
  constructor(view: object, record: BlockRecord) {
    super(view);
    this.#record = record;
  }
  /** undefined for an object that was never a view of ours */
  static recordOf(view: object): BlockRecord | undefined {
    return #record in view ? (view as ViewMark).#record : undefined;
  }
}

/**
 * The record of the block `view` views, if malloc made it (live or freed since); undefined for
 * anything else. Exported as a function rather than ViewMark itself: in TypeScript's CommonJS
 * output free() pays nothing for an imported function, but reads an imported class from the
 * module object at each call.
 */
export function recordOf(view: object): BlockRecord | undefined {
  return ViewMark.recordOf(view);
}

// On class blocks (which the pool never hands out beyond us): compat's record of the block. Set
// once per block, so defineProperty's cost does not matter here.
const RECORD = Symbol('slabpool.compat.record');

type Block = Uint8Array & { [RECORD]?: BlockRecord };
export type CompatView = PoolArray | DataView;

/**
 * What compat knows of one class block. Its buffer and offset are kept here because V8 reads a
 * typed array's `buffer` and `byteOffset` through calls (~15 ns each on Node 20), which would
 * double the cost of making a view.
 */
export class BlockRecord {
  /** The view handed out for this block now, or null while the block is free. */
  live: CompatView | null = null;
  /** The view freed last: freeing it again is a double free, even when it carries no mark. */
  lastFreed: CompatView | null = null;
  /**
   * Two slots per kind: the cached view, then the size in bytes last asked of that kind. A view
   * is cached only when the same size comes twice in a row, so random sizes make short-lived
   * views that die young in V8's nursery instead of cached ones that survive into the old
   * generation.
   */
  readonly slots: (CompatView | number | undefined)[] = Array.from({ length: 2 * KINDS }, (_, i) => (i & 1 ? -1 : undefined));
  constructor(
    readonly block: Block,
    readonly cls: SizeClass,
    readonly buffer: ArrayBuffer,
    readonly offset: number,
  ) {}
}

/** The record of a block of `cls`'s pool, made and attached to the block on its first time out. */
export function recordOfBlock(block: Block, cls: SizeClass): BlockRecord {
  return block[RECORD] ?? recordBlock(block, cls);
}

function recordBlock(block: Block, cls: SizeClass): BlockRecord {
  const record = new BlockRecord(block, cls, block.buffer as ArrayBuffer, block.byteOffset);
  Object.defineProperty(block, RECORD, { value: record });
  cls.index.add(record, cls.pool.indexOf(block) % cls.slabBlocks);
  return record;
}

/**
 * malloc's refusal of a block whose slab's ArrayBuffer something outside the pool detached (a web
 * stream took it; the block's length is then 0): no view can be made over it, and a cached one
 * would have length 0. The same error, naming the same call, as the class pool's getBlock() gives
 * for a block of such a slab it holds (the slab's number: the class's slabs are all of
 * slabBlocks blocks).
 */
export function detachedRefusal(record: BlockRecord): SlabpoolError {
  const cls = record.cls;
  return slabDetached('getBlock', Math.floor(cls.pool.indexOf(record.block) / cls.slabBlocks));
}

/**
 * A view of `kind` over `bytes` bytes at `offset`, plain, for one malloc. Each constructor is named
 * at its own call site: V8 compiles `new Float64Array(...)` to a fast path, but not a construct
 * through a variable.
 */
function viewOver(buffer: ArrayBuffer, offset: number, kind: ViewKind, bytes: number): CompatView {
  switch (kind) {
    case ViewKind.Int8:
      return new Int8Array(buffer, offset, bytes);
    case ViewKind.Int16:
      return new Int16Array(buffer, offset, bytes >>> 1);
    case ViewKind.Int32:
      return new Int32Array(buffer, offset, bytes >>> 2);
    case ViewKind.Uint8:
      return new Uint8Array(buffer, offset, bytes);
    case ViewKind.Uint16:
      return new Uint16Array(buffer, offset, bytes >>> 1);
    case ViewKind.Uint32:
      return new Uint32Array(buffer, offset, bytes >>> 2);
    case ViewKind.Float32:
      return new Float32Array(buffer, offset, bytes >>> 2);
    case ViewKind.Float64:
      return new Float64Array(buffer, offset, bytes >>> 3);
    case ViewKind.Uint8Clamped:
      return new Uint8ClampedArray(buffer, offset, bytes);
    case ViewKind.BigInt64:
      return new BigInt64Array(buffer, offset, bytes >>> 3);
    case ViewKind.BigUint64:
      return new BigUint64Array(buffer, offset, bytes >>> 3);
    case ViewKind.Buffer:
      return Buffer.from(buffer, offset, bytes);
    default:
      return new DataView(buffer, offset, bytes);
  }
}

/** The same view on a map of its own (own-map.ts), to be marked and cached: it looks as plain. */
function ownViewOver(buffer: ArrayBuffer, offset: number, kind: ViewKind, bytes: number): CompatView {
  switch (kind) {
    case ViewKind.Int8:
      return plain(new OwnInt8Array(buffer, offset, bytes), Int8Array.prototype);
    case ViewKind.Int16:
      return plain(new OwnInt16Array(buffer, offset, bytes >>> 1), Int16Array.prototype);
    case ViewKind.Int32:
      return plain(new OwnInt32Array(buffer, offset, bytes >>> 2), Int32Array.prototype);
    case ViewKind.Uint8:
      return plain(new OwnUint8Array(buffer, offset, bytes), Uint8Array.prototype);
    case ViewKind.Uint16:
      return plain(new OwnUint16Array(buffer, offset, bytes >>> 1), Uint16Array.prototype);
    case ViewKind.Uint32:
      return plain(new OwnUint32Array(buffer, offset, bytes >>> 2), Uint32Array.prototype);
    case ViewKind.Float32:
      return plain(new OwnFloat32Array(buffer, offset, bytes >>> 2), Float32Array.prototype);
    case ViewKind.Float64:
      return plain(new OwnFloat64Array(buffer, offset, bytes >>> 3), Float64Array.prototype);
    case ViewKind.Uint8Clamped:
      return plain(new OwnUint8ClampedArray(buffer, offset, bytes), Uint8ClampedArray.prototype);
    case ViewKind.BigInt64:
      return plain(new OwnBigInt64Array(buffer, offset, bytes >>> 3), BigInt64Array.prototype);
    case ViewKind.BigUint64:
      return plain(new OwnBigUint64Array(buffer, offset, bytes >>> 3), BigUint64Array.prototype);
    case ViewKind.Buffer:
      return plain(new OwnBuffer(buffer, offset, bytes), Buffer.prototype);
    default:
      return plain(new OwnDataView(buffer, offset, bytes), DataView.prototype);
  }
}

/**
 * malloc's miss in the record's view cache: a plain view for this malloc, or, when the same size
 * came last time too, a marked one on a map of its own, cached for the next malloc of that size.
 */
export function viewFor(record: BlockRecord, kind: ViewKind, bytes: number): CompatView {
  const slots = record.slots;
  if (slots[2 * kind + 1] === bytes) {
    const view = ownViewOver(record.buffer, record.offset, kind, bytes);
    new ViewMark(view, record);
    slots[2 * kind] = view;
    return view;
  }
  slots[2 * kind + 1] = bytes;
  slots[2 * kind] = undefined;
  return viewOver(record.buffer, record.offset, kind, bytes);
}

/**
 * A marked view for one malloc of a strict pool, never cached: every malloc hands out a new
 * object, so a view freed once can never be its block's live view again, and freeing it later
 * is always recognised as a double free.
 */
export function freshViewFor(record: BlockRecord, kind: ViewKind, bytes: number): CompatView {
  const view = ownViewOver(record.buffer, record.offset, kind, bytes);
  new ViewMark(view, record);
  return view;
}

/** One size class: a pool of blocks of 2^k bytes, and compat's counts of them. */
export class SizeClass {
  // Declared, not defined: a field defined as undefined first and then set to the pool would lose
  // V8's knowledge of the pool's shape, and malloc and free would pay a check on every call.
  declare readonly pool: MemoryPool<Uint8Array>;
  declare readonly slabBlocks: number;
  declare readonly index: SlabIndex;
  /**
   * The block freed last, kept back from the pool for the next malloc of the class: the
   * malloc-free-malloc of one size (the common loop) then never touches the pool. One block per
   * class; trim and clearCache give it back first.
   */
  parked: BlockRecord | null = null;
  /** Blocks handed out. */
  live = 0;
  /** Highest `live` since the class was opened. */
  peak = 0;
  mallocs = 0;
  /** Highest `live` in this epoch. */
  epochPeak = 0;
  /** Frees left in this epoch. */
  countdown = EPOCH_FREES;

  constructor(k: number, backend: 'auto' | Backend, detach: boolean, index: SlabIndex) {
    const bytes = 2 ** k;
    this.index = index;
    this.slabBlocks = Math.max(1, SLAB_BYTES / bytes);
    this.pool = new MemoryPool({
      type: Uint8Array,
      blockSize: bytes,
      numBlocks: this.slabBlocks,
      alignment: Math.min(64, bytes), // so that the stride is the block: no padding in any class
      grow: true,
      autoCoalesceThreshold: 100, // blocks are never taken as runs: contiguity does not matter
      backend,
      detach,
    });
  }

  /**
   * The trim policy, at the end of each epoch of max(256, capacity) frees: when the class held a
   * whole slab more than its peak demand during the epoch, give its empty slabs back. A loop that
   * reuses the same blocks never trims; memory from a burst goes back within an epoch or two.
   */
  endEpoch(): void {
    const pool = this.pool;
    if (pool.numBlocks - this.epochPeak >= this.slabBlocks && pool.numBlocks > this.slabBlocks) this.trim();
    else this.#newEpoch();
  }

  /** Gives back the class's parked block and its empty slabs (never the first); returns the bytes. */
  trim(): number {
    this.#unpark();
    const released = this.pool.trim();
    if (released > 0) this.index.forget(this, false);
    this.#newEpoch();
    return released;
  }

  #newEpoch(): void {
    this.epochPeak = this.live;
    this.countdown = Math.max(EPOCH_FREES, this.pool.numBlocks);
  }

  #unpark(): void {
    if (this.parked === null) return;
    this.pool.returnBlock(this.parked.block);
    this.parked = null;
  }

  /** Throws ERR_SLABPOOL_CHECK_FAILED at the first broken invariant of the class or its pool. */
  check(): void {
    this.pool.check();
    const inUse = this.pool.stats().inUseBlocks;
    const bytes = this.pool.blockLength;
    if (inUse !== this.live + (this.parked ? 1 : 0)) throw checkFailed(`class ${bytes}: pool has ${inUse} blocks in use, compat counts ${this.live} live and ${this.parked ? 1 : 0} parked`);
    if (this.parked !== null && this.parked.live !== null) throw checkFailed(`class ${bytes}: the parked block has a live view`);
    if (this.peak < this.live || this.epochPeak < this.live) throw checkFailed(`class ${bytes}: peak below live`);
  }

  stats(): CompatClassStats {
    const s = this.pool.stats();
    return {
      bytes: s.blockBytes,
      liveBlocks: this.live,
      peakLiveBlocks: this.peak,
      capacityBlocks: s.capacityBlocks,
      reservedBytes: s.reservedBytes,
      slabs: s.slabs,
      mallocs: this.mallocs,
      frees: this.mallocs - this.live,
      trims: s.trims,
    };
  }
}

/** The size classes of one compat pool, by log2 of their block bytes. */
export class SizeClasses {
  /** The class of 2^k-byte blocks at k: undefined until its first malloc, and after clearCache closed it. */
  readonly byLog2: (SizeClass | undefined)[] = new Array<SizeClass | undefined>(32).fill(undefined);
  /** The mallocs of classes that closeIdleAndTrimOthers() closed (all freed). */
  #closedMallocs = 0;

  /** The way back from an unmarked view to its record, for every class. */
  readonly index = new SlabIndex();

  constructor(
    readonly backend: 'auto' | Backend,
    readonly detach: boolean,
  ) {}

  open(k: number): SizeClass {
    const cls = new SizeClass(k, this.backend, this.detach, this.index);
    this.byLog2[k] = cls;
    return cls;
  }

  /** Trims every class (trim()): returns the bytes released. */
  trimEach(): number {
    let released = 0;
    for (const cls of this.byLog2) if (cls !== undefined) released += cls.trim();
    return released;
  }

  /**
   * Closes every class with no live block, giving back all its slabs, and trims the others
   * (clearCache()): returns the bytes released.
   */
  closeIdleAndTrimOthers(): number {
    let released = 0;
    for (let k = 0; k < this.byLog2.length; k++) {
      const cls = this.byLog2[k];
      if (cls === undefined) continue;
      if (cls.live === 0) {
        released += cls.pool.stats().reservedBytes;
        this.#closedMallocs += cls.mallocs;
        cls.pool.destroy(); // every view of it is free; on native they read zeros from now on
        this.index.forget(cls, true);
        this.byLog2[k] = undefined;
      } else released += cls.trim();
    }
    return released;
  }

  check(): void {
    for (const cls of this.byLog2) cls?.check();
    this.index.check();
  }

  /** Each open class's stats, smallest first, and their totals (mallocs include closed classes'). */
  stats(): { classes: CompatClassStats[]; mallocs: number; live: number; liveBytes: number; reservedBytes: number } {
    const classes: CompatClassStats[] = [];
    let mallocs = this.#closedMallocs;
    let live = 0;
    let liveBytes = 0;
    let reservedBytes = 0;
    for (const cls of this.byLog2) {
      if (cls === undefined) continue;
      const s = cls.stats();
      classes.push(s);
      mallocs += s.mallocs;
      live += s.liveBlocks;
      liveBytes += s.liveBlocks * s.bytes;
      reservedBytes += s.reservedBytes;
    }
    return { classes, mallocs, live, liveBytes, reservedBytes };
  }
}
