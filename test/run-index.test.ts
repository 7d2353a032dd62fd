import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunIndex } from '../lib/run-index.js';
import { rng } from './helpers.js';

/*
 * lib/run-index.ts on its own, against a plain array of leaf values: largest() is the array's
 * maximum and firstAtLeast(k, from) the first entry at or after `from` of at least k, after every
 * set() and cover() of a seeded random walk. check() must agree with the array and name the first
 * leaf where a planted bug made the index disagree, and bugs planted in a copy of the source must
 * be caught. test/native/run_index_test.cc does the same for C++ (test/native-core.test.ts plants
 * the bugs there); test/engine-contract.test.ts plants bugs in the index under a whole engine.
 */

const bruteFirstAtLeast = (values: readonly number[], k: number, from: number): number => {
  for (let leaf = Math.max(from, 0); leaf < values.length; leaf++) if (values[leaf]! >= k) return leaf;
  return -1;
};
const bruteLargest = (values: readonly number[]): number => values.reduce((a, b) => Math.max(a, b), 0);

/** An index covering `values.length` leaves, set to `values`. */
function indexOf(values: readonly number[]): RunIndex {
  const index = new RunIndex();
  expect(index.cover(values.length)).toBe(true);
  values.forEach((v, leaf) => index.set(leaf, v));
  return index;
}

/** The first way `index` disagrees with `values` (its leaves, check(), largest(), the queries), or null. */
function disagreement(index: RunIndex, values: readonly number[], queries: [k: number, from: number][]): string | null {
  if (index.leafCount !== values.length) return `leafCount ${index.leafCount}, expected ${values.length}`;
  const problem = index.check(Int32Array.from(values));
  if (problem !== null) return `check(): ${problem}`;
  if (index.largest() !== bruteLargest(values)) return `largest() ${index.largest()}, expected ${bruteLargest(values)}`;
  for (const [k, from] of queries) {
    const got = index.firstAtLeast(k, from);
    const want = bruteFirstAtLeast(values, k, from);
    if (got !== want) return `firstAtLeast(${k}, ${from}) ${got}, expected ${want}`;
  }
  return null;
}

/**
 * Every query that can tell two answers apart: k of 1 and of every value and one past it (the
 * answer only changes there), from every leaf to two past the end.
 */
function allQueries(values: readonly number[]): [number, number][] {
  const ks = new Set([1]);
  for (const v of values) if (v > 0) ks.add(v).add(v + 1);
  const queries: [number, number][] = [];
  for (const k of ks) for (let from = 0; from <= values.length + 2; from++) queries.push([k, from]);
  return queries;
}

/**
 * A seeded walk of set() and cover() on `index` beside a plain array; the first disagreement, or
 * null. Values are mostly short with a few long ones, as run lengths are in a fragmented pool;
 * queries take k past every value and `from` at and past leafCount.
 */
function walk(seed: number, index: RunIndex, steps: number): string | null {
  const random = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const maxValue = [1, 3, 40, 2 ** 30][seed % 4]!;
  const value = () => (random() < 0.25 ? 0 : random() < 0.8 ? int(1, Math.min(maxValue, 4)) : int(1, maxValue));
  const values: number[] = new Array<number>(int(1, 70)).fill(0);
  if (!index.cover(values.length)) return `cover(${values.length}) failed`;
  for (let step = 0; step < steps; step++) {
    const r = random();
    let op: string;
    if (r < 0.04) {
      // Growth in the middle of the walk: the new leaves hold 0, the old ones keep their values.
      const leaves = values.length + (random() < 0.5 ? int(0, 3) : int(1, 60));
      if (!index.cover(leaves)) return `seed ${seed} step ${step}: cover(${leaves}) failed`;
      while (values.length < leaves) values.push(0);
      op = `cover(${leaves})`;
    } else if (r < 0.06) {
      const leaves = int(0, values.length); // no more than it covers: a no-op
      if (!index.cover(leaves)) return `seed ${seed} step ${step}: cover(${leaves}) refused`;
      op = `cover(${leaves})`;
    } else {
      const leaf = int(0, values.length - 1);
      const v = r < 0.1 ? values[leaf]! : value(); // sometimes the value it holds already
      index.set(leaf, v);
      values[leaf] = v;
      op = `set(${leaf}, ${v})`;
    }
    const top = bruteLargest(values);
    const queries: [number, number][] = [];
    for (let q = 0; q < 6; q++) {
      const k = q === 0 ? top + 1 : q === 1 && top > 0 ? top : int(1, Math.max(1, Math.min(top, 8)));
      const from = q === 2 ? values.length : q === 3 ? values.length + int(1, 5) : int(0, values.length - 1);
      queries.push([k, from]);
    }
    const problem = disagreement(index, values, queries);
    if (problem !== null) return `seed ${seed} step ${step}: after ${op}: ${problem}`;
    const leaf = int(0, values.length - 1);
    if (index.get(leaf) !== values[leaf]) return `seed ${seed} step ${step}: after ${op}: get(${leaf}) ${index.get(leaf)}`;
  }
  return disagreement(index, values, allQueries(values)) ?? null;
}

