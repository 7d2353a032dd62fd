/*
 * The shared pool's metadata: one SharedArrayBuffer read as an Int32Array (the words) and as a
 * Float64Array over the same bytes (the per-thread counters). Every thread attached to the pool
 * reads the same memory; this file says where each thing lives and how a block's state word is
 * encoded. No behaviour beyond arithmetic on the layout.
 *
 * Layout, in 32-bit words (W = 16 words = 64 bytes, one cache line on x86-64 and arm64):
 *
 *   [0, W)                 header: H_* below
 *   [W, W + slots * W)     one record per thread slot (an attachment), a cache line each so that
 *                          one thread's counters never share a line with another's
 *   states   capacity words     one atomic state word per block (state(), kindOf(), slotOf())
 *   stack    capacity words     the depot: free block indices, stack[0 .. top)
 *   pos      capacity words     pos[i] = where block i sits in stack, or -1 (so getRun can take
 *                               any free block out of the depot in O(1))
 *   runLen   capacity words     the length of the run starting at i (valid while i starts one)
 *
 * 16 bytes per block plus 64 per thread slot and 64 of header: 16 MB of metadata for 1e6 blocks.
 *
 * Who writes what:
 *   header words H_TOP, stack, pos, runLen, and every transition from or to FREE: the holder of
 *     the depot lock (shared-lock.ts) only;
 *   a slot record's counters: only the thread attached through that slot, plain stores (one
 *     writer, so no read-modify-write race; readers in other threads see a recent value);
 *   a state word: compareExchange by whoever the transition table in shared-depot.ts allows.
 */

/** Header words. */
export const H_MAGIC = 0;
export const H_VERSION = 1;
/** The depot lock: 0 when free, else the holder's slot + 1 (shared-lock.ts). */
export const H_LOCK = 2;
/** Threads waiting (or about to wait) on H_LOCK; unlock notifies only when this is non-zero. */
export const H_WAITERS = 3;
export const H_CAPACITY = 4;
/** Thread slots (the maxThreads option). */
export const H_SLOTS = 5;
/** Free blocks in the depot: stack[0 .. top). */
export const H_TOP = 6;
export const H_STRIDE = 7;
export const H_BLOCK_LENGTH = 8;
/** Index of the block type in POOL_TYPES. */
export const H_TYPE = 9;
export const H_ALIGNMENT = 10;
/** Magazine capacity per thread, in blocks. */
export const H_MAGAZINE = 11;
/** Attachments ever made (each attach() takes the next serial). */
export const H_SERIAL = 12;
/** Times the depot lock was taken (wrapping): a waiter tells a lock in use from one left held (shared-lock.ts). */
export const H_LOCK_TAKES = 13;
/** Float64 index (bytes 56..63 of the header): blocks freed by reclaim(), written under the lock. */
export const F_RECLAIMED = 7;

export const MAGIC = 0x534c4250; // 'SLBP'
/** 2: slot state words carry the attachment's serial. */
export const VERSION = 2;
export const WORDS_PER_RECORD = 16;

/** A slot record's words, from the record's first word. */
export const S_STATE = 0;
export const S_THREAD = 1;
export const S_SERIAL = 2;
/** A slot record's Float64 counters, from the record's first Float64 (word 4 of the record). */
export const C_ACQUIRES = 2;
export const C_RETURNS = 3;
export const C_FAILURES = 4;
export const C_HANDOFFS = 5;
export const C_CLAIMS = 6;

/**
 * Slot states: the low 2 bits of a slot's S_STATE word (slotKind). The rest of the word is the
 * generation of the attachment that claimed the slot (slotWord; genOfSlot), also carried by the
 * state words of the blocks it caches and holds: an attachment ended by threadExited() while its
 * thread runs, whose slot another attachment then took, can neither take the new one's cached
 * blocks (its stale magazine lists indices the new one may hold cached for the same slot number)
 * nor mistake the slot for its own.
 */
export const SLOT_FREE = 0;
export const SLOT_LIVE = 1;
/** Its thread closed its attachment or ended (threadExited); blocks it still holds are orphaned until reclaim(). */
export const SLOT_ENDED = 2;

