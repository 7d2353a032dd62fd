import { describe, expect, it } from 'vitest';
import { RunIndex, type FreeLayout, type Run } from '../lib/run-index.js';
import { rng } from './helpers.js';

/*
 * lib/run-index.ts on its own, over a fake free layout (a plain boolean array, one slab): the
 * index must agree with a brute-force reading of the layout after every change, and firstFit must
 * be the lowest run that is long enough. test/native/run_index_test.cc does the same for C++.
 */

class Layout implements FreeLayout {
  readonly free: boolean[];
  constructor(size: number) {
    this.free = new Array<boolean>(size).fill(false);
  }
  nextFree(from: number): number {
    for (let i = Math.max(0, from); i < this.free.length; i++) if (this.free[i]) return i;
    return -1;
  }
  runLength(start: number): number {
    let end = start;
    while (end < this.free.length && this.free[end]) end++;
    return end - start;
  }
  runs(): Run[] {
    const runs: Run[] = [];
    for (let p = this.nextFree(0); p >= 0; ) {
      const length = this.runLength(p);
      runs.push({ start: p, length });
      p = this.nextFree(p + length);
    }
    return runs;
  }
}

/** Frees or takes [start, start + k) in the layout and tells the index, as an engine does. */
function setFree(layout: Layout, index: RunIndex, start: number, k: number, free: boolean): void {
  const before = layout.runs();
  for (let i = start; i < start + k; i++) layout.free[i] = free;
  const after = layout.runs();
  const key = (r: Run) => `${r.start}+${r.length}`;
  const was = new Set(before.map(key));
  const now = new Set(after.map(key));
  for (const r of after) if (!was.has(key(r))) index.add(r.start, r.length);
  for (const r of before) if (!now.has(key(r))) index.remove(r.start, r.length);
}

describe('the free-run index', () => {
  it('tracks the largest run through adds and removes, down to none', () => {
    const layout = new Layout(100);
    const index = new RunIndex(100, layout);
    expect(index.largest()).toBe(0);
    setFree(layout, index, 0, 100, true);
    expect(index.largest()).toBe(100);
    setFree(layout, index, 10, 1, false); // runs of 10 and 89
    expect(index.largest()).toBe(89);
    setFree(layout, index, 50, 50, false); // runs of 10 and 39
    expect(index.largest()).toBe(39);
    setFree(layout, index, 11, 39, false); // run of 10
    expect(index.largest()).toBe(10);
    setFree(layout, index, 0, 10, false);
    expect(index.largest()).toBe(0);
    expect(index.check(layout.runs())).toBeNull();
  });

  it('finds the lowest run that is long enough, passing shorter ones below it', () => {
    const layout = new Layout(64);
    const index = new RunIndex(64, layout);
    // Free runs: [0,1) [2,4) [5,8) [9,13) [40,64)
    for (const [s, k] of [[0, 1], [2, 2], [5, 3], [9, 4], [40, 24]] as const) setFree(layout, index, s, k, true);
    expect(index.firstFit(1, 0)).toBe(0);
    expect(index.firstFit(2, 0)).toBe(2);
    expect(index.firstFit(3, 0)).toBe(5);
    expect(index.firstFit(4, 0)).toBe(9);
    expect(index.firstFit(5, 0)).toBe(40);
    expect(index.firstFit(24, 0)).toBe(40);
    expect(index.firstFit(25, 0)).toBe(-1);
    expect(index.firstFit(3, 5)).toBe(5);
  });

  it('agrees with the layout after every step of a random walk, and check() says so', () => {
    for (const seed of [1, 2, 3, 4]) {
      const random = rng(seed);
      const size = 1 + Math.floor(random() * 80);
      const layout = new Layout(size);
      const index = new RunIndex(size, layout);
      for (let step = 0; step < 500; step++) {
        const start = Math.floor(random() * size);
        const k = 1 + Math.floor(random() * Math.min(8, size - start));
        setFree(layout, index, start, k, random() < 0.5);
        const runs = layout.runs();
        expect(index.check(runs), `seed ${seed} step ${step}`).toBeNull();
        expect(index.largest()).toBe(Math.max(0, ...runs.map((r) => r.length)));
        const want = 1 + Math.floor(random() * size);
        expect(index.firstFit(want, 0)).toBe(runs.find((r) => r.length >= want)?.start ?? -1);
      }
    }
  });

  it('check() names a run the index does not hold, or one it holds that is gone', () => {
    const layout = new Layout(32);
    const index = new RunIndex(32, layout);
    setFree(layout, index, 4, 6, true);
    expect(index.check([{ start: 4, length: 6 }])).toBeNull();
    expect(index.check([{ start: 4, length: 6 }, { start: 20, length: 2 }])).toBe('run index counts 0 free runs of 2, the slabs 1');
    expect(index.check([])).toBe('run index records largest free run 6, the slabs 0');
    expect(index.check([{ start: 0, length: 40 }])).toBe('free run at 0 has length 40');
    index.add(12, 3); // planted: a run that does not exist
    expect(index.check(layout.runs())).toBe('run index counts 1 free runs of 3, the slabs 0');
  });

  it('clear() forgets every run', () => {
    const layout = new Layout(16);
    const index = new RunIndex(16, layout);
    setFree(layout, index, 0, 16, true);
    index.clear();
    expect(index.largest()).toBe(0);
    expect(index.firstFit(1, 0)).toBe(-1);
    expect(index.check([])).toBeNull();
  });
});

describe('the free-run index refuses to be corrupted by impossible input', () => {
  it('ignores lengths outside 1..maxLength and removals of lengths no run has', () => {
    const layout = new Layout(8);
    const index = new RunIndex(8, layout);
    setFree(layout, index, 0, 3, true);
    for (const length of [0, 9, -1, 0.5, NaN]) {
      index.add(0, length);
      index.remove(0, length);
    }
    index.remove(0, 5);
    expect(index.check(layout.runs())).toBeNull();
    expect(index.largest()).toBe(3);
  });

  it('steps past a run the layout reports as empty instead of looping', () => {
    const index = new RunIndex(8, { nextFree: (from) => (from < 4 ? from : -1), runLength: () => 0 });
    index.add(0, 2);
    expect(index.firstFit(1, 0)).toBe(-1);
  });
});
