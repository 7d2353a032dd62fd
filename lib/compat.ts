import { Buffer } from 'node:buffer';
import { alreadyFreed, checkFailed, foreignBlock, invalidRange, invalidType, outOfMemory } from './errors.js';
import { resolveBackend } from './loader.js';
import { MemoryPool } from './pool.js';
import type { Backend, PoolArray } from './options.js';
import { validateCompatOptions } from './validate.js';

/*
 * typedarray-pool 1.2's API over slabpool pools, one pool of Uint8Array blocks per power-of-two
 * byte size class. A typed array, Buffer or DataView that malloc hands out is a view of exactly
 * the requested length over one block; a view whose size comes twice in a row is cached on its
 * block's record (one per kind), so a loop that mallocs and frees the same size allocates
 * nothing. An ArrayBuffer cannot be a window into a slab, so mallocArrayBuffer keeps a separate,
 * bounded cache of ArrayBuffers of their own.
 *
 * Invariants (the tests check them through stats() and the overlap property):
 *   a view is live  <=> it is its block's record.live (its ViewMark names the record)
 *   record.live !== null  => the block is held from its class pool
 *   so freeing a view twice is detected even after its block went out again, never aliased
 *   class pool's inUseBlocks = class.live + (class.parked ? 1 : 0)
 *   class.parked.live === null: a parked block is free to compat, held from the pool
 * check() verifies them, with every class pool's own check().
 *   an ArrayBuffer of ours has a BufferMark: LIVE (handed out) or FREE (cached or dropped)
 */

/** Options of `createTypedArrayPool(options)`. Unknown keys are rejected. */
export interface CompatOptions {
  /**
   * Which allocator core backs the size classes, as for `MemoryPool`. `'auto'` uses the native
   * addon when it loads (the `SLABPOOL_BACKEND` environment variable can force one).
   * @default 'auto'
   */
  readonly backend?: 'auto' | Backend;
  /**
   * Throw on a double free or a foreign array given to `free` (ERR_SLABPOOL_DOUBLE_RETURN,
   * ERR_SLABPOOL_FOREIGN_BLOCK) instead of ignoring and counting it. Unset, it follows the
   * `SLABPOOL_COMPAT_STRICT` environment variable (`1` is strict), read at each such free.
   * @default process.env.SLABPOOL_COMPAT_STRICT === '1'
   */
  readonly strict?: boolean;
}

/** One size class in `stats().classes`. */
export interface CompatClassStats {
  /** Bytes of each block: a power of two. */
  readonly bytes: number;
  /** Blocks handed out now. */
  readonly liveBlocks: number;
  /** Highest liveBlocks since the class was opened. */
  readonly peakLiveBlocks: number;
  readonly capacityBlocks: number;
  /** Bytes of the class's slabs. */
  readonly reservedBytes: number;
  readonly slabs: number;
  readonly mallocs: number;
  readonly frees: number;
  /** Slabs given back by the trim policy, trim() and clearCache(). */
  readonly trims: number;
}

/** What `stats()` returns: plain numbers, JSON-able. */
export interface CompatStats {
  readonly backend: Backend;
  readonly strict: boolean;
  /** The size classes opened so far, smallest first. */
  readonly classes: readonly CompatClassStats[];
  /** Every successful malloc and free since the pool was made, of every kind, closed classes included. */
  readonly mallocs: number;
  readonly frees: number;
  /** Bytes handed out now from the classes (block bytes, not requested bytes). */
  readonly liveBytes: number;
  /** Bytes the classes hold from the system. */
  readonly reservedBytes: number;
  /** mallocArrayBuffer's dedicated buffers. */
  readonly arrayBuffers: {
    readonly live: number;
    readonly cached: number;
    readonly cachedBytes: number;
    readonly mallocs: number;
    readonly frees: number;
  };
  /** free() of an array already freed: ignored (thrown in strict mode). */
  readonly doubleFrees: number;
  /** free() of anything malloc did not return: ignored (thrown in strict mode). */
  readonly foreignFrees: number;
}

/** Anything malloc returns. */
export type Pooled = PoolArray | Buffer | DataView | ArrayBuffer;

