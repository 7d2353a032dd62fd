import { BlockState, Counter, type Engine } from './engine.js';
import type { Magazine } from './magazine.js';
import type { SlotTable } from './slots.js';
import { INDEX, MARK, ViewState, isFreeMark, ownerOf, runOf, stateOf, type ViewTable } from './views.js';

/** What the pool half of check() reads: the pool's parts and counters. */
export interface PoolParts {
  readonly slabBlocks: number;
  readonly counters: Float64Array;
  readonly engine: Engine;
  readonly slots: SlotTable;
  readonly views: ViewTable;
  readonly magazine: Magazine;
  readonly states: Uint8Array;
  /** The pool's serial number, which its views' marks carry. */
  readonly serial: number;
  /** The mark of a live run's view. */
  readonly runMark: number;
  readonly leases: number;
  /** Block views with live pins, and live runs with live pins (pin.ts). */
  readonly pinnedBlocks: number;
  readonly pinnedRuns: number;
  readonly capacity: number;
  readonly inUse: number;
  readonly peak: number;
  readonly runBlocks: number;
  readonly liveRuns: number;
}

/**
 * The pool half of check() (the engine checks its own structure first): counters against the
 * engine's, every slot's blocks, states and views, the magazine. Returns the first broken
 * invariant, or null. O(capacity).
 */
export function checkPool(p: PoolParts): string | null {
  const { counters, slots, views, magazine, states } = p;
  if (p.capacity !== counters[Counter.Capacity]) return `pool counts capacity ${p.capacity}, engine ${counters[Counter.Capacity]}`;
  const cached = magazine.length;
  if (p.capacity - p.inUse !== counters[Counter.Free]! + cached) {
    return `pool counts ${p.capacity - p.inUse} free blocks, engine ${counters[Counter.Free]} plus ${cached} cached`;
  }
  if (cached > magazine.capacity) return `magazine holds ${cached} blocks, over its capacity ${magazine.capacity}`;
  if (p.peak < p.inUse) return `peak ${p.peak} is below blocks in use ${p.inUse}`;
  const slotProblem = slots.problem();
  if (slotProblem !== null) return slotProblem;
  let capacity = 0;
  let inUse = 0;
  let leased = 0;
  let pinned = 0;
  let pinnedRuns = 0;
  let runBlocks = 0;
  let liveRuns = 0;
  for (let slot = 0; slot < slots.length; slot++) {
    const { blocks, buffer } = slots.at(slot);
    const first = slot * p.slabBlocks;
    capacity += blocks;
    if (blocks > 0 && buffer !== p.engine.slabBuffer(slot)) return `slab ${slot} buffer differs from the engine's`;
    for (let idx = first; idx < first + p.slabBlocks; idx++) {
      const state = states[idx]!;
      const view = views.block(idx);
      if (idx - first >= blocks) {
        if (state !== BlockState.Free || view !== undefined) return `block ${idx} does not exist but has state ${state} or a view`;
        continue;
      }
      const m = view?.[MARK] ?? ViewState.Free;
      if (!isFreeMark(m)) {
        if (ownerOf(m) !== p.serial) return `block ${idx} is marked ${m}, not by this pool`;
        if (state !== BlockState.Free) return `block ${idx} is held singly and in a run`;
        inUse++;
        const held = stateOf(m);
        if (held === ViewState.Leased || held === ViewState.PinnedLeased) leased++;
        if (held === ViewState.PinnedHeld || held === ViewState.PinnedLeased) pinned++;
      }
      if (state === BlockState.RunStart) {
        const run = views.runRecordAt(idx);
        if (run === undefined) return `block ${idx} starts a run the pool has no view of`;
        const k = run.length;
        if (run.mark !== p.runMark || run.start !== idx || run.pool !== p.serial) return `the view of the live run at ${idx} is marked ${run.mark}, for ${run.start} of pool ${run.pool}`;
        if (run.pins > 0) pinnedRuns++;
        for (let j = 1; j < k; j++) if (states[idx + j] !== BlockState.RunBody) return `run at ${idx} of ${k} has block ${idx + j} in state ${states[idx + j]}`;
        if (states[idx + k] === BlockState.RunBody) return `run at ${idx} of ${k} is followed by a stray run block`;
        inUse += k;
        runBlocks += k;
        liveRuns++;
      } else if ((views.runRecordAt(idx)?.mark ?? ViewState.Free) !== ViewState.Free || (views.runRecordAt(idx)?.pins ?? 0) !== 0) {
        return `the view of a run at ${idx}, not live, is marked ${views.runRecordAt(idx)!.mark} with ${views.runRecordAt(idx)!.pins} pins`;
      }
      const problem = views.checkBlock(idx);
      if (problem !== null) return problem;
    }
  }
  for (const view of magazine.stack) {
    const idx = view[INDEX]!;
    if (views.block(idx) !== view) return `magazine holds a view that is not block ${idx}'s`;
    if (states[idx] !== BlockState.Free || !isFreeMark(view[MARK]!)) return `cached free block ${idx} is in state ${states[idx]}, marked ${view[MARK]}`;
  }
  if (capacity !== p.capacity) return `slabs hold ${capacity} blocks, pool counts ${p.capacity}`;
  if (inUse !== p.inUse) return `blocks in use: pool counts ${p.inUse}, states say ${inUse}`;
  if (leased !== p.leases) return `${p.leases} leases for ${leased} leased blocks`;
  if (pinned !== p.pinnedBlocks || pinnedRuns !== p.pinnedRuns) {
    return `pool counts ${p.pinnedBlocks} pinned blocks and ${p.pinnedRuns} pinned runs, marks say ${pinned} and ${pinnedRuns}`;
  }
  if (runBlocks !== p.runBlocks || liveRuns !== p.liveRuns) {
    return `pool counts ${p.liveRuns} runs of ${p.runBlocks} blocks, states say ${liveRuns} of ${runBlocks}`;
  }
  return null;
}

/**
 * Every block's state as far as runs go (RunStart, RunBody, else Free), from the live run views
 * (those marked `runMark`), for check(). The pool keeps no state per block: a pool's construction
 * allocates nothing per block (a byte per block was 1 MB at 1e6 blocks: a mapping, a page fault
 * and V8's accounting).
 */
export function runStates(views: ViewTable, blocks: number, runMark: number): Uint8Array {
  const states = new Uint8Array(blocks);
  views.forEachRun((start, view) => {
    const run = runOf(view)!;
    if (run.mark !== runMark) return;
    states[start] = BlockState.RunStart;
    states.fill(BlockState.RunBody, start + 1, start + run.length);
  });
  return states;
}

/** Every block's state for the engine's check: runStates() plus the blocks handed out singly. */
export function blockStates(views: ViewTable, runStates: Uint8Array): Uint8Array {
  const states = runStates.slice();
  views.forEachBlock((view) => {
    if (!isFreeMark(view[MARK]!)) states[view[INDEX]!] = BlockState.Held;
  });
  return states;
}
