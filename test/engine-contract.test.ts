import { afterEach, describe, expect, it, vi } from 'vitest';
import { BlockState, Counter, SCRATCH_LENGTH, type Engine, type EngineConfig } from '../lib/engine.js';
import { engineFactory } from '../lib/loader.js';
import { RunIndex } from '../lib/run-index.js';
import { BACKENDS, rng, thrownBy } from './helpers.js';

/*
 * The engine contract (lib/engine.ts) tested on each engine directly, including inputs the pool
 * never sends, and a differential walk of raw engine calls, valid and invalid, that both engines
 * must answer alike: same results, same counters, same refusals (ERR_SLABPOOL_INTERNAL), same
 * check() findings. The pool-level suites cannot see a drift here, because the pool never asks.
 * Placement is held to a brute-force reading of the layout over many bitmap words and slots
 * (first fit for acquireRun, lowest first for acquire), and bugs planted in the run index under
 * the js engine must be caught.
 */

type Kind = 'js' | 'native';
const GEOMETRIES: [string, EngineConfig][] = [
  ['8 blocks of 24 bytes at 64', { blockBytes: 24, stride: 64, alignment: 64, slabBlocks: 8, detach: false }],
  ['37 blocks of 8 bytes at 8', { blockBytes: 8, stride: 8, alignment: 8, slabBlocks: 37, detach: false }],
  ['16 blocks of 512 bytes at 512 (mapped slabs)', { blockBytes: 512, stride: 512, alignment: 512, slabBlocks: 16, detach: false }],
];

const make = (kind: Kind, config: EngineConfig): Engine => engineFactory(kind)(config);
const counters = (e: Engine) => [...e.counters];

/** Writes `values` to the engine's scratch list; returns how many, for the call that reads them. */
function list(e: Engine, ...values: number[]): number {
  e.scratch.set(values);
  return values.length;
}

interface Outcome {
  value?: unknown;
  error?: { name: string; code: unknown };
}

function attempt(fn: () => unknown): Outcome {
  try {
    const value = fn();
    return { value: value instanceof ArrayBuffer ? `ArrayBuffer` : typeof value === 'bigint' ? 'bigint' : value };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    expect(e.message).toMatch(/^slabpool internal error: /);
    return { error: { name: e.name, code: e.code } };
  }
}

/** Asserts fn is refused with ERR_SLABPOOL_INTERNAL and leaves the counters as they were. */
function expectRefused(engine: Engine, fn: () => unknown): void {
  const before = counters(engine);
  const err = thrownBy(fn);
  expect({ name: err.name, code: err.code }).toEqual({ name: 'Error', code: 'ERR_SLABPOOL_INTERNAL' });
  expect(err.message).toMatch(/^slabpool internal error: /);
  expect(counters(engine)).toEqual(before);
}

/** Block states of a pool that holds every block in `allocated` singly. */
function statesFor(length: number, allocated: Iterable<number>): Uint8Array {
  const states = new Uint8Array(length);
  for (const i of allocated) states[i] = BlockState.Held;
  return states;
}

describe.each(BACKENDS)('the engine geometry on the %s engine', (kind) => {
  it('refuses at construction every geometry outside the contract', () => {
    const good = { blockBytes: 24, stride: 64, alignment: 64, slabBlocks: 8, detach: false };
    for (const bad of [
      { alignment: 48 },
      { alignment: 4 },
      { alignment: 8192, stride: 8192 },
      { stride: 96 },
      { stride: 0 },
      { blockBytes: 0 },
      { blockBytes: 65 },
      { blockBytes: 1.5 },
      { slabBlocks: 0 },
      { slabBlocks: 2 ** 30 + 1 },
      { slabBlocks: 2 ** 26 + 1 }, // 64-byte strides: one block past 4 GiB
      { stride: 2 ** 32 + 64, blockBytes: 2 ** 32 + 1, slabBlocks: 1 },
      { stride: -64 },
      { stride: NaN },
    ]) {
      const err = thrownBy(() => make(kind, { ...good, ...bad }));
      expect({ name: err.name, code: err.code }, JSON.stringify(bad)).toEqual({ name: 'Error', code: 'ERR_SLABPOOL_INTERNAL' });
      expect(err.message).toMatch(/^slabpool internal error: /);
    }
  });

  it('accepts a slab of one 4 GiB block, the largest there is', () => {
    const e = make(kind, { blockBytes: 2 ** 32, stride: 2 ** 32, alignment: 4096, slabBlocks: 1, detach: false });
    expect(e.addSlab(0, 1)).toBe(true);
    expect(counters(e)).toEqual([1, 1, 1, 1, 2 ** 32, 0]);
    expect(e.acquireRun(1)).toBe(0);
    e.releaseRun(0, 1);
    e.destroy();
    const many = make(kind, { blockBytes: 64, stride: 64, alignment: 64, slabBlocks: 2 ** 26, detach: false });
    many.destroy();
  });
});

