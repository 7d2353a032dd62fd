import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTypedArrayPool, type Pooled, type TypedArrayPool } from '../lib/compat.js';
import { DTYPES, bytesOf, extent } from './compat-helpers.js';
import { BACKENDS, fuzzSettings } from './helpers.js';

/*
 * The property compat exists for: however mallocs, frees, double frees, foreign frees, trims and
 * clearCache interleave, across every dtype and size, no two live allocations share a byte, and
 * no allocation's contents change while it is live. Each live allocation is filled with its own
 * byte when handed out and checked after every operation. npm test runs a fixed-seed slice;
 * `npm run fuzz` runs it at full size with the core fuzzer (SLABPOOL_FUZZ=full, _RUNS, _SEED).
 */

const { runs, seed } = fuzzSettings(5000, 400, 20261125);

type Op =
  | { op: 'malloc'; dtype: number; n: number }
  | { op: 'free' | 'freeTwice'; pick: number }
  | { op: 'foreign' | 'trim' | 'clearCache' };

const sizes = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 3, arbitrary: fc.integer({ min: 41, max: 3000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 3001, max: 100_000 }) },
);
const ops: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('malloc' as const), dtype: fc.nat(DTYPES.length - 1), n: sizes }) },
  { weight: 7, arbitrary: fc.record({ op: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('freeTwice' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('foreign' as const) }) },
  { weight: 1, arbitrary: fc.constantFrom({ op: 'trim' as const }, { op: 'clearCache' as const }) },
);

interface Live {
  readonly value: Pooled;
  readonly stamp: number;
}

/**
 * Throws (with the pair) if two live allocations overlap or one lost its stamp: every byte when
 * `full`, else the first, middle and last (the extents catch any overlap on their own).
 */
function checkDisjoint(live: readonly Live[], full: boolean): void {
  const byBuffer = new Map<ArrayBufferLike, [number, number, number][]>();
  for (const [i, { value, stamp }] of live.entries()) {
    const [buffer, start, end] = extent(value);
    const bytes = bytesOf(value);
    const bad = full ? bytes.findIndex((b) => b !== stamp) : [0, bytes.length >> 1, bytes.length - 1].find((j) => j >= 0 && j < bytes.length && bytes[j] !== stamp) ?? -1;
    if (bad >= 0) throw new Error(`allocation ${i} changed: byte ${bad} is ${bytes[bad]}, stamped ${stamp}`);
    if (end === start) continue;
    const list = byBuffer.get(buffer) ?? [];
    list.push([start, end, i]);
    byBuffer.set(buffer, list);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a[0] - b[0]);
    for (let j = 1; j < list.length; j++) {
      const [, prevEnd, prevI] = list[j - 1]!;
      const [start, , i] = list[j]!;
      if (start < prevEnd) throw new Error(`allocations ${prevI} and ${i} overlap`);
    }
  }
}

function apply(pool: TypedArrayPool, live: Live[], freed: Pooled[], o: Op, stampSeq: { next: number }): void {
  switch (o.op) {
    case 'malloc': {
      const value = pool.malloc(o.n, DTYPES[o.dtype]![0] as string)!;
      const stamp = (stampSeq.next++ % 255) + 1;
      bytesOf(value).fill(stamp);
      live.push({ value, stamp });
      break;
    }
    case 'free':
      if (live.length > 0) {
        const { value } = live.splice(o.pick % live.length, 1)[0]!;
        pool.free(value);
        freed.push(value);
      }
      break;
    case 'freeTwice': {
      // Only what is free now: an object handed out again is live, and freeing it is a free.
      const stale = freed.filter((f) => !live.some((l) => l.value === f));
      if (stale.length > 0) pool.free(stale[o.pick % stale.length]);
      break;
    }
    case 'foreign':
      pool.free(new Float64Array(8));
      break;
    case 'trim':
      pool.trim();
      break;
    case 'clearCache':
      pool.clearCache();
      break;
  }
}

describe.each(BACKENDS)('slabpool/compat on the %s backend: live allocations never overlap', (backend) => {
  it(`over ${runs} random sequences of every dtype and size (seed ${seed})`, () => {
    let operations = 0;
    fc.assert(
      fc.property(fc.array(ops, { maxLength: 150, size: 'max' }), (sequence) => {
        const pool = createTypedArrayPool({ backend, strict: false });
        const live: Live[] = [];
        const freed: Pooled[] = [];
        const stampSeq = { next: 0 };
        try {
          for (const o of sequence) {
            operations++;
            apply(pool, live, freed, o, stampSeq);
            pool.check();
            checkDisjoint(live, false);
          }
          checkDisjoint(live, true);
          const s = pool.stats();
          expect(s.classes.reduce((sum, c) => sum + c.liveBlocks, 0) + s.arrayBuffers.live).toBe(live.length);
        } finally {
          for (const { value } of live) pool.free(value);
          pool.clearCache();
        }
      }),
      { numRuns: runs, seed, verbose: 1 },
    );
    console.log(`fuzz: compat on ${backend}: ${operations} operations in ${runs} runs (seed ${seed})`);
  }, Math.max(60_000, runs * 100)); // check() walks every class pool after each operation: ~25 ms a run
});
