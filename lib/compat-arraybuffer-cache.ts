import type { CompatStats } from './compat.js';
import { Stamp } from './compat-stamp.js';
import { checkFailed } from './errors.js';

/** The cache keeps at most this many bytes of freed buffers (or one buffer, if larger). */
const ARRAYBUFFER_CACHE_BYTES = 64 * 2 ** 20;

/** What a BufferMark says of a buffer. */
export const enum BufferState {
  /** Cached or dropped: freeing it again is a double free. */
  Free = 0,
  /** Handed out. */
  Live = 1,
}

/** On the cache's buffers: Live while handed out, Free once freed. */
class BufferMark extends Stamp {
  #state: BufferState;
  constructor(buffer: ArrayBuffer) {
    super(buffer);
    this.#state = BufferState.Live;
  }
  static stateOf(buffer: object): BufferState | undefined {
    return #state in buffer ? (buffer as BufferMark).#state : undefined;
  }
  static setState(buffer: ArrayBuffer, state: BufferState): void {
    (buffer as unknown as BufferMark).#state = state;
  }
}

/** What the mark of `buffer` says; undefined for an object that never came from a cache. */
export function bufferStateOf(buffer: object): BufferState | undefined {
  return BufferMark.stateOf(buffer);
}

/**
 * mallocArrayBuffer's buffers. An ArrayBuffer cannot be a window into a slab (only a view can
 * cover part of another buffer's memory), so each buffer handed out is an allocation of its own,
 * of a power-of-two size. Freed buffers are kept by size for the next malloc of that size, up to
 * ARRAYBUFFER_CACHE_BYTES in all (a larger freed buffer is kept only when the cache is empty);
 * beyond the bound a freed buffer is dropped for the GC, as is one transferred away (detached:
 * each buffer is the user's alone while out, so unlike slabs it is not marked untransferable).
 * trim() and clearCache() empty it.
 *
 * Invariants (check() verifies all but the first):
 *   every buffer of ours has a BufferMark: Live (handed out) or Free (cached or dropped)
 *   every cached buffer is Free
 *   cachedBytes = the sum of the cached buffers' sizes (as cached: one detached since reads 0)
 *   live >= 0
 */
export class ArrayBufferCache {
  /**
   * @param keep false for a strict pool: no freed buffer is kept, so each malloc hands out a new
   *   one and a buffer freed once stays Free, its every later free a recognised double free.
   */
  constructor(readonly keep = true) {}

  /** Cached buffers by log2 of their size. */
  readonly #bySize: ArrayBuffer[][] = Array.from({ length: 32 }, () => []);
  #cachedBytes = 0;
  #live = 0;
  #mallocs = 0;
  #frees = 0;

  /** A buffer of `size` bytes, a power of two from 1 to 2^31: a cached one if there is one. */
  malloc(size: number): ArrayBuffer {
    const k = 31 - Math.clz32(size);
    let ab = this.#bySize[k]!.pop();
    // A cached buffer something detached after its free (transferred, or taken by a web stream,
    // through a stale reference) has nothing left to hand out: drop it, as free() drops one
    // detached before.
    while (ab !== undefined && ab.byteLength === 0) {
      this.#cachedBytes -= size;
      ab = this.#bySize[k]!.pop();
    }
    if (ab === undefined) {
      ab = new ArrayBuffer(size);
      new BufferMark(ab);
    } else {
      this.#cachedBytes -= size;
      BufferMark.setState(ab, BufferState.Live);
    }
    this.#live++;
    this.#mallocs++;
    return ab;
  }

  /** Takes back a buffer whose state is Live: cached if it fits in the bound, else dropped. */
  free(ab: ArrayBuffer): void {
    BufferMark.setState(ab, BufferState.Free);
    this.#live--;
    this.#frees++;
    const size = ab.byteLength;
    // 0 bytes: transferred away (postMessage, structuredClone), which the user may do with a
    // buffer of their own; there is nothing left to keep.
    if (size === 0 || !this.keep) return;
    if (this.#cachedBytes === 0 || this.#cachedBytes + size <= ARRAYBUFFER_CACHE_BYTES) {
      this.#bySize[31 - Math.clz32(size)]!.push(ab);
      this.#cachedBytes += size;
    }
  }

  /** Drops every cached buffer; returns their bytes. */
  clear(): number {
    for (const list of this.#bySize) list.length = 0;
    const released = this.#cachedBytes;
    this.#cachedBytes = 0;
    return released;
  }

  /** Throws ERR_SLABPOOL_CHECK_FAILED at the first broken invariant. */
  check(): void {
    let cached = 0;
    for (const [k, list] of this.#bySize.entries()) {
      for (const ab of list) if (BufferMark.stateOf(ab) !== BufferState.Free) throw checkFailed('a cached ArrayBuffer is not free');
      // Counted at their size when cached: one detached since (malloc drops it) reads 0 bytes now.
      cached += list.length * 2 ** k;
    }
    if (cached !== this.#cachedBytes) throw checkFailed(`cached ArrayBuffers hold ${cached} bytes, counted ${this.#cachedBytes}`);
    if (this.#live < 0) throw checkFailed(`${this.#live} live ArrayBuffers`);
  }

  stats(): CompatStats['arrayBuffers'] {
    let cached = 0;
    for (const list of this.#bySize) cached += list.length;
    return { live: this.#live, cached, cachedBytes: this.#cachedBytes, mallocs: this.#mallocs, frees: this.#frees };
  }
}