/**
 * The lifetime rule (engine.ts): freeSlab() and destroy() detach nothing; the buffer keeps its
 * length and reads zeros where the engine decommitted native memory, or what it held where V8
 * owns the memory; with `detach`, it has length 0.
 */
function expectReleased(e: Engine, buffer: ArrayBuffer, base: number, bytes: number, filled: number): void {
  const view = new Uint8Array(buffer, base, bytes);
  const want = e.memory === 'external' ? 0 : filled;
  expect([buffer.byteLength >= bytes, view[0], view[bytes - 1]]).toEqual([true, want, want]);
}

describe.each(BACKENDS)('the detach option on the %s engine', (kind) => {
  it('detaches the buffer of every slab freeSlab() and destroy() release, and only then', () => {
    for (const detach of [false, true]) {
      const e = make(kind, { blockBytes: 64, stride: 64, alignment: 64, slabBlocks: 128, detach });
      expect(e.addSlab(0, 128) && e.addSlab(1, 128)).toBe(true);
      const [first, second] = [e.slabBuffer(0), e.slabBuffer(1)];
      e.freeSlab(1);
      expect(second.byteLength >= 128 * 64, `detach: ${detach}`).toBe(!detach);
      e.destroy();
      expect(first.byteLength > 0, `detach: ${detach}`).toBe(!detach);
    }
  });
});

