import { fragmentationPercent } from './stats.js';

/**
 * The auto-coalesce rule (the autoCoalesceThreshold option): after a return that leaves
 * fragmentation above the threshold, the pool coalesces (flushes its magazine to the engine and
 * re-anchors the search at the lowest free block).
 *
 * Computing fragmentation exactly on every return would cost a call into the engine, so the pool
 * keeps a gate, recomputed whenever the engine's largest free run L or the capacity changes.
 * Cached blocks only lengthen free runs, so L is a lower bound of the true largest run, and with
 * F free blocks fragmentation is at most 100 * (1 - L / F), which grows with F. With G the
 * largest F for which that bound is within the threshold, a return that leaves at most G blocks
 * free (at least capacity - G in use) needs no exact check.
 *
 * Returns the blocks-in-use figure below which a return must check exactly: capacity - G, or
 * -Infinity when the threshold is 100 (fragmentation never exceeds 100: auto-coalescing is off).
 */
export function coalesceGate(threshold: number, largest: number, capacity: number): number {
  if (threshold >= 100) return -Infinity;
  let gate = Math.floor(largest / (1 - threshold / 100));
  while (gate > 0 && fragmentationPercent(largest, gate) > threshold) gate--;
  return capacity - gate;
}
