import { doubleReturn, notHeldHere } from './errors.js';
import {
  CACHED,
  FREE,
  HELD,
  H_CAPACITY,
  H_SLOTS,
  H_TOP,
  KIND_NAMES,
  RUN,
  RUN_BODY,
  RUN_TRANSIT,
  SLOT_FREE,
  S_STATE,
  TRANSIT,
  kindOf,
  recordOf,
  regions,
  genOfState,
  slotKind,
  slotOf,
  state,
  type Regions,
} from './shared-layout.js';

/*
 * The depot (Bonwick, "Magazines and Vmem", USENIX 2001, section 3): the shared store of free
 * blocks behind the per-thread magazines. Bonwick's depot holds full and empty magazines; ours
 * holds the free block indices themselves in one stack, which is the same thing cut at a finer
 * grain: a refill pops ceil(M / 2) indices and a flush pushes as many, one lock round-trip each.
 * Every method here runs with the depot lock held (shared-lock.ts) unless it says otherwise.
 *
 * Block state transitions (state words, shared-layout.ts), and who makes them; t is an
 * attachment (its slot and generation), t0 the same slot with generation 0 (t ended: orphans):
 *   FREE -> CACHED|t           take(), refill of t's magazine               under the lock
 *   CACHED|t -> FREE           give() (t's flush), end(t), reclaim          under the lock
 *   CACHED|t -> HELD|t         getBlock in t                                compareExchange, no lock
 *   HELD|t -> CACHED|t         returnBlock in t                             compareExchange, no lock
 *   HELD|t -> TRANSIT|t        handOff in t                                 compareExchange, no lock
 *   TRANSIT|s -> HELD|t        blockAt in t (s != t), the claim             compareExchange, no lock
 *   TRANSIT|s -> CACHED|t      returnBlock(index) in t (s != t)             compareExchange, no lock
 *   HELD|t -> HELD|t0          end(t): close(), threadExited()              compareExchange, under the lock
 *   HELD|t0 -> FREE            reclaim() of the ended slot                  compareExchange, under the lock
 *   FREE -> RUN|t, RUN_BODY    getRun in t                                  under the lock
 *   RUN|t <-> RUN_TRANSIT|t    handOff of a run in t / claim by blockAt     compareExchange, no lock
 *   RUN|t -> RUN|t0            end(t)                                       compareExchange, under the lock
 *   RUN|t, RUN|t0 or RUN_TRANSIT|s -> FREE   returnBlock of a run; reclaim  compareExchange, under the lock
 * Every transition out of a state another thread may also leave is a compareExchange, so of two
 * threads racing for one block exactly one wins (the other reads what the winner wrote and is
 * refused). FREE is entered and left only under the lock, so the stack and the FREE words always
 * agree when the lock is free. Since end(t) leaves no word CACHED|t or HELD|t behind, t's own
 * getBlock and returnBlock need no look at its slot: after the end their compareExchange fails.
 *
 * Not followed: mimalloc's thread-free lists (Leijen et al., "Mimalloc: Free List Sharding in
 * Action", 2019) send a block freed by another thread back to the page of the thread that
 * allocated it, with a CAS push its owner collects later. Here a block returned in thread t goes
 * into t's magazine, as in Bonwick's per-CPU layer: in a pipeline where one stage takes blocks and
 * another returns them, the depot carries them back in batches instead of one CAS per block onto
 * the producer's list. What is taken from mimalloc is the per-object atomic word that decides a
 * race between threads (its thread-free flag), here the block's state word.
 */

export class Depot {
  readonly words: Int32Array;
  readonly capacity: number;
  readonly slots: number;
  readonly r: Regions;

  constructor(words: Int32Array) {
    this.words = words;
    this.capacity = words[H_CAPACITY]!;
    this.slots = words[H_SLOTS]!;
    this.r = regions(this.capacity, this.slots);
  }

  /** Lays out a new pool's depot: every block free, lowest index on top. Not under the lock: nobody else can see the memory yet. */
  init(): void {
    const { words, capacity, r } = this;
    for (let j = 0; j < capacity; j++) {
      const i = capacity - 1 - j;
      words[r.stack + j] = i;
      words[r.pos + i] = j;
      words[r.states + i] = FREE;
    }
    words[H_TOP] = capacity;
  }

