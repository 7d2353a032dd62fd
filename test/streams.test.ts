import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createTypedArrayPool, type TypedArrayPool } from '../lib/compat.js';
import { backendInfo, type MemoryPool } from '../lib/index.js';
import { BACKENDS, makePool, markedBuffersDetachable, memoryOf } from './helpers.js';

/*
 * Web streams and pool blocks. A BYOB read into a view of a block, or controller.enqueue of one,
 * transfers the view's whole ArrayBuffer: the slab, with every block in it. On Node 20 and 22
 * markAsUntransferable does not stop it (it guards postMessage and structuredClone only); Node
 * >= 24 refuses to transfer a marked buffer (a TypeError), so there only the slabs the `detach`
 * option leaves unmarked (the js backend's, native external ones) can be taken. Where a slab is
 * taken the pool cannot prevent it; what it must do is notice: never hand out a view of length 0
 * (a block whose writes would silently vanish), refuse with ERR_SLABPOOL_DETACHED leaving itself
 * unchanged, name the slab in check(), still destroy cleanly, and never free the memory the
 * stream now owns. The README tells users to give streams a copy instead.
 */

/** Detaches the slab of `block` the way a user's BYOB read into a view of it does. */
async function byobReadInto(block: ArrayBufferView): Promise<Uint8Array> {
  const stream = new ReadableStream({
    type: 'bytes',
    pull(controller) {
      const request = controller.byobRequest!;
      (request.view as Uint8Array)[0] = 42;
      request.respond(1);
    },
  });
  const reader = stream.getReader({ mode: 'byob' });
  const { value } = await reader.read(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
  reader.releaseLock();
  return value!;
}

/** Detaches the slab of `block` the way controller.enqueue of a view of it does. */
function enqueue(block: ArrayBufferView): void {
  new ReadableStream({
    type: 'bytes',
    start(controller) {
      controller.enqueue(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
    },
  });
}

// Where a marked buffer cannot be detached (Node >= 24), streams refuse it too; the first test
// below checks that prediction.
const takesMarked = markedBuffersDetachable();

/**
 * Options under which a stream can take a slab of `backend` here: none where it can take the
 * default pool's slabs (native external ones are never marked by the pool, lib/native.ts; marked
 * ones where streams take marked buffers); else `detach`, under which the js backend's slabs are
 * unmarked; null for native V8-owned slabs there (always marked), which no stream can take.
 */
function takeable(backend: string): { detach?: true } | null {
  const v8 = backend === 'native' && memoryOf('native') === 'v8';
  if (takesMarked || (backend === 'native' && !v8)) return {};
  return v8 ? null : { detach: true };
}

const noCount = (): number => 0;

/** The loaded addon's count of native slab memory not yet freed, for a native pool with external memory; else noCount. */
function liveSlabBytes(backend: string): () => number {
  if (backend !== 'native' || memoryOf('native') !== 'external') return noCount;
  const loaded = backendInfo().attempts.at(-1)!.path; // the file the pools use: the same module, the same count
  return (createRequire(__filename)(loaded) as { liveSlabBytes(): number }).liveSlabBytes;
}

const detachedError = (method: string, slot: number) =>
  expect.objectContaining({
    name: 'Error',
    code: 'ERR_SLABPOOL_DETACHED',
    message: expect.stringMatching(new RegExp(`^Cannot call ${method}\\(\\): slab ${slot}'s ArrayBuffer was detached outside the pool: .*block\\.slice\\(\\)`)),
  });

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** Asserts fn throws ERR_SLABPOOL_DETACHED for slab `slot` and leaves the pool's figures as they were. */
function expectRefused(pool: MemoryPool, fn: () => unknown, method: string, slot: number): void {
  const before = pool.stats();
  expect(thrown(fn)).toEqual(detachedError(method, slot));
  expect(pool.stats()).toEqual(before);
}

/** compat's malloc of every kind that views a class block: the dtype, and a malloc of 16 of it. */
const COMPAT_KINDS: readonly (readonly [string, (compat: TypedArrayPool) => ArrayBufferView])[] = [
  ...['int8', 'int16', 'int32', 'uint8', 'uint16', 'uint32', 'float', 'float32', 'double', 'float64', 'uint8_clamped', 'bigint64', 'biguint64', 'buffer', 'data', 'dataview'].map(
    (dtype) => [`malloc(16, '${dtype}')`, (compat: TypedArrayPool) => compat.malloc(16, dtype) as ArrayBufferView] as const,
  ),
  ['mallocDouble', (compat) => compat.mallocDouble(16)],
  ['mallocUint8', (compat) => compat.mallocUint8(16)],
  ['mallocBigUint64', (compat) => compat.mallocBigUint64(16)],
  ['mallocBuffer', (compat) => compat.mallocBuffer(16)],
  ['mallocDataView', (compat) => compat.mallocDataView(16)],
];

const compatDetachedError = expect.objectContaining({
  name: 'Error',
  code: 'ERR_SLABPOOL_DETACHED',
  message: expect.stringMatching(/^Cannot call getBlock\(\): slab 0's ArrayBuffer was detached outside the pool: .*block\.slice\(\)/),
});

/** Asserts the compat malloc `fn` throws ERR_SLABPOOL_DETACHED, twice (refused again, not skipped), leaving stats() as they were. */
function expectCompatRefused(compat: TypedArrayPool, fn: () => unknown): void {
  const before = compat.stats();
  expect(thrown(fn)).toEqual(compatDetachedError);
  expect(compat.stats()).toEqual(before);
  expect(thrown(fn)).toEqual(compatDetachedError);
  expect(compat.stats()).toEqual(before);
}

describe.each(BACKENDS)('a slab detached by a web stream (%s backend)', (backend) => {
  const options = takeable(backend);
  const it_ = options === null ? it.skip : it;

  it('a BYOB read into a block of a default pool detaches its whole slab (what the README warns of), or, where the pool marks its slabs and Node >= 24 refuses marked buffers, is refused with a TypeError, the pool intact', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64 });
    const [a, b] = [pool.getBlock()!, pool.getBlock()!];
    if (options !== null && options.detach === undefined) {
      const read = await byobReadInto(a);
      expect([read[0], a.length, b.length, a.buffer.byteLength]).toEqual([42, 0, 0, 0]);
    } else {
      a.fill(3);
      await expect(byobReadInto(a)).rejects.toThrow(TypeError);
      expect([a.length, a[0], b.length]).toEqual([16, 3, 16]);
      pool.returnBlock(a);
      pool.returnBlock(b);
      pool.check();
    }
    pool.destroy();
  });

  it_('a BYOB read into a block of a pool whose slabs it can take detaches the whole slab', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64, ...options });
    const [a, b] = [pool.getBlock()!, pool.getBlock()!];
    const read = await byobReadInto(a);
    expect([read[0], a.length, b.length, a.buffer.byteLength]).toEqual([42, 0, 0, 0]);
    pool.destroy();
  });

  it_('destroy() and trim() leave the memory of a slab a stream took to the stream: never freed under it, nor given to a new pool', async () => {
    // Native external memory: the addon counts the bytes of slab memory not yet freed.
    const live = liveSlabBytes(backend);
    for (const [release, detach] of [['destroy', false], ['trim', false], ['destroy', true], ['trim', true]] as const) {
      if (options!.detach === true && !detach) continue; // only slabs `detach` leaves unmarked can be taken here
      const before = live();
      const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, detach });
      const blocks = Array.from({ length: 9 }, () => pool.getBlock()!); // slabs 0 and 1
      const slabBytes = blocks[8]!.buffer.byteLength;
      const read = new Float64Array((await byobReadInto(blocks[8]!)).buffer); // the stream's view of slab 1
      if (release === 'destroy') pool.destroy();
      else {
        pool.returnBlock(blocks[8]!);
        expect(pool.trim()).toBeGreaterThan(0);
      }
      if (live !== noCount) expect(live() - before).toBeGreaterThanOrEqual(slabBytes);
      // New slabs of the same size, from the allocator that freed slab 1 (and the C library's
      // heap under it): had the stream's memory been freed, one of them could be there.
      const others = Array.from({ length: 4 }, () => makePool(backend, { blockSize: 16, numBlocks: 8 }));
      const theirs = others.flatMap((o) => Array.from({ length: 8 }, () => o.getBlock()!));
      for (const t of theirs) t.fill(7);
      read.fill(9);
      expect(theirs.every((t) => t.every((x) => x === 7))).toBe(true);
      expect([read.length >= 8 * 16, read[0], read[read.length - 1]]).toEqual([true, 9, 9]); // V8-owned: and its alignment slack
      for (const o of others) o.destroy();
      if (release === 'trim') pool.destroy();
    }
  });

  it_('getBlock, lease and their zeroed forms refuse a block of the detached slab, never hand out a view of length 0; addressOf and pin refuse one held; pool unchanged', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64, ...options });
    const held = Array.from({ length: 10 }, () => pool.getBlock()!);
    pool.returnBlock(held.pop()!); // one cached view in the magazine
    await byobReadInto(held[0]!);
    expectRefused(pool, () => pool.getBlock(), 'getBlock', 0); // the cached view
    expectRefused(pool, () => pool.getBlock(), 'getBlock', 0); // refused again, not skipped
    expectRefused(pool, () => pool.lease(), 'lease', 0);
    expectRefused(pool, () => pool.getBlockZeroed(), 'getBlockZeroed', 0);
    expectRefused(pool, () => pool.leaseZeroed(), 'leaseZeroed', 0);
    // A block in use on the detached slab: no address and no pin (its memory is not the block's any more).
    expectRefused(pool, () => pool.addressOf(held[1]!), 'addressOf', 0);
    expectRefused(pool, () => pool.pin(held[1]!), 'pin', 0);
    // Blocks never viewed before: the magazine's refill cannot make their views; it gives the batch back.
    const fresh = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, ...options });
    const slab0 = Array.from({ length: 8 }, () => fresh.getBlock()!);
    const inSlab1 = fresh.getBlock()!; // refills of one block: the magazine is empty again
    expect(fresh.stats()).toMatchObject({ inUseBlocks: 9, slabs: 2 });
    await byobReadInto(inSlab1);
    expectRefused(fresh, () => fresh.getBlock(), 'getBlock', 1);
    expectRefused(fresh, () => fresh.getBlockZeroed(), 'getBlockZeroed', 1);
    expectRefused(fresh, () => fresh.leaseZeroed(), 'leaseZeroed', 1);
    expect(slab0[7]!.length).toBe(16);
    pool.destroy();
    fresh.destroy();
  });

  it_('getRun and getRunZeroed refuse a run in the detached slab, whether its view was made before or not; addressOf and pin refuse a live one; pool unchanged', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64, ...options });
    const run = pool.getRun(4)!;
    pool.returnBlock(run);
    enqueue(pool.getBlock()!);
    expectRefused(pool, () => pool.getRun(4), 'getRun', 0); // the cached run view
    expectRefused(pool, () => pool.getRun(7), 'getRun', 0); // a new one
    expectRefused(pool, () => pool.getRunZeroed(4), 'getRunZeroed', 0);
    expectRefused(pool, () => pool.getRunZeroed(9), 'getRunZeroed', 0);
    const grown = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, ...options });
    const live = grown.getRun(3)!;
    enqueue(live);
    expectRefused(grown, () => grown.addressOf(live), 'addressOf', 0);
    expectRefused(grown, () => grown.pin(live), 'pin', 0);
    grown.destroy();
    pool.destroy();
  });

  it_('other slabs keep working: a grown pool hands out blocks of an intact slab', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, ...options });
    const first = Array.from({ length: 8 }, () => pool.getBlock()!);
    const second = pool.getBlock()!;
    second.fill(5);
    await byobReadInto(first[0]!);
    expect([second.length, second[15]]).toEqual([16, 5]);
    pool.returnBlock(second);
    const again = pool.getBlock()!;
    expect(again).toBe(second);
    expect(again.length).toBe(16);
    pool.destroy();
  });

  it_('check() names the slab and the cause', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, ...options });
    const blocks = Array.from({ length: 9 }, () => pool.getBlock()!);
    pool.check();
    await byobReadInto(blocks[8]!);
    expect(thrown(() => pool.check())).toEqual(
      expect.objectContaining({ code: 'ERR_SLABPOOL_CHECK_FAILED', message: expect.stringMatching(/^Pool invariant broken: slab 1's ArrayBuffer was detached outside the pool: a web stream/) }),
    );
    pool.destroy();
  });

  for (const detach of [false, true]) {
    const possible = options !== null && (options.detach !== true || detach);
    (possible ? it : it.skip)(`destroy() still succeeds (detach: ${detach})`, async () => {
      const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, detach });
      const blocks = Array.from({ length: 9 }, () => pool.getBlock()!);
      enqueue(blocks[0]!);
      pool.destroy();
      expect([blocks[0]!.length, blocks[8]!.length]).toEqual([0, detach ? 0 : 16]);
      expect(() => pool.getBlock()).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_DESTROYED' }));
    });
  }

  it('a copy (block.slice()) given to the stream leaves the pool intact', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64 });
    const block = pool.getBlock()!;
    block.fill(1);
    const copy = block.slice();
    await byobReadInto(copy);
    expect([copy.length, block.length, block[0]]).toEqual([0, 16, 1]);
    pool.returnBlock(block);
    pool.check();
    pool.destroy();
  });

  it_('slabpool/compat refuses with the same coded error', async () => {
    const compat = createTypedArrayPool({ backend, ...options });
    const array = compat.mallocDouble(16);
    await byobReadInto(array);
    expect(thrown(() => compat.mallocDouble(16))).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_DETACHED' }));
    expect(thrown(() => compat.check())).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_CHECK_FAILED', message: expect.stringMatching(/ArrayBuffer was detached outside the pool/) }));
  });

  describe.each([false, true])('slabpool/compat (strict: %s): a malloc that meets a detached slab throws ERR_SLABPOOL_DETACHED and changes nothing, whatever was freed in between', (strict) => {
    const make = () => createTypedArrayPool({ backend, strict, ...options });

    for (const [name, malloc] of COMPAT_KINDS) {
      it_(`${name}: the detached array kept, freed (its block parked), or freed after another malloc`, async () => {
        // Kept: the class pool's getBlock refuses.
        let compat = make();
        await byobReadInto(malloc(compat));
        expectCompatRefused(compat, () => malloc(compat));
        // Freed: its block is parked for the next malloc of the class, which must not view it.
        compat = make();
        let array = malloc(compat);
        await byobReadInto(array);
        compat.free(array);
        expect(compat.stats()).toMatchObject({ frees: 1, doubleFrees: 0, foreignFrees: 0 });
        expectCompatRefused(compat, () => malloc(compat));
        // Freed when another array was malloc'd since (no longer the one malloc made last), by a stream's enqueue.
        compat = make();
        array = malloc(compat);
        const other = malloc(compat);
        enqueue(other);
        compat.free(array);
        compat.free(other);
        expect(compat.stats()).toMatchObject({ mallocs: 2, frees: 2, doubleFrees: 0, foreignFrees: 0 });
        expectCompatRefused(compat, () => malloc(compat));
        if (!strict) {
          compat.free(array); // a double free, recognised on the detached slab too
          expect(compat.stats()).toMatchObject({ frees: 2, doubleFrees: 1, foreignFrees: 0 });
        }
        expect(thrown(() => compat.check())).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_CHECK_FAILED', message: expect.stringMatching(/ArrayBuffer was detached outside the pool/) }));
      });

      it_(`${name}: a parked block whose view of that size is cached, its slab detached through another array`, async () => {
        const compat = make();
        const held = malloc(compat);
        for (let i = 0; i < 3; i++) compat.free(malloc(compat)); // the same size twice in a row: its view is cached on the record
        await byobReadInto(held);
        expectCompatRefused(compat, () => malloc(compat)); // never the cached view of length 0
        compat.free(held);
        expect(compat.stats()).toMatchObject({ mallocs: 4, frees: 4, doubleFrees: 0, foreignFrees: 0 });
        expectCompatRefused(compat, () => malloc(compat));
      });
    }

    it_('addressOf of a live array on the detached slab refuses with ERR_SLABPOOL_DETACHED, whether it was malloc\'d last or not', async () => {
      const compat = make();
      const [a, b] = [compat.mallocDouble(16), compat.mallocDouble(16)];
      await byobReadInto(b);
      for (const array of [a, b]) {
        expect(thrown(() => compat.addressOf(array))).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_DETACHED', message: expect.stringMatching(/^Cannot call addressOf\(\): slab 0's/) }));
      }
    });

    it_('other classes and mallocArrayBuffer keep working', async () => {
      const compat = make();
      const array = compat.mallocDouble(16);
      await byobReadInto(array);
      compat.free(array);
      expect(compat.mallocDouble(1000).length).toBe(1000); // another class, another slab
      expect(compat.mallocArrayBuffer(100).byteLength).toBe(128);
    });
  });

  it('mallocArrayBuffer never hands out a detached buffer: one a stream took before its free is dropped, and so is one taken after it (a stale reference)', async () => {
    for (const strict of [false, true]) {
      const compat = createTypedArrayPool({ backend, strict });
      const taken = compat.mallocArrayBuffer(16);
      await byobReadInto(new Uint8Array(taken));
      compat.free(taken);
      expect(compat.mallocArrayBuffer(16).byteLength).toBe(16);
      const stale = compat.mallocArrayBuffer(32);
      compat.free(stale);
      enqueue(new Uint8Array(stale)); // after its free: it sat in the cache (unless strict)
      compat.check();
      const next = compat.mallocArrayBuffer(32);
      expect(next.byteLength).toBe(32);
      expect(compat.stats().arrayBuffers).toEqual({ live: 2, cached: 0, cachedBytes: 0, mallocs: 4, frees: 2 });
      compat.check();
    }
  });
});
