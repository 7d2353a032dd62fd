import { markAsUntransferable } from 'node:worker_threads';
import type { Engine, EngineConfig, EngineFactory, EnginePages } from './engine.js';
import { envNativeMemoryV8 } from './env.js';
import type { Backend } from './options.js';

/** An engine's opaque handle (an N-API External): what the addon's hot functions take first. */
declare const handleBrand: unique symbol;
type Handle = { readonly [handleBrand]: true };

/** The engine object binding.cc makes: the Engine contract but for the hot methods, which the addon exports. */
type NativeEngineObject = Omit<Engine, 'acquire' | 'release' | 'acquireRun' | 'releaseRun' | 'pages'> & {
  readonly handle: Handle;
  pages(readBack: boolean): Omit<EnginePages, 'pageBytes' | 'mode' | 'whyNot'>;
};

/** native/os.h HugePageSupport: what this system offers for huge pages. */
export interface HugePageSupport {
  readonly pageBytes: number;
  readonly mode: string | null;
  readonly whyNot: string | null;
}

/** What build/Release/slabpool.node (native/binding.cc) exports. */
export interface NativeAddon {
  readonly NativeEngine: new (
    blockBytes: number,
    stride: number,
    alignment: number,
    slabBlocks: number,
    v8Memory: boolean,
    detach: boolean,
    hugePages: boolean,
    prefault: boolean,
    markedDetachable: boolean,
  ) => NativeEngineObject;
  /** Engine.acquire, Engine.release, Engine.acquireRun and Engine.releaseRun of the engine whose handle comes first. */
  readonly acquire: (handle: Handle, max: number) => number;
  readonly release: (handle: Handle, count: number) => void;
  readonly acquireRun: (handle: Handle, k: number) => number;
  readonly releaseRun: (handle: Handle, start: number, k: number) => void;
  /** Hash of the native sources the addon was built from (scripts/source-hash.js). */
  readonly sourceHash: string;
  readonly hugePageSupport: () => HugePageSupport;
  /**
   * SharedPool's native memory (native/shared_binding.cc): a new zeroed shared region of `bytes`
   * at `alignment`, or another thread's reference to one by its token, each as an external
   * ArrayBuffer of this thread's holding one reference (dropped by its finalizer, or when the
   * thread ends); a failure as a status string.
   */
  readonly sharedRegionCreate: (bytes: number, alignment: number) => SharedRegion | 'no memory' | 'no external buffers';
  readonly sharedRegionAttach: (token: bigint, bytes: number) => SharedRegion | 'unknown' | 'ended' | 'size mismatch' | 'no memory' | 'no external buffers';
  /** The process's shared regions (native/shared_region.h Totals): for tests and leak checks. */
  readonly sharedRegionTotals: () => { regions: number; bytes: number; references: number; created: number; freed: number };
}

/** A thread's reference to a shared region: its token (for other threads), its address, this thread's buffer over it. */
export interface SharedRegion {
  readonly token: bigint;
  readonly address: bigint;
  readonly buffer: ArrayBuffer;
}

export function isNativeAddon(value: unknown): value is NativeAddon {
  const addon = value as Partial<NativeAddon> | null;
  return (
    typeof addon?.NativeEngine === 'function' &&
    typeof addon.sourceHash === 'string' &&
    [addon.acquire, addon.release, addon.acquireRun, addon.releaseRun, addon.hugePageSupport, addon.sharedRegionCreate, addon.sharedRegionAttach, addon.sharedRegionTotals].every((f) => typeof f === 'function')
  );
}

/**
 * The native engine as an Engine: the binding's object for everything but the hot methods, which
 * go to the addon's functions with the engine's handle. binding.cc explains why: a prototype
 * method finds its C++ object through napi_unwrap, about half of each call's cost; TurboFan
 * inlines these forwarding methods, so a hot call is one crossing and nothing more.
 */
class NativeEngine implements Engine {
  readonly kind: Backend = 'native';
  readonly alignmentScope: 'address' = 'address';
  readonly counters: Float64Array;
  readonly scratch: Int32Array;
  readonly #engine: NativeEngineObject;
  readonly #handle: Handle;
  readonly #acquire: NativeAddon['acquire'];
  readonly #release: NativeAddon['release'];
  readonly #acquireRun: NativeAddon['acquireRun'];
  readonly #releaseRun: NativeAddon['releaseRun'];
  readonly #hugePageSupport: NativeAddon['hugePageSupport'];

  readonly #detach: boolean;

  constructor(addon: NativeAddon, engine: NativeEngineObject, detach: boolean) {
    this.#engine = engine;
    this.#detach = detach;
    this.#handle = engine.handle;
    this.counters = engine.counters;
    this.scratch = engine.scratch;
    this.#acquire = addon.acquire;
    this.#release = addon.release;
    this.#acquireRun = addon.acquireRun;
    this.#releaseRun = addon.releaseRun;
    this.#hugePageSupport = addon.hugePageSupport;
  }