  get top(): number {
    return this.words[H_TOP]!;
  }

  /** Block i's state word (atomic load; no lock needed). */
  stateOf(i: number): number {
    return Atomics.load(this.words, this.r.states + i);
  }

  /** compareExchange of block i's state; true if it was `from` and is now `to`. No lock needed. */
  cas(i: number, from: number, to: number): boolean {
    return Atomics.compareExchange(this.words, this.r.states + i, from, to) === from;
  }

  /** Pops up to n free blocks into out[0..), marked CACHED for `owner` (state(slot, 0, gen)); returns how many. */
  take(n: number, owner: number, out: Int32Array): number {
    const { words, r } = this;
    let top = words[H_TOP]!;
    const count = Math.min(n, top);
    const cached = owner | CACHED;
    for (let j = 0; j < count; j++) {
      const i = words[r.stack + --top]!;
      words[r.pos + i] = -1;
      Atomics.store(words, r.states + i, cached);
      out[j] = i;
    }
    Atomics.store(words, H_TOP, top);
    return count;
  }

  /**
   * Pushes `count` blocks of owner's magazine (indices in `from`) back. All or nothing: false,
   * with nothing changed, when one of them is not CACHED for owner (threadExited took the
   * magazine of a thread still running).
   */
  give(from: Int32Array, count: number, owner: number): boolean {
    const cached = owner | CACHED;
    for (let j = 0; j < count; j++) if (this.stateOf(from[j]!) !== cached) return false;
    for (let j = 0; j < count; j++) this.push(from[j]!);
    return true;
  }

  /** Marks block i FREE and pushes it. */
  push(i: number): void {
    const { words, r } = this;
    const top = words[H_TOP]!;
    words[r.stack + top] = i;
    words[r.pos + i] = top;
    Atomics.store(words, r.states + i, FREE);
    Atomics.store(words, H_TOP, top + 1);
  }

  /** Takes FREE block i out of the stack (the last entry moves into its place). */
  remove(i: number): void {
    const { words, r } = this;
    const top = words[H_TOP]! - 1;
    const at = words[r.pos + i]!;
    const last = words[r.stack + top]!;
    words[r.stack + at] = last;
    words[r.pos + last] = at;
    words[r.pos + i] = -1;
    Atomics.store(words, H_TOP, top);
  }

  /**
   * First fit: the lowest k contiguous FREE blocks, made a run owned by `owner`; their start, or -1.
   * O(capacity): a scan of the state words (runs are the slow path; the depot keeps no run index).
   */
  acquireRun(k: number, owner: number): number {
    const { words, capacity, r } = this;
    if (words[H_TOP]! < k) return -1;
    let length = 0;
    for (let i = 0; i < capacity; i++) {
      length = words[r.states + i] === FREE ? length + 1 : 0;
      if (length < k) continue;
      const start = i - k + 1;
      words[r.runLen + start] = k;
      for (let j = start; j <= i; j++) {
        this.remove(j);
        if (j > start) Atomics.store(words, r.states + j, state(0, RUN_BODY));
      }
      Atomics.store(words, r.states + start, owner | RUN);
      return start;
    }
    return -1;
  }

  /** The run at start, whose word was `expected` (RUN|t or RUN_TRANSIT|s), back to the depot; false if another thread changed it first. */
  releaseRun(start: number, expected: number): boolean {
    const k = this.words[this.r.runLen + start]!;
    if (!this.cas(start, expected, FREE)) return false;
    for (let j = start + k - 1; j >= start; j--) this.push(j);
    return true;
  }

  /** Length of the run starting at i (meaningful while i's kind is RUN or RUN_TRANSIT). No lock needed. */
  runLength(i: number): number {
    return Atomics.load(this.words, this.r.runLen + i);
  }

  /** The start of the run whose body holds block i (a scan back to the nearest run start). Lock-free: a read. */
  runStartOf(i: number): number {
    let s = i;
    while (s > 0 && kindOf(this.stateOf(s)) === RUN_BODY) s--;
    return s;
  }

