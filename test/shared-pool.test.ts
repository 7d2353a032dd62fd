import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedPool, type SharedPoolHandle } from '../lib/index.js';
import { BACKENDS, MISSING, WRONG_VALUES, rng, thrownBy, type ExpectedError } from './helpers.js';

/*
 * SharedPool's API in one thread: options and their errors, the handle and attach(), blocks and
 * runs, hand-off and claim between two attachments (each attachment has its own thread slot and
 * magazine, as a worker's would), close(), check() catching broken metadata, stats(). Every
 * rejected call leaves the pool exactly as it was. Across real threads: shared-threads.test.ts
 * and shared-fuzz.test.ts.
 */

const arg = (name: 'TypeError' | 'RangeError', message: RegExp): ExpectedError => ({ name, code: 'ERR_SLABPOOL_INVALID_ARG', message });

function rejects(fn: () => unknown, expected: ExpectedError): void {
  const err = thrownBy(fn);
  expect({ name: err.name, code: err.code }).toEqual({ name: expected.name, code: expected.code });
  expect(err.message).toMatch(expected.message);
}

/** Asserts fn throws as expected and that the pool (seen from every attachment given) is as before. */
function refused(pools: SharedPool[], fn: () => unknown, expected: ExpectedError): void {
  const before = pools[0]!.stats();
  rejects(fn, expected);
  for (const p of pools) p.check();
  expect(pools[0]!.stats()).toEqual(before);
}