describe('the free-run index (a max segment tree over leaves)', () => {
  it('starts empty, covering no leaf', () => {
    const index = new RunIndex();
    expect([index.leafCount, index.largest()]).toEqual([0, 0]);
    expect(index.firstAtLeast(1, 0)).toBe(-1);
    expect(index.check(new Int32Array(0))).toBeNull();
    expect(index.cover(0)).toBe(true);
    expect(index.leafCount).toBe(0);
  });

  it('holds a single leaf', () => {
    const index = new RunIndex();
    expect(index.cover(1)).toBe(true);
    expect([index.leafCount, index.largest(), index.get(0)]).toEqual([1, 0, 0]);
    expect(index.firstAtLeast(1, 0)).toBe(-1);
    index.set(0, 5);
    expect([index.largest(), index.get(0)]).toEqual([5, 5]);
    expect([index.firstAtLeast(1, 0), index.firstAtLeast(5, 0), index.firstAtLeast(6, 0), index.firstAtLeast(1, 1)]).toEqual([0, 0, -1, -1]);
    expect(index.check(Int32Array.of(5))).toBeNull();
    index.set(0, 0);
    expect([index.largest(), index.firstAtLeast(1, 0)]).toEqual([0, -1]);
    expect(index.check(Int32Array.of(0))).toBeNull();
  });

  it('finds the lowest leaf of at least k at or after from, passing shorter ones below it', () => {
    // Six leaves: not a power of two, so the table has two leaves past leafCount.
    const values = [3, 0, 7, 2, 7, 1];
    const index = indexOf(values);
    expect(index.largest()).toBe(7);
    expect(index.firstAtLeast(1, 0)).toBe(0);
    expect(index.firstAtLeast(4, 0)).toBe(2); // past a leaf of 3
    expect(index.firstAtLeast(4, 3)).toBe(4); // from past the first 7
    expect(index.firstAtLeast(7, 2)).toBe(2); // from's own leaf counts
    expect(index.firstAtLeast(8, 0)).toBe(-1); // more than any leaf
    expect(index.firstAtLeast(1, 5)).toBe(5); // the last leaf
    expect(index.firstAtLeast(2, 5)).toBe(-1); // nothing at or after from
    expect(index.firstAtLeast(1, 6)).toBe(-1); // from at leafCount
    expect(index.firstAtLeast(1, 1000)).toBe(-1); // and far past it
    expect(disagreement(index, values, allQueries(values))).toBeNull();
    // Lowering the largest leaves brings largest() down to the next.
    index.set(2, 0);
    index.set(4, 2);
    values[2] = 0;
    values[4] = 2;
    expect(index.largest()).toBe(3);
    expect(disagreement(index, values, allQueries(values))).toBeNull();
  });

  it('agrees with a plain array on every k and from, for every size from 1 to 70', () => {
    const random = rng(7);
    for (let size = 1; size <= 70; size++) {
      const values = Array.from({ length: size }, () => (random() < 0.3 ? 0 : 1 + Math.floor(random() * 9)));
      expect(disagreement(indexOf(values), values, allQueries(values)), `size ${size}: [${values}]`).toBeNull();
    }
  });

  it('grows with cover() keeping every value, across powers of two', () => {
    const index = new RunIndex();
    const values = [4, 0, 9, 1, 6];
    expect(index.cover(values.length)).toBe(true);
    values.forEach((v, leaf) => index.set(leaf, v));
    for (const leaves of [5, 6, 8, 9, 16, 17, 1000, 1025]) {
      expect(index.cover(leaves)).toBe(true);
      while (values.length < leaves) values.push(0);
      expect(disagreement(index, values, [[1, 0], [5, 0], [9, 0], [10, 0], [1, 5], [1, leaves - 1], [1, leaves]]), `cover(${leaves})`).toBeNull();
      expect(index.cover(3)).toBe(true); // covering fewer changes nothing
      expect(index.leafCount).toBe(leaves);
    }
    index.set(1024, 12); // a leaf of the grown part
    values[1024] = 12;
    expect(index.firstAtLeast(10, 0)).toBe(1024);
    expect(disagreement(index, values, [[12, 0], [13, 0], [12, 1024], [12, 1025]])).toBeNull();
  });

  it('agrees with a plain array after every step of seeded random walks of set() and cover()', () => {
    for (let seed = 1; seed <= 8; seed++) expect(walk(seed, new RunIndex(), 1500)).toBeNull();
  });

  it('clear() sets every leaf to 0 and keeps the leaves it covers', () => {
    const values = [2, 8, 0, 5, 1];
    const index = indexOf(values);
    index.clear();
    expect([index.leafCount, index.largest(), index.firstAtLeast(1, 0)]).toEqual([5, 0, -1]);
    expect(index.check(new Int32Array(5))).toBeNull();
    index.set(3, 4); // usable again
    expect(disagreement(index, [0, 0, 0, 4, 0], allQueries([0, 0, 0, 4, 0]))).toBeNull();
  });
});

