import { describe, expect, it } from 'vitest';
import { BlockState, Counter, type Engine, type EngineConfig } from '../lib/engine.js';
import { engineFactory } from '../lib/loader.js';
import { BACKENDS, rng, thrownBy } from './helpers.js';

/*
 * The engine contract (lib/engine.ts) tested on each engine directly, including inputs the pool
 * never sends, and a differential walk of raw engine calls, valid and invalid, that both engines
 * must answer alike: same results, same counters, same refusals (ERR_SLABPOOL_INTERNAL), same
 * check() findings. The pool-level suites cannot see a drift here, because the pool never asks.
 */

type Kind = 'js' | 'native';
const GEOMETRIES: [string, EngineConfig][] = [
  ['8 blocks of 24 bytes at 64', { blockBytes: 24, stride: 64, alignment: 64, slabBlocks: 8, detach: false }],
  ['37 blocks of 8 bytes at 8', { blockBytes: 8, stride: 8, alignment: 8, slabBlocks: 37, detach: false }],
  ['16 blocks of 512 bytes at 512 (mapped slabs)', { blockBytes: 512, stride: 512, alignment: 512, slabBlocks: 16, detach: false }],
];

const make = (kind: Kind, config: EngineConfig): Engine => engineFactory(kind)(config);
const counters = (e: Engine) => [...e.counters];

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
    expect(counters(e)).toEqual([1, 1, 1, 1, 2 ** 32]);
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
      expect(counters(e)).toEqual([0, 0, 0, 0, 0]);
      expect(e.addSlab(0, n)).toBe(true);
      expect(counters(e)).toEqual([n, n, n, 1, n * config.stride]);
      expect(e.slabFree(0)).toBe(n);
      expect(e.slabBase(0)).toBeGreaterThanOrEqual(0);
      expect(e.slabBase(0)).toBeLessThan(config.alignment);
      expect(e.slabBuffer(0).byteLength - e.slabBase(0)).toBeGreaterThanOrEqual(n * config.stride);
      const address = e.slabAddress(0);
      if (kind === 'js') expect(address).toBeNull();
      else expect((address as bigint) % BigInt(config.alignment)).toBe(0n);
      expect(e.addSlab(1, 1)).toBe(true);
      expect(counters(e)).toEqual([n + 1, n, n + 1, 2, (n + 1) * config.stride]);
      expect(e.check(new Uint8Array(2 * n), new Int32Array(1), 0)).toBeNull();
      e.destroy();
    });

    it('refuses a slot that is taken or out of order, and slab sizes outside 1..slabBlocks', () => {
      const e = fresh();
      for (const [slot, blocks] of [[0, 1], [2, 1], [-1, 1], [1.5, 1], [1, 0], [1, n + 1], [1, 0.5], [1, NaN], [1, -1]] as const) {
        expectRefused(e, () => e.addSlab(slot, blocks));
      }
      e.destroy();
    });

    it('acquire takes the lowest free blocks and lists them highest first', () => {
      const e = fresh();
      const out = new Int32Array(n);
      expect(e.acquire(out, 0)).toBe(0);
      const k = Math.min(3, n);
      expect(e.acquire(out, k)).toBe(k);
      expect([...out.subarray(0, k)]).toEqual([...Array(k).keys()].reverse());
      expect(counters(e)[Counter.Free]).toBe(n - k);
      expect(counters(e)[Counter.Largest]).toBe(n - k);
      expect(e.acquire(out, n)).toBe(n - k); // only what is left
      expect(e.acquire(out, 1)).toBe(0);
      expect(counters(e)[Counter.Largest]).toBe(0);
      expectRefused(e, () => e.acquire(out, n + 1));
      expectRefused(e, () => e.acquire(out, -1));
      expectRefused(e, () => e.acquire(out, 0.5));
      expectRefused(e, () => e.acquire(new Uint32Array(4) as unknown as Int32Array, 1));
      e.destroy();
    });

    it('release merges neighbours at once, and refuses a block that is not allocated after freeing those before it', () => {
      const e = fresh();
      const out = new Int32Array(n);
      e.acquire(out, n);
      expect(e.release(Int32Array.of(0, 2), 2)).toBeUndefined();
      expect(counters(e)[Counter.Largest]).toBe(1);
      e.release(Int32Array.of(1), 1);
      expect(counters(e)[Counter.Largest]).toBe(3);
      expect(counters(e)[Counter.Free]).toBe(3);
      expectRefused(e, () => e.release(Int32Array.of(1), 1)); // free already
      expectRefused(e, () => e.release(Int32Array.of(n), 1)); // no such block
      expectRefused(e, () => e.release(Int32Array.of(-1), 1));
      expectRefused(e, () => e.release(Int32Array.of(3), 2)); // count past the list
      // A refusal part-way: the blocks before the bad one stay freed, on both engines.
      let thrown: unknown;
      try {
        e.release(Int32Array.of(3, 1, 4), 3);
      } catch (err) {
        thrown = err;
      }
      expect((thrown as { code?: string }).code).toBe('ERR_SLABPOOL_INTERNAL');
      expect(counters(e)[Counter.Free]).toBe(4);
      expect(e.check(statesFor(n, [...Array(n).keys()].filter((i) => i > 3)), new Int32Array(1), 0)).toBeNull();
      e.destroy();
    });

    it('acquireRun is first fit, -1 when no run is long enough, and refuses k = 0', () => {
      const e = fresh();
      const out = new Int32Array(n);
      e.acquire(out, n);
      // Free runs of 1 at 0 and of 3 at 2 (if the slab has room): first fit for 2 is at 2.
      if (n >= 5) {
        e.release(Int32Array.of(0, 2, 3, 4), 4);
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
      expect(counters(e)).toEqual([n, n, n, 1, n * config.stride]);
      expectRefused(e, () => e.releaseRun(0, k));
      e.destroy();
    });

    it('largestRunWith counts cached blocks as free, and refuses an index that is not a block allocated here', () => {
      const e = fresh();
      const out = new Int32Array(n);
      e.acquire(out, n);
      expect(e.largestRunWith(new Int32Array(4), 0)).toBe(0);
      if (n >= 3) {
        e.release(Int32Array.of(0), 1);
        expect(e.largestRunWith(Int32Array.of(2, 1), 2)).toBe(3);
        expect(e.largestRunWith(Int32Array.of(2), 1)).toBe(1);
        expectRefused(e, () => e.largestRunWith(Int32Array.of(0), 1)); // free in the engine
      }
      expectRefused(e, () => e.largestRunWith(Int32Array.of(n), 1));
      expectRefused(e, () => e.largestRunWith(Int32Array.of(-1), 1));
      expectRefused(e, () => e.largestRunWith(Int32Array.of(1), 2));
      e.destroy();
    });

    it('resetSearchCursor re-anchors the search at the lowest free block', () => {
      const e = fresh();
      const out = new Int32Array(n);
      e.acquire(out, n);
      e.release(Int32Array.of(n - 1, 0), 2);
      e.resetSearchCursor();
      expect(e.acquire(out, 1)).toBe(1);
      expect(out[0]).toBe(0);
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
      expect(counters(e)).toEqual([n - 1, n - 1, n, 1, n * config.stride]);
      expectRefused(e, () => e.slabFree(1));
      expectRefused(e, () => e.slabBuffer(1));
      expect(e.addSlab(1, 2)).toBe(true);
      expect(e.slabFree(1)).toBe(2);
      e.destroy();
    });

    it('check() names the first broken invariant between pool and engine', () => {
      const e = fresh();
      const out = new Int32Array(n);
      e.acquire(out, 1);
      const states = new Uint8Array(n);
      expect(e.check(states, Int32Array.of(0), 1)).toBeNull();
      expect(e.check(states, Int32Array.of(0), 0)).toBe('block 0 is allocated in the engine but neither in use nor cached by the pool');
      states[0] = BlockState.Held;
      expect(e.check(states, Int32Array.of(0), 0)).toBeNull();
      if (n > 1) {
        states[1] = BlockState.RunStart;
        expect(e.check(states, Int32Array.of(0), 0)).toBe(`block 1 is free in the engine but the pool has it in state ${BlockState.RunStart}`);
      }
      expect(e.check(new Uint8Array(0), Int32Array.of(0), 0)).toBe("slab 0 lies past the pool's block states");
      expectRefused(e, () => e.check(states, Int32Array.of(0), 2));
      e.destroy();
    });

    it('after destroy(), every method but destroy() is refused', () => {
      const e = fresh();
      const buffer = e.slabBuffer(0);
      const base = e.slabBase(0);
      new Uint8Array(buffer, base).fill(5);
      e.destroy();
      expectReleased(e, buffer, base, n * config.stride, 5);
      expect(counters(e)).toEqual([0, 0, 0, 0, 0]);
      const out = new Int32Array(4);
      for (const call of [
        () => e.addSlab(1, 1),
        () => e.freeSlab(0),
        () => e.slabFree(0),
        () => e.slabBuffer(0),
        () => e.slabBase(0),
        () => e.slabAddress(0),
        () => e.acquire(out, 1),
        () => e.release(out, 0),
        () => e.acquireRun(1),
        () => e.releaseRun(0, 1),
        () => e.largestRunWith(out, 0),
        () => e.resetSearchCursor(),
        () => e.check(new Uint8Array(n), out, 0),
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
    const finding = /^block (\d+) is allocated in the engine but neither/.exec(engine.check(states, new Int32Array(0), 0) ?? '');
    if (finding === null) return found;
    const i = Number(finding[1]);
    found.push(i);
    states[i] = BlockState.Held;
  }
}

/**
 * A random walk of raw engine calls, a third of them invalid, applied to both engines: every
 * outcome, every counter and every check() finding must be the same.
 */
function differentialWalk(seed: number, config: EngineConfig, steps: number): number {
  const random = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const engines = [make('js', config), make('native', config)] as const;
  const n = config.slabBlocks;
  const maxSlots = 4;
  const allocated = new Set<number>(); // blocks allocated in the engines
  const lists = [new Int32Array(n * maxSlots), new Int32Array(n * maxSlots)] as const;
  const states = new Uint8Array(n * (maxSlots + 1));
  let compared = 0;
  for (const e of engines) e.addSlab(0, n);

  const both = (label: string, call: (e: Engine, list: Int32Array) => unknown): Outcome => {
    const [a, b] = [attempt(() => call(engines[0], lists[0])), attempt(() => call(engines[1], lists[1]))];
    expect(b, `seed ${seed}: ${label}`).toEqual(a);
    expect([...lists[1]], `seed ${seed}: ${label}: lists`).toEqual([...lists[0]]);
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

  for (let step = 0; step < steps; step++) {
    const r = random();
    const set = (values: number[]) => {
      for (const list of lists) list.set(values);
    };
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
      const max = int(-1, 20);
      const out = both(`acquire(${max})`, (e, list) => e.acquire(list, Math.min(max, list.length)));
      if (typeof out.value === 'number') for (let j = 0; j < out.value; j++) allocated.add(lists[0][j]!);
    } else if (r < 0.6) {
      const count = int(0, 4);
      const values = someIndices(count, 0.8);
      set(values);
      both(`release([${values}])`, (e, list) => e.release(list, count));
    } else if (r < 0.72) {
      const k = int(0, n + 1);
      const out = both(`acquireRun(${k})`, (e) => e.acquireRun(k));
      if (typeof out.value === 'number' && out.value >= 0) for (let j = 0; j < k; j++) allocated.add(out.value + j);
    } else if (r < 0.82) {
      const start = someIndices(1, 0.8)[0]!;
      const k = int(0, 4);
      both(`releaseRun(${start}, ${k})`, (e) => e.releaseRun(start, k));
    } else if (r < 0.92) {
      const count = int(0, 4);
      const values = someIndices(count, 0.85);
      set(values);
      both(`largestRunWith([${values}])`, (e, list) => e.largestRunWith(list, count));
    } else if (r < 0.96) {
      both('resetSearchCursor()', (e) => e.resetSearchCursor());
    } else {
      const count = int(0, 3);
      const values = someIndices(count, 1);
      set(values);
      states.fill(BlockState.Free);
      for (const i of allocated) states[i] = BlockState.Held;
      for (const v of values) states[v] = BlockState.Free;
      both(`check(cached [${values}])`, (e, list) => e.check(states, list, count));
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
