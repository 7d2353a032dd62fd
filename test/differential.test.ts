import { describe, expect, it } from 'vitest';
import type { Lease, MemoryPool, Pin, PoolOptions, PoolStats } from '../lib/index.js';
import { BACKENDS, makePool } from './helpers.js';
import { runSeeded, type Target } from './operations.js';

/*
 * Differential test: one random sequence of the operations of test/operations.ts drives a pool on
 * each backend, and every result must be identical: which block or run comes back (by index),
 * every error, what trim releases, every figure in stats(), the contents of every block.
 */

type Options = Omit<PoolOptions, 'backend'>;
type Pair<T> = [T, T];

interface Outcome {
  value: unknown;
  error?: { name: string; code: unknown; message: string };
}

function attempt(fn: () => unknown): Outcome {
  try {
    return { value: fn() };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return { value: undefined, error: { name: e.name, code: e.code, message: e.message } };
  }
}

/** stats() without the fields that name the backend or depend on its memory (what the pages were given). */
function figures(stats: PoolStats): Omit<PoolStats, 'backend' | 'alignmentScope' | 'memory' | 'hugePages' | 'prefault'> {
  const { backend: _b, alignmentScope: _a, memory: _m, hugePages: _h, prefault: _p, ...rest } = stats;
  return rest;
}

function pickFrom<T>(candidates: readonly T[], pick: number): T | undefined {
  return candidates.length === 0 ? undefined : candidates[pick % candidates.length];
}

/** The same block on each side, and its leases if it is leased. */
interface Held {
  readonly views: Pair<Float64Array>;
  readonly leases?: Pair<Lease>;
}

/**
 * A js pool and a native pool side by side: every operation is applied to both, and its outcomes
 * must be equal. It predicts nothing (the model does that); it only keeps what was handed out and
 * given back, to aim the next calls at.
 */
class SideBySide implements Target {
  readonly pools: Pair<MemoryPool>;
  readonly others: Pair<MemoryPool>;
  readonly slabBlocks: number;
  readonly held: Held[] = []; // same position, same block on each side
  readonly returned: Pair<Float64Array>[] = [];
  compared = 0;
  /** Slab slots ever used: the highest number of slabs at once, as a new slab takes the lowest empty slot. */
  #slots = 1;
  #otherBlocks: Pair<Float64Array> | undefined;
  /** Live pins, the same view pinned on each side. */
  readonly #pins: Pair<Pin>[] = [];

  constructor(options: Options) {
    this.pools = [makePool('js', options), makePool('native', options)];
    this.others = [makePool('js', options), makePool('native', options)];
    this.slabBlocks = options.numBlocks;
  }

  getBlock(): void {
    const [a, b] = this.#both('getBlock()', (p) => p.getBlock());
    if (a.value) this.held.push({ views: [a.value as Float64Array, b.value as Float64Array] });
  }

  /** Runs of at most 10 blocks: longer ones would grow the pool without maxBlocks on most calls. */
  getRun(length: number): void {
    const k = 1 + (length % Math.min(this.slabBlocks, 10));
    const [a, b] = this.#both(`getRun(${k})`, (p) => p.getRun(k));
    if (a.value) this.held.push({ views: [a.value as Float64Array, b.value as Float64Array] });
  }

