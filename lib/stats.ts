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

  /** The hugePages option: what was asked, and what the kernel gave (read back at this call). */
  readonly hugePages: HugePagesStats;
  /** The prefault option: what was asked, and what was done. */
  readonly prefault: PrefaultStats;
}

/**
 * `stats().hugePages`. Read back from the kernel at each stats() call of a pool whose option is
 * on (native: one PAGEMAP_SCAN system call per advised slab on Linux 6.7+, else one read of
 * /proc/self/smaps, a few ms; and the THP mode from sysfs: stats() of a 1 GiB pool took ~36 us
 * here, ~4 us without the option); nothing is read for a pool without it.
 */
export interface HugePagesStats {
  /** The option. */
  readonly requested: boolean;
  /** At least one slab is mapped at the huge page size's alignment and advised (MADV_HUGEPAGE). */
  readonly inEffect: boolean;
  /** One sentence: what was done, or why it is not in effect (not requested, the fallback, V8 memory, the system, slabs too small, a refusal). */
  readonly reason: string;
  /** The huge page size the slabs are aligned to (2097152 on x86-64); 0 when not requested or none can be had. */
  readonly pageBytes: number;
  /** Bytes of the slabs mapped aligned and advised (of reservedBytes). */
  readonly advisedBytes: number;
  /**
   * Bytes of the pool's slabs that huge pages back at this moment, as the kernel reports them:
   * pages come at first touch (or by pre-faulting), and go at trim() and destroy(). 0 when every
   * slab is smaller than a huge page; null when not requested, not possible here, or not readable.
   */
  readonly hugeBytes: number | null;
  /**
   * How hugeBytes was read: 'pagemap' (the PAGEMAP_SCAN ioctl, Linux 6.7+: exact per slab),
   * 'smaps' (/proc/self/smaps: per mapping, at most the slab's size; exact unless the kernel
   * merged a slab's mapping with a neighbour that has huge pages), or null.
   */
  readonly readBack: 'pagemap' | 'smaps' | null;
}

/** `stats().prefault`. */
export interface PrefaultStats {
  /** The option. */
  readonly requested: boolean;
  /** Every slab held was pre-faulted when it was added. */
  readonly inEffect: boolean;
  /** 'populate': by the kernel (madvise MADV_POPULATE_WRITE); 'touch': a write per page (the fallback, older kernels, other systems, heap slabs), on at least one slab; null when off. */
  readonly method: 'populate' | 'touch' | null;
  /** One sentence: how, or why not. */
  readonly reason: string;
  /** Bytes of the slabs held that were pre-faulted (all of reservedBytes when in effect). */
  readonly prefaultedBytes: number;
}

/** External fragmentation in percent; see PoolStats.fragmentation. */
export function fragmentationPercent(largestFreeRun: number, freeBlocks: number): number {
  return freeBlocks === 0 ? 0 : 100 * (1 - largestFreeRun / freeBlocks);
}

/** Occupancy in percent; see PoolStats.efficiency. */
export function efficiencyPercent(inUseBlocks: number, capacityBlocks: number): number {
  return capacityBlocks === 0 ? 0 : (100 * inUseBlocks) / capacityBlocks;
}
