import { invalidRange, nativeUnavailable, outOfMemory, sharedMemoryFreed } from './errors.js';
import { loadedAddon } from './loader.js';
import type { NativeAddon } from './native.js';

/*
 * A shared pool's blocks, as one thread sees them: capacity * stride bytes, block i at byte
 * i * stride, the same memory in every attached thread.
 *   js      one SharedArrayBuffer, made by the creating thread and cloned (as a reference to the
 *           same memory) into every handle. V8 allocates it: offsets are aligned, addresses not.
 *   native  a shared region of the addon (native/shared_region.h): memory from slabpool's OS
 *           layer, aligned at the pool's alignment as an address (stats().alignmentScope
 *           'address', addressOf() gives it), named in the handle by its token. Each thread
 *           takes a reference of its own and wraps the region in its own external ArrayBuffer
 *           (napi-facts 2), whose finalizer drops the reference; the addon drops a thread's
 *           references when the thread ends. The region is freed with its last reference: its
 *           memory outlives every view of it in every thread, and a handle alone does not keep
 *           it (attach() after every attachment closed and its views were collected is refused).
 * The addon is loaded once per process (its registry is process-wide), so the token means the
 * same region in every worker; a second copy of the addon (another install of slabpool, loaded
 * from another path) has a registry of its own, and does not know the token.
 */

/** This thread's access to the blocks. */
export interface BlockMemory {
  /** This thread's buffer over the blocks: the SharedArrayBuffer itself (js), or an external ArrayBuffer (native). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** The blocks' absolute address (native), null when not known (js). */
  readonly address: bigint | null;
  /** The region's token (native), null for js. */
  readonly token: bigint | null;
}

/** Fresh blocks for a new pool: `bytes` (capacity * stride) at `alignment`, zeroed. Throws ERR_SLABPOOL_OUT_OF_MEMORY. */
export function makeBlocks(addon: NativeAddon | null, bytes: number, alignment: number, what: string): BlockMemory {
  if (addon === null) {
    try {
      return { buffer: new SharedArrayBuffer(bytes), address: null, token: null };
    } catch {
      throw outOfMemory(what, bytes);
    }
  }
  const region = addon.sharedRegionCreate(bytes, alignment);
  if (region === 'no memory') throw outOfMemory(what, bytes);
  if (region === 'no external buffers') throw nativeUnavailable(['this runtime refuses external ArrayBuffers (a V8 sandbox), which every thread of a native SharedPool wraps its blocks in'], "a SharedPool's backend 'native'");
  return { buffer: region.buffer, address: region.address, token: region.token };
}

/**
 * This thread's reference to the region `token` of `bytes` (a native handle's), for attach().
 * Throws ERR_SLABPOOL_DESTROYED when the region was freed (every attachment closed and every view
 * collected), ERR_SLABPOOL_INVALID_ARG naming `handle` when this process's addon does not know the
 * token or its size differs, ERR_SLABPOOL_NATIVE_UNAVAILABLE when no addon loads here.
 */
export function attachBlocks(handle: unknown, token: bigint, bytes: number): BlockMemory {
  const addon = loadedAddon();
  if (addon === undefined) throw nativeUnavailable(['no native addon loaded in this thread, and the handle names native memory'], 'SharedPool.attach() of a native pool');
  const region = addon.sharedRegionAttach(token, bytes);
  if (typeof region === 'object') return { buffer: region.buffer, address: region.address, token };
  const expected = "a native SharedPool's handle";
  switch (region) {
    case 'ended':
      throw sharedMemoryFreed();
    case 'unknown':
      throw invalidRange('handle', expected, handle, "its memory is unknown to this process's addon: the handle comes from another process, or from another copy of slabpool loaded from another path");
    case 'size mismatch':
      throw invalidRange('handle', expected, handle, "its memory is not the size its metadata gives");
    case 'no memory':
      throw outOfMemory("this thread's reference to a shared pool's memory", bytes);
    default:
      throw nativeUnavailable(['this runtime refuses external ArrayBuffers (a V8 sandbox), which every thread of a native SharedPool wraps its blocks in'], 'SharedPool.attach() of a native pool');
  }
}
