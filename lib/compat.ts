import { Buffer } from 'node:buffer';
import { ArrayBufferCache, BufferState, bufferStateOf } from './compat-arraybuffer-cache.js';
import { type BlockRecord, type CompatView, SizeClasses, ViewKind, classOf, detachedRefusal, freshViewFor, recordOf, recordOfBlock, viewFor } from './compat-size-classes.js';
import { alreadyFreed, foreignBlock, invalidRange, invalidType, outOfMemory } from './errors.js';
import { envFlag, envNativeMemoryV8 } from './env.js';
import { resolveBackend } from './loader.js';
import type { Backend, PoolArray } from './options.js';
import { validateCompatOptions } from './validate.js';

/*
 * typedarray-pool 1.2's API over slabpool pools, one pool of Uint8Array blocks per power-of-two
 * byte size class. A typed array, Buffer or DataView that malloc hands out is a view of exactly
 * the requested length over one block; a view whose size comes twice in a row is cached on its
 * block's record (one per kind), so a loop that mallocs and frees the same size allocates
 * nothing. An ArrayBuffer cannot be a window into a slab, so mallocArrayBuffer keeps a separate,
 * bounded cache of ArrayBuffers of their own. A cached view (or buffer) handed out again makes a
 * stale free of it look like its new holder's free, so a strict pool, the mode for finding double
 * frees, caches neither and makes a new one for every malloc.
 *
 * This file holds the API, the validation of sizes and the hot path (malloc's take() and free);
 * compat-size-classes.ts holds the size classes, the block records and the views over them, with
 * their invariants; compat-arraybuffer-cache.ts holds mallocArrayBuffer's cache. check() verifies
 * the invariants of both (the tests also check them through stats() and the overlap property).
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
   * For finding double frees. Strict, every malloc hands out a new array object (and
   * mallocArrayBuffer a new buffer) instead of one cached for a repeated size, so that every
   * stale free is recognised; it costs a view (or buffer) made per malloc. And a double free or
   * a foreign array given to `free` throws (ERR_SLABPOOL_DOUBLE_RETURN,
   * ERR_SLABPOOL_FOREIGN_BLOCK) instead of being ignored; either way it is counted. Unset, it
   * follows the `SLABPOOL_COMPAT_STRICT` environment variable (`1` is strict): read when the
   * pool is made for the new arrays (for the process's shared pool, when `slabpool/compat`
   * loads), and at each such free for the throwing.
   * @default envFlag('SLABPOOL_COMPAT_STRICT')
   */
  readonly strict?: boolean;
  /**
   * For debugging only, as MemoryPool's `detach` option: trim(), clearCache() and the trim policy
   * detach the slabs they give back, so stale views have length 0, at the cost of a V8 fast path
   * for every typed array in the process from then on. Off, nothing is ever detached. As there,
   * on the js backend slabs are then not marked untransferable: `postMessage(x, [x.buffer])`
   * detaches the slab under x, and every array of x's size class on it.
   * @default true when the SLABPOOL_DETACH environment variable is '1' or 'true'
   */
  readonly detach?: boolean;
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
  /** free() of an array already freed, recognised as such: ignored (thrown in strict mode, and counted). */
  readonly doubleFrees: number;
  /** free() of anything malloc did not return: ignored (thrown in strict mode, and counted). */
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
   * fallback, which cannot know it. Throws a TypeError: ERR_SLABPOOL_INVALID_ARG for a value that
   * is not a typed array, Buffer or DataView; ERR_SLABPOOL_FOREIGN_BLOCK for one malloc did not
   * return (or a subarray of one) or that was freed.
   */
  addressOf(array: unknown): bigint | null;
}

/** Counts below this take the int32 fast path (n << 3 stays below 2^31). */
const SMALL_COUNT = 2 ** 27;

/** typedarray-pool sizes everything with 32-bit arithmetic: 2^31 bytes is its largest buffer. */
const MAX_BYTES = 2 ** 31;

/** The smallest power of two >= n (1 for 0), as typedarray-pool rounds. n <= 2^31. */
function nextPow2(n: number): number {
  return n <= 1 ? 1 : 2 ** (32 - Math.clz32(n - 1));
}

/**
 * A pool with typedarray-pool 1.2's API. `slabpool/compat` exports one, shared by the process;
 * this makes independent ones (each with its own classes and counters).
 */