describe.each(BACKENDS)('the engine contract on the %s engine', (kind) => {
  describe.each(GEOMETRIES)('with %s', (_label, config) => {
    const n = config.slabBlocks;
    const fresh = () => {
      const e = make(kind, config);
      expect(e.addSlab(0, n)).toBe(true);
      return e;
    };

    it('starts empty, and addSlab adds a slab of free blocks with exact counters', () => {
      const e = make(kind, config);
      expect(counters(e)).toEqual([0, 0, 0, 0, 0, Infinity]);
      expect(e.addSlab(0, n)).toBe(true);
      expect(counters(e)).toEqual([n, n, n, 1, n * config.stride, 0]);
      expect(e.slabFree(0)).toBe(n);
      expect(e.slabBase(0)).toBeGreaterThanOrEqual(0);
      expect(e.slabBase(0)).toBeLessThan(config.alignment);
      expect(e.slabBuffer(0).byteLength - e.slabBase(0)).toBeGreaterThanOrEqual(n * config.stride);
      const address = e.slabAddress(0);
      if (kind === 'js') expect(address).toBeNull();
      else expect((address as bigint) % BigInt(config.alignment)).toBe(0n);
      expect(e.addSlab(1, 1)).toBe(true);
      expect(counters(e)).toEqual([n + 1, n, n + 1, 2, (n + 1) * config.stride, 0]);
      expect(e.check(new Uint8Array(2 * n), 0)).toBeNull();
      e.destroy();
    });

    it('refuses a slot that is taken or out of order, and slab sizes outside 1..slabBlocks', () => {
      const e = fresh();
      for (const [slot, blocks] of [[0, 1], [2, 1], [-1, 1], [1.5, 1], [1, 0], [1, n + 1], [1, 0.5], [1, NaN], [1, -1]] as const) {
        expectRefused(e, () => e.addSlab(slot, blocks));
      }
      e.destroy();
    });

    it('acquire takes the lowest free blocks and lists them in scratch highest first, writing nothing past them', () => {
      const e = fresh();
      expect(e.acquire(0)).toBe(0);
      const k = Math.min(3, n);
      e.scratch.fill(-7);
      expect(e.acquire(k)).toBe(k);
      expect([...e.scratch.subarray(0, k)]).toEqual([...Array(k).keys()].reverse());
      expect(e.scratch.subarray(k).every((v) => v === -7)).toBe(true);
      expect(counters(e)[Counter.Free]).toBe(n - k);
      expect(counters(e)[Counter.Largest]).toBe(n - k);
      expect(e.acquire(SCRATCH_LENGTH)).toBe(n - k); // only what is left
      expect(e.acquire(1)).toBe(0);
      expect(counters(e)[Counter.Largest]).toBe(0);
      expectRefused(e, () => e.acquire(SCRATCH_LENGTH + 1));
      expectRefused(e, () => e.acquire(-1));
      expectRefused(e, () => e.acquire(0.5));
      expectRefused(e, () => e.acquire(NaN));
      e.destroy();
    });

    it('acquire takes the lowest free block again after a release below the blocks it last took', () => {
      const e = fresh();
      e.acquire(n);
      e.release(list(e, n - 1, 0));
      expect(e.acquire(1)).toBe(1);
      expect(e.scratch[0]).toBe(0);
      e.destroy();
    });

    it('release merges neighbours at once, and refuses a block that is not allocated after freeing those before it', () => {
      const e = fresh();
      e.acquire(n);
      expect(e.release(list(e, 0, 2))).toBeUndefined();
      expect(counters(e)[Counter.Largest]).toBe(1);
      e.release(list(e, 1));
      expect(counters(e)[Counter.Largest]).toBe(3);
      expect(counters(e)[Counter.Free]).toBe(3);
      expectRefused(e, () => e.release(list(e, 1))); // free already
      expectRefused(e, () => e.release(list(e, n))); // no such block
      expectRefused(e, () => e.release(list(e, -1)));
      expectRefused(e, () => e.release(SCRATCH_LENGTH + 1)); // count past the scratch list
      expectRefused(e, () => e.release(-1));
      expectRefused(e, () => e.release(0.5));
      // A refusal part-way: the blocks before the bad one stay freed, on both engines.
      let thrown: unknown;
      try {
        e.release(list(e, 3, 1, 4));
      } catch (err) {
        thrown = err;
      }
      expect((thrown as { code?: string }).code).toBe('ERR_SLABPOOL_INTERNAL');
      expect(counters(e)[Counter.Free]).toBe(4);
      expect(e.check(statesFor(n, [...Array(n).keys()].filter((i) => i > 3)), 0)).toBeNull();
      e.destroy();
    });

    it('acquireRun is first fit, -1 when no run is long enough, and refuses k = 0', () => {
      const e = fresh();
      e.acquire(n);
      // Free runs of 1 at 0 and of 3 at 2 (if the slab has room): first fit for 2 is at 2.
      if (n >= 5) {
        e.release(list(e, 0, 2, 3, 4));
        expect(e.acquireRun(2)).toBe(2);
        expect(e.acquireRun(1)).toBe(0);
        expect(e.acquireRun(2)).toBe(-1);
        expect(e.acquireRun(1)).toBe(4);
      }
      expect(e.acquireRun(n + 1)).toBe(-1);
      expectRefused(e, () => e.acquireRun(0));
      expectRefused(e, () => e.acquireRun(1.5));
      expectRefused(e, () => e.acquireRun(-1));
      e.destroy();
    });

    it('releaseRun frees exactly an allocated run inside one slab', () => {
      const e = fresh();
      const k = Math.min(4, n);
      expect(e.acquireRun(k)).toBe(0);
      expectRefused(e, () => e.releaseRun(0, 0));
      expectRefused(e, () => e.releaseRun(0, n + 1));
      expectRefused(e, () => e.releaseRun(n - 1, 2));
      if (k < n) expectRefused(e, () => e.releaseRun(0, k + 1)); // block k is free
      e.releaseRun(0, k);
      expect(counters(e)).toEqual([n, n, n, 1, n * config.stride, 0]);
      expectRefused(e, () => e.releaseRun(0, k));
      e.destroy();
    });

    it('largestRunWith counts cached blocks as free, and refuses an index that is not a block allocated here', () => {
      const e = fresh();
      e.acquire(n);
      expect(e.largestRunWith(0)).toBe(0);
      if (n >= 3) {
        e.release(list(e, 0));
        expect(e.largestRunWith(list(e, 2, 1))).toBe(3);
        expect(e.largestRunWith(list(e, 2))).toBe(1);
        expectRefused(e, () => e.largestRunWith(list(e, 0))); // free in the engine
      }
      expectRefused(e, () => e.largestRunWith(list(e, n)));
      expectRefused(e, () => e.largestRunWith(list(e, -1)));
      expectRefused(e, () => e.largestRunWith(SCRATCH_LENGTH + 1)); // count past the scratch list
      e.destroy();
    });

    it('freeSlab gives back only a wholly free slab, and slots can be filled again', () => {
      const e = fresh();
      expect(e.addSlab(1, n)).toBe(true);
      expect(e.acquireRun(1)).toBe(0);
      expectRefused(e, () => e.freeSlab(0));
      expectRefused(e, () => e.freeSlab(2));
      const buffer = e.slabBuffer(1);
      const base = e.slabBase(1);
      new Uint8Array(buffer, base).fill(7);
      expect(e.freeSlab(1)).toBe(n * config.stride);
      expectReleased(e, buffer, base, n * config.stride, 7);
      expect(counters(e)).toEqual([n - 1, n - 1, n, 1, n * config.stride, 1]);
      expectRefused(e, () => e.slabFree(1));
      expectRefused(e, () => e.slabBuffer(1));
      expect(e.addSlab(1, 2)).toBe(true);
      expect(e.slabFree(1)).toBe(2);
      e.destroy();
    });

    it('check() names the first broken invariant between pool and engine', () => {
      const e = fresh();
      e.acquire(1);
      const states = new Uint8Array(n);
      expect(e.check(states, list(e, 0))).toBeNull();
      expect(e.check(states, 0)).toBe('block 0 is allocated in the engine but neither in use nor cached by the pool');
      expect(e.check(states, list(e, 0, 0))).toBe('block 0 is cached twice');
      expect(e.check(states, list(e, n))).toBe(`cached block ${n} does not exist`);
      if (n > 1) expect(e.check(states, list(e, 0, 1))).toBe('cached block 1 is also free in the engine');
      states[0] = BlockState.Held;
      expect(e.check(states, 0)).toBeNull();
      if (n > 1) {
        states[1] = BlockState.RunStart;
        expect(e.check(states, 0)).toBe(`block 1 is free in the engine but the pool has it in state ${BlockState.RunStart}`);
      }
      expect(e.check(new Uint8Array(0), 0)).toBe("slab 0 lies past the pool's block states");
      expectRefused(e, () => e.check(states, SCRATCH_LENGTH + 1)); // count past the scratch list
      expectRefused(e, () => e.check(new Int32Array(n) as unknown as Uint8Array, 0));
      e.destroy();
    });

    it('after destroy(), every method but destroy() is refused', () => {
      const e = fresh();
      const buffer = e.slabBuffer(0);
      const base = e.slabBase(0);
      new Uint8Array(buffer, base).fill(5);
      e.destroy();
      expectReleased(e, buffer, base, n * config.stride, 5);
      expect(counters(e)).toEqual([0, 0, 0, 0, 0, Infinity]);
      for (const call of [
        () => e.addSlab(1, 1),
        () => e.freeSlab(0),
        () => e.slabFree(0),
        () => e.slabBuffer(0),
        () => e.slabBase(0),
        () => e.slabAddress(0),
        () => e.acquire(1),
        () => e.release(0),
        () => e.acquireRun(1),
        () => e.releaseRun(0, 1),
        () => e.largestRunWith(0),
        () => e.check(new Uint8Array(n), 0),
      ]) {
        expectRefused(e, call);
      }
      expect(e.destroy()).toBeUndefined(); // idempotent
    });
  });
});

