import { describe, expect, it } from 'vitest';
import { MemoryPool, type PoolOptions } from '../lib/index.js';
import { Counter } from '../lib/engine.js';
import { checkFailed } from '../lib/errors.js';
import { JsEngine } from '../lib/fallback.js';
import { BACKENDS, expectRejected, makePool } from './helpers.js';

const base = { blockSize: 4, numBlocks: 8 } as const;
const invalidArg = (name: 'TypeError' | 'RangeError', message: RegExp) => ({ name, code: 'ERR_SLABPOOL_INVALID_ARG', message });

describe.each(BACKENDS)('errors on the %s backend', (backend) => {
  const construct = (options: unknown) => () => new MemoryPool({ ...(options as PoolOptions), backend });

  describe('constructor options', () => {
    const cases: [string, unknown, ReturnType<typeof invalidArg>][] = [
      ['an unknown option', { ...base, blocksize: 4 }, invalidArg('TypeError', /for options\.blocksize but received 4 of type number/)],
      ['a missing blockSize', { numBlocks: 8 }, invalidArg('TypeError', /^Expected positive integer or array of positive integers for blockSize but received undefined$/)],
      ['a string blockSize', { ...base, blockSize: '4' }, invalidArg('TypeError', /for blockSize but received '4' of type string$/)],
      ['a zero blockSize', { ...base, blockSize: 0 }, invalidArg('RangeError', /^Expected integer from 1 to 536870912 for blockSize but received 0 of type number$/)],
      ['a fractional blockSize', { ...base, blockSize: 2.5 }, invalidArg('RangeError', /for blockSize but received 2.5 of type number$/)],
      ['a NaN blockSize', { ...base, blockSize: NaN }, invalidArg('RangeError', /for blockSize but received NaN of type number$/)],
      ['an empty shape', { ...base, blockSize: [] }, invalidArg('RangeError', /^Expected non-empty array of positive integers for blockSize but received an array of length 0$/)],
      ['a shape with a negative', { ...base, blockSize: [4, -1] }, invalidArg('RangeError', /for blockSize\[1\] but received -1 of type number$/)],
      ['a shape with a string', { ...base, blockSize: [4, '2'] }, invalidArg('TypeError', /for blockSize\[1\] but received '2' of type string$/)],
      ['a shape past 2^53', { ...base, blockSize: [2 ** 26, 2 ** 26, 2 ** 26] }, invalidArg('RangeError', /shape whose product is at most 536870912 elements for blockSize.*product exceeds/)],
      ['a missing numBlocks', { blockSize: 4 }, invalidArg('TypeError', /^Expected integer from 1 to 1073741824 for numBlocks but received undefined$/)],
      ['a negative numBlocks', { ...base, numBlocks: -1 }, invalidArg('RangeError', /^Expected integer from 1 to 1073741824 for numBlocks but received -1 of type number$/)],
      ['an Infinity numBlocks', { ...base, numBlocks: Infinity }, invalidArg('RangeError', /for numBlocks but received Infinity of type number$/)],
      ['a bigint numBlocks', { ...base, numBlocks: 8n }, invalidArg('TypeError', /for numBlocks but received 8n of type bigint$/)],
      ['a slab past one ArrayBuffer', { blockSize: 2 ** 20, numBlocks: 600 }, invalidArg('RangeError', /^Expected integer from 1 to 512 for numBlocks but received 600 of type number \(a slab of 600 blocks of 8388608 bytes would exceed the 4294967296-byte limit of one slab\)$/)],
      ['an alignment that is not a power of two', { ...base, alignment: 48 }, invalidArg('RangeError', /^Expected power of two from 8 to 4096 for alignment but received 48 of type number$/)],
      ['an alignment below 8', { ...base, alignment: 4 }, invalidArg('RangeError', /^Expected integer from 8 to 4096 for alignment but received 4 of type number$/)],
      ['an alignment past 4096', { ...base, alignment: 8192 }, invalidArg('RangeError', /for alignment but received 8192 of type number$/)],
      ['a string grow', { ...base, grow: 'yes' }, invalidArg('TypeError', /^Expected boolean for grow but received 'yes' of type string$/)],
      ['maxBlocks below numBlocks', { ...base, grow: true, maxBlocks: 4 }, invalidArg('RangeError', /^Expected integer from 8 to 1073741824 for maxBlocks but received 4 of type number$/)],
      ['maxBlocks without grow', { ...base, maxBlocks: 16 }, invalidArg('RangeError', /^Expected numBlocks \(8\) when grow is false for maxBlocks but received 16 of type number \(set grow: true/)],
      ['a threshold over 100', { ...base, autoCoalesceThreshold: 101 }, invalidArg('RangeError', /^Expected number from 0 to 100 for autoCoalesceThreshold but received 101 of type number$/)],
      ['a NaN threshold', { ...base, autoCoalesceThreshold: NaN }, invalidArg('RangeError', /for autoCoalesceThreshold but received NaN/)],
      ['a string threshold', { ...base, autoCoalesceThreshold: '20' }, invalidArg('TypeError', /for autoCoalesceThreshold but received '20' of type string$/)],
      ['an unknown poison', { ...base, poison: 'zero' }, invalidArg('RangeError', /^Expected one of 'none', 'nan' for poison but received 'zero' of type string$/)],
    ];
    it.each(cases)('rejects %s', (_label, options, expected) => {
      expectRejected(undefined, construct(options), expected);
    });

    it.each([
      [undefined, 'undefined'],
      [null, 'null'],
      [[4, 8], 'an array of length 2'],
      [42, '42 of type number'],
    ])('rejects options %j that are not an object', (options, received) => {
      const ctor = MemoryPool as unknown as new (o: unknown) => MemoryPool;
      expectRejected(undefined, () => new ctor(options), invalidArg('TypeError', new RegExp(`^Expected object with blockSize and numBlocks for options but received ${received}$`)));
    });

    it('rejects an unknown backend', () => {
      expectRejected(undefined, () => new MemoryPool({ ...base, backend: 'gpu' as 'js' }), invalidArg('RangeError', /^Expected one of 'auto', 'native', 'js' for backend but received 'gpu' of type string$/));
    });

    it('rejects an unknown alignmentScope', () => {
      expectRejected(undefined, construct({ ...base, alignmentScope: 'page' }), invalidArg('RangeError', /^Expected one of 'buffer', 'address' for alignmentScope but received 'page' of type string$/));
    });

    it("alignmentScope 'address': refused with backend 'js', honoured on native (absolute addresses aligned)", () => {
      if (backend === 'js') {
        expectRejected(undefined, construct({ ...base, alignmentScope: 'address' }), invalidArg('RangeError', /^Expected 'buffer' with backend 'js' for alignmentScope but received 'address' of type string \(the JavaScript fallback cannot align absolute addresses\)$/));
        return;
      }
      const pool = new MemoryPool({ blockSize: 3, numBlocks: 8, alignment: 4096, alignmentScope: 'address', backend });
      expect(pool.stats().alignmentScope).toBe('address');
      const run = pool.getRun(2)!;
      expect([pool.addressOf(pool.getBlock()!)! % 4096n, pool.addressOf(run)! % 4096n]).toEqual([0n, 0n]);
      pool.destroy();
    });

    it("alignmentScope 'address' with backend 'auto' and SLABPOOL_BACKEND=js: throws instead of falling back", () => {
      const saved = process.env.SLABPOOL_BACKEND;
      process.env.SLABPOOL_BACKEND = 'js';
      try {
        expectRejected(undefined, () => new MemoryPool({ ...base, alignmentScope: 'address' }), {
          name: 'Error',
          code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE',
          message: /^Expected a loadable native addon for alignmentScope 'address' but none loaded; attempts:\n {2}- SLABPOOL_BACKEND=js in the environment selects the JavaScript fallback$/,
        });
        expect(new MemoryPool({ ...base }).backend).toBe('js'); // without the option: the fallback, as asked
      } finally {
        if (saved === undefined) delete process.env.SLABPOOL_BACKEND;
        else process.env.SLABPOOL_BACKEND = saved;
      }
    });
  });

  describe('method arguments', () => {
    it('getRun: count must be an integer that fits in one slab', () => {
      const pool = makePool(backend, base);
      pool.getBlock();
      expectRejected(pool, () => pool.getRun(0), invalidArg('RangeError', /^Expected integer from 1 to 8 for count but received 0 of type number$/));
      expectRejected(pool, () => pool.getRun(9), invalidArg('RangeError', /^Expected integer from 1 to 8 for count but received 9 of type number \(a run must fit in one slab of 8 blocks\)$/));
      expectRejected(pool, () => pool.getRun(1.5), invalidArg('RangeError', /received 1.5 of type number$/));
      expectRejected(pool, () => pool.getRun('2' as unknown as number), invalidArg('TypeError', /for count but received '2' of type string$/));
      expectRejected(pool, () => (pool.getRun as (c?: number) => unknown)(), invalidArg('TypeError', /for count but received undefined$/));
    });

    it('getRunZeroed: count is validated as getRun validates it, before anything is taken or filled', () => {
      const pool = makePool(backend, base);
      const held = pool.getBlock()!;
      held.fill(9);
      pool.returnBlock(held); // a block that holds data, so a fill would show
      expectRejected(pool, () => pool.getRunZeroed(0), invalidArg('RangeError', /^Expected integer from 1 to 8 for count but received 0 of type number$/));
      expectRejected(pool, () => pool.getRunZeroed(9), invalidArg('RangeError', /^Expected integer from 1 to 8 for count but received 9 of type number \(a run must fit in one slab of 8 blocks\)$/));
      expectRejected(pool, () => pool.getRunZeroed(1.5), invalidArg('RangeError', /received 1.5 of type number$/));
      expectRejected(pool, () => pool.getRunZeroed(2n as unknown as number), invalidArg('TypeError', /for count but received 2n of type bigint$/));
      expectRejected(pool, () => (pool.getRunZeroed as (c?: number) => unknown)(), invalidArg('TypeError', /for count but received undefined$/));
      expect(pool.getBlock()).toBe(held);
      expect(held.every((x) => x === 9)).toBe(true);
    });

    it('returnBlock: rejects what is neither a view nor an index', () => {
      const pool = makePool(backend, base);
      pool.getBlock();
      for (const bad of [undefined, null, 'a', {}, [0], new Float32Array(4), 1n]) {
        expectRejected(pool, () => pool.returnBlock(bad as number), {
          name: 'TypeError',
          code: 'ERR_SLABPOOL_INVALID_ARG',
          message: /^Expected Float64Array from getBlock\(\)\/getRun\(\) or a block index for block but received /,
        });
      }
    });

    it('returnBlock: rejects an index out of range, fractional or negative', () => {
      const pool = makePool(backend, base);
      pool.getBlock();
      for (const bad of [-1, 8, 0.5, NaN, Infinity, 2 ** 53]) {
        expectRejected(pool, () => pool.returnBlock(bad), invalidArg('RangeError', /^Expected integer index of a block from 0 to 7 for index but received /));
      }
    });

    it('returnBlock: rejects the index of a block that no longer exists', () => {
      const pool = makePool(backend, { blockSize: 4, numBlocks: 4, grow: true, maxBlocks: 6 });
      Array.from({ length: 6 }, () => pool.getBlock()); // slab 1 holds only blocks 4 and 5
      expectRejected(pool, () => pool.returnBlock(6), invalidArg('RangeError', /^Expected index of an existing block for index but received 6 of type number \(block 6 does not exist/));
    });

    it('returnBlock: rejects an index inside a run', () => {
      const pool = makePool(backend, base);
      const run = pool.getRun(3)!;
      const start = pool.indexOf(run);
      expectRejected(pool, () => pool.returnBlock(start + 1), invalidArg('RangeError', new RegExp(`it is inside the run that starts at ${start}; return the run or index ${start}`)));
    });

    it('returnBlock: names the run an index is inside, in any slab, whatever runs lie before it', () => {
      // Slab 1 (blocks 8-15): live runs at 8 (2 blocks) and 13 (3), a returned run at 10 (2),
      // a free block at 12. Every index is tried: inside a run names it; any other free index is
      // a double return, even right after a live run (the walk stops at the nearest live run).
      const pool = makePool(backend, { blockSize: 4, numBlocks: 8, grow: true, maxBlocks: 16 });
      Array.from({ length: 8 }, () => pool.getBlock());
      const runs = [pool.getRun(2)!, pool.getRun(2)!, pool.getBlock()!, pool.getRun(3)!];
      expect(runs.map((r) => pool.indexOf(r))).toEqual([8, 10, 12, 13]);
      pool.returnBlock(runs[1]!);
      pool.returnBlock(runs[2]!);
      for (let idx = 8; idx < 16; idx++) {
        const inside = idx === 9 ? 8 : idx === 14 || idx === 15 ? 13 : -1;
        if (idx === 8 || idx === 13) continue; // run starts: returnable
        if (inside >= 0) {
          expectRejected(pool, () => pool.returnBlock(idx), invalidArg('RangeError', new RegExp(`it is inside the run that starts at ${inside}; return the run or index ${inside}\\)$`)));
        } else {
          expectRejected(pool, () => pool.returnBlock(idx), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`received block ${idx}, which is free`) });
        }
      }
    });

    it('indexOf: rejects a non-Float64Array', () => {
      const pool = makePool(backend, base);
      expectRejected(pool, () => pool.indexOf(new Float32Array(4) as unknown as Float64Array), invalidArg('TypeError', /^Expected Float64Array for block but received an instance of Float32Array of length 4$/));
    });
  });

  describe('blocks that are not in use', () => {
    const doubleReturn = (what: string) => ({ name: 'RangeError' as const, code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`^Expected a block in use for ${what} but received block \\d+, which is free \\(returned twice\\?\\)$`) });

    it('rejects a block returned twice, by view or by index', () => {
      const pool = makePool(backend, base);
      const a = pool.getBlock()!;
      pool.getBlock();
      const idx = pool.indexOf(a);
      pool.returnBlock(a);
      expectRejected(pool, () => pool.returnBlock(a), doubleReturn('block'));
      expectRejected(pool, () => pool.returnBlock(idx), doubleReturn('index'));
    });

    it('rejects a run returned twice', () => {
      const pool = makePool(backend, base);
      const run = pool.getRun(2)!;
      pool.returnBlock(run);
      expectRejected(pool, () => pool.returnBlock(run), {
        name: 'RangeError',
        code: 'ERR_SLABPOOL_DOUBLE_RETURN',
        message: /^Expected a block in use for block but received the run view at block \d+, whose run was already returned \(returned twice\?\)$/,
      });
      // Its start handed out again as a single block: the stale run view is still refused as a run.
      pool.coalesce();
      pool.getBlock();
      expectRejected(pool, () => pool.returnBlock(run), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: /the run view at block \d+, whose run was already returned/ });
    });

    it('rejects a stale single view of a block now inside a run', () => {
      const pool = makePool(backend, { blockSize: 4, numBlocks: 2 });
      const a = pool.getBlock()!;
      pool.returnBlock(a);
      pool.coalesce();
      const run = pool.getRun(2)!;
      expect(pool.indexOf(run)).toBe(pool.indexOf(a));
      expectRejected(pool, () => pool.returnBlock(a), doubleReturn('block'));
    });

    it('rejects a lease disposed after its block was returned by hand', () => {
      const pool = makePool(backend, base);
      const lease = pool.lease()!;
      pool.returnBlock(lease.block);
      expectRejected(pool, () => lease[Symbol.dispose](), doubleReturn('lease'));
    });
  });

  describe('foreign blocks', () => {
    const foreign = (detail: RegExp) => ({ name: 'TypeError' as const, code: 'ERR_SLABPOOL_FOREIGN_BLOCK', message: new RegExp(`^Expected a block handed out by this pool for block but received an instance of Float64Array of length \\d+ \\(${detail.source}\\)$`) });

    it('rejects a plain Float64Array', () => {
      const pool = makePool(backend, base);
      pool.getBlock();
      expectRejected(pool, () => pool.returnBlock(new Float64Array(4)), foreign(/it was not created by this pool/));
    });

    it("rejects another pool's block", () => {
      const pool = makePool(backend, base);
      const other = makePool(backend, base);
      pool.getBlock();
      expectRejected(pool, () => pool.returnBlock(other.getBlock()!), foreign(/it belongs to another pool/));
    });

    it('rejects a subarray of a block', () => {
      const pool = makePool(backend, base);
      const a = pool.getBlock()!;
      expectRejected(pool, () => pool.returnBlock(a.subarray(1)), foreign(/it is a subarray of pool memory; return the block itself/));
      expectRejected(pool, () => pool.returnBlock(a.subarray(0)), foreign(/it is a subarray of pool memory; return the block itself/));
    });

    it('rejects a Proxy of a held block, a leased block or a run, on every method, leaving the pool unchanged', () => {
      // A Proxy forwards reads to its target, so the hot paths' marks alone would take it for the block.
      const pool = makePool(backend, base);
      const held = pool.getBlock()!;
      const run = pool.getRun(2)!;
      const leased = pool.lease()!.block;
      for (const target of [held, run, leased]) {
        const proxy = new Proxy(target, {});
        for (const op of ['returnBlock', 'addressOf', 'pin', 'indexOf'] as const) {
          expectRejected(pool, () => pool[op](proxy), invalidArg('TypeError', new RegExp(`^Expected Float64Array.* for block but received a Proxy \\(pass the typed array itself\\)$`)));
        }
      }
      // The real views still work after all of that.
      pool.returnBlock(held);
      pool.returnBlock(run);
      expect(pool.stats().inUseBlocks).toBe(1);
    });

    it('addressOf: rejects a block that is not in use (its address is the next owner\'s)', () => {
      const pool = makePool(backend, base);
      const a = pool.getBlock()!;
      const run = pool.getRun(2)!;
      pool.returnBlock(a);
      pool.returnBlock(run);
      expectRejected(pool, () => pool.addressOf(a), invalidArg('RangeError', /^Expected a block or run in use for block but received block \d+, which is free$/));
    });

    it('rejects a block whose slab was trimmed', () => {
      const pool = makePool(backend, { blockSize: 4, numBlocks: 2, grow: true });
      const blocks = Array.from({ length: 4 }, () => pool.getBlock()!);
      pool.returnBlock(blocks[2]!);
      pool.returnBlock(blocks[3]!);
      pool.trim();
      expectRejected(pool, () => pool.returnBlock(blocks[2]!), foreign(/its memory was released by trim\(\) or destroy\(\)/));
    });
  });

  describe('backend selection', () => {
    it("rejects an unusable SLABPOOL_BACKEND value", () => {
      const saved = process.env.SLABPOOL_BACKEND;
      process.env.SLABPOOL_BACKEND = 'fast';
      try {
        expectRejected(undefined, () => new MemoryPool({ ...base, backend: 'auto' }), invalidArg('RangeError', /^Expected 'js', 'native' or 'auto' for the SLABPOOL_BACKEND environment variable but received 'fast' of type string$/));
      } finally {
        if (saved === undefined) delete process.env.SLABPOOL_BACKEND;
        else process.env.SLABPOOL_BACKEND = saved;
      }
    });
  });
});