export function createTypedArrayPool(options?: CompatOptions): TypedArrayPool {
  const { backend, strict, detach } = validateCompatOptions(options);
  // Decided once: reading the environment at each malloc would slow every pool's hot path.
  const fresh = strict ?? envFlag('SLABPOOL_COMPAT_STRICT');
  // The variables the size classes' pools read as they are made, checked now: a bad value fails
  // here (for the shared pool: when slabpool/compat is loaded), never inside a later malloc.
  envFlag('SLABPOOL_HUGE_PAGES');
  envFlag('SLABPOOL_PREFAULT');
  envFlag('SLABPOOL_DETACH');
  envNativeMemoryV8();
  const sizeClasses = new SizeClasses(backend, detach);
  // The hot path indexes the table directly; SizeClasses only ever sets its entries.
  const classes = sizeClasses.byLog2;
  const arrayBuffers = new ArrayBufferCache(!fresh);
  let doubleFrees = 0;
  // The view malloc made last, and its record: most code frees what it took last (a temporary in
  // a loop), and this spares an unmarked view the slab index's lookup (two getter calls, ~30 ns).
  let recentView: CompatView | null = null;
  let recentRecord: BlockRecord | null = null;
  let foreignFrees = 0;
  // The backend the classes will use, known before any class exists (stats() reports it).
  const resolvedBackend = resolveBackend(backend);

  const isStrict = (): boolean => strict ?? envFlag('SLABPOOL_COMPAT_STRICT');

  /**
   * A view of `kind` over `bytes` bytes of a block of the right class; `bytes` is validated. Kept
   * small, with every cold path in a function of its own, so that V8 inlines it into callers.
   */
  function take(kind: ViewKind, bytes: number): CompatView {
    const cls = classes[classOf(bytes)] ?? sizeClasses.open(classOf(bytes));
    let record = cls.parked;
    if (record !== null) {
      // A parked block's slab may have been detached outside the pool since its free (a web
      // stream took it): its views have length 0 and none can be made. Refuse as getBlock does
      // (the pool's refusal of its own blocks), before anything changes: the block stays parked.
      if (record.block.length === 0) throw detachedRefusal(record);
      cls.parked = null;
    } else record = recordOfBlock(cls.pool.getBlock() ?? exhausted(bytes), cls);
    cls.mallocs++;
    if (++cls.live > cls.epochPeak) {
      cls.epochPeak = cls.live;
      if (cls.live > cls.peak) cls.peak = cls.live;
    }
    // A fresh (strict) pool caches no view, so it never takes this branch.
    const view = record.slots[2 * kind] as CompatView | undefined;
    if (view !== undefined && record.slots[2 * kind + 1] === bytes) return (record.live = view);
    recentRecord = record;
    return (record.live = recentView = fresh ? freshViewFor(record, kind, bytes) : viewFor(record, kind, bytes));
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
    return arrayBuffers.malloc(nextPow2(countOf(n, 1)));
  }

  /** free() of an array already freed: counted, and thrown in strict mode, else ignored. */
  function rejectDoubleFree(array: unknown): void {
    doubleFrees++;
    if (isStrict()) throw alreadyFreed('array', array);
  }

  /** free() of anything malloc did not return: counted, and thrown in strict mode, else ignored. */
  function rejectForeignFree(array: unknown): void {
    foreignFrees++;
    if (isStrict()) throw foreignBlock('array', array, 'it was not returned by malloc, or is a subarray of an array that was');
  }

  function free(array: unknown): void {
    if (typeof array === 'object' && array !== null) {
      // A cached view carries its record; a view made for one malloc is found by where it starts.
      let record = array === recentView ? recentRecord! : ownRecordOf(array);
      if (record === undefined && ArrayBuffer.isView(array)) record = sizeClasses.index.recordAt(array as CompatView);
      if (record !== undefined && record.live === array) {
        record.live = null;
        record.lastFreed = array as CompatView;
        const cls = record.cls;
        if (cls.parked === null) cls.parked = record;
        else cls.pool.returnBlock(record.block);
        cls.live--;
        if (--cls.countdown === 0) cls.endEpoch();
        return;
      }
      // A view of ours that is not its block's live one was freed already (its block may have
      // been handed out again since, as another view): a marked view, or the one freed last.
      if (record !== undefined && (record.lastFreed === array || ownRecordOf(array) === record)) return rejectDoubleFree(array);
      if (record !== undefined) return rejectForeignFree(array);
      // An ArrayBuffer from mallocArrayBuffer, or (as typedarray-pool allowed) a view over one.
      const ab = ArrayBuffer.isView(array) ? array.buffer : array;
      const state = bufferStateOf(ab);
      if (state === BufferState.Live) return arrayBuffers.free(ab as ArrayBuffer);
      if (state === BufferState.Free) return rejectDoubleFree(array);
    }
    rejectForeignFree(array);
  }

  /**
   * The record a marked view names, if this pool made it: views are marked process-wide, and one
   * from another compat pool (or the shared one) is foreign here, never freed into its owner.
   */
  function ownRecordOf(array: object): BlockRecord | undefined {
    const record = recordOf(array);
    return record !== undefined && record.cls.index === sizeClasses.index ? record : undefined;
  }

  function clearCache(): number {
    recentView = recentRecord = null; // it may name a class about to close: let it go
    return sizeClasses.closeIdleAndTrimOthers() + arrayBuffers.clear();
  }

  function trim(): number {
    recentView = recentRecord = null;
    return sizeClasses.trimEach() + arrayBuffers.clear();
  }

  function check(): void {
    sizeClasses.check();
    arrayBuffers.check();
  }

  function addressOf(array: unknown): bigint | null {
    // As MemoryPool.addressOf: a value of the wrong kind is an invalid argument, not a foreign block.
    if (!ArrayBuffer.isView(array)) throw invalidType('array', 'a typed array, Buffer or DataView from malloc', array);
    let record = ownRecordOf(array);
    if (record === undefined) record = sizeClasses.index.recordAt(array as CompatView);
    if (record === undefined || record.live !== array) {
      const freed = record !== undefined && (record.lastFreed === array || ownRecordOf(array as object) === record);
      throw foreignBlock('array', array, freed ? 'it was freed' : 'it was not returned by malloc, or is a subarray of an array that was');
    }
    return record.cls.pool.addressOf(record.block);
  }

  function stats(): CompatStats {
    const classStats = sizeClasses.stats();
    const ab = arrayBuffers.stats();
    const mallocs = classStats.mallocs + ab.mallocs;
    return {
      backend: resolvedBackend,
      strict: isStrict(),
      classes: classStats.classes,
      mallocs,
      frees: mallocs - (classStats.live + ab.live),
      liveBytes: classStats.liveBytes,
      reservedBytes: classStats.reservedBytes,
      arrayBuffers: ab,
      doubleFrees,
      foreignFrees,
    };
  }

  const mallocInt8 = (n: number): Int8Array => take(ViewKind.Int8, bytesFor(n, 0)) as Int8Array;
  const mallocInt16 = (n: number): Int16Array => take(ViewKind.Int16, bytesFor(n, 1)) as Int16Array;
  const mallocInt32 = (n: number): Int32Array => take(ViewKind.Int32, bytesFor(n, 2)) as Int32Array;
  const mallocUint8 = (n: number): Uint8Array => take(ViewKind.Uint8, bytesFor(n, 0)) as Uint8Array;
  const mallocUint16 = (n: number): Uint16Array => take(ViewKind.Uint16, bytesFor(n, 1)) as Uint16Array;
  const mallocUint32 = (n: number): Uint32Array => take(ViewKind.Uint32, bytesFor(n, 2)) as Uint32Array;
  const mallocFloat = (n: number): Float32Array => take(ViewKind.Float32, bytesFor(n, 2)) as Float32Array;
  const mallocDouble = (n: number): Float64Array => take(ViewKind.Float64, bytesFor(n, 3)) as Float64Array;
  const mallocUint8Clamped = (n: number): Uint8ClampedArray => take(ViewKind.Uint8Clamped, bytesFor(n, 0)) as Uint8ClampedArray;
  const mallocBigInt64 = (n: number): BigInt64Array => take(ViewKind.BigInt64, bytesFor(n, 3)) as BigInt64Array;
  const mallocBigUint64 = (n: number): BigUint64Array => take(ViewKind.BigUint64, bytesFor(n, 3)) as BigUint64Array;
  // typedarray-pool's Buffers have the power-of-two length, its DataViews the requested one.
  const mallocBuffer = (n: number): Buffer => take(ViewKind.Buffer, nextPow2(countOf(n, 1))) as unknown as Buffer;
  const mallocDataView = (n: number): DataView => take(ViewKind.DataView, countOf(n, 1)) as DataView;

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
    clearCache,
    trim,
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