/** The blocks allocated in an engine, found through check(): it names the first allocated block the pool does not account for. */
function allocatedBlocks(engine: Engine, length: number): number[] {
  const states = new Uint8Array(length);
  const found: number[] = [];
  for (;;) {
    const finding = /^block (\d+) is allocated in the engine but neither/.exec(engine.check(states, 0) ?? '');
    if (finding === null) return found;
    const i = Number(finding[1]);
    found.push(i);
    states[i] = BlockState.Held;
  }
}

/**
 * A random walk of raw engine calls, a third of them invalid, applied to both engines: every
 * outcome, every counter, every entry of scratch and every check() finding must be the same.
 */
function differentialWalk(seed: number, config: EngineConfig, steps: number): number {
  const random = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const engines = [make('js', config), make('native', config)] as const;
  const n = config.slabBlocks;
  const maxSlots = 4;
  const allocated = new Set<number>(); // blocks allocated in the engines
  const states = new Uint8Array(n * (maxSlots + 1));
  let compared = 0;
  for (const e of engines) e.addSlab(0, n);

  const both = (label: string, call: (e: Engine) => unknown): Outcome => {
    const [a, b] = [attempt(() => call(engines[0])), attempt(() => call(engines[1]))];
    expect(b, `seed ${seed}: ${label}`).toEqual(a);
    expect([...engines[1].scratch], `seed ${seed}: ${label}: scratch`).toEqual([...engines[0].scratch]);
    expect(counters(engines[1]), `seed ${seed}: ${label}: counters`).toEqual(counters(engines[0]));
    compared++;
    return a;
  };
  const anyIndex = () => int(-2, n * maxSlots + 1);
  /** `count` indices, each an allocated block with probability `ofAllocated` (if there is one), else any index. */
  const someIndices = (count: number, ofAllocated: number): number[] => {
    const picks = [...allocated];
    return [...Array(count)].map(() => (random() < ofAllocated && picks.length > 0 ? picks[int(0, picks.length - 1)]! : anyIndex()));
  };
  /** A count of scratch entries: mostly a few, sometimes the whole list or one past it. */
  const someCount = (few: number) => (random() < 0.05 ? int(SCRATCH_LENGTH, SCRATCH_LENGTH + 1) : int(0, few));
  const set = (values: number[]) => {
    for (const e of engines) e.scratch.set(values);
  };

  for (let step = 0; step < steps; step++) {
    const r = random();
    if (r < 0.1) {
      const slot = int(-1, maxSlots);
      const blocks = int(0, n + 1);
      both(`addSlab(${slot}, ${blocks})`, (e) => e.addSlab(slot, blocks));
    } else if (r < 0.17) {
      const slot = int(-1, maxSlots);
      both(`freeSlab(${slot})`, (e) => e.freeSlab(slot));
    } else if (r < 0.22) {
      const slot = int(-1, maxSlots);
      both(`slabFree(${slot})`, (e) => e.slabFree(slot));
      both(`slabBase(${slot})`, (e) => e.slabBase(slot) % 1); // the offset differs by memory: compare success only
    } else if (r < 0.42) {
      const max = random() < 0.9 ? int(-1, 20) : someCount(20);
      const out = both(`acquire(${max})`, (e) => e.acquire(max));
      if (typeof out.value === 'number') for (let j = 0; j < out.value; j++) allocated.add(engines[0].scratch[j]!);
    } else if (r < 0.6) {
      const count = someCount(4);
      const values = someIndices(Math.min(count, SCRATCH_LENGTH), 0.8);
      set(values);
      both(`release([${values}])`, (e) => e.release(count));
    } else if (r < 0.76) {
      const k = int(0, n + 1);
      const out = both(`acquireRun(${k})`, (e) => e.acquireRun(k));
      if (typeof out.value === 'number' && out.value >= 0) for (let j = 0; j < k; j++) allocated.add(out.value + j);
    } else if (r < 0.84) {
      const start = someIndices(1, 0.8)[0]!;
      const k = int(0, 4);
      both(`releaseRun(${start}, ${k})`, (e) => e.releaseRun(start, k));
    } else if (r < 0.94) {
      const count = someCount(4);
      const values = someIndices(Math.min(count, SCRATCH_LENGTH), 0.85);
      set(values);
      both(`largestRunWith([${values}])`, (e) => e.largestRunWith(count));
    } else {
      const count = int(0, 3);
      const values = someIndices(count, 1);
      set(values);
      states.fill(BlockState.Free);
      for (const i of allocated) states[i] = BlockState.Held;
      for (const v of values) states[v] = BlockState.Free;
      both(`check(cached [${values}])`, (e) => e.check(states, count));
    }
    // Keep the set of allocated blocks true to the engines (a refused release frees those before it).
    allocated.clear();
    for (const i of allocatedBlocks(engines[0], states.length)) allocated.add(i);
  }
  for (const e of engines) e.destroy();
  return compared;
}