describe('check() finds corruption', () => {
  const config = { blockBytes: 32, stride: 64, alignment: 64, slabBlocks: 8, detach: false };
  const setup = () => {
    const engine = new JsEngine(config);
    engine.addSlab(0, 8);
    expect(engine.acquire(3)).toBe(3);
    expect([...engine.scratch.subarray(0, 3)]).toEqual([2, 1, 0]);
    const blockState = new Uint8Array(8);
    blockState.set([1, 1], 0); // blocks 0 and 1 in use, block 2 cached: scratch[0]
    return { engine, blockState };
  };
  /** check() with the given blocks as the cached ones (written to the engine's scratch list). */
  const checkWith = (engine: JsEngine, blockState: Uint8Array, cached: number[]) => {
    engine.scratch.set(cached);
    return engine.check(blockState, cached.length);
  };

  it('passes a consistent structure', () => {
    const { engine, blockState } = setup();
    expect(checkWith(engine, blockState, [2])).toBeNull();
  });

  it('names a block the engine holds that the pool neither uses nor caches', () => {
    const { engine, blockState } = setup();
    expect(checkWith(engine, blockState, [])).toBe('block 2 is allocated in the engine but neither in use nor cached by the pool');
  });

  it('names a block the pool uses that the engine has free', () => {
    const { engine, blockState } = setup();
    blockState[5] = 1;
    expect(checkWith(engine, blockState, [2])).toBe('block 5 is free in the engine but the pool has it in state 1');
  });

  it('names a block cached twice, or cached while free', () => {
    const { engine, blockState } = setup();
    expect(checkWith(engine, blockState, [2, 2])).toBe('block 2 is cached twice');
    expect(checkWith(engine, blockState, [2, 6])).toBe('cached block 6 is also free in the engine');
  });

  it('names a counter that disagrees with the slabs', () => {
    const { engine, blockState } = setup();
    engine.counters[Counter.Free] = 4;
    expect(checkWith(engine, blockState, [2])).toBe('engine counts 4 free blocks, its slabs 5');
    engine.counters[Counter.Free] = 5;
    engine.counters[Counter.Largest] = 6;
    expect(checkWith(engine, blockState, [2])).toBe('engine records largest free run 6, its slabs 5');
  });

  it('is thrown by pool.check() as ERR_SLABPOOL_CHECK_FAILED', () => {
    const err = checkFailed('engine counts 4 free blocks, its slabs 5');
    expect({ name: err.name, code: err.code, message: err.message }).toEqual({
      name: 'Error',
      code: 'ERR_SLABPOOL_CHECK_FAILED',
      message: 'Pool invariant broken: engine counts 4 free blocks, its slabs 5',
    });
  });
});
