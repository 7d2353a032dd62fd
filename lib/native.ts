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
  ) => NativeEngineObject;
  /** Engine.acquire, Engine.release, Engine.acquireRun and Engine.releaseRun of the engine whose handle comes first. */
  readonly acquire: (handle: Handle, max: number) => number;
  readonly release: (handle: Handle, count: number) => void;
  readonly acquireRun: (handle: Handle, k: number) => number;
  readonly releaseRun: (handle: Handle, start: number, k: number) => void;
  /** Hash of the native sources the addon was built from (scripts/source-hash.js). */
  readonly sourceHash: string;
  readonly hugePageSupport: () => HugePageSupport;
}

export function isNativeAddon(value: unknown): value is NativeAddon {
  const addon = value as Partial<NativeAddon> | null;
  return (
    typeof addon?.NativeEngine === 'function' &&
    typeof addon.sourceHash === 'string' &&
    [addon.acquire, addon.release, addon.acquireRun, addon.releaseRun, addon.hugePageSupport].every((f) => typeof f === 'function')
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

  constructor(addon: NativeAddon, engine: NativeEngineObject) {
    this.#engine = engine;
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
    // V8 memory, the memory from under the allocator). Marked, a transfer copies (Node 20) or
    // throws DataCloneError (Node >= 21). Node marks external ArrayBuffers itself (N-API makes
    // them through node::Buffer::New; verified on Node 20 with %DebugPrint: the private symbol
    // node:untransferableObject is there), so only V8-owned slabs need it here: ~4 us of a cold
    // construction saved for the external ones. napi_detach_arraybuffer (the `detach` option)
    // ignores the mark, so it is set with `detach` too.
    if (this.#engine.memory === 'v8') markAsUntransferable(this.#engine.slabBuffer(slot));
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
      ),
    );
}