describe.skipIf(!BACKENDS.includes('native'))('the js and native engines agree call for call', () => {
  it.each(GEOMETRIES)('with %s, valid and invalid calls alike', (_label, config) => {
    let compared = 0;
    for (const seed of [101, 202, 303, 404]) compared += differentialWalk(seed, config, 400);
    expect(compared).toBeGreaterThan(4 * 400);
  });
});

describe.each(BACKENDS)('the scratch list on the %s engine', (kind) => {
  const config: EngineConfig = { blockBytes: 8, stride: 8, alignment: 8, slabBlocks: 100, detach: false };

  it('is an Int32Array of SCRATCH_LENGTH (64) entries, the same one on every read', () => {
    const e = make(kind, config);
    expect(SCRATCH_LENGTH).toBe(64);
    expect(e.scratch).toBeInstanceOf(Int32Array);
    expect(e.scratch.length).toBe(SCRATCH_LENGTH);
    expect(e.scratch).toBe(e.scratch);
    e.destroy();
  });

  it('carries a batch of all 64 entries, and every method that reads or writes it refuses 65', () => {
    const e = make(kind, config);
    expect(e.addSlab(0, 100)).toBe(true);
    expectRefused(e, () => e.acquire(SCRATCH_LENGTH + 1));
    expect(e.acquire(SCRATCH_LENGTH)).toBe(SCRATCH_LENGTH);
    expect([...e.scratch]).toEqual([...Array(SCRATCH_LENGTH).keys()].reverse());
    expect(counters(e)).toEqual([36, 36, 100, 1, 800, 64]);
    expect(e.largestRunWith(SCRATCH_LENGTH)).toBe(100);
    expect(e.check(new Uint8Array(100), SCRATCH_LENGTH)).toBeNull();
    expectRefused(e, () => e.largestRunWith(SCRATCH_LENGTH + 1));
    expectRefused(e, () => e.check(new Uint8Array(100), SCRATCH_LENGTH + 1));
    expectRefused(e, () => e.release(SCRATCH_LENGTH + 1)); // frees none of the 64
    expect(e.release(SCRATCH_LENGTH)).toBeUndefined();
    expect(counters(e)).toEqual([100, 100, 100, 1, 800, 0]);
    expect(e.check(new Uint8Array(100), 0)).toBeNull();
    e.destroy();
  });
});

/**
 * The free blocks of an engine's slabs as a plain array, read by brute force: where first fit
 * and lowest-first put blocks, and what check() and the counters must say.
 */
