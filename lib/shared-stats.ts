import { fragmentationPercent, efficiencyPercent } from './stats.js';
import type { Depot } from './shared-depot.js';
import {
  CACHED,
  C_ACQUIRES,
  C_CLAIMS,
  C_FAILURES,
  C_HANDOFFS,
  C_RETURNS,
  FREE,
  F_RECLAIMED,
  HELD,
  RUN,
  RUN_BODY,
  RUN_TRANSIT,
  SLOT_ENDED,
  SLOT_LIVE,
  S_STATE,
  TRANSIT,
  counterOf,
  kindOf,
  recordOf,
  slotKind,
  slotOf,
} from './shared-layout.js';

/**
 * A snapshot of a shared pool, as returned by `pool.stats()` in any attached thread: plain
 * numbers and strings, JSON-able, the same for every thread. Block figures come from one pass
 * over the block state words (O(capacity)), counters from every thread slot. Exact when no
 * thread is inside a pool call (quiescence); while others run, each state word and counter is a
 * value it really had, but not all from the same instant.
 */
export interface SharedPoolStats {
  /** Where the blocks live: 'native', a shared region of the addon; 'js', a SharedArrayBuffer. */
  readonly backend: 'js' | 'native';
  /** 'address' (native): every block's address is a multiple of alignment. 'buffer' (js): offsets within the blocks' SharedArrayBuffer are aligned; absolute addresses are not known. */
  readonly alignmentScope: 'address' | 'buffer';
  readonly alignment: number;
  readonly type: string;
  /** The blocks' memory: 'shared', a SharedArrayBuffer allocated by V8 (js); 'native', a region from slabpool's OS layer (native). The metadata is a SharedArrayBuffer either way. */
  readonly memory: 'shared' | 'native';
  readonly blockLength: number;
  readonly blockBytes: number;
  readonly stride: number;
  /** Blocks in the pool (fixed: a shared pool does not grow yet). */
  readonly capacityBlocks: number;
  /** Blocks held by some thread, in transit between threads, or in live runs (a run of k counts k). */
  readonly inUseBlocks: number;
  /** capacityBlocks - inUseBlocks: depotBlocks + cachedBlocks. */
  readonly freeBlocks: number;
  /** Free blocks in the shared depot, which every thread can take. */
  readonly depotBlocks: number;
  /** Free blocks in threads' magazines: only their thread hands them out (returned to the depot in batches, at close() and at threadExited()). */
  readonly cachedBlocks: number;
  /** Blocks (and run blocks) handed off with handOff() and not yet claimed with blockAt(). */
  readonly inTransitBlocks: number;
  /** Blocks (and run blocks) held by attachments that ended (close(), threadExited()): reclaim() frees them. */
  readonly orphanedBlocks: number;
  /** Bytes of the blocks' SharedArrayBuffer. */
  readonly reservedBytes: number;
  /** Bytes of the metadata SharedArrayBuffer: 16 per block, 64 per thread slot, 64 of header. */
  readonly metadataBytes: number;
  /** inUseBlocks * stride */
  readonly inUseBytes: number;
  /** Largest run of contiguous blocks in the depot: getRun(k) succeeds if k <= this (the caller's magazine is flushed first, so it may succeed for more). */
  readonly largestFreeRun: number;
  /** Percent: 100 * (1 - largestFreeRun / freeBlocks); 0 when nothing is free. */
  readonly fragmentation: number;
  /** Percent: 100 * inUseBlocks / capacityBlocks. */
  readonly efficiency: number;
  /** Percent of each stride lost to alignment padding. */
  readonly internalWaste: number;
  /** Successful getBlock / getRun calls, summed over every thread that ever attached. */
  readonly acquires: number;
  /** Successful returnBlock calls, summed over every thread. */
  readonly returns: number;
  /** getBlock / getRun calls that returned null. */
  readonly failures: number;
  /** handOff() calls. */
  readonly handOffs: number;
  /** blockAt() calls that claimed a block or run in transit. */
  readonly claims: number;
  /** Blocks freed by reclaim(). */
  readonly reclaimed: number;
  /** Attachments open now (threads using the pool; a thread may attach more than once). */
  readonly threads: number;
  /** Thread slots (the maxThreads option). */
  readonly maxThreads: number;
  /** Blocks a thread's magazine holds at most. */
  readonly magazineSize: number;
}

