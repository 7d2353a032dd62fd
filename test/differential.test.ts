import { describe, expect, it } from 'vitest';
import type { MemoryPool, PoolOptions, PoolStats } from '../lib/index.js';
import { BACKENDS, makePool, rng } from './helpers.js';

/*
 * Differential test: one random sequence of operations drives a pool on each backend, and every
 * result must be identical: which block or run comes back (by index), every error, what trim
 * releases, every figure in stats(), the contents of every block.
 */

type Options = Omit<PoolOptions, 'backend'>;

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

/** stats() without the fields that name the backend. */
function figures(stats: PoolStats): Omit<PoolStats, 'backend' | 'alignmentScope' | 'memory'> {
  const { backend: _b, alignmentScope: _a, memory: _m, ...rest } = stats;
  return rest;
}

function drive(seed: number, options: Options, steps: number): number {
  const random = rng(seed);
  const pools: [MemoryPool, MemoryPool] = [makePool('js', options), makePool('native', options)];
  const held: [Float64Array[], Float64Array[]] = [[], []]; // same position = same block
  const returned: [Float64Array[], Float64Array[]] = [[], []];
  let compared = 0;

  const both = (label: string, fn: (pool: MemoryPool, side: 0 | 1) => unknown): [Outcome, Outcome] => {
    const out: [Outcome, Outcome] = [attempt(() => fn(pools[0], 0)), attempt(() => fn(pools[1], 1))];
    const view = (o: Outcome, side: 0 | 1) =>
      o.value instanceof Float64Array ? { index: pools[side].indexOf(o.value), length: o.value.length } : o;
    expect(view(out[1], 1), `seed ${seed}: ${label}`).toEqual(view(out[0], 0));
    compared++;
    return out;
  };

  for (let step = 0; step < steps; step++) {
    const r = random();
    const pickHeld = () => Math.floor(random() * held[0].length);
    if (r < 0.3) {
      const [a, b] = both('getBlock', (p) => p.getBlock());
      if (a.value) {
        held[0].push(a.value as Float64Array);
        held[1].push(b.value as Float64Array);
      }
    } else if (r < 0.4) {
      const k = 1 + Math.floor(random() * Math.min(options.numBlocks, 10));
      const [a, b] = both(`getRun(${k})`, (p) => p.getRun(k));
      if (a.value) {
        held[0].push(a.value as Float64Array);
        held[1].push(b.value as Float64Array);
      }
    } else if (r < 0.62 && held[0].length > 0) {
      const i = pickHeld();
      const byIndex = random() < 0.3;
      both('returnBlock', (p, side) => p.returnBlock(byIndex ? p.indexOf(held[side][i]!) : held[side][i]!));
      for (const side of [0, 1] as const) {
        returned[side].push(held[side][i]!);
        held[side].splice(i, 1);
      }
    } else if (r < 0.7) {
      both('lease', (p, side) => {
        const lease = p.lease();
        if (lease) held[side].push(lease.block);
        return lease?.block ?? null;
      });
    } else if (r < 0.74) {
      both('coalesce', (p) => p.coalesce());
    } else if (r < 0.78) {
      both('trim', (p) => p.trim());
    } else if (r < 0.86 && returned[0].length > 0) {
      const i = Math.floor(random() * returned[0].length);
      both('a stale or double return', (p, side) => p.returnBlock(returned[side][i]!));
    } else if (r < 0.9 && held[0].length > 0) {
      const i = pickHeld();
      both('a subarray', (p, side) => p.returnBlock(held[side][i]!.subarray(1)));
    } else if (r < 0.94) {
      const index = Math.floor(random() * (options.numBlocks * 3)) - 2;
      both(`returnBlock(${index})`, (p) => p.returnBlock(index));
    } else {
      both('getFragmentation', (p) => p.getFragmentation());
      both('getEfficiency', (p) => p.getEfficiency());
    }
    // Stamp held blocks identically on both sides, then compare every figure and every block.
    for (let i = 0; i < held[0].length; i++) {
      if (held[0][i]!.length === 0) continue;
      const value = step * 1000 + i;
      held[0][i]![0] = value;
      held[1][i]![0] = value;
    }
    pools[0].check();
    pools[1].check();
    expect(figures(pools[1].stats()), `seed ${seed} step ${step}`).toEqual(figures(pools[0].stats()));
    for (let i = 0; i < held[0].length; i++) {
      const [x, y] = [held[0][i]!, held[1][i]!];
      let same = x.length === y.length;
      for (let j = 0; same && j < x.length; j++) same = Object.is(x[j], y[j]);
      if (!same) throw new Error(`seed ${seed} step ${step}: contents of held block ${i} differ`);
    }
  }
  pools[0].destroy();
  pools[1].destroy();
  return compared;
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