  /**
   * Ends attachment `owner` (state(slot, 0, gen)), its slot already marked ended: its magazine
   * back to the depot, the blocks and runs it holds orphaned (generation 0); returns the blocks
   * given back. Every change is a compareExchange: the attachment's thread may still run
   * (threadExited() for a live thread) and take or return a block at this moment. A block it
   * changed first is looked at again, until this pass has changed it: so no block stays cached
   * or held for the ended attachment, whose every later getBlock and returnBlock compareExchange
   * then fails (the thread could otherwise go on cycling a block between its magazine and its
   * hands, cached for an ended attachment that nothing frees).
   */
  end(owner: number): number {
    const cached = owner | CACHED;
    const held = owner | HELD;
    const run = owner | RUN;
    const orphan = owner & 0x3fff; // the slot bits alone: generation 0
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      for (;;) {
        const s = this.stateOf(i);
        if (s === cached) {
          if (!this.cas(i, cached, FREE)) continue;
          this.push(i);
          n++;
        } else if (s === held) {
          if (!this.cas(i, held, orphan | HELD)) continue;
        } else if (s === run) {
          if (!this.cas(i, run, orphan | RUN)) continue;
        }
        break;
      }
    }
    return n;
  }

  /**
   * Every block and run still held (or left cached) by any attachment of `slot`, ended, back to
   * the depot; how many blocks. Blocks it handed off and nobody claimed yet stay in transit: a
   * live thread may still claim them.
   */
  reclaimSlot(slot: number): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      // As in end(): a block changed under this pass (by the ended attachment's thread, still in
      // the middle of a call) is looked at again.
      for (;;) {
        const s = this.stateOf(i);
        if (s === FREE || slotOf(s) !== slot) break;
        const kind = kindOf(s);
        if (kind === HELD || kind === CACHED) {
          if (!this.cas(i, s, FREE)) continue;
          this.push(i);
          n++;
        } else if (kind === RUN) {
          const k = this.runLength(i);
          if (!this.releaseRun(i, s)) continue;
          n += k;
        }
        break;
      }
    }
    return n;
  }

  /**
   * Rebuilds the stack from the state words, after a thread died holding the lock (its depot
   * operation may be half done): the stack becomes exactly the FREE blocks, and run blocks of a
   * run that was never completed (no RUN or RUN_TRANSIT word before them covering them) become
   * FREE. CACHED blocks of the dead thread are left to end().
   */
  repair(): void {
    const { words, capacity, r } = this;
    let top = 0;
    let runEnd = 0; // blocks before this are covered by the last run start seen
    for (let i = 0; i < capacity; i++) {
      let s = this.stateOf(i);
      const kind = kindOf(s);
      if (kind === RUN || kind === RUN_TRANSIT) runEnd = i + words[r.runLen + i]!;
      if (kind === RUN_BODY && i >= runEnd) {
        Atomics.store(words, r.states + i, FREE);
        s = FREE;
      }
      if (s === FREE) {
        words[r.stack + top] = i;
        words[r.pos + i] = top++;
      } else {
        words[r.pos + i] = -1;
      }
    }
    Atomics.store(words, H_TOP, top);
  }

  /**
   * The depot's invariants, checked under the lock (they hold at any moment the lock is free,
   * whatever the other threads are doing); the first broken one, or null:
   *   0 <= top <= capacity; stack[0..top) are distinct FREE blocks with pos[stack[j]] = j;
   *   the FREE words number exactly top; every other word's kind is known, its slot < slots and
   *   a slot that was attached at least once; a run at s of runLen[s] = k fits, is followed by
   *   k - 1 RUN_BODY words and covers every RUN_BODY word.
   */
  check(): string | null {
    const { words, capacity, r, slots } = this;
    const top = words[H_TOP]!;
    if (!(top >= 0 && top <= capacity)) return `depot top ${top} outside 0..${capacity}`;
    for (let j = 0; j < top; j++) {
      const i = words[r.stack + j]!;
      if (!(i >= 0 && i < capacity)) return `depot entry ${j} is ${i}, not a block`;
      if (words[r.pos + i] !== j) return `depot entry ${j} is block ${i}, whose position says ${words[r.pos + i]}`;
      if (this.stateOf(i) !== FREE) return `block ${i} is in the depot but ${describeState(this.stateOf(i))}`;
    }
    let free = 0;
    let runEnd = 0;
    for (let i = 0; i < capacity; i++) {
      const s = this.stateOf(i);
      const kind = kindOf(s);
      const slot = slotOf(s);
      if (kind > RUN_BODY) return `block ${i} has state ${s} of no known kind`;
      if (s === FREE) {
        free++;
        if (i < runEnd) return `block ${i} is free inside the run that ends at ${runEnd - 1}`;
        continue;
      }
      if (kind === RUN_BODY) {
        if (s !== RUN_BODY) return `run block ${i} carries owner bits (state ${s})`;
        if (i >= runEnd) return `block ${i} is marked inside a run but no run covers it`;
        continue;
      }
      if (i < runEnd) return `block ${i} is ${describeState(s)} inside the run that ends at ${runEnd - 1}`;
      if (kind === FREE) return `block ${i} is free with owner bits (state ${s})`;
      if (kind === CACHED && genOfState(s) === 0) return `block ${i} is cached for slot ${slot} with generation 0`;
      if (slot >= slots) return `block ${i} is ${KIND_NAMES[kind]} for slot ${slot}, past the ${slots} slots`;
      if (slotKind(Atomics.load(words, recordOf(slot) + S_STATE)) === SLOT_FREE) return `block ${i} is ${KIND_NAMES[kind]} for slot ${slot}, which was never attached`;
      if (kind === RUN || kind === RUN_TRANSIT) {
        const k = words[r.runLen + i]!;
        if (!(k >= 1 && i + k <= capacity)) return `the run at ${i} has length ${k}, past the pool's ${capacity} blocks`;
        runEnd = i + k;
      }
    }
    if (free !== top) return `${free} blocks are free but the depot holds ${top}`;
    return null;
  }
}