/** typedarray-pool's dtype strings and what malloc returns for each. */
export interface DtypeMap {
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  float: Float32Array;
  float32: Float32Array;
  double: Float64Array;
  float64: Float64Array;
  uint8_clamped: Uint8ClampedArray;
  bigint64: BigInt64Array;
  biguint64: BigUint64Array;
  buffer: Buffer;
  data: DataView;
  dataview: DataView;
  arraybuffer: ArrayBuffer;
}

/** The typedarray-pool 1.2 API, plus stats(), trim(), check() and addressOf(). Every function works unbound. */
export interface TypedArrayPool {
  malloc(n: number): ArrayBuffer;
  malloc<D extends keyof DtypeMap>(n: number, dtype: D): DtypeMap[D];
  malloc(n: number, dtype: string): Pooled | null;
  mallocArrayBuffer(n: number): ArrayBuffer;
  mallocInt8(n: number): Int8Array;
  mallocInt16(n: number): Int16Array;
  mallocInt32(n: number): Int32Array;
  mallocUint8(n: number): Uint8Array;
  mallocUint16(n: number): Uint16Array;
  mallocUint32(n: number): Uint32Array;
  mallocFloat(n: number): Float32Array;
  mallocFloat32(n: number): Float32Array;
  mallocDouble(n: number): Float64Array;
  mallocFloat64(n: number): Float64Array;
  mallocUint8Clamped(n: number): Uint8ClampedArray;
  mallocBigInt64(n: number): BigInt64Array;
  mallocBigUint64(n: number): BigUint64Array;
  mallocBuffer(n: number): Buffer;
  mallocDataView(n: number): DataView;
  /** Gives back anything malloc returned (or a view over a buffer from mallocArrayBuffer). Never throws unless strict. */
  free(array: unknown): void;
  freeArrayBuffer(buffer: unknown): void;
  freeInt8(array: unknown): void;
  freeInt16(array: unknown): void;
  freeInt32(array: unknown): void;
  freeUint8(array: unknown): void;
  freeUint16(array: unknown): void;
  freeUint32(array: unknown): void;
  freeFloat(array: unknown): void;
  freeFloat32(array: unknown): void;
  freeDouble(array: unknown): void;
  freeFloat64(array: unknown): void;
  freeUint8Clamped(array: unknown): void;
  freeBigInt64(array: unknown): void;
  freeBigUint64(array: unknown): void;
  freeBuffer(array: unknown): void;
  freeDataView(array: unknown): void;
  /** Gives back every slab no live array uses, and every cached ArrayBuffer; returns the bytes released. */
  clearCache(): number;
  /** Gives back the empty slabs of each class beyond its first, and the cached ArrayBuffers; returns the bytes released. */
  trim(): number;
  stats(): CompatStats;
  /** Verifies compat's invariants and every class pool's; throws ERR_SLABPOOL_CHECK_FAILED at the first broken one. */
  check(): void;
  /**
   * The absolute address of a live typed array, Buffer or DataView from malloc, for handing to
   * native code (blocks of 64 bytes and more are 64-byte aligned); null on the JavaScript
   * fallback, which cannot know it. Throws ERR_SLABPOOL_FOREIGN_BLOCK for anything else.
   */
  addressOf(array: unknown): bigint | null;
}

// Kinds of view: the index of a view's two slots in its block's record.
const INT8 = 0;
const INT16 = 1;
const INT32 = 2;
const UINT8 = 3;
const UINT16 = 4;
const UINT32 = 5;
const FLOAT32 = 6;
const FLOAT64 = 7;
const UINT8C = 8;
const BIGINT64 = 9;
const BIGUINT64 = 10;
const BUFFER = 11;
const DATAVIEW = 12;
const KINDS = 13;

/** Counts below this take the int32 fast path (n << 3 stays below 2^31). */
const SMALL_COUNT = 2 ** 27;

/** typedarray-pool sizes everything with 32-bit arithmetic: 2^31 bytes is its largest buffer. */
const MAX_BYTES = 2 ** 31;
/** Blocks are at least 8 bytes (the smallest alignment); smaller requests share that class. */
const MIN_CLASS = 3;
/** Slabs of small classes hold about this many bytes; from this size up, one block per slab. */
const SLAB_BYTES = 1 << 16;
/** A class reconsiders its size after this many frees, or its capacity if larger. */
const EPOCH_FREES = 256;
/** mallocArrayBuffer's cache keeps at most this many bytes (or one buffer, if larger). */
const ARRAYBUFFER_CACHE_BYTES = 64 * 2 ** 20;

