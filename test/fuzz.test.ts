import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PoolOptions } from '../lib/index.js';
import { BACKENDS, fuzzSettings } from './helpers.js';
import { Harness, type Model } from './model.js';
import { applyOperation, callText, OPERATION_LIST, type OperationName } from './operations.js';

/*
 * Model-based fuzzing with fast-check: random pool configurations, random sequences of the
 * commands of test/operations.ts (gets, runs, leases, returns by view, by index and by disposal,
 * stale returns, wrong calls of every kind, coalesce, trim, growth to the cap, metrics, rarely
 * destroy), each checked against the model with check() and exact figures after every command. A
 * failure prints the shrunk sequence with the seed and path that replay it. npm test runs a
 * fixed-seed slice; `npm run fuzz` runs it at full size
 * (SLABPOOL_FUZZ=full, SLABPOOL_FUZZ_RUNS, SLABPOOL_FUZZ_SEED).
 */

const { full, runs, seed } = fuzzSettings(4000, 30, 20261124);
const maxCommands = full ? 600 : 200;

class Step implements fc.Command<Model, Harness> {
  constructor(
    readonly name: OperationName,
    readonly args: readonly number[],
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.destroyed;
  }
  run(_m: Model, h: Harness): void {
    applyOperation(h, this.name, this.args);
    h.verify();
  }
  toString(): string {
    return callText(this.name, this.args);
  }
}

// fast-check wants integer weights; hundredths keep destroy's 0.04.
const commands = fc.oneof(
  ...OPERATION_LIST.map((op) => ({
    weight: Math.round(op.weight * 100),
    arbitrary: fc.tuple(...op.args.map(() => fc.nat())).map((args) => new Step(op.name, args)),
  })),
);

const configs = fc
  .record({
    blockSize: fc.integer({ min: 1, max: 6 }),
    numBlocks: fc.integer({ min: 1, max: 48 }),
    grow: fc.boolean(),
    extra: fc.integer({ min: 0, max: 100 }),
    autoCoalesceThreshold: fc.constantFrom(0, 20, 50, 100),
    poison: fc.constantFrom('none' as const, 'nan' as const),
    alignment: fc.constantFrom(8, 64, 256),
    detach: fc.boolean(),
  })
  .map(({ extra, grow, ...rest }): Omit<PoolOptions, 'backend'> => ({ ...rest, grow, ...(grow ? { maxBlocks: rest.numBlocks + extra } : {}) }));

describe.each(BACKENDS)('fast-check model-based fuzzing on the %s backend', (backend) => {
  it(`runs ${runs} random configurations and command sequences (seed ${seed})`, () => {
    let operations = 0;
    fc.assert(
      fc.property(configs, fc.commands([commands], { maxCommands, size: 'max' }), (options, cmds) => {
        const h = new Harness(backend, options);
        try {
          fc.modelRun(() => ({ model: h.model, real: h }), cmds);
        } finally {
          operations += h.operations;
          h.dispose();
        }
      }),
      { seed, numRuns: runs },
    );
    console.log(`fuzz: ${backend}: ${operations} operations in ${runs} runs (seed ${seed})`);
    expect(operations).toBeGreaterThan(runs * 10);
  });
});