export function slotKind(word: number): number {
  return word & 3;
}

/** Generations run 1 .. MAX_GEN; 0 marks the blocks of an ended attachment (orphans). */
export const MAX_GEN = 0x1ffff;

/** The generation of the attachment whose H_SERIAL, taken when it attached, is `serial`. */
export function genOf(serial: number): number {
  return (serial % MAX_GEN) + 1;
}

/** The S_STATE word of the attachment of generation `gen` in slot state `kind`. */
export function slotWord(gen: number, kind: number): number {
  return (gen << 2) | kind;
}

export function genOfSlot(word: number): number {
  return word >>> 2;
}

/**
 * Block kinds: the low 4 bits of a state word; then 10 bits of the slot of the attachment
 * concerned and 17 of its generation (state = gen << 14 | slot << 4 | kind; gen 0 once that
 * attachment ended: orphans). FREE words are exactly 0, RUN_BODY words exactly RUN_BODY.
 *   FREE         in the depot (its index is in stack)
 *   CACHED       in slot's magazine: free to the pool, owned by that thread's cache
 *   HELD         handed out to slot by getBlock (or claimed by it with blockAt)
 *   TRANSIT      handed off by slot (handOff), not yet claimed: blockAt or returnBlock(index) in another thread takes it
 *   RUN          the first block of a live run of runLen[i] blocks, owned by slot
 *   RUN_TRANSIT  the same, handed off by slot
 *   RUN_BODY     a later block of a run (its slot bits are 0: the run's first block says whose it is)
 */
export const FREE = 0;
export const CACHED = 1;
export const HELD = 2;
export const TRANSIT = 3;
export const RUN = 4;
export const RUN_TRANSIT = 5;
export const RUN_BODY = 6;
export const KIND_NAMES: readonly string[] = ['free', 'cached', 'held', 'in transit', 'run', 'run in transit', 'run body'];

/** A block state word: kind, for the attachment of generation `gen` in `slot` (0, 0 for FREE and RUN_BODY). */
export function state(slot: number, kind: number, gen = 0): number {
  return (gen << 14) | (slot << 4) | kind;
}
export function kindOf(s: number): number {
  return s & 15;
}
export function slotOf(s: number): number {
  return (s >>> 4) & 0x3ff;
}

/** The generation bits of a state word: 0 for FREE, RUN_BODY and orphans. */
export function genOfState(s: number): number {
  return s >>> 14;}

/** Where each region starts, in words, for a pool of `capacity` blocks and `slots` thread slots. */
export interface Regions {
  readonly records: number;
  readonly states: number;
  readonly stack: number;
  readonly pos: number;
  readonly runLen: number;
  readonly words: number;
}

export function regions(capacity: number, slots: number): Regions {
  const records = WORDS_PER_RECORD;
  const states = records + slots * WORDS_PER_RECORD;
  const stack = states + capacity;
  const pos = stack + capacity;
  const runLen = pos + capacity;
  return { records, states, stack, pos, runLen, words: runLen + capacity };
}

/** The first word of slot's record. */
export function recordOf(slot: number): number {
  return WORDS_PER_RECORD + slot * WORDS_PER_RECORD;
}

/** The Float64 index of counter `c` of slot's record. */
export function counterOf(slot: number, c: number): number {
  return (recordOf(slot) >>> 1) + c;
}

/**
 * Blocks a thread's magazine holds at most: capacity / 16, from 1 to 64, so that the magazines of
 * a few threads never hide much of a small pool (MemoryPool's rule is capacity / 8 for one
 * thread). Refills bring, and flushes take away, ceil(M / 2) blocks at a time (batchOf).
 */
export function magazineSize(capacity: number): number {
  return Math.max(1, Math.min(64, capacity >>> 4));
}

/**
 * Bonwick's hysteresis: a refill of an empty magazine brings ceil(M / 2) blocks and a flush of a
 * full one leaves M - ceil(M / 2), so a thread alternating getBlock and returnBlock at either edge
 * visits the depot at most once per ceil(M / 2) calls.
 */
export function batchOf(magazine: number): number {
  return Math.ceil(magazine / 2);
}