class Layout {
  /** By global index: free in the engine. */
  readonly free: boolean[];
  /** Blocks of each slot's slab, 0 for an empty slot. */
  readonly blocks: number[];
  /** Blocks held singly (acquire) and runs held (acquireRun: start to length). */
  readonly singles = new Set<number>();
  readonly runs = new Map<number, number>();

  constructor(
    readonly slabBlocks: number,
    slots: number,
  ) {
    this.free = new Array<boolean>(slabBlocks * slots).fill(false);
    this.blocks = new Array<number>(slots).fill(0);
  }

  /** The maximal free runs [start, length] in address order, counting `extra` blocks as free too; none crosses a slab. */
  *freeRuns(extra: ReadonlySet<number> = new Set()): Generator<[number, number]> {
    for (let slot = 0; slot < this.blocks.length; slot++) {
      const base = slot * this.slabBlocks;
      let start = -1;
      for (let a = 0; a <= this.blocks[slot]!; a++) {
        const free = a < this.blocks[slot]! && (this.free[base + a]! || extra.has(base + a));
        if (free && start < 0) start = base + a;
        if (!free && start >= 0) {
          yield [start, base + a - start];
          start = -1;
        }
      }
    }
  }

  /** First fit: the start of the lowest free run of at least k, or -1. */
  firstFit(k: number): number {
    for (const [start, length] of this.freeRuns()) if (length >= k) return start;
    return -1;
  }

  /** Up to `max` of the lowest free blocks, lowest first. */
  lowest(max: number): number[] {
    const found: number[] = [];
    for (const [start, length] of this.freeRuns()) for (let i = start; i < start + length && found.length < max; i++) found.push(i);
    return found;
  }

  largest(extra?: ReadonlySet<number>): number {
    let best = 0;
    for (const [, length] of this.freeRuns(extra)) best = Math.max(best, length);
    return best;
  }

  counters(stride: number): number[] {
    const capacity = this.blocks.reduce((a, b) => a + b, 0);
    const free = this.free.filter(Boolean).length;
    const lowest = this.free.indexOf(true);
    return [free, this.largest(), capacity, this.blocks.filter((b) => b > 0).length, capacity * stride, lowest >= 0 ? lowest : Infinity];
  }

  /** The pool's block states for check(): held singles and runs, `cached` counted free. */
  states(cached: readonly number[] = []): Uint8Array {
    const states = new Uint8Array(this.free.length);
    for (const i of this.singles) states[i] = BlockState.Held;
    for (const [start, length] of this.runs) {
      states[start] = BlockState.RunStart;
      states.fill(BlockState.RunBody, start + 1, start + length);
    }
    for (const i of cached) states[i] = BlockState.Free;
    return states;
  }

  take(blocks: readonly number[]): void {
    for (const i of blocks) this.free[i] = false;
  }

  give(start: number, length: number): void {
    this.free.fill(true, start, start + length);
  }
}

const FIT_GEOMETRIES: [string, EngineConfig, number[]][] = [
  ['slabs of 100 blocks (4 bitmap words, the last partial), the third of 77', { blockBytes: 8, stride: 8, alignment: 8, slabBlocks: 100, detach: false }, [100, 100, 77]],
  ['slabs of 32 blocks (one bitmap word each)', { blockBytes: 8, stride: 8, alignment: 8, slabBlocks: 32, detach: false }, [32, 32, 32, 32, 32]],
  ['slabs of 1000 blocks (32 bitmap words each)', { blockBytes: 16, stride: 16, alignment: 16, slabBlocks: 1000, detach: false }, [1000, 1000]],
];

/**
 * Engines of `kinds` side by side with a Layout, over slabs of `sizes`: many short free runs in
 * the lower slots below one long run in the last, then a seeded random walk of acquireRun,
 * releaseRun, acquire, release, largestRunWith, freeSlab and addSlab. Every call's result (and
 * the blocks acquire lists in scratch) must be the brute-force answer on every engine, and after
 * every call check() must pass and the counters must match the layout on every engine. Returns
 * the first disagreement, or null.
 */
