import { describe, expect, it } from 'vitest';
import { MemoryPool } from '../lib/index.js';
import { BACKENDS, detachOptionDetaches, expectRejected, makePool } from './helpers.js';

/*
 * Pins (lib/pin.ts), on every backend: what a pinned block or run refuses, what it keeps through
 * destroy(), and the errors of pin() itself. test/lifetime.test.ts checks what the native memory
 * does (committed, decommitted, freed) in a child process.
 */

const pinnedError = (name: string, what: string, pins: number) => ({
  name: 'RangeError' as const,
  code: 'ERR_SLABPOOL_PINNED',
  message: new RegExp(`^Expected a block that is not pinned for ${name} but received ${what}, pinned by ${pins} live pins? \\(release`),
});

describe.each(BACKENDS)('pins on the %s backend', (backend) => {
  it('refuses to return a pinned block, by view or by index, until every pin on it is released', () => {
    const pool = makePool(backend, { blockSize: 4, numBlocks: 16 });
    const block = pool.getBlock()!;
    const idx = pool.indexOf(block);
    const first = pool.pin(block);
    const second = pool.pin(block);
    pool.check();
    expectRejected(pool, () => pool.returnBlock(block), pinnedError('block', `block ${idx}`, 2));
    expectRejected(pool, () => pool.returnBlock(idx), pinnedError('index', `block ${idx}`, 2));
    first.release();
    first.release(); // idempotent: the second pin still holds
    expect([first.released, second.released]).toEqual([true, false]);
    expectRejected(pool, () => pool.returnBlock(block), pinnedError('block', `block ${idx}`, 1));
    second[Symbol.dispose]();
    pool.returnBlock(block);
    expect(pool.stats().inUseBlocks).toBe(0);
    pool.check();
  });

  it('refuses to return a pinned run, and the lease of a pinned block (which stays live)', () => {
    const pool = makePool(backend, { blockSize: 4, numBlocks: 16 });
    const run = pool.getRun(3)!;
    const start = pool.indexOf(run);
    const lease = pool.lease()!;
    const leased = pool.indexOf(lease.block);
    {
      using runPin = pool.pin(run);
      using leasePin = pool.pin(lease.block);
      expect([runPin.byteLength, leasePin.byteLength, runPin.block === run, leasePin.block === lease.block]).toEqual([3 * 32, 32, true, true]);
      expectRejected(pool, () => pool.returnBlock(run), pinnedError('block', `the run at block ${start}`, 1));
      expectRejected(pool, () => pool.returnBlock(start), pinnedError('index', `the run at block ${start}`, 1));
      expectRejected(pool, () => lease[Symbol.dispose](), pinnedError('lease', `block ${leased}`, 1));
      expect(lease.disposed).toBe(false);
      expectRejected(pool, () => pool.returnBlock(lease.block), pinnedError('block', `block ${leased}`, 1));
    }
    lease[Symbol.dispose]();
    pool.returnBlock(run);
    expect([lease.disposed, pool.stats().inUseBlocks]).toEqual([true, 0]);
    pool.check();
  });

  it('gives the absolute address of the pinned view (what addressOf says), aligned; null on the js backend', () => {
    const pool = makePool(backend, { blockSize: 3, numBlocks: 8, alignment: 256 });
    pool.getBlock();
    const block = pool.getBlock()!;
    const run = pool.getRun(2)!;
    using blockPin = pool.pin(block);
    using runPin = pool.pin(run);
    if (backend === 'js') {
      expect([blockPin.address, runPin.address]).toEqual([null, null]);
      return;
    }
    expect([blockPin.address, runPin.address]).toEqual([pool.addressOf(block), pool.addressOf(run)]);
    expect([blockPin.address! % 256n, runPin.address! - blockPin.address!]).toEqual([0n, BigInt(run.byteOffset - block.byteOffset)]);
  });

  it('keeps a pinned block\'s memory through destroy(): it still holds what was written, and releasing it afterwards is allowed', () => {
    const pool = makePool(backend, { blockSize: 100, numBlocks: 1000 });
    const block = pool.getBlock()!;
    block.fill(7);
    const pin = pool.pin(block);
    pool.destroy();
    expect([block.length, block[0], block[99]]).toEqual([100, 7, 7]);
    block[5] = 8;
    expect(block[5]).toBe(8);
    pin.release();
    expect(pin.released).toBe(true);
    expect(() => pool.pin(block)).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_DESTROYED' }));
  });

  it('leaves pinned views alone with detach: true, and detaches the others', () => {
    const pool = makePool(backend, { blockSize: 100, numBlocks: 10, grow: true, detach: true });
    const blocks = Array.from({ length: 11 }, () => pool.getBlock()!);
    blocks[0]!.fill(3);
    const pin = pool.pin(blocks[0]!);
    pool.destroy();
    // Detached (where the option can detach the slab; else as without it).
    const gone = detachOptionDetaches(backend) ? 0 : 100;
    expect([blocks[0]!.length, blocks[0]![99], blocks[10]!.length]).toEqual([100, 3, gone]);
    pin.release();
    // The last pin released, the slab goes as destroy() would have let it go.
    expect([blocks[0]!.length, blocks[1]!.length, blocks[0]!.buffer.byteLength > 0]).toEqual([gone, gone, gone > 0]);
  });

  it('with detach: true, detaches a slab destroy() found pinned at its last unpin, not before', () => {
    const pool = makePool(backend, { blockSize: 100, numBlocks: 10, grow: true, detach: true });
    const blocks = Array.from({ length: 11 }, () => pool.getBlock()!);
    const first = pool.pin(blocks[0]!);
    const second = pool.pin(blocks[1]!);
    const third = pool.pin(blocks[1]!);
    pool.destroy();
    first.release();
    second.release();
    expect([blocks[0]!.length, blocks[1]!.length, blocks[1]![0]]).toEqual([100, 100, 0]);
    third.release();
    const gone = detachOptionDetaches(backend) ? 0 : 100; // as above
    expect([blocks[0]!.length, blocks[1]!.length, blocks[10]!.length]).toEqual([gone, gone, gone]);
    third.release(); // idempotent: no second detach, no error
    expect(blocks[0]!.length).toBe(gone);
  });

  it('refuses to pin what is not a block or run in use of this pool, unchanged', () => {
    const pool = makePool(backend, { blockSize: 4, numBlocks: 16 });
    const other = makePool(backend, { blockSize: 4, numBlocks: 16 });
    const block = pool.getBlock()!;
    const run = pool.getRun(2)!;
    const start = pool.indexOf(run);
    pool.returnBlock(run);
    pool.returnBlock(block);
    const invalid = (message: RegExp) => ({ name: 'RangeError' as const, code: 'ERR_SLABPOOL_INVALID_ARG', message });
    expectRejected(pool, () => pool.pin(block), invalid(/^Expected a block or run in use for block but received block \d+, which is free$/));
    expectRejected(pool, () => pool.pin(run), invalid(new RegExp(`^Expected a block or run in use for block but received the run view at block ${start}, which is free$`)));
    expectRejected(pool, () => pool.pin(other.getBlock()!), { name: 'TypeError', code: 'ERR_SLABPOOL_FOREIGN_BLOCK', message: /it belongs to another pool/ });
    expectRejected(pool, () => pool.pin(new Float64Array(4)), { name: 'TypeError', code: 'ERR_SLABPOOL_FOREIGN_BLOCK', message: /it was not created by this pool/ });
    for (const bad of [undefined, 3, new Float32Array(4), {}]) {
      expectRejected(pool, () => pool.pin(bad as unknown as Float64Array), { name: 'TypeError', code: 'ERR_SLABPOOL_INVALID_ARG', message: /^Expected Float64Array from getBlock\(\)\/getRun\(\) for block but received / });
    }
    other.destroy();
  });

  it('check() sees a pin count that disagrees with the marks', () => {
    const pool = makePool(backend, { blockSize: 4, numBlocks: 16 });
    const block = pool.getBlock()!;
    const pin = pool.pin(block);
    // Forge the mark back to held, as a bug forgetting a pin would leave it.
    const marks = Object.getOwnPropertySymbols(block).filter((s) => s.description === 'slabpool.mark');
    const pinnedMark = (block as unknown as Record<symbol, number>)[marks[0]!]!;
    (block as unknown as Record<symbol, number>)[marks[0]!] = pinnedMark - 3; // PinnedHeld (4) -> Held (1)
    expect(() => pool.check()).toThrow(/pool counts 1 pinned blocks and 0 pinned runs, marks say 0 and 0/);
    (block as unknown as Record<symbol, number>)[marks[0]!] = pinnedMark;
    pool.check();
    pin.release();
    pool.returnBlock(block);
    pool.check();
  });
});

describe('pins and the engines', () => {
  it('a pool of another type pins views of its own type only', () => {
    const pool = new MemoryPool({ blockSize: 4, numBlocks: 8, type: Int32Array, backend: 'js' });
    const block = pool.getBlock()!;
    using pin = pool.pin(block);
    expect(pin.block).toBe(block);
    expectRejected(pool as unknown as MemoryPool, () => pool.pin(new Float64Array(4) as unknown as Int32Array<ArrayBuffer>), { name: 'TypeError', code: 'ERR_SLABPOOL_INVALID_ARG', message: /^Expected Int32Array from getBlock/ });
  });
});
