import { describe, expect, it } from 'vitest';
import { createTypedArrayPool } from '../lib/compat.js';
import type { MemoryPool } from '../lib/index.js';
import { BACKENDS, makePool } from './helpers.js';

/*
 * Web streams and pool blocks. A BYOB read into a view of a block, or controller.enqueue of one,
 * transfers the view's whole ArrayBuffer: the slab, with every block in it. markAsUntransferable
 * does not stop it (it guards postMessage and structuredClone only). The pool cannot prevent it;
 * what it must do is notice: never hand out a view of length 0 (a block whose writes would
 * silently vanish), refuse with ERR_SLABPOOL_DETACHED leaving itself unchanged, name the slab in
 * check(), and still destroy cleanly. The README tells users to give streams a copy instead.
 */

/** Detaches the slab of `block` the way a user's BYOB read into a view of it does. */
async function byobReadInto(block: Float64Array): Promise<Uint8Array> {
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
function enqueue(block: Float64Array): void {
  new ReadableStream({
    type: 'bytes',
    start(controller) {
      controller.enqueue(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
    },
  });
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

describe.each(BACKENDS)('a slab detached by a web stream (%s backend)', (backend) => {
  it('a BYOB read into a block detaches its whole slab (what the README warns of)', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64 });
    const [a, b] = [pool.getBlock()!, pool.getBlock()!];
    const read = await byobReadInto(a);
    expect([read[0], a.length, b.length, a.buffer.byteLength]).toEqual([42, 0, 0, 0]);
    pool.destroy();
  });

  it('getBlock, lease and their zeroed forms refuse a block of the detached slab, never hand out a view of length 0; addressOf and pin refuse one held; pool unchanged', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64 });
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
    const fresh = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true });
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

  it('getRun and getRunZeroed refuse a run in the detached slab, whether its view was made before or not; addressOf and pin refuse a live one; pool unchanged', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 64 });
    const run = pool.getRun(4)!;
    pool.returnBlock(run);
    enqueue(pool.getBlock()!);
    expectRefused(pool, () => pool.getRun(4), 'getRun', 0); // the cached run view
    expectRefused(pool, () => pool.getRun(7), 'getRun', 0); // a new one
    expectRefused(pool, () => pool.getRunZeroed(4), 'getRunZeroed', 0);
    expectRefused(pool, () => pool.getRunZeroed(9), 'getRunZeroed', 0);
    const grown = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true });
    const live = grown.getRun(3)!;
    enqueue(live);
    expectRefused(grown, () => grown.addressOf(live), 'addressOf', 0);
    expectRefused(grown, () => grown.pin(live), 'pin', 0);
    grown.destroy();
    pool.destroy();
  });

  it('other slabs keep working: a grown pool hands out blocks of an intact slab', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true });
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

  it('check() names the slab and the cause', async () => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true });
    const blocks = Array.from({ length: 9 }, () => pool.getBlock()!);
    pool.check();
    await byobReadInto(blocks[8]!);
    expect(thrown(() => pool.check())).toEqual(
      expect.objectContaining({ code: 'ERR_SLABPOOL_CHECK_FAILED', message: expect.stringMatching(/^Pool invariant broken: slab 1's ArrayBuffer was detached outside the pool: a web stream/) }),
    );
    pool.destroy();
  });

  it.each([false, true])('destroy() still succeeds (detach: %s)', async (detach) => {
    const pool = makePool(backend, { blockSize: 16, numBlocks: 8, grow: true, detach });
    const blocks = Array.from({ length: 9 }, () => pool.getBlock()!);
    enqueue(blocks[0]!);
    pool.destroy();
    expect([blocks[0]!.length, blocks[8]!.length]).toEqual([0, detach ? 0 : 16]);
    expect(() => pool.getBlock()).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_DESTROYED' }));
  });

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

  it('slabpool/compat refuses with the same coded error', async () => {
    const compat = createTypedArrayPool({ backend });
    const array = compat.mallocDouble(16);
    await byobReadInto(array);
    expect(thrown(() => compat.mallocDouble(16))).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_DETACHED' }));
    expect(thrown(() => compat.check())).toEqual(expect.objectContaining({ code: 'ERR_SLABPOOL_CHECK_FAILED', message: expect.stringMatching(/ArrayBuffer was detached outside the pool/) }));
  });
});