describe('the free-run index check() and walk catch a planted bug', () => {
  it('check() names the first leaf that disagrees with the slabs', () => {
    const index = indexOf([3, 0, 7, 2, 7, 1]);
    expect(index.check(Int32Array.of(3, 0, 7, 2, 7, 1))).toBeNull();
    expect(index.check(Int32Array.of(3, 0, 7, 4, 7, 1))).toBe('run index leaf 3 holds 2, the slabs 4');
    expect(index.check(Int32Array.of(3, 0, 7, 2, 7, 0))).toBe('run index leaf 5 holds 1, the slabs 0');
    expect(index.check(Int32Array.of(0, 0, 0, 0, 0, 0))).toBe('run index leaf 0 holds 3, the slabs 0');
    // Entries past leafCount are not leaves.
    expect(index.check(Int32Array.of(3, 0, 7, 2, 7, 1, 9, 9))).toBeNull();
  });

  /** An index that forgets to clear a leaf: a run that went, still indexed (the engine's missed update). */
  class Forgetful extends RunIndex {
    override set(leaf: number, value: number): void {
      if (value !== 0) super.set(leaf, value);
    }
  }

  /** An index whose search skips the lowest fit after `from`: next fit, not first fit. */
  class NextFit extends RunIndex {
    override firstAtLeast(k: number, from: number): number {
      const leaf = super.firstAtLeast(k, from);
      return leaf < 0 ? leaf : Math.max(leaf, super.firstAtLeast(k, leaf + 1));
    }
  }

  it('a leaf not cleared is named by check() in the walk', () => {
    const found = [1, 2, 3, 4].map((seed) => walk(seed, new Forgetful(), 1500));
    for (const problem of found) expect(problem).toMatch(/: after set\(\d+, 0\): check\(\): run index leaf \d+ holds [1-9]\d*, the slabs 0$/);
  });

  it('a search that skips the lowest fit is caught by the brute-force firstAtLeast', () => {
    const found = [1, 2, 3, 4].map((seed) => walk(seed, new NextFit(), 1500));
    for (const problem of found) expect(problem).toMatch(/firstAtLeast\(\d+, \d+\) \d+, expected \d+$/);
  });
});

/**
 * Bugs planted in a copy of lib/run-index.ts (it imports nothing, so the copy loads on its own):
 * `find` replaced by `replace`, found exactly once (if the source moved on, the mutant is updated
 * rather than silently testing nothing). The walk must report each, for the reason given.
 */
const MUTANTS: readonly { name: string; find: string; replace: string; caught: RegExp }[] = [
  {
    name: 'set() stops below the root',
    find: 'for (; i > 1; i >>= 1) {',
    replace: 'for (; i > 2; i >>= 1) {',
    caught: /check\(\): run index node 1 holds \d+, its children \d+$/,
  },
  {
    name: 'the descent of firstAtLeast goes right on a tie',
    find: 'i = 2 * i + ((tree[2 * i]! - k) >>> 31);',
    replace: 'i = 2 * i + ((tree[2 * i]! - k - 1) >>> 31);',
    caught: /firstAtLeast\(\d+, \d+\) -?\d+, expected -?\d+$/,
  },
  {
    name: 'set() takes a parent from the leaf value before the change',
    find: 'const parentAfter = after > sibling ? after : sibling;',
    replace: 'const parentAfter = before > sibling ? before : sibling;',
    caught: /check\(\): run index node \d+ holds \d+, its children \d+$/,
  },
  {
    name: 'the climb of firstAtLeast stops one level up (wraps to the left edge)',
    find: 'while (i & 1) i >>= 1;',
    replace: 'if (i & 1) i >>= 1;',
    caught: /firstAtLeast\(\d+, \d+\) \d+, expected -1$/,
  },
  {
    name: 'cover() loses the leaves when it grows',
    find: 'tree.set(this.#tree.subarray(this.#size, this.#size + this.#leafCount), size);',
    replace: '',
    caught: /after cover\(\d+\): check\(\): run index leaf \d+ holds 0, the slabs [1-9]\d*$/,
  },
];

describe('a bug planted in lib/run-index.ts is caught by the walk', () => {
  const original = fs.readFileSync(path.join(__dirname, '..', 'lib', 'run-index.ts'), 'utf8');

  it.each(MUTANTS)('$name', async ({ find, replace, caught }) => {
    expect(original.split(find).length - 1, `'${find}' in lib/run-index.ts`).toBe(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-run-index-'));
    try {
      const file = path.join(dir, 'run-index.ts');
      fs.writeFileSync(file, original.replace(find, replace));
      const mutant = (await import(file)) as typeof import('../lib/run-index.js');
      const found = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => walk(seed, new mutant.RunIndex(), 1500)).filter((p) => p !== null);
      expect(found.length, 'seeds on which the walk saw nothing wrong').toBeGreaterThan(0);
      expect(found[0]).toMatch(caught);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
