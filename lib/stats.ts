import type { Backend } from './options.js';

/**
 * A snapshot of a pool, as returned by `pool.stats()`: plain numbers and strings, JSON-able.
 * Every figure is exact at the moment of the call, whatever the pool caches internally.
 */
export interface PoolStats {
  readonly backend: Backend;
  /** 'address': absolute addresses are aligned (native). 'buffer': only offsets within each slab's ArrayBuffer (fallback). */
  readonly alignmentScope: 'address' | 'buffer';
  readonly alignment: number;
  /** The blocks' typed array: 'Float64Array', 'Int32Array', ... */
  readonly type: string;
  /** 'external': slabs allocated by the native engine at the alignment; 'v8': ArrayBuffers allocated by V8 (the fallback, or a runtime that refuses external buffers). */
  readonly memory: 'external' | 'v8';
  /** Elements per block. */
  readonly blockLength: number;
  /** blockLength * bytes per element */
  readonly blockBytes: number;
  /** Bytes from one block's start to the next: blockBytes rounded up to alignment. */
  readonly stride: number;
  /** Blocks per slab (the numBlocks option). */
  readonly slabBlocks: number;
  /** Slabs currently allocated. */
  readonly slabs: number;

  /** Blocks in all slabs. */
  readonly capacityBlocks: number;
  /** Blocks handed out (a run of k counts k). */
  readonly inUseBlocks: number;
  /** capacityBlocks - inUseBlocks */
  readonly freeBlocks: number;
  /** Highest inUseBlocks ever reached. */
  readonly peakInUseBlocks: number;

  /** Bytes allocated for slabs (what the pool holds from the system). */
  readonly reservedBytes: number;
  /** inUseBlocks * stride */
  readonly inUseBytes: number;
  /** peakInUseBlocks * stride */
  readonly peakInUseBytes: number;

  /** Largest run of contiguous free blocks inside one slab: getRun(k) succeeds without growing iff k <= this. */
  readonly largestFreeRun: number;
  /** Percent: 100 * (1 - largestFreeRun / freeBlocks); 0 when nothing is free. */
  readonly fragmentation: number;
  /** Percent: 100 * inUseBlocks / capacityBlocks. */
  readonly efficiency: number;
  /** Percent of each stride lost to alignment padding: 100 * (1 - blockBytes / stride). */
  readonly internalWaste: number;

  /** Successful getBlock / getRun / lease calls. */
  readonly acquires: number;
  /** Successful returnBlock calls (and lease disposals). */
  readonly returns: number;
  /** getBlock / getRun / lease calls that returned null. */
  readonly failures: number;
  /** Slabs added by growth. */
  readonly grows: number;
  /** Slabs given back by trim(). */
  readonly trims: number;
  /** Coalesces, explicit and automatic. */
  readonly coalesces: number;
}

/** External fragmentation in percent; see PoolStats.fragmentation. */
export function fragmentationPercent(largestFreeRun: number, freeBlocks: number): number {
  return freeBlocks === 0 ? 0 : 100 * (1 - largestFreeRun / freeBlocks);
}

/** Occupancy in percent; see PoolStats.efficiency. */
export function efficiencyPercent(inUseBlocks: number, capacityBlocks: number): number {
  return capacityBlocks === 0 ? 0 : (100 * inUseBlocks) / capacityBlocks;
}