function placementWalk(seed: number, config: EngineConfig, sizes: readonly number[], steps: number, kinds: readonly Kind[]): string | null {
  const random = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const shuffled = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  };
  const n = config.slabBlocks;
  const layout = new Layout(n, sizes.length);
  const engines = kinds.map((kind) => make(kind, config));
  let step = -1;

  /** Calls `call` on every engine, in turn; the first answer that is not `want`, or null. */
  const apply = (label: string, want: unknown, call: (e: Engine) => unknown): string | null => {
    const at = `seed ${seed} step ${step}: ${label}`;
    for (const [i, e] of engines.entries()) {
      let got: unknown;
      try {
        got = call(e);
      } catch (err) {
        return `${at} on ${kinds[i]} threw ${(err as Error).message}`;
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) return `${at} on ${kinds[i]} gave ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
    }
    return null;
  };
  /** After a call: check() on every engine (with `cached` counted as cached), and the counters against the layout. */
  const verify = (label: string, cached: number[] = []): string | null => {
    const at = `seed ${seed} step ${step}: after ${label}`;
    const want = layout.counters(config.stride);
    for (const [i, e] of engines.entries()) {
      const problem = e.check(layout.states(cached), list(e, ...cached));
      if (problem !== null) return `${at}: check() on ${kinds[i]}: ${problem}`;
      if (JSON.stringify(counters(e)) !== JSON.stringify(want)) return `${at}: counters on ${kinds[i]} ${JSON.stringify(counters(e))}, the layout ${JSON.stringify(want)}`;
    }
    return null;
  };

  const addSlab = (slot: number, blocks: number) => {
    const problem = apply(`addSlab(${slot}, ${blocks})`, true, (e) => e.addSlab(slot, blocks));
    if (problem !== null) return problem;
    layout.blocks[slot] = blocks;
    layout.give(slot * n, blocks);
    return verify(`addSlab(${slot}, ${blocks})`);
  };
  const freeSlab = (slot: number) => {
    const problem = apply(`freeSlab(${slot})`, layout.blocks[slot]! * config.stride, (e) => e.freeSlab(slot));
    if (problem !== null) return problem;
    layout.free.fill(false, slot * n, slot * n + layout.blocks[slot]!);
    layout.blocks[slot] = 0;
    return verify(`freeSlab(${slot})`);
  };
  const acquire = (max: number) => {
    const want = layout.lowest(max).reverse();
    const problem = apply(`acquire(${max})`, want, (e) => [...e.scratch.subarray(0, e.acquire(max))]);
    if (problem !== null) return problem;
    layout.take(want);
    for (const i of want) layout.singles.add(i);
    return verify(`acquire(${max})`);
  };
  const release = (blocks: number[]) => {
    const label = `release([${blocks}])`;
    const problem = apply(label, undefined, (e) => e.release(list(e, ...blocks)));
    if (problem !== null) return problem;
    for (const i of blocks) {
      layout.singles.delete(i);
      layout.give(i, 1);
    }
    return verify(label);
  };
  const acquireRun = (k: number) => {
    const want = layout.firstFit(k);
    const problem = apply(`acquireRun(${k})`, want, (e) => e.acquireRun(k));
    if (problem !== null) return problem;
    if (want >= 0) {
      layout.free.fill(false, want, want + k);
      layout.runs.set(want, k);
    }
    return verify(`acquireRun(${k})`);
  };
  const releaseRun = (start: number) => {
    const k = layout.runs.get(start)!;
    const problem = apply(`releaseRun(${start}, ${k})`, undefined, (e) => e.releaseRun(start, k));
    if (problem !== null) return problem;
    layout.runs.delete(start);
    layout.give(start, k);
    return verify(`releaseRun(${start}, ${k})`);
  };
  const largestRunWith = (cached: number[]) => {
    const label = `largestRunWith([${cached}])`;
    return apply(label, layout.largest(new Set(cached)), (e) => e.largestRunWith(list(e, ...cached))) ?? verify(label, cached);
  };
  /** Up to `max` of the blocks held singly, at random, in random order. */
  const someSingles = (max: number) => shuffled([...layout.singles]).slice(0, max);
  /** Gives back everything held in `slot`, a batch or a run at a time. */
  const emptySlot = (slot: number): string | null => {
    const inSlot = (i: number) => Math.floor(i / n) === slot;
    for (const start of [...layout.runs.keys()].filter(inSlot)) {
      const problem = releaseRun(start);
      if (problem !== null) return problem;
    }
    const singles = shuffled([...layout.singles].filter(inSlot));
    for (let i = 0; i < singles.length; i += SCRATCH_LENGTH) {
      const problem = release(singles.slice(i, i + SCRATCH_LENGTH));
      if (problem !== null) return problem;
    }
    return null;
  };

  try {
    step = 0;
    for (const [slot, blocks] of sizes.entries()) {
      const problem = addSlab(slot, blocks);
      if (problem !== null) return problem;
    }
    // Every block taken, then given back as short runs (1, 2, 3 blocks, each after one held
    // block) in the lower slots and the start of the last one, and one long run above them.
    while (layout.lowest(1).length > 0) {
      const problem = acquire(SCRATCH_LENGTH);
      if (problem !== null) return problem;
    }
    const last = sizes.length - 1;
    const longFrom = last * n + Math.floor(sizes[last]! / 3);
    const toFree: number[] = [];
    for (let slot = 0; slot <= last; slot++) {
      let length = 1;
      // A held block after the last short run too, so that none joins the long run.
      for (let a = slot * n + 1; a + length < Math.min(slot * n + sizes[slot]!, longFrom); a += length + 1, length = (length % 3) + 1) {
        for (let j = 0; j < length; j++) toFree.push(a + j);
      }
    }
    for (let i = longFrom; i < last * n + sizes[last]!; i++) toFree.push(i);
    shuffled(toFree);
    for (let i = 0; i < toFree.length; i += SCRATCH_LENGTH) {
      const problem = release(toFree.slice(i, i + SCRATCH_LENGTH));
      if (problem !== null) return problem;
    }
    // First fit passes every short run, in every lower word and slot, to the long one.
    if (layout.firstFit(4) !== longFrom) return `the layout's first fit for 4 is ${layout.firstFit(4)}, not the long run at ${longFrom}`;
    for (const k of [4, 3, 2, 1, sizes[last]! - Math.floor(sizes[last]! / 3), n + 1]) {
      const start = layout.firstFit(k);
      const problem = acquireRun(k) ?? (start >= 0 ? releaseRun(start) : null);
      if (problem !== null) return problem;
    }

    for (step = 1; step <= steps; step++) {
      const r = random();
      let problem: string | null = null;
      if (r < 0.3) {
        const top = layout.largest();
        const pick = random();
        const k = pick < 0.5 ? int(1, 3) : pick < 0.8 ? int(4, 12) : pick < 0.95 ? int(1, Math.max(1, top)) : top + int(1, 3);
        problem = acquireRun(k);
      } else if (r < 0.45) {
        const starts = [...layout.runs.keys()];
        if (starts.length > 0) problem = releaseRun(starts[int(0, starts.length - 1)]!);
      } else if (r < 0.62) {
        problem = acquire(random() < 0.2 ? SCRATCH_LENGTH : int(0, 20));
      } else if (r < 0.84) {
        problem = release(someSingles(random() < 0.1 ? SCRATCH_LENGTH : int(1, 24)));
      } else if (r < 0.94) {
        problem = largestRunWith(someSingles(int(0, random() < 0.2 ? SCRATCH_LENGTH : 8)));
      } else if (r < 0.97) {
        // A slot emptied and given back, or an empty one filled with a slab of any size.
        const slot = int(0, sizes.length - 1);
        if (layout.blocks[slot] === 0) problem = addSlab(slot, int(1, n));
        else problem = emptySlot(slot) ?? freeSlab(slot);
      } else {
        const slot = int(0, sizes.length - 1);
        if (layout.blocks[slot] === 0) problem = addSlab(slot, int(1, n));
      }
      if (problem !== null) return problem;
    }
    return null;
  } finally {
    for (const e of engines) e.destroy();
  }
}

