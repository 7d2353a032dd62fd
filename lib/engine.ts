import type { Backend } from './options.js';

/**
 * The allocator core ("engine") behind a pool: slabs, the free structure, coalescing. The
 * TypeScript fallback (fallback.ts) and the C++ allocator (native/binding.cc over native/slab.cc)
 * implement this same contract with the same algorithm, so a pool behaves identically on both,
 * down to which block comes next. Policy (validation, the magazine of free blocks, views,
 * counters, metrics) lives in pool.ts. test/engine-contract.test.ts holds both engines to this
 * contract directly, including inputs the pool never sends.
 *
 * Indices are global: slot s holds blocks [s * slabBlocks, s * slabBlocks + blocks(s)).
 * An engine never trusts its arguments: a bad index or count is a bug in the pool layer, and is
 * refused with an `Error` whose code is ERR_SLABPOOL_INTERNAL (errors.ts internalError()), on
 * both engines alike, with the engine unchanged unless the method says otherwise.
 *
 * Threads: an engine is not thread-safe. It belongs to the thread (JS realm) that created it;
 * every method runs on that thread. Native slab memory is reference-counted atomically, which is
 * the only state shared across threads (an ArrayBuffer's finalizer may drop the last reference).
 * Every slab's ArrayBuffer is marked untransferable (worker_threads.markAsUntransferable) as it
 * is made, so a transfer of a block's buffer copies or throws instead of taking the slab from
 * every block on it; the one exception is the js engine with EngineConfig.detach (fallback.ts).
 * (The native engine's external slabs are made untransferable by Node itself, in a way detaching
 * ignores; marking them too would make Node >= 24 abort when it, or the engine, detaches them.)
 *
 * Lifetimes: the memory of a slab stays valid while the engine holds the slab or any ArrayBuffer
 * over it is alive (native: each external ArrayBuffer holds a reference; js and V8 memory: V8
 * owns it), and is never given to anything else before. freeSlab() and destroy() detach nothing
 * (one detach costs the whole process V8's typed-array fast path): the engine drops its
 * references; native memory is decommitted at once (its pages go back to the OS and every view
 * left on it reads zeros) and its address range is freed with the last ArrayBuffer over it;
 * V8-owned memory goes when V8 collects it (its views keep reading what was last written). Only
 * with EngineConfig.detach do they detach the slab's ArrayBuffer, so every view on it has
 * length 0 and native memory is freed at once; never one already detached by a transfer (whose
 * new owner still reaches the memory), nor, where marked buffers cannot be detached, a V8-owned
 * native slab (which stays marked).
 *
 * Costs, whatever the layout (n blocks taken or given, r runs they come from, c cached blocks,
 * W bitmap words of all slots; log W is about 15 for a million blocks): acquire O(n + r log W);
 * release O(n log W); acquireRun O(1) when the largest run is too short, else O(k + log W) (the
 * run index, run-index.ts); releaseRun O(k + log W); largestRunWith O(c log c + runs touched);
 * check O(capacity). On the native engine every call is also one crossing into C++ (~20-50 ns),
 * which is why the pool batches acquire/release and keeps lists in `scratch`, handed over once.
 */
export interface Engine {
  readonly kind: Backend;
  /** 'address': every block's absolute address is aligned; 'buffer': only offsets within its ArrayBuffer. */
  readonly alignmentScope: 'address' | 'buffer';
  /** 'external': slabs from the engine's own aligned allocation; 'v8': ArrayBuffers V8 allocated. */
  readonly memory: 'external' | 'v8';
  /** Live figures, readable without a call, indexed by Counter; exact after every method returns. */
  readonly counters: Float64Array;
  /**
   * The engine's list of block indices (SCRATCH_LENGTH entries), shared with the caller once:
   * acquire writes to it, release, largestRunWith and check read from it. The native engine keeps
   * its address, so it is never checked or converted per call.
   */
  readonly scratch: Int32Array;

  /** Allocates slot `slot` (an empty slot, or the next one) with `blocks` (1..slabBlocks) free blocks. False when the memory cannot be had. */
  addSlab(slot: number, blocks: number): boolean;
  /** Releases a wholly free slab (see Lifetimes above); returns the bytes given back. */
  freeSlab(slot: number): number;
  /** Blocks of the slot that are free in the engine (blocks the pool caches count as allocated). */
  slabFree(slot: number): number;
  slabBuffer(slot: number): ArrayBuffer;
  /** Byte offset of the slot's block 0 within slabBuffer(slot). */
  slabBase(slot: number): number;
  /** Absolute address of the slot's block 0, or null where it cannot be known (JavaScript). */
  slabAddress(slot: number): bigint | null;

