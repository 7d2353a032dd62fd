import type { Engine, EngineConfig, EngineFactory } from './engine.js';

/** What build/Release/slabpool.node (native/binding.cc) exports. */
export interface NativeAddon {
  readonly NativeEngine: new (blockBytes: number, stride: number, alignment: number, slabBlocks: number, v8Memory: boolean, detach: boolean) => Engine;
  /** Hash of the native sources the addon was built from (scripts/source-hash.js). */
  readonly sourceHash: string;
}

export function isNativeAddon(value: unknown): value is NativeAddon {
  const addon = value as Partial<NativeAddon> | null;
  return typeof addon?.NativeEngine === 'function' && typeof addon.sourceHash === 'string';
}

/**
 * SLABPOOL_NATIVE_MEMORY=v8 makes the native engine put slabs in V8-owned ArrayBuffers, as it
 * does by itself where a runtime refuses external ones (V8 sandbox): for diagnosis and tests.
 */
export function nativeEngineFactory(addon: NativeAddon): EngineFactory {
  return (config: EngineConfig) =>
    new addon.NativeEngine(config.blockBytes, config.stride, config.alignment, config.slabBlocks, process.env.SLABPOOL_NATIVE_MEMORY === 'v8', config.detach);
}
