import { describe, expect, it } from 'vitest';
import type { PoolOptions } from '../lib/index.js';
import { BACKENDS } from './helpers.js';
import { Harness, randomWalk } from './model.js';

/*
 * Model-based random testing: a seeded random walk of the operations of test/operations.ts on a
 * pool beside its model (test/model.ts), which predicts every figure the pool reports, whether
 * each get/getRun succeeds, when the pool grows, what trim frees, when auto-coalescing fires and
 * what every wrong or stale return throws. check() runs after every operation, and every live
 * block carries a stamp that must survive everything done to the others. test/fuzz.test.ts drives
 * the same harness with fast-check.
 */

type Options = Omit<PoolOptions, 'backend'>;

function walk(backend: 'js' | 'native', seed: number, options: Options, steps: number): number {
  const h = new Harness(backend, options);
  randomWalk(h, seed, steps);
  h.dispose();
  return h.operations;
}

const configs: [string, Options, number][] = [
  ['a small growing pool', { blockSize: 3, numBlocks: 8, grow: true, maxBlocks: 30 }, 3000],
  ['a growing pool that detaches what it releases', { blockSize: 600, numBlocks: 4, grow: true, maxBlocks: 40, detach: true }, 1500],
  ['a fixed pool with a high threshold', { blockSize: [2, 2], numBlocks: 40, autoCoalesceThreshold: 50 }, 3000],
  ['a large pool that fills its magazine', { blockSize: 1, numBlocks: 300, grow: true, maxBlocks: 1000, alignment: 8 }, 3000],
  ['no auto-coalescing, poisoned', { blockSize: 5, numBlocks: 33, grow: true, autoCoalesceThreshold: 100, poison: 'nan', alignment: 256 }, 2000],
  ['a threshold of 0', { blockSize: 2, numBlocks: 64, autoCoalesceThreshold: 0 }, 2000],
  // Slabs of 2 MiB and more (520 blocks of 4 KiB), and a last one of 1.4 MiB (maxBlocks): huge
  // pages take the large ones where the options are on (the huge-pages-prefault project, or here).
  ['slabs of 2 MiB and a smaller last one', { blockSize: 2048, numBlocks: 130, grow: true, maxBlocks: 350 }, 300],
  ['the same with huge pages', { blockSize: 2048, numBlocks: 130, grow: true, maxBlocks: 350, hugePages: true }, 300],
  ['the same pre-faulted', { blockSize: 2048, numBlocks: 130, grow: true, maxBlocks: 350, prefault: true }, 300],
];

describe.each(BACKENDS)('model-based random operations on the %s backend', (backend) => {
  it.each(configs)('%s', (_label, options, steps) => {
    let operations = 0;
    for (const seed of [1, 2, 3]) operations += walk(backend, seed * 7919, options, steps);
    expect(operations).toBe(3 * steps);
  });
});