  get memory(): 'external' | 'v8' {
    return this.#engine.memory;
  }

  acquire(max: number): number {
    return this.#acquire(this.#handle, max);
  }
  release(count: number): void {
    this.#release(this.#handle, count);
  }
  acquireRun(k: number): number {
    return this.#acquireRun(this.#handle, k);
  }
  releaseRun(start: number, k: number): void {
    this.#releaseRun(this.#handle, start, k);
  }

  addSlab(slot: number, blocks: number): boolean {
    if (!this.#engine.addSlab(slot, blocks)) return false;
    // A transfer of any block's buffer would take the whole slab from every block on it (and, in
    // V8 memory, the memory from under the allocator and its pins). Marked, a transfer copies
    // (Node 20) or throws DataCloneError (Node >= 21). Node makes external ArrayBuffers
    // untransferable itself (N-API makes them through node::Buffer::New), in a way detaching
    // ignores; only V8-owned slabs are marked here. An external one must not be: Node >= 24
    // keeps the mark as a detach key, and both napi_detach_arraybuffer (the `detach` option) and
    // Node's own detaching of every external buffer when the thread's environment is torn down
    // (at exit) would then abort the process. `memory` is read after addSlab: this slab's.
    if (this.#engine.memory === 'v8') markAsUntransferable(this.#engine.slabBuffer(slot));
    if (this.#detach && this.#engine.memory === 'v8' && !markedBuffersDetachable()) warnV8SlabsStayAttached();
    return true;
  }
  freeSlab(slot: number): number {
    return this.#engine.freeSlab(slot);
  }
  slabFree(slot: number): number {
    return this.#engine.slabFree(slot);
  }
  slabBuffer(slot: number): ArrayBuffer {
    return this.#engine.slabBuffer(slot);
  }
  slabBase(slot: number): number {
    return this.#engine.slabBase(slot);
  }
  slabAddress(slot: number): bigint | null {
    return this.#engine.slabAddress(slot);
  }
  largestRunWith(count: number): number {
    return this.#engine.largestRunWith(count);
  }
  check(blockStates: Uint8Array, count: number): string | null {
    return this.#engine.check(blockStates, count);
  }
  destroy(): void {
    this.#engine.destroy();
  }
  pin(slot: number): void {
    this.#engine.pin(slot);
  }
  unpin(slot: number): void {
    this.#engine.unpin(slot);
  }
  pages(readBack: boolean): EnginePages {
    // What the system offers is read from sysfs: only for a pool that asked for huge pages.
    const system = readBack ? this.#hugePageSupport() : { pageBytes: 0, mode: null, whyNot: null };
    return { ...system, ...this.#engine.pages(readBack) };
  }
}

/**
 * SLABPOOL_NATIVE_MEMORY=v8 makes the native engine put slabs in V8-owned ArrayBuffers, as it
 * does by itself where a runtime refuses external ones (V8 sandbox): for diagnosis and tests.
 */
export function nativeEngineFactory(addon: NativeAddon): EngineFactory {
  return (config: EngineConfig) =>
    new NativeEngine(
      addon,
      new addon.NativeEngine(
        config.blockBytes,
        config.stride,
        config.alignment,
        config.slabBlocks,
        envNativeMemoryV8(),
        config.detach,
        config.hugePages === true,
        config.prefault === true,
        config.detach && markedBuffersDetachable(),
      ),
      config.detach,
    );
}

let markedDetachable: boolean | undefined;
let v8SlabsWarned = false;

/** Once per thread: `detach` cannot detach a V8-owned slab on this runtime (DropBuffer in binding.cc). */
function warnV8SlabsStayAttached(): void {
  if (v8SlabsWarned) return;
  v8SlabsWarned = true;
  process.emitWarning(
    `slabpool: the detach option cannot detach slabs in V8-owned memory on Node ${process.versions.node} (a buffer marked untransferable cannot be detached here): trim() and destroy() leave their views as they would without detach.`,
    { code: 'SLABPOOL_DETACH' },
  );
}

/**
 * Whether this runtime can detach an ArrayBuffer marked untransferable: Node 20 (no
 * ArrayBuffer.prototype.transfer) and 22 can (napi_detach_arraybuffer ignores the mark); Node 24
 * cannot (V8 keeps the mark as a detach key: transfer() throws a TypeError, and
 * napi_detach_arraybuffer aborts the process). Asked once, of a new buffer, by the first pool with
 * `detach`: where the answer is yes that detaches it, which costs what any detach does (the
 * option's documented cost, paid at construction instead of at the first trim() or destroy()).
 */
function markedBuffersDetachable(): boolean {
  if (markedDetachable === undefined) {
    const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer;
    if (typeof transfer !== 'function') markedDetachable = true;
    else {
      const probe = new ArrayBuffer(8);
      markAsUntransferable(probe);
      try {
        transfer.call(probe);
        markedDetachable = true;
      } catch {
        markedDetachable = false;
      }
    }
  }
  return markedDetachable;
}