/** What scan() needs besides the depot: the configuration. */
export interface StatsContext {
  readonly backend: 'js' | 'native';
  readonly alignment: number;
  readonly type: string;
  readonly blockLength: number;
  readonly blockBytes: number;
  readonly stride: number;
  readonly reservedBytes: number;
  readonly metadataBytes: number;
  readonly magazineSize: number;
}

/** One pass over the state words and the slot records. No lock taken. */
export function scan(depot: Depot, f64: Float64Array, c: StatsContext): SharedPoolStats {
  const { capacity, slots, words } = depot;
  const ended = new Uint8Array(slots);
  let threads = 0;
  let acquires = 0;
  let returns = 0;
  let failures = 0;
  let handOffs = 0;
  let claims = 0;
  for (let slot = 0; slot < slots; slot++) {
    const st = slotKind(Atomics.load(words, recordOf(slot) + S_STATE));
    if (st === SLOT_LIVE) threads++;
    if (st === SLOT_ENDED) ended[slot] = 1;
    acquires += f64[counterOf(slot, C_ACQUIRES)]!;
    returns += f64[counterOf(slot, C_RETURNS)]!;
    failures += f64[counterOf(slot, C_FAILURES)]!;
    handOffs += f64[counterOf(slot, C_HANDOFFS)]!;
    claims += f64[counterOf(slot, C_CLAIMS)]!;
  }
  let depotBlocks = 0;
  let cached = 0;
  let transit = 0;
  let orphaned = 0;
  let largest = 0;
  let length = 0;
  let runOwnerEnded = false;
  let runInTransit = false;
  for (let i = 0; i < capacity; i++) {
    const s = depot.stateOf(i);
    const kind = kindOf(s);
    if (s === FREE) {
      depotBlocks++;
      if (++length > largest) largest = length;
      continue;
    }
    length = 0;
    if (kind === CACHED) cached++;
    else if (kind === HELD) {
      if (ended[slotOf(s)] === 1) orphaned++;
    } else if (kind === TRANSIT) transit++;
    else if (kind === RUN || kind === RUN_TRANSIT) {
      runOwnerEnded = kind === RUN && ended[slotOf(s)] === 1;
      runInTransit = kind === RUN_TRANSIT;
      if (runOwnerEnded) orphaned++;
      if (runInTransit) transit++;
    } else if (kind === RUN_BODY) {
      if (runOwnerEnded) orphaned++;
      if (runInTransit) transit++;
    }
  }
  const free = depotBlocks + cached;
  const inUse = capacity - free;
  return {
    backend: c.backend,
    alignmentScope: c.backend === 'native' ? 'address' : 'buffer',
    alignment: c.alignment,
    type: c.type,
    memory: c.backend === 'native' ? 'native' : 'shared',
    blockLength: c.blockLength,
    blockBytes: c.blockBytes,
    stride: c.stride,
    capacityBlocks: capacity,
    inUseBlocks: inUse,
    freeBlocks: free,
    depotBlocks,
    cachedBlocks: cached,
    inTransitBlocks: transit,
    orphanedBlocks: orphaned,
    reservedBytes: c.reservedBytes,
    metadataBytes: c.metadataBytes,
    inUseBytes: inUse * c.stride,
    largestFreeRun: largest,
    fragmentation: fragmentationPercent(largest, free),
    efficiency: efficiencyPercent(inUse, capacity),
    internalWaste: 100 * (1 - c.blockBytes / c.stride),
    acquires,
    returns,
    failures,
    handOffs,
    claims,
    reclaimed: f64[F_RECLAIMED]!,
    threads,
    maxThreads: slots,
    magazineSize: c.magazineSize,
  };
}
