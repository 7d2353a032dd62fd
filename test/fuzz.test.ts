import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PoolOptions } from '../lib/index.js';
import { BACKENDS, fuzzSettings } from './helpers.js';
import { Harness, type Model } from './model.js';

/*
 * Model-based fuzzing with fast-check: random pool configurations, random sequences of commands
 * (gets, runs, returns by view and by index, leases, wrong returns of every kind, coalesce, trim,
 * growth to the cap, metrics, destroy), each checked against the model with check() and exact
 * figures after every command. A failure prints the shrunk sequence with the seed and path that
 * replay it. npm test runs a fixed-seed slice; `npm run fuzz` runs it at full size
 * (SLABPOOL_FUZZ=full, SLABPOOL_FUZZ_RUNS, SLABPOOL_FUZZ_SEED).
 */

const { full, runs, seed } = fuzzSettings(4000, 30, 20261124);
const maxCommands = full ? 600 : 200;

class Step implements fc.Command<Model, Harness> {
  constructor(
    readonly name: string,
    readonly act: (h: Harness) => void,
  ) {}
  check(m: Readonly<Model>): boolean {
    return !m.destroyed;
  }
  run(_m: Model, h: Harness): void {
    this.act(h);
    h.verify();
  }
  toString(): string {
    return this.name;
  }
}

const step = (name: string, act: (h: Harness) => void) => fc.constant(new Step(name, act));
const getBlock = step('getBlock()', (h) => h.getBlock());
const returnHeld = fc.tuple(fc.nat(), fc.boolean()).map(([pick, byIndex]) => new Step(`return(${pick}${byIndex ? ', by index' : ''})`, (h) => h.returnHeld(pick, byIndex)));
const commands = [
  getBlock,
  getBlock,
  getBlock,
  fc.nat(64).map((k) => new Step(`getRun(${k})`, (h) => h.getRun(k))),
  returnHeld,
  returnHeld,
  returnHeld,
  step('lease()', (h) => h.lease()),
  step('coalesce()', (h) => h.coalesce()),
  step('trim()', (h) => h.trim()),
  fc.tuple(fc.nat(), fc.nat()).map(([kind, pick]) => new Step(`wrongReturn(${kind}, ${pick})`, (h) => h.wrongReturn(kind, pick))),
  // Rarely the end: destroy, then every call must be refused.
  fc.nat(199).map((r) => (r === 0 ? new Step('destroy()', (h) => h.destroy()) : new Step('metrics()', (h) => h.metrics()))),
];

const configs = fc
  .record({
    blockSize: fc.integer({ min: 1, max: 6 }),
    numBlocks: fc.integer({ min: 1, max: 48 }),
    grow: fc.boolean(),
    extra: fc.integer({ min: 0, max: 100 }),
    autoCoalesceThreshold: fc.constantFrom(0, 20, 50, 100),
    poison: fc.constantFrom('none' as const, 'nan' as const),
    alignment: fc.constantFrom(8, 64, 256),
  })
  .map(({ extra, grow, ...rest }): Omit<PoolOptions, 'backend'> => ({ ...rest, grow, ...(grow ? { maxBlocks: rest.numBlocks + extra } : {}) }));

describe.each(BACKENDS)('fast-check model-based fuzzing on the %s backend', (backend) => {
  it(`runs ${runs} random configurations and command sequences (seed ${seed})`, () => {
    let operations = 0;
    fc.assert(
      fc.property(configs, fc.commands(commands, { maxCommands, size: 'max' }), (options, cmds) => {
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