describe('SharedPool options', () => {
  it('validates every option as MemoryPool does, naming it, what was expected and what was received', () => {
    rejects(() => new SharedPool(null as never), arg('TypeError', /^Expected object with blockSize and numBlocks for options but received null$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, poison: 'nan' } as never), arg('TypeError', /^Expected no such option of a shared pool \(known: blockSize, type, numBlocks, alignment, grow, maxBlocks, backend, maxThreads\) for options\.poison but received 'nan' of type string$/));
    rejects(() => new SharedPool({ blockSize: 0, numBlocks: 8 }), arg('RangeError', /^Expected integer from 1 to \d+ for blockSize but received 0 of type number$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, alignment: 24 }), arg('RangeError', /^Expected power of two from 8 to 4096 for alignment but received 24 of type number$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 2 ** 24 + 1 }), arg('RangeError', /^Expected integer from 1 to 16777216 for numBlocks but received 16777217 of type number \(a shared pool keeps 16 bytes of metadata per block\)$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, grow: true }), arg('RangeError', /^Expected false for grow but received true of type boolean \(a shared pool's capacity is fixed/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, maxBlocks: 9 }), arg('RangeError', /^Expected numBlocks \(8\) when grow is false for maxBlocks but received 9 of type number/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, backend: 'fast' as never }), arg('RangeError', /^Expected one of 'auto', 'native', 'js' for backend but received 'fast' of type string$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, backend: 1 as never }), arg('TypeError', /^Expected one of 'auto', 'native', 'js' for backend but received 1 of type number$/));
    rejects(() => new SharedPool({ blockSize: 4, numBlocks: 8, type: Array as never }), arg('TypeError', /^Expected one of Float64Array, .* for type but received function Array$/));
  });

  it.each(WRONG_VALUES.filter(([, v]) => v !== MISSING && v !== undefined))('refuses %s for maxThreads', (_label, value) => {
    const expected = typeof value === 'number' && !(Number.isInteger(value) && value >= 1 && value <= 1024) ? 'RangeError' : 'TypeError';
    if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1024) return;
    rejects(() => new SharedPool({ blockSize: 1, numBlocks: 4, maxThreads: value as number }), arg(expected, /^Expected integer from 1 to 1024 for maxThreads but received /));
  });

  it("follows SLABPOOL_BACKEND with backend 'auto', as MemoryPool's does: refuses a value it does not know; 'native' and 'js' choose", () => {
    const saved = { backend: process.env.SLABPOOL_BACKEND, memory: process.env.SLABPOOL_NATIVE_MEMORY };
    try {
      process.env.SLABPOOL_BACKEND = 'fast';
      expect(() => new SharedPool({ blockSize: 4, numBlocks: 4 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG', message: expect.stringContaining('SLABPOOL_BACKEND') }));
      process.env.SLABPOOL_BACKEND = 'js';
      const js = new SharedPool({ blockSize: 4, numBlocks: 4 });
      expect(js.backend).toBe('js');
      js.close();
      process.env.SLABPOOL_BACKEND = 'native';
      if (BACKENDS.includes('native')) {
        const native = new SharedPool({ blockSize: 4, numBlocks: 4, backend: 'auto' });
        expect(native.backend).toBe('native');
        native.close();
        // Native memory in V8-owned buffers (a diagnosis setting) leaves no way to share it: refused, naming why.
        process.env.SLABPOOL_NATIVE_MEMORY = 'v8';
        expect(() => new SharedPool({ blockSize: 4, numBlocks: 4 })).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE', message: expect.stringMatching(/SLABPOOL_BACKEND=native with a SharedPool[^]*SLABPOOL_NATIVE_MEMORY=v8/) }));
        expect(() => new SharedPool({ blockSize: 4, numBlocks: 4, backend: 'native' })).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE', message: expect.stringContaining("a SharedPool's backend 'native'") }));
        delete process.env.SLABPOOL_NATIVE_MEMORY;
      } else {
        expect(() => new SharedPool({ blockSize: 4, numBlocks: 4 })).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_NATIVE_UNAVAILABLE' }));
      }
      const explicit = new SharedPool({ blockSize: 4, numBlocks: 4, backend: 'js' }); // the option wins over the variable
      expect(explicit.backend).toBe('js');
      explicit.close();
    } finally {
      for (const [key, value] of [['SLABPOOL_BACKEND', saved.backend], ['SLABPOOL_NATIVE_MEMORY', saved.memory]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it.each(BACKENDS)('has the properties of its options, blocks aligned (%s: as addresses, or within a SharedArrayBuffer)', (backend) => {
    const pool = new SharedPool({ backend, blockSize: [3, 5], numBlocks: 40, type: Int32Array, alignment: 128 });
    expect({ blockLength: pool.blockLength, blockShape: pool.blockShape, numBlocks: pool.numBlocks, alignment: pool.alignment, backend: pool.backend, slot: pool.slot, closed: pool.closed }).toEqual({
      blockLength: 15,
      blockShape: [3, 5],
      numBlocks: 40,
      alignment: 128,
      backend,
      slot: 0,
      closed: false,
    });
    const blocks = Array.from({ length: 40 }, () => pool.getBlock()!);
    expect(pool.getBlock()).toBeNull();
    expect(new Set(blocks.map((b) => pool.indexOf(b))).size).toBe(40);
    for (const b of blocks) {
      expect(b).toBeInstanceOf(Int32Array);
      expect(b.length).toBe(15);
      expect(b.byteOffset % 128).toBe(0);
      if (backend === 'js') {
        expect(b.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(pool.addressOf(b)).toBeNull();
      } else {
        // This thread's external ArrayBuffer over the shared region: the address is a multiple of the alignment.
        expect(b.buffer).not.toBeInstanceOf(SharedArrayBuffer);
        expect(pool.addressOf(b)! % 128n).toBe(0n);
        expect(pool.addressOf(b)! - pool.addressOf(blocks[0]!)!).toBe(BigInt(b.byteOffset - blocks[0]!.byteOffset));
      }
    }
    expect(pool.stats()).toMatchObject({ backend, type: 'Int32Array', stride: 128, blockBytes: 60, capacityBlocks: 40, inUseBlocks: 40, freeBlocks: 0, acquires: 40, failures: 1, magazineSize: 2, memory: backend === 'js' ? 'shared' : 'native', alignmentScope: backend === 'js' ? 'buffer' : 'address' });
    for (const b of blocks) pool.returnBlock(b);
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, freeBlocks: 40, returns: 40, largestFreeRun: 40 - pool.stats().cachedBlocks });
  });
});

describe.each(BACKENDS)('SharedPool handle and attach (%s)', (backend) => {
  it('is frozen plain data that structuredClone copies as references to the same memory', () => {
    const pool = new SharedPool({ backend, blockSize: 8, numBlocks: 16 });
    const handle = pool.handle;
    expect(Object.isFrozen(handle)).toBe(true);
    expect(handle).toMatchObject({ kind: 'slabpool.SharedPool', version: 2, backend, type: 'Float64Array', blockShape: [8] });
    // The blocks: their SharedArrayBuffer (js), or the token of the addon's shared region (native).
    if (backend === 'js') expect({ blocks: handle.blocks instanceof SharedArrayBuffer, region: handle.region }).toEqual({ blocks: true, region: undefined });
    else expect({ blocks: handle.blocks, region: typeof handle.region }).toEqual({ blocks: undefined, region: 'bigint' });
    const other = SharedPool.attach(structuredClone(handle));
    expect(other.slot).toBe(1);
    const block = pool.getBlock()!;
    block.fill(4.25);
    const there = other.blockAt(pool.handOff(block));
    expect([...there]).toEqual(new Array(8).fill(4.25));
    there[7] = -1;
    expect(block[7]).toBe(-1);
    expect(pool.stats()).toMatchObject({ threads: 2, handOffs: 1, claims: 1, inUseBlocks: 1 });
  });

  it('refuses anything that is not an intact handle, naming handle', () => {
    const pool = new SharedPool({ backend, blockSize: 8, numBlocks: 16 });
    const h = pool.handle;
    rejects(() => SharedPool.attach(null as never), arg('TypeError', /^Expected SharedPool handle \(pool\.handle from the thread that made the pool\) for handle but received null$/));
    rejects(() => SharedPool.attach({} as never), arg('TypeError', /for handle but received an instance of Object$/));
    rejects(() => SharedPool.attach({ ...h, version: 1 } as never), arg('RangeError', /^Expected a handle of layout version 2 for handle but received an instance of Object \(it has version 1: made by another slabpool version\)$/));
    rejects(() => SharedPool.attach({ ...h, type: 'Int32Array' } as never), arg('RangeError', /\(its type Int32Array differs from the metadata's\)$/));
    rejects(() => SharedPool.attach({ ...h, blockShape: [9] } as never), arg('RangeError', /\(its blockShape differs from the metadata's block length\)$/));
    rejects(() => SharedPool.attach({ ...h, meta: new SharedArrayBuffer(h.meta.byteLength) } as never), arg('RangeError', /\(its meta buffer is not a shared pool's metadata\)$/));
    if (backend === 'js') {
      rejects(() => SharedPool.attach({ ...h, blocks: new SharedArrayBuffer(64) } as never), arg('RangeError', /\(its buffers are not the sizes its metadata gives\)$/));
      rejects(() => SharedPool.attach({ ...h, blocks: new ArrayBuffer(64) } as never), arg('TypeError', /of backend 'js', with a SharedArrayBuffer blocks for handle/));
    } else {
      rejects(() => SharedPool.attach({ ...h, region: Number(h.region) } as never), arg('TypeError', /of backend 'native', with a bigint region for handle/));
      // A token this process's addon never gave (another process's, another copy of the addon's).
      rejects(() => SharedPool.attach({ ...h, region: h.region! ^ 1n } as never), arg('RangeError', /\(its memory is unknown to this process's addon: the handle comes from another process, or from another copy of slabpool loaded from another path\)$/));
      // Another live pool's region with this pool's metadata: the sizes differ.
      const other = new SharedPool({ backend, blockSize: 9, numBlocks: 16 });
      rejects(() => SharedPool.attach({ ...h, region: other.handle.region } as never), arg('RangeError', /\(its memory is not the size its metadata gives\)$/));
      other.close();
    }
    rejects(() => SharedPool.attach({ ...h, backend: 'gpu' } as never), arg('RangeError', /^Expected a handle of backend 'js' or 'native' for handle but received an instance of Object \(its backend is gpu\)$/));
    expect(pool.stats().threads).toBe(1);
  });

  it('takes a thread slot per attachment, up to maxThreads; a closed one is not reused while it holds blocks', () => {
    const pool = new SharedPool({ backend, blockSize: 1, numBlocks: 8, maxThreads: 2 });
    const second = SharedPool.attach(pool.handle);
    refused([pool], () => SharedPool.attach(pool.handle), arg('RangeError', /^Expected a pool with a free thread slot \(maxThreads is 2\) for handle but received an instance of Object \(every slot is attached or holds blocks/));
    const kept = second.getBlock()!;
    second.close();
    expect(pool.stats()).toMatchObject({ threads: 1, orphanedBlocks: 1, inUseBlocks: 1 });
    rejects(() => SharedPool.attach(pool.handle), arg('RangeError', /free thread slot/)); // slot 1 still holds a block
    expect(kept.length).toBe(1); // its views stay readable
    // The block was handed to nobody: from this thread only reclaim() could free it, and reclaim() is for other threads.
    rejects(() => pool.reclaim(threadId), arg('RangeError', /^Expected the threadId of another thread for threadId but received \d+ of type number \(it is this thread, which is running\)$/));
  });
});

describe.each(BACKENDS)('SharedPool blocks (%s)', (backend) => {
  it('refuses bad returns with typed errors, leaving the pool unchanged', () => {
    const pool = new SharedPool({ backend, blockSize: 4, numBlocks: 32 });
    const other = SharedPool.attach(pool.handle);
    const a = pool.getBlock()!;
    const b = pool.getBlock()!;
    const ia = pool.indexOf(a);
    pool.returnBlock(a);
    const both = [pool, other];
    refused(both, () => pool.returnBlock(a), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`^Expected a block in use for block but received block ${ia}, which is free \\(returned twice\\?\\)$`) });
    refused(both, () => pool.returnBlock(ia), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`^Expected a block in use for index but received block ${ia}, which is free`) });
    refused(both, () => pool.returnBlock(32), arg('RangeError', /^Expected integer from 0 to 31 for index but received 32 of type number$/));
    refused(both, () => pool.returnBlock(1.5), arg('RangeError', /^Expected integer from 0 to 31 for index but received 1\.5 of type number$/));
    refused(both, () => pool.returnBlock('1' as never), arg('TypeError', /^Expected Float64Array from getBlock\(\)\/getRun\(\)\/blockAt\(\) or a block index for block but received '1' of type string$/));
    refused(both, () => pool.returnBlock(new Float64Array(4)), { name: 'TypeError', code: 'ERR_SLABPOOL_FOREIGN_BLOCK', message: /^Expected a block handed out by this pool for block but received an instance of Float64Array of length 4 \(it was not made by this attachment/ });
    // Another attachment's view of a block is not this one's: hand it off instead.
    refused(both, () => other.returnBlock(b), { name: 'TypeError', code: 'ERR_SLABPOOL_FOREIGN_BLOCK', message: /send handOff\(block\)'s index and call blockAt\(index\) there \(a view sent with postMessage arrives as a copy on the native engine, as another view on js\)\)$/ });
    // By index, a block held by another attachment is not this one's to return.
    const ib = pool.indexOf(b);
    refused(both, () => other.returnBlock(ib), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`^Expected a block this thread holds for index but received block ${ib}, which is held by slot 0, another attachment`) });
    refused(both, () => pool.indexOf([1] as never), arg('TypeError', /^Expected Float64Array for block but received an array of length 1$/));
    expect(pool.indexOf(new Float64Array(4))).toBe(-1);
    refused(both, () => pool.addressOf(a), arg('RangeError', new RegExp(`^Expected a block or run in use for block but received block ${ia}, which is free$`)));
  });

  it('hands off and claims: the sender can no longer return it, exactly one claim wins, a transit block may be returned by index elsewhere', () => {
    const pool = new SharedPool({ backend, blockSize: 2, numBlocks: 16 });
    const b = SharedPool.attach(pool.handle);
    const c = SharedPool.attach(pool.handle);
    const all = [pool, b, c];
    const block = pool.getBlock()!;
    const i = pool.handOff(block);
    expect(pool.stats()).toMatchObject({ inTransitBlocks: 1, inUseBlocks: 1, handOffs: 1 });
    refused(all, () => pool.returnBlock(block), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`received block ${i}, which is handed off by this thread`) });
    refused(all, () => pool.handOff(block), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: /handed off by this thread/ });
    const view = b.blockAt(i);
    expect(b.blockAt(i)).toBe(view); // its own block: the same view, nothing changes
    refused(all, () => c.blockAt(i), arg('RangeError', new RegExp(`^Expected index of a block handed off with handOff\\(\\) or held by this thread for index but received ${i} of type number \\(it is held by slot 1: claimed already, or never handed off\\?\\)$`)));
    refused(all, () => pool.returnBlock(block), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: /which is held by slot 1, another attachment/ });
    // b hands it on to c, who frees it by index without claiming it.
    expect(b.handOff(view)).toBe(i);
    c.returnBlock(i);
    refused(all, () => b.blockAt(i), arg('RangeError', /\(it is free in the magazine of slot 2\)$/));
    refused(all, () => c.blockAt(-1), arg('RangeError', /^Expected integer from 0 to 15 for index but received -1 of type number$/));
    refused(all, () => c.blockAt('0' as never), arg('TypeError', /^Expected integer from 0 to 15 for index but received '0' of type string$/));
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, inTransitBlocks: 0, handOffs: 2, claims: 1, acquires: 1, returns: 1 });
  });

  it('gets runs, returns them by view or index, refuses an index inside one, and hands them off', () => {
    const pool = new SharedPool({ backend, blockSize: 3, numBlocks: 32 });
    const other = SharedPool.attach(pool.handle);
    const both = [pool, other];
    refused(both, () => pool.getRun(0), arg('RangeError', /^Expected integer from 1 to 32 for count but received 0 of type number$/));
    refused(both, () => pool.getRun(33), arg('RangeError', /^Expected integer from 1 to 32 for count but received 33 of type number \(the pool has 32 blocks\)$/));
    refused(both, () => pool.getRun('2' as never), arg('TypeError', /^Expected integer from 1 to 32 for count but received '2' of type string$/));
    const run = pool.getRun(5)!;
    expect(run.length).toBe(15);
    const start = pool.indexOf(run);
    refused(both, () => pool.returnBlock(start + 2), arg('RangeError', new RegExp(`inside the run that starts at ${start}; return the run or index ${start}\\)$`)));
    pool.returnBlock(run);
    refused(both, () => pool.returnBlock(run), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: new RegExp(`received the run view at block ${start}, whose run was already returned`) });
    const again = pool.getRun(4)!;
    again.fill(9);
    const s2 = pool.handOff(again);
    const there = other.blockAt(s2);
    expect(there.length).toBe(12);
    expect([...there].every((x) => x === 9)).toBe(true);
    refused(both, () => pool.returnBlock(again), { name: 'RangeError', code: 'ERR_SLABPOOL_DOUBLE_RETURN', message: /the run at block \d+, which is a run held by slot 1, another attachment/ });
    other.returnBlock(s2);
    // Every block can form one run once magazines are flushed: a whole-pool run after blocks sat in this magazine.
    const singles = Array.from({ length: 32 }, () => pool.getBlock()!);
    for (const s of singles) pool.returnBlock(s);
    expect(pool.stats().cachedBlocks).toBeGreaterThan(0);
    const whole = pool.getRun(32);
    expect(whole?.length).toBe(96);
    expect(pool.getRun(1)).toBeNull();
    pool.returnBlock(whole!);
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, failures: 1 });
  });

  it('closes: the magazine goes back, held blocks are orphaned, every later call throws ERR_SLABPOOL_DESTROYED', () => {
    const pool = new SharedPool({ backend, blockSize: 1, numBlocks: 64 });
    const other = SharedPool.attach(pool.handle);
    const held = other.getBlock()!;
    other.returnBlock(other.getBlock()!);
    expect(pool.stats().cachedBlocks).toBeGreaterThan(0);
    other.close();
    other.close();
    expect(other.closed).toBe(true);
    expect(pool.stats()).toMatchObject({ cachedBlocks: 0, orphanedBlocks: 1, threads: 1 });
    for (const call of [() => other.getBlock(), () => other.returnBlock(held), () => other.getRun(1), () => other.handOff(held), () => other.blockAt(0), () => other.stats(), () => other.check(), () => other.indexOf(held)]) {
      rejects(call, { name: 'TypeError', code: 'ERR_SLABPOOL_DESTROYED', message: /^Cannot call \w+\(\): this thread's attachment to the shared pool was closed$/ });
    }
    pool.check();
  });

  it('check() finds broken metadata', () => {
    const pool = new SharedPool({ backend, blockSize: 1, numBlocks: 16 });
    const words = new Int32Array(pool.handle.meta);
    const states = 16 + 64 * 16; // header and 64 slot records, in words (shared-layout.ts)
    words[states + 15] = (7 << 14) | (5 << 4) | 2; // block 15 held by slot 5 (generation 7 << 14 | slot << 4 | kind: shared-layout.ts), which never attached
    rejects(() => pool.check(), { name: 'Error', code: 'ERR_SLABPOOL_CHECK_FAILED', message: /^Pool invariant broken: block 15 is in the depot but held by slot 5$/ });
    words[states + 15] = 0;
    pool.check();
    words[6] = words[6]! - 1; // the depot's top: one free block fewer than the states say
    rejects(() => pool.check(), { name: 'Error', code: 'ERR_SLABPOOL_CHECK_FAILED', message: /^Pool invariant broken: 16 blocks are free but the depot holds 15$/ });
    words[6] = words[6]! + 1;
    pool.check();
  });

  it("check() finds a block in this attachment's magazine that is not marked free there", () => {
    const pool = new SharedPool({ backend, blockSize: 1, numBlocks: 64 }); // magazines of 4, refills of 2
    const b = pool.getBlock()!; // block 0; block 1 waits in the magazine
    expect(pool.indexOf(b)).toBe(0);
    const words = new Int32Array(pool.handle.meta);
    words[16 + 64 * 16 + 1] = (1 << 14) | (0 << 4) | 2; // block 1: held by slot 0, in its generation (1: the pool's first attachment)
    rejects(() => pool.check(), { name: 'Error', code: 'ERR_SLABPOOL_CHECK_FAILED', message: /^Pool invariant broken: block 1 is in the magazine of slot 0 but held by slot 0$/ });
  });
});

export type { SharedPoolHandle };

describe('SharedPool: an attachment that closed', () => {
  it("refuses every call even once its slot's generation came round again (131,071 attachments later): no block of the new attachment's taken", () => {
    // js: the native engine's references of 131,071 attachments wait for the garbage collector.
    const pool = new SharedPool({ backend: 'js', blockSize: 4, numBlocks: 32, maxThreads: 2 });
    const a = SharedPool.attach(pool.handle);
    const old = a.getBlock()!;
    const index = a.indexOf(old);
    a.returnBlock(old);
    a.close();
    for (let n = 0; n < 0x1ffff - 1; n++) SharedPool.attach(pool.handle).close();
    const b = SharedPool.attach(pool.handle);
    const mine = b.getBlock()!;
    expect(b.indexOf(mine)).toBe(index); // the block the old attachment still has a view of, cached for the same slot and generation
    expect(thrownBy(() => a.returnBlock(old))).toMatchObject({ code: 'ERR_SLABPOOL_DESTROYED' });
    b.returnBlock(mine);
    b.close();
    pool.check();
  });
});

describe.runIf(BACKENDS.includes('native'))('SharedPool: the two engines side by side', () => {
  it('gives the same blocks, states and figures on js and native for the same seeded operations (two attachments, hand-offs, runs, wrong returns)', () => {
    for (const seed of [1, 2, 3]) {
      const random = rng(seed);
      const sides = (['js', 'native'] as const).map((backend) => {
        const pool = new SharedPool({ backend, blockSize: 3, numBlocks: 96, alignment: 64 });
        return { pool, other: SharedPool.attach(pool.handle), held: [[], []] as Float64Array[][], log: [] as string[] };
      });
      for (let op = 0; op < 3000; op++) {
        const r = random();
        const who = random() < 0.5 ? 0 : 1;
        const pick = random();
        for (const side of sides) {
          const at = who === 0 ? side.pool : side.other;
          const mine = side.held[who]!;
          const j = Math.floor(pick * mine.length);
          try {
            if (r < 0.4) {
              const b = at.getBlock();
              if (b !== null) {
                b.fill(op);
                mine.push(b);
              }
              side.log.push(b === null ? 'null' : `get ${at.indexOf(b)}`);
            } else if (r < 0.5) {
              const run = at.getRun(1 + Math.floor(pick * 5));
              if (run !== null) mine.push(run);
              side.log.push(run === null ? 'null' : `run ${at.indexOf(run)}`);
            } else if (r < 0.85 && mine.length > 0) {
              const [b] = mine.splice(j, 1);
              at.returnBlock(b!);
              side.log.push('ret');
            } else if (r < 0.95 && mine.length > 0) {
              // Hand-off to the other attachment, which claims it.
              const [b] = mine.splice(j, 1);
              const there = (who === 0 ? side.other : side.pool).blockAt(at.handOff(b!));
              side.held[1 - who]!.push(there);
              side.log.push(`hand ${there[0]}`);
            } else if (mine.length > 0) {
              at.returnBlock(mine[j]!);
              at.returnBlock(mine[j]!); // a second return: refused
              side.log.push('double accepted');
            }
          } catch (err) {
            side.log.push((err as { code?: string }).code ?? String(err));
            if (r >= 0.95) mine.splice(j, 1); // its first return went through
          }
        }
      }
      const [js, native] = sides;
      expect(native!.log).toEqual(js!.log);
      const figures = (p: SharedPool) => {
        const { backend: _b, memory: _m, alignmentScope: _a, ...rest } = p.stats();
        return rest;
      };
      expect(figures(native!.pool)).toEqual(figures(js!.pool));
      // Every metadata word: block states, depot stack, slot records and their counters.
      expect([...new Int32Array(native!.pool.handle.meta)]).toEqual([...new Int32Array(js!.pool.handle.meta)]);
      // And every block's contents, read through each pool's own views.
      expect(native!.held.map((h) => h.map((b) => [...b]))).toEqual(js!.held.map((h) => h.map((b) => [...b])));
      for (const side of sides) {
        side.pool.check();
        side.other.check();
      }
    }
  });
});
