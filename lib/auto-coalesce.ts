import { fragmentationPercent } from './stats.js';

/**
 * The auto-coalesce rule (the autoCoalesceThreshold option), O(1) per operation:
 *
 * 1. A return that leaves fragmentation above the threshold coalesces, if auto-coalescing is
 *    armed. Fragmentation is judged here from the engine's figures, 100 * (1 - L / F), with F
 *    every free block and L the engine's largest free run, or 1 if that is 0 (any free block is
 *    a run of one): the magazine's cached blocks can only lengthen runs, so this is at least
 *    stats().fragmentation, and a return that takes fragmentation above the threshold is never
 *    missed; it may coalesce before stats() shows the crossing (cached blocks that would have
 *    joined runs), and the coalesce then makes the two figures equal (the magazine is empty).
 * 2. An automatic coalesce disarms the rule: coalescing never moves a live block, so a pool that
 *    stays fragmented would otherwise coalesce on every return (the cliff of issue 12).
 * 3. The rule is re-armed by the first get (getBlock, getRun, lease) or change to the engine (a
 *    magazine refill or flush, a run returned, growth, trim) after which either that figure is
 *    within the threshold (the pool went back below it, so a new crossing can come), or, at a
 *    change to the engine, four magazines' worth of
 *    blocks (4 * the magazine's capacity, at most 256) have gone through the engine since the
 *    coalesce (the magazine has turned over, so coalescing again packs different blocks low).
 *    Measured on the bench's churn trace (seeds 1 to 6, 1e6 operations on 1e4 blocks): mean
 *    fragmentation 33.1 to 34.0 % with this, 33.9 to 34.3 % when re-arming only after the whole
 *    capacity had turned over, 33.1 to 33.5 % for textbook first fit with no cache at all.
 *
 * Each automatic coalesce costs O(magazine) and is preceded either by a crossing or by four
 * magazines of engine traffic, so the rule costs O(1) amortized per operation, and nothing but a
 * compare on the hot path: a return coalesces when it leaves fewer blocks in use than a gate,
 * recomputed at each engine change (the only time L or the capacity changes) and -1 while
 * disarmed.
 *
 * coalesceGate: the smallest number of blocks in use at which 100 * (1 - L / F) is within the
 * threshold, F being capacity - in use: with G the largest F for which it is, capacity - G; or
 * -Infinity when the threshold is 100 (fragmentation never exceeds 100: auto-coalescing is off).
 */
export function coalesceGate(threshold: number, largest: number, capacity: number): number {
  if (threshold >= 100) return -Infinity;
  largest = Math.max(largest, 1);
  // The closed form, then exact against the very figure stats() computes (floating point).
  let gate = Math.min(capacity, Math.floor(largest / (1 - threshold / 100)));
  while (gate > 0 && fragmentationPercent(largest, gate) > threshold) gate--;
  while (gate < capacity && fragmentationPercent(largest, gate + 1) <= threshold) gate++;
  return capacity - gate;
}
