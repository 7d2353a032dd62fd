import { depotLockTimeout } from './errors.js';
import { H_LOCK, H_LOCK_TAKES, H_SLOTS, H_WAITERS, S_THREAD, recordOf } from './shared-layout.js';

/*
 * The depot lock: one word of the metadata, taken with compareExchange and slept on with
 * Atomics.wait / Atomics.notify (a futex, as Drepper's "Futexes Are Tricky" mutex, with the
 * waiter count in a word of its own so that the lock word can name its holder).
 *
 * Why a lock and not a lock-free depot: the depot is visited once per ceil(M / 2) operations of a
 * thread (shared-layout.ts batchOf), so its cost is amortized as in Bonwick's design, where each
 * depot has a lock and the per-CPU magazines carry the common path without one. Under the lock a
 * batch moves in O(batch) with a plain stack; a run is carved out of the depot in O(k) (pos[]);
 * check() sees a consistent depot; and the ordering argument is the lock's, not a proof per data
 * structure. A lock-free depot (a Treiber stack of magazines) needs ABA tags, and getRun over it
 * would need a second structure kept in step without a lock. The per-block state words, which the
 * common path does touch, are lock-free (compareExchange): see shared-depot.ts.
 *
 * The word holds the holder's slot + 1, so that threadExited() can tell a lock left held by a
 * thread that was terminated inside a depot operation (worker.terminate() stops JavaScript
 * anywhere) and take it over (shared-depot.ts Depot.repair), once the holder has shown no
 * progress for TAKEOVER_MS: threadExited() may be called for a thread still running, whose
 * lock must never be taken from under it. A thread waiting on the lock wakes
 * every WAIT_MS to look again, never forever on one notify. JavaScript cannot see that another
 * thread was terminated, and the thread that would call threadExited() from the worker's 'exit'
 * event may be the one waiting (an event handler cannot run while it waits): so a waiter that
 * sees the same holder and no lock taken by anyone for LOCK_TIMEOUT_MS gives up with
 * ERR_SLABPOOL_LOCK_TIMEOUT, having changed nothing, instead of waiting forever. A live holder
 * keeps the lock for microseconds (check() of the largest pool, a pass over its states, for
 * about a second), so a live one is never mistaken for a dead one.
 *
 * Atomics.wait is allowed on Node's main thread and in workers (browsers forbid it on their main
 * thread; this package is for Node).
 */

/** Spins before sleeping: a depot operation lasts about a microsecond. */
const SPINS = 64;
/** A sleeping waiter looks at the lock again at least this often. */
const WAIT_MS = 50;
/**
 * A lock held this long by one holder with no other taking of it is taken over, when its holder
 * is known to have exited (threadExited()) or died inside attach(): far longer than a live holder
 * keeps it (microseconds; check() of the largest pool, a pass over 2^24 states, well under a second).
 */
export const TAKEOVER_MS = 2000;
/** A waiter gives up (ERR_SLABPOOL_LOCK_TIMEOUT) after this long with no progress: well after a take-over would have come. */
export const LOCK_TIMEOUT_MS = 10_000;

/**
 * Takes the lock for `slot`. Blocks while another thread holds it; when one holder kept it for
 * TAKEOVER_MS with no progress, takes it over if that holder is attach()'s (shared-handle.ts
 * claimSlot: a thread that died attaching, whose half-written slot record is harmless) or one
 * `exited` names (threadExited(): the caller says that thread ended), and returns true (the
 * caller then repairs what the dead holder may have left half done); else, after LOCK_TIMEOUT_MS,
 * throws ERR_SLABPOOL_LOCK_TIMEOUT, having taken nothing. A holder showing progress is never taken
 * over, whatever `exited` says: a live thread keeps its lock. Returns false when taken normally.
 */
export function lock(words: Int32Array, slot: number, exited?: (holder: number) => boolean): boolean {
  const me = slot + 1;
  if (Atomics.compareExchange(words, H_LOCK, 0, me) === 0) return taken(words);
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(words, H_LOCK) === 0 && Atomics.compareExchange(words, H_LOCK, 0, me) === 0) return taken(words);
  }
  Atomics.add(words, H_WAITERS, 1);
  try {
    let seenHolder = 0;
    let seenTakes = 0;
    let since = 0;
    for (;;) {
      const holder = Atomics.compareExchange(words, H_LOCK, 0, me);
      if (holder === 0) return taken(words);
      const takes = Atomics.load(words, H_LOCK_TAKES);
      const now = performance.now();
      if (holder !== seenHolder || takes !== seenTakes) {
        seenHolder = holder;
        seenTakes = takes;
        since = now;
      } else if (now - since >= TAKEOVER_MS) {
        const dead = holder - 1;
        const attaching = dead === Atomics.load(words, H_SLOTS);
        if ((attaching || exited?.(dead) === true) && Atomics.compareExchange(words, H_LOCK, holder, me) === holder) {
          taken(words);
          return true;
        }
        if (now - since >= LOCK_TIMEOUT_MS) throw depotLockTimeout(dead, Atomics.load(words, recordOf(dead) + S_THREAD), LOCK_TIMEOUT_MS);
      }
      // Returns at once if the word changed since it was read: no wake-up is lost.
      Atomics.wait(words, H_LOCK, holder, WAIT_MS);
    }
  } finally {
    Atomics.sub(words, H_WAITERS, 1);
  }
}

/** Counts a taking of the lock (by its new holder), for waiters to see progress; false: not taken over. */
function taken(words: Int32Array): false {
  Atomics.add(words, H_LOCK_TAKES, 1);
  return false;
}

/** Releases the lock held by `slot`. */
export function unlock(words: Int32Array, slot: number): void {
  Atomics.compareExchange(words, H_LOCK, slot + 1, 0);
  if (Atomics.load(words, H_WAITERS) > 0) Atomics.notify(words, H_LOCK, 1);
}

/** The slot holding the lock, or -1. */
export function holder(words: Int32Array): number {
  return Atomics.load(words, H_LOCK) - 1;
}