/**
 * Why block (or run) i, in state s, cannot be given back or handed off by the attachment in
 * `slot`: ERR_SLABPOOL_DOUBLE_RETURN for a free block (or a run that is no longer one), else
 * ERR_SLABPOOL_INVALID_ARG saying whose it is.
 */
export function refusal(depot: Depot, slot: number, name: string, i: number, s: number, run = false): Error {
  const kind = kindOf(s);
  if (run) {
    if (kind !== RUN && kind !== RUN_TRANSIT) return doubleReturn(name, i, 'run');
    return notHeldHere(name, `the run at block ${i}`, slotOf(s) === slot ? 'handed off by this thread' : `${describeState(s)}, another attachment`);
  }
  if (kind === FREE || kind === CACHED) return doubleReturn(name, i);
  if (kind === RUN_BODY) return notHeldHere(name, `block ${i}`, `inside the run that starts at ${depot.runStartOf(i)}`);
  if (kind === RUN || kind === RUN_TRANSIT) return notHeldHere(name, `block ${i}`, `the first block of ${describeState(s)}`);
  if (slotOf(s) === slot) return notHeldHere(name, `block ${i}`, 'handed off by this thread');
  return notHeldHere(name, `block ${i}`, `${describeState(s)}, another attachment`);
}

/** A state word in words: "held by slot 2" (slots are attachments: SharedPool.slot). */
export function describeState(s: number): string {
  const kind = kindOf(s);
  const slot = slotOf(s);
  switch (kind) {
    case FREE:
    case RUN_BODY:
      return KIND_NAMES[kind]!;
    case CACHED:
      return `free in the magazine of slot ${slot}`;
    case HELD:
      return genOfState(s) === 0 ? `held by the ended attachment of slot ${slot}` : `held by slot ${slot}`;
    case TRANSIT:
      return `in transit from slot ${slot}`;
    case RUN:
      return genOfState(s) === 0 ? `a run held by the ended attachment of slot ${slot}` : `a run held by slot ${slot}`;
    case RUN_TRANSIT:
      return `a run in transit from slot ${slot}`;
    default:
      return `of no known kind (state ${s})`;
  }
}

export { CACHED, FREE, HELD, RUN, RUN_BODY, RUN_TRANSIT, TRANSIT };
