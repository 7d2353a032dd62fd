import { rng } from './helpers.js';

/*
 * Every operation the random tests apply to a pool, named once with how often it is drawn and the
 * numbers it takes. Three drivers are built from this table: the seeded walk (test/model.ts) and
 * fast-check's commands (test/fuzz.test.ts) apply it to the model Harness, which predicts every
 * outcome; the differential test applies it to a js and a native pool side by side and compares
 * every outcome. Each of those is a `Target`, so an operation added here does not compile until
 * all of them implement it.
 *
 * Arguments are natural numbers, so any source can feed them: a seeded PRNG draws them below 2^30,
 * fast-check's fc.nat() shrinks them towards 0. A target reduces each one modulo what it picks
 * from: `pick` chooses among the candidates (held blocks, views given back, ...) as
 * `candidates[pick % candidates.length]`; an operation with no candidate does nothing.
 */

interface Operation {
  /** Relative frequency; the weights add up to about 100. */
  readonly weight: number;
  /** Names of its number arguments. */
  readonly args: readonly string[];
  /**
   * Ends the pool. fast-check draws it like the others (and skips the commands after it); the
   * seeded drivers run it once, after their last step, so their pools live for every step.
   */
  readonly terminal?: true;
}

export const OPERATIONS = {
  // Acquisitions, each succeeding or returning null (growing first when the pool must and may).
  getBlock: { weight: 20, args: [] },
  /** getRun(1 + length % slabBlocks); the differential test keeps to runs of at most 10 blocks. */
  getRun: { weight: 8, args: ['length'] },
  lease: { weight: 5, args: [] },
  // The zeroed forms: what the plain call would hand out, every element zero (held blocks carry
  // stamps that are never zero, so a block handed out again without its fill shows).
  getBlockZeroed: { weight: 5, args: [] },
  /** getRunZeroed(1 + length % slabBlocks), as getRun. */
  getRunZeroed: { weight: 3, args: ['length'] },
  leaseZeroed: { weight: 1, args: [] },

  // Giving back something held.
  /** returnBlock(view): a block, a run, or a lease's block (which ends the lease). */
  returnHeld: { weight: 19, args: ['pick'] },
  /** returnBlock(index of the block or of the run's first block), a lease's block too. */
  returnHeldByIndex: { weight: 8, args: ['pick'] },
  /** Disposes a held lease. */
  endLease: { weight: 3, args: ['pick'] },
  /** pin(a held block, run or leased block): until unpin, every return of it throws ERR_SLABPOOL_PINNED and changes nothing. */
  pin: { weight: 3, args: ['pick'] },
  /** Releases a live pin; a pin is released at most once here (release() again is a no-op, tested in pin.test.ts). */
  unpin: { weight: 3, args: ['pick'] },

  // Returns that may be right or wrong: taken back if the block is held again, else refused.
  /** returnBlock(a view given back earlier): refused, unless its block was handed out again as that view. */
  returnStale: { weight: 5, args: ['pick'] },
  /** returnBlock(index % (3 * slabBlocks) - 2): negative, free, held, inside a run, past a slab. */
  returnAnyIndex: { weight: 3, args: ['index'] },

  // Wrong calls: each must throw its code and leave the pool unchanged.
  /** returnBlock(the index of a free block): ERR_SLABPOOL_DOUBLE_RETURN */
  returnFreeIndex: { weight: 1, args: ['pick'] },
  /** returnBlock(an index inside a held run, past its first block): ERR_SLABPOOL_INVALID_ARG */
  returnInsideRun: { weight: 1, args: ['pick'] },
  /** returnBlock(held.subarray(0, 1)): ERR_SLABPOOL_FOREIGN_BLOCK */
  returnHead: { weight: 1, args: ['pick'] },
  /** returnBlock(held.subarray(1)), empty for a one-element block: ERR_SLABPOOL_FOREIGN_BLOCK */
  returnTail: { weight: 1, args: ['pick'] },
  /** returnBlock(a typed array of a block's length, not from any pool): ERR_SLABPOOL_FOREIGN_BLOCK */
  returnPlainArray: { weight: 1, args: [] },
  /** returnBlock(a block of another pool with the same options): ERR_SLABPOOL_FOREIGN_BLOCK */
  returnOtherPoolsBlock: { weight: 1, args: [] },
  /** returnBlock(the first index past every slab slot): ERR_SLABPOOL_INVALID_ARG */
  returnPastTheEnd: { weight: 1, args: [] },
  /** returnBlock(-1): ERR_SLABPOOL_INVALID_ARG */
  returnNegativeIndex: { weight: 1, args: [] },
  /** getRun(slabBlocks + 1): ERR_SLABPOOL_INVALID_ARG */
  getRunTooLong: { weight: 1, args: [] },

  // The whole pool.
  coalesce: { weight: 4, args: [] },
  /** trim(): the bytes of every empty slab but the first. */
  trim: { weight: 4, args: [] },
  /** getFragmentation() and getEfficiency() */
  metrics: { weight: 4, args: [] },
  /** destroy(), then every view dark and every call refused; in fast-check about one command in 2500. */
  destroy: { weight: 0.04, args: [], terminal: true },
} as const satisfies Record<string, Operation>;

export type OperationName = keyof typeof OPERATIONS;

type Numbers<A extends readonly string[]> = { -readonly [I in keyof A]: number };

/** Something every operation can be applied to: a method per operation, taking its numbers. */
export type Target = { [K in OperationName]: (...args: Numbers<(typeof OPERATIONS)[K]['args']>) => void };

const NAMES = Object.keys(OPERATIONS) as OperationName[];
const table: Readonly<Record<OperationName, Operation>> = OPERATIONS;

/** Every operation: name, weight, argument names, whether it is terminal. */
export const OPERATION_LIST = NAMES.map((name) => ({ name, ...table[name] }));

export function applyOperation(target: Target, name: OperationName, args: readonly number[]): void {
  (target[name] as (...a: number[]) => void).apply(target, [...args]);
}

/** How a call reads in a failure: `getRun(7)`. */
export function callText(name: OperationName, args: readonly number[]): string {
  return `${name}(${args.join(', ')})`;
}

/**
 * `steps` operations drawn by weight with a PRNG seeded by `seed`, each followed by `settle(step)`,
 * then each terminal operation once. A failure names the seed, the step and the call.
 */
export function runSeeded(target: Target, seed: number, steps: number, settle: (step: number) => void): void {
  const random = rng(seed);
  const drawn = OPERATION_LIST.filter((op) => !op.terminal);
  const total = drawn.reduce((sum, op) => sum + op.weight, 0);
  const numbers = (op: (typeof OPERATION_LIST)[number]) => op.args.map(() => Math.floor(random() * 2 ** 30));
  const run = (where: string, name: OperationName, args: number[], then: () => void) => {
    try {
      applyOperation(target, name, args);
      then();
    } catch (err) {
      (err as Error).message = `seed ${seed}, ${where}, ${callText(name, args)}: ${(err as Error).message}`;
      throw err;
    }
  };
  for (let step = 0; step < steps; step++) {
    let r = random() * total;
    const op = drawn.find((o) => (r -= o.weight) < 0) ?? drawn[drawn.length - 1]!;
    run(`step ${step}`, op.name, numbers(op), () => settle(step));
  }
  for (const op of OPERATION_LIST) if (op.terminal) run('after the last step', op.name, numbers(op), () => {});
}