  lease(): void {
    const leases: Pair<Lease | null> = [null, null];
    this.#both('lease()', (p, side) => {
      leases[side] = p.lease();
      return leases[side]?.block ?? null;
    });
    const [a, b] = leases;
    if (a && b) this.held.push({ views: [a.block, b.block], leases: [a, b] });
  }

  /** The zeroed forms: the same block or run on each side, reading zeros on each. */
  getBlockZeroed(): void {
    const [a, b] = this.#both('getBlockZeroed()', (p) => p.getBlockZeroed());
    if (a.value) this.#holdZeroed('getBlockZeroed()', [a.value as Float64Array, b.value as Float64Array]);
  }

  getRunZeroed(length: number): void {
    const k = 1 + (length % Math.min(this.slabBlocks, 10));
    const [a, b] = this.#both(`getRunZeroed(${k})`, (p) => p.getRunZeroed(k));
    if (a.value) this.#holdZeroed(`getRunZeroed(${k})`, [a.value as Float64Array, b.value as Float64Array]);
  }

  leaseZeroed(): void {
    const leases: Pair<Lease | null> = [null, null];
    this.#both('leaseZeroed()', (p, side) => {
      leases[side] = p.leaseZeroed();
      return leases[side]?.block ?? null;
    });
    const [a, b] = leases;
    if (a && b) this.#holdZeroed('leaseZeroed()', [a.block, b.block], [a, b]);
  }

  #holdZeroed(label: string, views: Pair<Float64Array>, leases?: Pair<Lease>): void {
    for (const view of views) if (!view.every((x) => x === 0)) throw new Error(`${label} handed out a view that does not read zeros`);
    this.held.push({ views, ...(leases ? { leases } : {}) });
  }

  // A return of a pinned view is refused alike on both sides (ERR_SLABPOOL_PINNED): only a return that succeeded gives it back.
  returnHeld(pick: number): void {
    const i = this.#pickHeld(pick);
    if (i < 0) return;
    const [a] = this.#both('returnBlock(view)', (p, side) => p.returnBlock(this.held[i]!.views[side]));
    if (!a.error) this.#gave(i);
  }

  returnHeldByIndex(pick: number): void {
    const i = this.#pickHeld(pick);
    if (i < 0) return;
    const [a] = this.#both('returnBlock(index)', (p, side) => p.returnBlock(p.indexOf(this.held[i]!.views[side])));
    if (!a.error) this.#gave(i);
  }

  endLease(pick: number): void {
    const leased = this.held.flatMap((h, i) => (h.leases ? [i] : []));
    const i = pickFrom(leased, pick);
    if (i === undefined) return;
    const [a] = this.#both('lease[Symbol.dispose]()', (_p, side) => this.held[i]!.leases![side][Symbol.dispose]());
    if (!a.error) this.#gave(i);
  }

  pin(pick: number): void {
    const i = this.#pickHeld(pick);
    if (i < 0) return;
    const pins: Pin[] = [];
    this.#both('pin(view)', (p, side) => {
      const pin = p.pin(this.held[i]!.views[side]);
      pins.push(pin);
      return pin.byteLength;
    });
    if (pins.length === 2) this.#pins.push(pins as Pair<Pin>);
  }

  unpin(pick: number): void {
    const pins = pickFrom(this.#pins, pick);
    if (!pins) return;
    this.#pins.splice(this.#pins.indexOf(pins), 1);
    this.#both('pin.release()', (_p, side) => pins[side].release());
  }

  returnStale(pick: number): void {
    const views = pickFrom(this.returned, pick);
    if (!views) return;
    const [a] = this.#both('returnBlock(a view given back earlier)', (p, side) => p.returnBlock(views[side]));
    if (!a.error) this.#gave(this.held.findIndex((h) => h.views[0] === views[0]));
  }

  returnAnyIndex(n: number): void {
    const index = (n % (3 * this.slabBlocks)) - 2;
    const i = this.held.findIndex((h) => this.pools[0].indexOf(h.views[0]) === index);
    const [a] = this.#both(`returnBlock(${index})`, (p) => p.returnBlock(index));
    if (!a.error) this.#gave(i);
  }

  returnFreeIndex(pick: number): void {
    // A block given back and not handed out again is free.
    const js = this.pools[0];
    const inUse = new Set<number>();
    for (const { views } of this.held) {
      const start = js.indexOf(views[0]);
      for (let i = 0; i < views[0].length / js.blockLength; i++) inUse.add(start + i);
    }
    const free = [...new Set(this.returned.map(([v]) => js.indexOf(v)))].filter((i) => i >= 0 && !inUse.has(i));
    const index = pickFrom(free, pick);
    if (index !== undefined) this.#both(`returnBlock(${index}), free`, (p) => p.returnBlock(index));
  }

  returnInsideRun(pick: number): void {
    const runs = this.held.filter((h) => h.views[0].length > this.pools[0].blockLength);
    const run = pickFrom(runs, pick);
    if (!run) return;
    const offset = 1 + (pick % (run.views[0].length / this.pools[0].blockLength - 1));
    this.#both(`returnBlock(run + ${offset})`, (p, side) => p.returnBlock(p.indexOf(run.views[side]) + offset));
  }

  returnHead(pick: number): void {
    const i = this.#pickHeld(pick);
    if (i >= 0) this.#both('a subarray(0, 1)', (p, side) => p.returnBlock(this.held[i]!.views[side].subarray(0, 1)));
  }

  returnTail(pick: number): void {
    const i = this.#pickHeld(pick);
    if (i >= 0) this.#both('a subarray(1)', (p, side) => p.returnBlock(this.held[i]!.views[side].subarray(1)));
  }

  returnPlainArray(): void {
    this.#both('a plain Float64Array', (p) => p.returnBlock(new Float64Array(p.blockLength)));
  }

  returnOtherPoolsBlock(): void {
    const blocks = (this.#otherBlocks ??= [this.others[0].getBlock()!, this.others[1].getBlock()!]);
    this.#both("another pool's block", (p, side) => p.returnBlock(blocks[side]));
  }

  returnPastTheEnd(): void {
    const index = this.#slots * this.slabBlocks;
    this.#both(`returnBlock(${index}), past the end`, (p) => p.returnBlock(index));
  }

  returnNegativeIndex(): void {
    this.#both('returnBlock(-1)', (p) => p.returnBlock(-1));
  }

  getRunTooLong(): void {
    const k = this.slabBlocks + 1;
    this.#both(`getRun(${k})`, (p) => p.getRun(k));
  }

  coalesce(): void {
    this.#both('coalesce', (p) => p.coalesce());
  }

  trim(): void {
    this.#both('trim', (p) => p.trim());
  }

  metrics(): void {
    this.#both('getFragmentation', (p) => p.getFragmentation());
    this.#both('getEfficiency', (p) => p.getEfficiency());
  }

  destroy(): void {
    this.#both('destroy', (p) => p.destroy());
    for (const h of this.held) this.#both('the length of a held view after destroy', (_p, side) => h.views[side].length);
    for (const pins of this.#pins) this.#both('pin.release() after destroy', (_p, side) => pins[side].release());
    const refused: [string, (p: MemoryPool) => unknown][] = [
      ['getBlock', (p) => p.getBlock()],
      ['getRun(1)', (p) => p.getRun(1)],
      ['lease', (p) => p.lease()],
      ['returnBlock(0)', (p) => p.returnBlock(0)],
      ['stats', (p) => p.stats()],
      ['trim', (p) => p.trim()],
      ['coalesce', (p) => p.coalesce()],
      ['getFragmentation', (p) => p.getFragmentation()],
    ];
    for (const [label, call] of refused) this.#both(`${label} after destroy`, call);
  }

  /**
   * After every operation: stamp held blocks identically on both sides (first and last element,
   * never with 0, so a block handed out again by a zeroed call without its fill shows), then
   * compare every figure and every block.
   */
  settle(step: number): void {
    const { held, pools } = this;
    for (let i = 0; i < held.length; i++) {
      const [x, y] = held[i]!.views;
      if (x.length === 0) continue;
      const value = step * 1000 + i + 1;
      x[0] = x[x.length - 1] = value;
      y[0] = y[y.length - 1] = value;
    }
    pools[0].check();
    pools[1].check();
    const js = pools[0].stats();
    expect(figures(pools[1].stats()), 'stats()').toEqual(figures(js));
    this.#slots = Math.max(this.#slots, js.slabs);
    for (let i = 0; i < held.length; i++) {
      const [x, y] = held[i]!.views;
      let same = x.length === y.length;
      for (let j = 0; same && j < x.length; j++) same = Object.is(x[j], y[j]);
      if (!same) throw new Error(`contents of held block ${i} differ`);
    }
  }

  dispose(): void {
    for (const p of [...this.pools, ...this.others]) p.destroy();
  }

  /** Runs fn on each pool and asserts the same outcome: a view by its index and length, an error by name, code and message. */
  #both(label: string, fn: (pool: MemoryPool, side: 0 | 1) => unknown): Pair<Outcome> {
    const { pools } = this;
    const out: Pair<Outcome> = [attempt(() => fn(pools[0], 0)), attempt(() => fn(pools[1], 1))];
    const view = (o: Outcome, side: 0 | 1) =>
      o.value instanceof Float64Array ? { index: pools[side].indexOf(o.value), length: o.value.length } : o;
    expect(view(out[1], 1), label).toEqual(view(out[0], 0));
    this.compared++;
    return out;
  }

  #pickHeld(pick: number): number {
    return this.held.length === 0 ? -1 : pick % this.held.length;
  }

  /** Moves held block i to the views given back; -1 means a block was taken back that was not held. */
  #gave(i: number): void {
    if (i < 0) throw new Error('a block given back was not among the held ones');
    this.returned.push(this.held[i]!.views);
    this.held.splice(i, 1);
  }
}

function drive(seed: number, options: Options, steps: number): number {
  const both = new SideBySide(options);
  try {
    runSeeded(both, seed, steps, (step) => both.settle(step));
  } finally {
    both.dispose();
  }
  return both.compared;
}

const configs: [string, Options][] = [
  ['a small growing pool', { blockSize: 3, numBlocks: 8, grow: true, maxBlocks: 40 }],
  ['a fixed pool', { blockSize: [2, 3], numBlocks: 50, autoCoalesceThreshold: 40 }],
  ['a large pool with a full magazine', { blockSize: 1, numBlocks: 500, grow: true, alignment: 8 }],
  ['poisoned, 4096-aligned, never auto-coalescing', { blockSize: 5, numBlocks: 17, grow: true, maxBlocks: 60, alignment: 4096, poison: 'nan', autoCoalesceThreshold: 100 }],
];

describe.skipIf(!BACKENDS.includes('native'))('native and js backends agree', () => {
  it.each(configs)('on %s', (_label, options) => {
    let compared = 0;
    for (const seed of [11, 12, 13]) compared += drive(seed, options, 1200);
    expect(compared).toBeGreaterThan(3 * 1200);
  });
});