  /** Takes up to `max` (<= SCRATCH_LENGTH) free blocks, lowest index first; writes them to scratch[0..n) highest first; returns n. */
  acquire(max: number): number;
  /** Frees the blocks scratch[0..count) in order; neighbours merge at once. Refuses at the first that is not allocated (those before it stay freed). */
  release(count: number): void;
  /** First fit: the lowest free run of at least k (>= 1) blocks gives its first k; returns its start, or -1 if none. */
  acquireRun(k: number): number;
  /** Frees the k allocated blocks [start, start + k), which must lie in one slab. */
  releaseRun(start: number, k: number): void;
  /** Largest run of free blocks counting scratch[0..count) as free too; each must be a block allocated here. */
  largestRunWith(count: number): number;
  /**
   * Walks everything; returns the first broken invariant, or null. `blockStates[i] === BlockState.Free`
   * means the pool considers block i free; it must be free here unless it is in scratch[0..count).
   */
  check(blockStates: Uint8Array, count: number): string | null;
  /** Releases every slab, blocks in use included (see Lifetimes above), but pinned ones' memory; every later call but destroy() and unpin() is refused. */
  destroy(): void;
  /**
   * One more pin on the slot's slab (pin.ts): until as many unpin(slot) calls, its memory stays as
   * it is: freeSlab refuses the slot, and destroy neither decommits nor detaches it (native
   * external memory is kept by the pin itself, even past the collection of its ArrayBuffer;
   * V8-owned memory by the views the pins hold).
   */
  pin(slot: number): void;
  /** Drops one pin of the slot; also after destroy(). The last pin of a slab given up lets its memory go as destroy() would have. */
  unpin(slot: number): void;
  /**
   * What was done to the pages of the slabs held (EngineConfig.hugePages and .prefault), summed
   * over them; with `readBack`, also what the system offers for huge pages and the bytes huge
   * pages back at this moment, read from the kernel (native: a system call per slab, or
   * /proc/self/smaps once; never on the hot path).
   */
  pages(readBack: boolean): EnginePages;
}

/** Engine.pages(): native/os.h's SlabMapping of every slab, summed, and the system's huge pages. */
export interface EnginePages {
  /** With readBack: the system's huge page size (0 when it offers none), its THP mode (Linux), and why none (one sentence) or null; else 0, null, null. */
  readonly pageBytes: number;
  readonly mode: string | null;
  readonly whyNot: string | null;
  /** Slabs mapped at the huge page size's alignment and advised, and their bytes. */
  readonly advisedSlabs: number;
  readonly advisedBytes: number;
  /** Slabs smaller than a huge page; slabs the system had none for; slabs whose aligned mapping or advice was refused, and the last error. */
  readonly tooSmallSlabs: number;
  readonly unavailableSlabs: number;
  readonly refusedSlabs: number;
  readonly refusedError: string | null;
  /** Bytes of slabs pre-faulted by the kernel (MADV_POPULATE_WRITE), and by a write per page. */
  readonly populatedBytes: number;
  readonly touchedBytes: number;
  /** With readBack: bytes of the advised (or refused) slabs that huge pages back now, and how it was read; else null. */
  readonly hugeBytes: number | null;
  readonly readBack: 'pagemap' | 'smaps' | null;
}

/**
 * An engine's geometry; an engine refuses (ERR_SLABPOOL_INTERNAL) any other at construction.
 * alignment: a power of two from 8 to 4096; stride: a multiple of alignment; blockBytes: 1 to
 * stride; slabBlocks: 1 to 2^30; stride * slabBlocks <= 2^32 (one slab is one ArrayBuffer, which
 * Node 20 caps at 4 GiB: a single block may be that large).
 */
export interface EngineConfig {
  readonly blockBytes: number;
  readonly stride: number;
  readonly alignment: number;
  readonly slabBlocks: number;
  /** Detach the ArrayBuffer of every slab released (the pool's `detach` option). */
  readonly detach: boolean;
  /** Map slabs of a huge page or more at its alignment and advise them (the pool's `hugePages` option; native external memory only). Default false. */
  readonly hugePages?: boolean;
  /** Pre-fault every slab as it is added (the pool's `prefault` option). Default false. */
  readonly prefault?: boolean;
}

export type EngineFactory = (config: EngineConfig) => Engine;

/** Entries of Engine.scratch: the most a magazine holds (magazine.ts), and the largest batch. */
export const SCRATCH_LENGTH = 64;

/** Indices into Engine.counters (native/slab.h `enum Counter`, in the same order). */
export const enum Counter {
  /** Blocks free in the engine. */
  Free = 0,
  /** Largest run of engine-free blocks within one slab. */
  Largest = 1,
  /** Blocks in all slabs. */
  Capacity = 2,
  /** Slabs allocated. */
  Slabs = 3,
  /** Bytes allocated for slabs. */
  ReservedBytes = 4,
  /**
   * The lowest engine-free block's index, Infinity if none: where first fit would place the next
   * block. The pool's magazine uses it to hand out the lowest blocks first (pool.ts #releaseBlock).
   */
  Lowest = 5,
  Length = 6,
}

/** What the pool records per block, for its own bookkeeping and for Engine.check(). */
export const enum BlockState {
  /** Free: in the engine or in the pool's magazine. */
  Free = 0,
  /** Handed out singly (getBlock, lease): known from the block's view, written only for check(). */
  Held = 1,
  /** The first block of a live run. */
  RunStart = 2,
  /** Another block of a live run. */
  RunBody = 3,
}