/*
 * Marks are private fields stamped onto objects the pool hands out (a base constructor that
 * returns its argument lets a subclass add its private field to any object). Unlike a property,
 * a private field is invisible to reflection, util.inspect and deepStrictEqual, so a pooled array
 * compares equal to a plain one; and stamping one costs a few ns, where defineProperty costs ~150.
 */
class Stamp {
  constructor(target: object) {
    return target as Stamp;
  }
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

/** On mallocArrayBuffer's buffers: LIVE while handed out, FREE once freed. */
class BufferMark extends Stamp {
  #state: number;
  constructor(buffer: ArrayBuffer) {
    super(buffer);
    this.#state = LIVE;
  }
  static stateOf(buffer: object): number | undefined {
    return #state in buffer ? (buffer as BufferMark).#state : undefined;
  }
  static setState(buffer: ArrayBuffer, state: number): void {
    (buffer as unknown as BufferMark).#state = state;
  }
}
const LIVE = 1;
const FREE = 0;

// On class blocks (which the pool never hands out beyond us): compat's record of the block. Set
// once per block, so defineProperty's cost does not matter here.
const RECORD = Symbol('slabpool.compat.record');

type Block = Uint8Array & { [RECORD]?: BlockRecord };
type CompatView = PoolArray | DataView;

/**
 * What compat knows of one class block. Its buffer and offset are kept here because V8 reads a
 * typed array's `buffer` and `byteOffset` through calls (~15 ns each on Node 20), which would
 * double the cost of making a view.
 */
class BlockRecord {
  /** The view handed out for this block now, or null while the block is free. */
  live: CompatView | null = null;
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

interface SizeClass {
  readonly pool: MemoryPool<Uint8Array>;
  readonly slabBlocks: number;
  /**
   * The block freed last, kept back from the pool for the next malloc of the class: the
   * malloc-free-malloc of one size (the common loop) then never touches the pool. One block per
   * class; trim and clearCache give it back first.
   */
  parked: BlockRecord | null;
  /** Blocks handed out. */
  live: number;
  /** Highest `live` since the class was opened. */
  peak: number;
  mallocs: number;
  /** Highest `live` in this epoch. */
  epochPeak: number;
  /** Frees left in this epoch. */
  countdown: number;
}

/**
 * A view of `kind` over `bytes` bytes at `offset`. Each constructor is named at its own call site:
 * V8 compiles `new Float64Array(...)` to a fast path, but not a construct through a variable.
 */
function viewOver(buffer: ArrayBuffer, offset: number, kind: number, bytes: number): CompatView {
  switch (kind) {
    case INT8:
      return new Int8Array(buffer, offset, bytes);
    case INT16:
      return new Int16Array(buffer, offset, bytes >>> 1);
    case INT32:
      return new Int32Array(buffer, offset, bytes >>> 2);
    case UINT8:
      return new Uint8Array(buffer, offset, bytes);
    case UINT16:
      return new Uint16Array(buffer, offset, bytes >>> 1);
    case UINT32:
      return new Uint32Array(buffer, offset, bytes >>> 2);
    case FLOAT32:
      return new Float32Array(buffer, offset, bytes >>> 2);
    case FLOAT64:
      return new Float64Array(buffer, offset, bytes >>> 3);
    case UINT8C:
      return new Uint8ClampedArray(buffer, offset, bytes);
    case BIGINT64:
      return new BigInt64Array(buffer, offset, bytes >>> 3);
    case BIGUINT64:
      return new BigUint64Array(buffer, offset, bytes >>> 3);
    case BUFFER:
      return Buffer.from(buffer, offset, bytes);
    default:
      return new DataView(buffer, offset, bytes);
  }
}

/** The smallest power of two >= n (1 for 0), as typedarray-pool rounds. n <= 2^31. */
function nextPow2(n: number): number {
  return n <= 1 ? 1 : 2 ** (32 - Math.clz32(n - 1));
}

function classOf(bytes: number): number {
  return bytes <= 1 << MIN_CLASS ? MIN_CLASS : 32 - Math.clz32(bytes - 1);
}

/**
 * A pool with typedarray-pool 1.2's API. `slabpool/compat` exports one, shared by the process;
 * this makes independent ones (each with its own classes and counters).
 */
export function createTypedArrayPool(options?: CompatOptions): TypedArrayPool {
  const { backend, strict } = validateCompatOptions(options);
  const classes: (SizeClass | undefined)[] = new Array<SizeClass | undefined>(32).fill(undefined);
  const abCache: ArrayBuffer[][] = Array.from({ length: 32 }, () => []);
  let abCachedBytes = 0;
  let abLive = 0;
  let abMallocs = 0;
  let abFrees = 0;
  let doubleFrees = 0;
  let foreignFrees = 0;
  // The mallocs of classes that clearCache() closed (all freed).
  let closedMallocs = 0;
  // The backend the classes will use, known before any class exists (stats() reports it).
  const resolvedBackend = resolveBackend(backend);

  const isStrict = (): boolean => strict ?? process.env.SLABPOOL_COMPAT_STRICT === '1';

  function openClass(k: number): SizeClass {
    const bytes = 2 ** k;
    const slabBlocks = Math.max(1, SLAB_BYTES / bytes);
    const pool = new MemoryPool({
      type: Uint8Array,
      blockSize: bytes,
      numBlocks: slabBlocks,
      alignment: Math.min(64, bytes), // so that the stride is the block: no padding in any class
      grow: true,
      autoCoalesceThreshold: 100, // blocks are never taken as runs: contiguity does not matter
      backend,
    });
    const cls: SizeClass = { pool, slabBlocks, parked: null, live: 0, peak: 0, mallocs: 0, epochPeak: 0, countdown: EPOCH_FREES };
    classes[k] = cls;
    return cls;
  }

  /**
   * The trim policy, at the end of each epoch of max(256, capacity) frees: when the class held a
   * whole slab more than its peak demand during the epoch, give its empty slabs back. A loop that
   * reuses the same blocks never trims; memory from a burst goes back within an epoch or two.
   */
  function endEpoch(cls: SizeClass): void {
    const pool = cls.pool;
    if (pool.numBlocks - cls.epochPeak >= cls.slabBlocks && pool.numBlocks > cls.slabBlocks) trimClass(cls);
    else newEpoch(cls);
  }

  /** Gives back the class's parked block and its empty slabs (never the first); returns the bytes. */
  function trimClass(cls: SizeClass): number {
    unpark(cls);
    const released = cls.pool.trim();
    newEpoch(cls);
    return released;
  }

  function newEpoch(cls: SizeClass): void {
    cls.epochPeak = cls.live;
    cls.countdown = Math.max(EPOCH_FREES, cls.pool.numBlocks);
  }

  function unpark(cls: SizeClass): void {
    if (cls.parked === null) return;
    cls.pool.returnBlock(cls.parked.block);
    cls.parked = null;
  }

  function makeView(record: BlockRecord, kind: number, bytes: number): CompatView {
    const view = viewOver(record.buffer, record.offset, kind, bytes);
    new ViewMark(view, record);
    return view;
  }

  /**
   * A view of `kind` over `bytes` bytes of a block of the right class; `bytes` is validated. Kept
   * small, with every cold path in a function of its own, so that V8 inlines it into callers.
   */
  function take(kind: number, bytes: number): CompatView {
    const cls = classes[classOf(bytes)] ?? openClass(classOf(bytes));
    let record = cls.parked;
    if (record !== null) cls.parked = null;
    else {
      const block: Block = cls.pool.getBlock() ?? exhausted(bytes);
      record = block[RECORD] ?? recordBlock(block, cls);
    }
    cls.mallocs++;
    if (++cls.live > cls.epochPeak) {
      cls.epochPeak = cls.live;
      if (cls.live > cls.peak) cls.peak = cls.live;
    }
    const view = record.slots[2 * kind] as CompatView | undefined;
    return (record.live = view !== undefined && record.slots[2 * kind + 1] === bytes ? view : viewFor(record, kind, bytes));
  }

  /** take's miss: a new view, cached when the same size came last time too. */
  function viewFor(record: BlockRecord, kind: number, bytes: number): CompatView {
    const slots = record.slots;
    const view = makeView(record, kind, bytes);
    if (slots[2 * kind + 1] === bytes) slots[2 * kind] = view;
    else {
      slots[2 * kind + 1] = bytes;
      slots[2 * kind] = undefined;
    }
    return view;
  }

  function recordBlock(block: Block, cls: SizeClass): BlockRecord {
    const record = new BlockRecord(block, cls, block.buffer as ArrayBuffer, block.byteOffset);
    Object.defineProperty(block, RECORD, { value: record });
    return record;
  }

  function exhausted(bytes: number): never {
    const size = 2 ** classOf(bytes);
    throw outOfMemory(`a block of ${size} bytes`, size);
  }

  /**
   * n as a count: typedarray-pool accepted any number its typed-array constructors accepted, so a
   * finite non-integer is truncated as they truncate it; anything else is an error, not a buffer
   * of some other size.
   */
  function countOf(n: unknown, bytesPerElement: number): number {
    if (typeof n !== 'number') throw invalidType('n', 'non-negative integer', n);
    const max = MAX_BYTES / bytesPerElement;
    if (!(n >= 0 && n <= max)) {
      throw invalidRange('n', `integer from 0 to ${max}`, n, n > max ? `at most ${MAX_BYTES} bytes` : undefined);
    }
    return Math.floor(n);
  }

  /** n elements of 2^shift bytes in bytes. The common call, a small integer, stays in int32 arithmetic. */
  function bytesFor(n: number, shift: number): number {
    // typeof first: `n | 0` throws an uncoded TypeError for a bigint or a Symbol.
    return typeof n === 'number' && (n | 0) === n && n >= 0 && n < SMALL_COUNT ? n << shift : countOf(n, 2 ** shift) * 2 ** shift;
  }

  function mallocArrayBuffer(n: number): ArrayBuffer {
    const size = nextPow2(countOf(n, 1));
    const k = 31 - Math.clz32(size);
    let ab = abCache[k]!.pop();
    if (ab === undefined) {
      ab = new ArrayBuffer(size);
      new BufferMark(ab);
    } else {
      abCachedBytes -= size;
      BufferMark.setState(ab, LIVE);
    }
    abLive++;
    abMallocs++;
    return ab;
  }

  function freeArrayBuffer(ab: ArrayBuffer): void {
    BufferMark.setState(ab, FREE);
    abLive--;
    abFrees++;
    const size = ab.byteLength;
    if (abCachedBytes === 0 || abCachedBytes + size <= ARRAYBUFFER_CACHE_BYTES) {
      abCache[31 - Math.clz32(size)]!.push(ab);
      abCachedBytes += size;
    }
  }

  function rejectFree(array: unknown, twice: boolean): void {
    if (isStrict()) {
      throw twice ? alreadyFreed('array', array) : foreignBlock('array', array, 'it was not returned by malloc, or is a subarray of an array that was');
    }
    if (twice) doubleFrees++;
    else foreignFrees++;
  }

  function free(array: unknown): void {
    if (typeof array === 'object' && array !== null) {
      const record = ViewMark.recordOf(array);
      if (record !== undefined && record.live === array) {
        record.live = null;
        const cls = record.cls;
        if (cls.parked === null) cls.parked = record;
        else cls.pool.returnBlock(record.block);
        cls.live--;
        if (--cls.countdown === 0) endEpoch(cls);
        return;
      }
      // A view of ours that is not its block's live one was freed already (its block may have
      // been handed out again since, as another view).
      if (record !== undefined) return rejectFree(array, true);
      // An ArrayBuffer from mallocArrayBuffer, or (as typedarray-pool allowed) a view over one.
      const ab = ArrayBuffer.isView(array) ? array.buffer : array;
      const state = BufferMark.stateOf(ab);
      if (state === LIVE) return freeArrayBuffer(ab as ArrayBuffer);
      if (state === FREE) return rejectFree(array, true);
    }
    rejectFree(array, false);
  }

  function release(destroyIdle: boolean): number {
    let released = 0;
    for (let k = 0; k < classes.length; k++) {
      const cls = classes[k];
      if (cls === undefined) continue;
      if (destroyIdle && cls.live === 0) {
        released += cls.pool.stats().reservedBytes;
        closedMallocs += cls.mallocs;
        cls.pool.destroy(); // every view of it is free: detaching them exposes nothing
        classes[k] = undefined;
        continue;
      }
      released += trimClass(cls);
    }
    for (const list of abCache) list.length = 0;
    released += abCachedBytes;
    abCachedBytes = 0;
    return released;
  }

  function check(): void {
    for (const cls of classes) {
      if (cls === undefined) continue;
      cls.pool.check();
      const inUse = cls.pool.stats().inUseBlocks;
      const bytes = cls.pool.blockLength;
      if (inUse !== cls.live + (cls.parked ? 1 : 0)) throw checkFailed(`class ${bytes}: pool has ${inUse} blocks in use, compat counts ${cls.live} live and ${cls.parked ? 1 : 0} parked`);
      if (cls.parked !== null && cls.parked.live !== null) throw checkFailed(`class ${bytes}: the parked block has a live view`);
      if (cls.peak < cls.live || cls.epochPeak < cls.live) throw checkFailed(`class ${bytes}: peak below live`);
    }
    let cached = 0;
    for (const list of abCache) {
      for (const ab of list) if (BufferMark.stateOf(ab) !== FREE) throw checkFailed('a cached ArrayBuffer is not free');
      cached += list.reduce((sum, ab) => sum + ab.byteLength, 0);
    }
    if (cached !== abCachedBytes) throw checkFailed(`cached ArrayBuffers hold ${cached} bytes, counted ${abCachedBytes}`);
    if (abLive < 0) throw checkFailed(`${abLive} live ArrayBuffers`);
  }

  function addressOf(array: unknown): bigint | null {
    const record = typeof array === 'object' && array !== null ? ViewMark.recordOf(array) : undefined;
    if (record === undefined || record.live !== array) {
      throw foreignBlock('array', array, record ? 'it was freed' : 'it is not a typed array, Buffer or DataView from malloc');
    }
    return record.cls.pool.addressOf(record.block);
  }

  function stats(): CompatStats {
    const list: CompatClassStats[] = [];
    let liveBytes = 0;
    let reservedBytes = 0;
    let mallocs = closedMallocs + abMallocs;
    let live = abLive;
    for (const cls of classes) {
      if (cls === undefined) continue;
      const s = cls.pool.stats();
      list.push({
        bytes: s.blockBytes,
        liveBlocks: cls.live,
        peakLiveBlocks: cls.peak,
        capacityBlocks: s.capacityBlocks,
        reservedBytes: s.reservedBytes,
        slabs: s.slabs,
        mallocs: cls.mallocs,
        frees: cls.mallocs - cls.live,
        trims: s.trims,
      });
      mallocs += cls.mallocs;
      live += cls.live;
      liveBytes += cls.live * s.blockBytes;
      reservedBytes += s.reservedBytes;
    }
    let cached = 0;
    for (const l of abCache) cached += l.length;
    return {
      backend: resolvedBackend,
      strict: isStrict(),
      classes: list,
      mallocs,
      frees: mallocs - live,
      liveBytes,
      reservedBytes,
      arrayBuffers: { live: abLive, cached, cachedBytes: abCachedBytes, mallocs: abMallocs, frees: abFrees },
      doubleFrees,
      foreignFrees,
    };
  }

  const mallocInt8 = (n: number): Int8Array => take(INT8, bytesFor(n, 0)) as Int8Array;
  const mallocInt16 = (n: number): Int16Array => take(INT16, bytesFor(n, 1)) as Int16Array;
  const mallocInt32 = (n: number): Int32Array => take(INT32, bytesFor(n, 2)) as Int32Array;
  const mallocUint8 = (n: number): Uint8Array => take(UINT8, bytesFor(n, 0)) as Uint8Array;
  const mallocUint16 = (n: number): Uint16Array => take(UINT16, bytesFor(n, 1)) as Uint16Array;
  const mallocUint32 = (n: number): Uint32Array => take(UINT32, bytesFor(n, 2)) as Uint32Array;
  const mallocFloat = (n: number): Float32Array => take(FLOAT32, bytesFor(n, 2)) as Float32Array;
  const mallocDouble = (n: number): Float64Array => take(FLOAT64, bytesFor(n, 3)) as Float64Array;
  const mallocUint8Clamped = (n: number): Uint8ClampedArray => take(UINT8C, bytesFor(n, 0)) as Uint8ClampedArray;
  const mallocBigInt64 = (n: number): BigInt64Array => take(BIGINT64, bytesFor(n, 3)) as BigInt64Array;
  const mallocBigUint64 = (n: number): BigUint64Array => take(BIGUINT64, bytesFor(n, 3)) as BigUint64Array;
  // typedarray-pool's Buffers have the power-of-two length, its DataViews the requested one.
  const mallocBuffer = (n: number): Buffer => take(BUFFER, nextPow2(countOf(n, 1))) as unknown as Buffer;
  const mallocDataView = (n: number): DataView => take(DATAVIEW, countOf(n, 1)) as DataView;

  function malloc(n: number, dtype?: string): Pooled | null {
    switch (dtype) {
      case undefined:
      case 'arraybuffer':
        return mallocArrayBuffer(n);
      case 'uint8':
        return mallocUint8(n);
      case 'uint16':
        return mallocUint16(n);
      case 'uint32':
        return mallocUint32(n);
      case 'int8':
        return mallocInt8(n);
      case 'int16':
        return mallocInt16(n);
      case 'int32':
        return mallocInt32(n);
      case 'float':
      case 'float32':
        return mallocFloat(n);
      case 'double':
      case 'float64':
        return mallocDouble(n);
      case 'uint8_clamped':
        return mallocUint8Clamped(n);
      case 'bigint64':
        return mallocBigInt64(n);
      case 'biguint64':
        return mallocBigUint64(n);
      case 'buffer':
        return mallocBuffer(n);
      case 'data':
      case 'dataview':
        return mallocDataView(n);
      default:
        return null;
    }
  }

  return {
    malloc: malloc as TypedArrayPool['malloc'],
    mallocArrayBuffer,
    mallocInt8,
    mallocInt16,
    mallocInt32,
    mallocUint8,
    mallocUint16,
    mallocUint32,
    mallocFloat,
    mallocFloat32: mallocFloat,
    mallocDouble,
    mallocFloat64: mallocDouble,
    mallocUint8Clamped,
    mallocBigInt64,
    mallocBigUint64,
    mallocBuffer,
    mallocDataView,
    free,
    // typedarray-pool's free functions differ only in what they assume they are given; one free
    // that looks at what it is given serves them all, and never files memory under a wrong size.
    freeArrayBuffer: free,
    freeInt8: free,
    freeInt16: free,
    freeInt32: free,
    freeUint8: free,
    freeUint16: free,
    freeUint32: free,
    freeFloat: free,
    freeFloat32: free,
    freeDouble: free,
    freeFloat64: free,
    freeUint8Clamped: free,
    freeBigInt64: free,
    freeBigUint64: free,
    freeBuffer: free,
    freeDataView: free,
    clearCache: () => release(true),
    trim: () => release(false),
    stats,
    check,
    addressOf,
  };
}

/** The process's pool, as typedarray-pool's module state was (`slabpool/compat`). */
const shared = createTypedArrayPool();

export const {
  malloc,
  mallocArrayBuffer,
  mallocInt8,
  mallocInt16,
  mallocInt32,
  mallocUint8,
  mallocUint16,
  mallocUint32,
  mallocFloat,
  mallocFloat32,
  mallocDouble,
  mallocFloat64,
  mallocUint8Clamped,
  mallocBigInt64,
  mallocBigUint64,
  mallocBuffer,
  mallocDataView,
  free,
  freeArrayBuffer,
  freeInt8,
  freeInt16,
  freeInt32,
  freeUint8,
  freeUint16,
  freeUint32,
  freeFloat,
  freeFloat32,
  freeDouble,
  freeFloat64,
  freeUint8Clamped,
  freeBigInt64,
  freeBigUint64,
  freeBuffer,
  freeDataView,
  clearCache,
  trim,
  stats,
  check,
  addressOf,
} = shared;
