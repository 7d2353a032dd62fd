import { H_LOCK, H_WAITERS } from './shared-layout.js';

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
 * anywhere) and take it over (shared-depot.ts Depot.repair). A thread waiting on the lock wakes
 * every WAIT_MS to look again, never forever on one notify.
 *
 * Atomics.wait is allowed on Node's main thread and in workers (browsers forbid it on their main
 * thread; this package is for Node).
 */

/** Spins before sleeping: a depot operation lasts about a microsecond. */
const SPINS = 64;
/** A sleeping waiter looks at the lock again at least this often. */
const WAIT_MS = 50;

/** Takes the lock for `slot`. Blocks while another thread holds it. */
export function lock(words: Int32Array, slot: number): void {
  const me = slot + 1;
  if (Atomics.compareExchange(words, H_LOCK, 0, me) === 0) return;
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(words, H_LOCK) === 0 && Atomics.compareExchange(words, H_LOCK, 0, me) === 0) return;
  }
  Atomics.add(words, H_WAITERS, 1);
  try {
    for (;;) {
      const holder = Atomics.compareExchange(words, H_LOCK, 0, me);
      if (holder === 0) return;
      // Returns at once if the word changed since it was read: no wake-up is lost.
      Atomics.wait(words, H_LOCK, holder, WAIT_MS);
    }
  } finally {
    Atomics.sub(words, H_WAITERS, 1);
  }
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

/** Takes over a lock held by `dead` (a slot whose thread ended) for `slot`; false if `dead` does not hold it. */
export function takeOver(words: Int32Array, dead: number, slot: number): boolean {
  return Atomics.compareExchange(words, H_LOCK, dead + 1, slot + 1) === dead + 1;
}