describe('placement over many bitmap words and slots: first fit and lowest first, against a brute-force reading', () => {
  it.each(FIT_GEOMETRIES)(`with %s, on ${BACKENDS.join(' and ')} op for op`, (_label, config, sizes) => {
    for (const seed of [1, 2, 3]) expect(placementWalk(seed, config, sizes, 700, BACKENDS)).toBeNull();
  });
});

describe('a bug planted in the run index under the js engine is caught', () => {
  const [, config, sizes] = FIT_GEOMETRIES[0]!;
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a leaf left stale (a missed update of a word that does not hold the largest run): check() names it', () => {
    const set = RunIndex.prototype.set;
    vi.spyOn(RunIndex.prototype, 'set').mockImplementation(function (this: RunIndex, leaf: number, value: number) {
      if (value === 0 && this.get(leaf) < this.largest()) return; // the planted bug
      set.call(this, leaf, value);
    });
    for (const seed of [1, 2, 3]) {
      expect(placementWalk(seed, config, sizes, 700, ['js'])).toMatch(/: check\(\) on js: run index leaf \d+ holds [1-9]\d*, the slabs 0$/);
    }
  });

  it('a search that skips the lowest fit (next fit): the brute-force first fit catches what check() cannot', () => {
    const firstAtLeast = RunIndex.prototype.firstAtLeast;
    vi.spyOn(RunIndex.prototype, 'firstAtLeast').mockImplementation(function (this: RunIndex, k: number, from: number) {
      const leaf = firstAtLeast.call(this, k, from);
      if (k < 2 || leaf < 0) return leaf; // acquire's searches (k = 1) stay right
      const next = firstAtLeast.call(this, k, leaf + 1); // the planted bug
      return next < 0 ? leaf : next;
    });
    for (const seed of [1, 2, 3]) {
      expect(placementWalk(seed, config, sizes, 700, ['js'])).toMatch(/: acquireRun\(\d+\) on js gave \d+, expected \d+$/);
    }
  });
});
