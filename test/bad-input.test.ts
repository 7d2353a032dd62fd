import { describe, expect, it } from 'vitest';
import { MemoryPool, type PoolOptions } from '../lib/index.js';
import { BACKENDS, MISSING, WRONG_VALUES, makePool } from './helpers.js';

/*
 * The bad-input matrix: every option and every method argument against every kind of wrong value.
 * An oracle says which values are in fact valid for which parameter; every other one must be
 * refused with a TypeError (wrong type) or RangeError (wrong value) coded ERR_SLABPOOL_*, whose
 * message names the parameter, and a rejected call must leave the pool exactly as it was.
 */

const values = WRONG_VALUES;

type Verdict = 'ok' | 'TypeError' | 'RangeError';
const absent = (v: unknown) => v === MISSING || v === undefined;
const numeric = (v: unknown, valid: (n: number) => boolean, optional: boolean): Verdict =>
  optional && absent(v) ? 'ok' : typeof v !== 'number' ? 'TypeError' : valid(v) ? 'ok' : 'RangeError';
const choice = (v: unknown, choices: string[]): Verdict =>
  absent(v) ? 'ok' : typeof v !== 'string' ? 'TypeError' : choices.includes(v) ? 'ok' : 'RangeError';
const int = (min: number, max: number) => (n: number) => Number.isInteger(n) && n >= min && n <= max;

const base = { blockSize: 4, numBlocks: 8, grow: true } as const;
const options: [keyof PoolOptions, (v: unknown) => Verdict][] = [
  ['blockSize', (v) => (Array.isArray(v) ? 'RangeError' : numeric(v, int(1, 2 ** 29), false))],
  ['numBlocks', (v) => numeric(v, int(1, 2 ** 30), false)],
  ['alignment', (v) => numeric(v, (n) => int(8, 4096)(n) && (n & (n - 1)) === 0, true)],
  ['grow', (v) => (absent(v) || typeof v === 'boolean' ? 'ok' : 'TypeError')],
  ['hugePages', (v) => (absent(v) || typeof v === 'boolean' ? 'ok' : 'TypeError')],
  ['prefault', (v) => (absent(v) || typeof v === 'boolean' ? 'ok' : 'TypeError')],
  ['maxBlocks', (v) => numeric(v, int(8, 2 ** 30), true)],
  ['autoCoalesceThreshold', (v) => numeric(v, (n) => n >= 0 && n <= 100, true)],
  ['poison', (v) => choice(v, ['none', 'nan'])],
  ['backend', (v) => choice(v, ['auto', 'native', 'js'])],
  ['type', (v) => (absent(v) ? 'ok' : 'TypeError')], // none of the values is a typed-array constructor
];

function attempt(fn: () => unknown): { name?: string; code?: string; message?: string } | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    const e = err as Error & { code?: string };
    return { name: e.name, code: e.code, message: e.message };
  }
}

describe.each(BACKENDS)('the bad-input matrix on the %s backend', (backend) => {
  it.each(options)('option %s against every kind of value', (name, verdict) => {
    for (const [label, value] of values) {
      const opts: Record<string, unknown> = { ...base, backend };
      if (value === MISSING) delete opts[name];
      else opts[name] = value;
      if (name === 'backend' && value !== MISSING && value !== undefined) opts.backend = value;
      const expected = verdict(value);
      const result = attempt(() => new MemoryPool(opts as unknown as PoolOptions));
      if (expected === 'ok') {
        expect(result, `${name}: ${label} should be accepted`).toBe('ok');
        continue;
      }
      expect(result, `${name}: ${label}`).toMatchObject({ name: expected, code: 'ERR_SLABPOOL_INVALID_ARG' });
      expect((result as { message: string }).message, `${name}: ${label}`).toMatch(new RegExp(`^Expected .+ for ${name}(\\[\\d+\\])? but received `));
    }
  });

  // Arguments of methods, each against every kind of value, on a pool with blocks in use and free.
  const methods: [string, (pool: MemoryPool, v: unknown) => unknown, (v: unknown) => [Verdict, string]][] = [
    ['getRun(count)', (p, v) => (v === MISSING ? (p.getRun as () => unknown)() : p.getRun(v as number)), (v) => [numeric(v, int(1, 8), false), 'ERR_SLABPOOL_INVALID_ARG']],
    ['getRunZeroed(count)', (p, v) => (v === MISSING ? (p.getRunZeroed as () => unknown)() : p.getRunZeroed(v as number)), (v) => [numeric(v, int(1, 8), false), 'ERR_SLABPOOL_INVALID_ARG']],
    [
      'returnBlock(block)',
      (p, v) => (v === MISSING ? (p.returnBlock as () => unknown)() : p.returnBlock(v as number)),
      // Block 0 exists and is free: returning it by index is a double return.
      (v) => (typeof v !== 'number' ? ['TypeError', 'ERR_SLABPOOL_INVALID_ARG'] : v === 0 ? ['RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN'] : ['RangeError', 'ERR_SLABPOOL_INVALID_ARG']),
    ],
    ['indexOf(block)', (p, v) => (v === MISSING ? (p.indexOf as () => unknown)() : p.indexOf(v as Float64Array)), () => ['TypeError', 'ERR_SLABPOOL_INVALID_ARG']],
    ['addressOf(block)', (p, v) => (v === MISSING ? (p.addressOf as () => unknown)() : p.addressOf(v as Float64Array)), () => ['TypeError', 'ERR_SLABPOOL_INVALID_ARG']],
  ];

  it.each(methods)('%s against every kind of value, leaving the pool unchanged', (_name, call, verdict) => {
    const pool = makePool(backend, { blockSize: 4, numBlocks: 8 });
    const held = [pool.getBlock()!, pool.getBlock()!, pool.getRun(2)!];
    pool.returnBlock(held[0]!); // block 0 free again
    pool.coalesce();
    for (const [label, value] of values) {
      const before = pool.stats();
      const [expected, code] = verdict(value);
      const result = attempt(() => call(pool, value));
      expect(result, label).toMatchObject({ name: expected, code });
      expect(pool.stats(), `${label}: stats changed`).toEqual(before);
      pool.check();
    }
  });
});

describe('the size of the matrix', () => {
  it('covers every option and method argument with every kind of value', () => {
    expect(values.length).toBe(18);
    expect(options.map(([n]) => n).sort()).toEqual(['alignment', 'autoCoalesceThreshold', 'backend', 'blockSize', 'grow', 'hugePages', 'maxBlocks', 'numBlocks', 'poison', 'prefault', 'type']);
  });
});
