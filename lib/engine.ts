import type { Backend } from './options.js';

/**
 * The allocator core ("engine") behind a pool: slabs, the free structure, coalescing. The
 * TypeScript fallback (fallback.ts) and the C++ allocator (native/) implement this same contract
 * with the same algorithm, so a pool behaves identically on both, down to which block comes next.
 * Policy (validation, the magazine of free blocks, views, counters, metrics) lives in pool.ts.
 *
 * Indices are global: slot s holds blocks [s * slabBlocks, s * slabBlocks + blocks(s)).
 * An engine never trusts its arguments: a bad index is a bug in the pool layer and is refused.
 */
export interface Engine {
  readonly kind: Backend;
  /** 'address': every block's absolute address is aligned; 'buffer': only offsets within its ArrayBuffer. */
  readonly alignmentScope: 'address' | 'buffer';
  /** 'external': slabs from the engine's own aligned allocation; 'v8': ArrayBuffers V8 allocated. */
  readonly memory: 'external' | 'v8';
  /** Live figures, readable without a call; indexed by the ES_* constants below. */
  readonly state: Float64Array;

  /** Allocates slot `slot` with `blocks` free blocks. False when the memory cannot be had. */
  addSlab(slot: number, blocks: number): boolean;
  /** Releases a wholly free slab, detaching its ArrayBuffer; returns the bytes given back. */
  freeSlab(slot: number): number;
  /** Blocks of the slot that are free in the engine (blocks the pool caches count as allocated). */
  slabFree(slot: number): number;
  slabBuffer(slot: number): ArrayBuffer;
  /** Byte offset of the slot's block 0 within slabBuffer(slot). */
  slabBase(slot: number): number;
  /** Absolute address of the slot's block 0, or null where it cannot be known (JavaScript). */
  slabAddress(slot: number): bigint | null;

  /** Takes up to `max` free blocks, lowest index first; writes them to out[0..n) highest first. */
  acquire(out: Int32Array, max: number): number;
  /** Frees the blocks out[0..count); neighbours merge at once. */
  release(list: Int32Array, count: number): void;
  /** First fit: the lowest free run of at least k blocks gives its first k. -1 if none. */
  acquireRun(k: number): number;
  releaseRun(start: number, k: number): void;
  /** Largest run of free blocks counting mag[0..count) as free too (they are allocated here). */
  largestRunWith(mag: Int32Array, count: number): number;
  /** The free structure is kept address-ordered; this re-anchors the search at the lowest free block. */
  coalesce(): void;
  /**
   * Walks everything; returns the first broken invariant, or null. `blockState[i] === BLOCK_FREE`
   * means the pool considers block i free; it must be free here unless it is in mag[0..count).
   */
  check(blockState: Uint8Array, mag: Int32Array, count: number): string | null;
  /** Detaches every ArrayBuffer this engine created and frees its memory. */
  destroy(): void;
}

export interface EngineConfig {
  readonly blockBytes: number;
  readonly stride: number;
  readonly alignment: number;
  readonly slabBlocks: number;
}

export type EngineFactory = (config: EngineConfig) => Engine;

/** Indices into Engine.state. */
export const ES_FREE = 0; // blocks free in the engine
export const ES_LARGEST = 1; // largest run of engine-free blocks within one slab
export const ES_CAPACITY = 2; // blocks in all slabs
export const ES_SLABS = 3; // slabs allocated
export const ES_RESERVED_BYTES = 4; // bytes allocated for slabs
export const ES_LENGTH = 5;

/** The pool's per-block state value that means "free" (in the engine or in the magazine). */
export const BLOCK_FREE = 0;
