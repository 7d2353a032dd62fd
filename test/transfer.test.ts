import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import * as shared from '../lib/compat.js';
import { createTypedArrayPool, type TypedArrayPool } from '../lib/compat.js';
import type { MemoryPool } from '../lib/index.js';
import { BACKENDS, makePool, markedBuffersDetachable, memoryOf } from './helpers.js';

/*
 * Sending a block to another thread. A block is a view on its slab's ArrayBuffer, so a transfer
 * list naming `block.buffer` names the whole slab. Every slab is marked untransferable where it
 * is made, so the platform either refuses the transfer (DataCloneError, Node >= 21) or copies
 * (Node 20): either way no block of the pool changes. Both outcomes are accepted, and whichever
 * happened is checked in full. vitest runs this file a second time with the native engine's
 * slabs in V8-owned ArrayBuffers (SLABPOOL_NATIVE_MEMORY=v8, vitest.config.mts).
 */

type Sent = { readonly refused: true } | { readonly refused: false; readonly received: unknown };
type Send = (value: object, buffer: ArrayBufferLike) => Promise<Sent>;

function expectDataCloneError(err: unknown): void {
  expect(err).toBeInstanceOf(DOMException);
  expect((err as DOMException).name).toBe('DataCloneError');
}

/** What arrives on the other end of a real MessageChannel, or that postMessage refused. */
async function post(value: object, transfer: ArrayBufferLike[]): Promise<Sent> {
  const { port1, port2 } = new MessageChannel();
  try {
    const arrived = new Promise<unknown>((resolve) => port2.once('message', resolve));
    try {
      port1.postMessage(value, transfer as ArrayBuffer[]);
    } catch (err) {
      expectDataCloneError(err);
      return { refused: true };
    }
    return { refused: false, received: await arrived };
  } finally {
    port1.close();
    port2.close();
  }
}

const SENDS: [string, Send][] = [
  ['postMessage(block, [block.buffer]) on a MessageChannel', (value, buffer) => post(value, [buffer])],
  [
    'structuredClone(block, { transfer: [block.buffer] })',
    async (value, buffer) => {
      try {
        return { refused: false, received: structuredClone(value, { transfer: [buffer as ArrayBuffer] }) };
      } catch (err) {
        expectDataCloneError(err);
        return { refused: true };
      }
    },
  ],
];

const MODES: [string, 'js' | 'native'][] = BACKENDS.map((backend) => [backend === 'native' ? `native (${memoryOf(backend)} memory)` : backend, backend]);

/** n distinct values, different for each `seed`. */
const valuesFor = (seed: number, n: number): number[] => Array.from({ length: n }, (_, j) => seed * 1000 + j + 0.5);

/** The received copy of a block: a Float64Array with the block's elements (the copy is of its whole slab). */
function expectDelivered(sent: Sent, want: number[], slabBytes: number): void {
  if (sent.refused) return;
  const received = sent.received as Float64Array;
  expect(received).toBeInstanceOf(Float64Array);
  expect(Array.from(received)).toEqual(want);
  expect(received.buffer.byteLength).toBe(slabBytes);
}

describe.each(MODES)('transferring a block on the %s backend', (_label, backend) => {
  it.each(SENDS)('%s leaves the pool and every block intact', async (_name, send) => {
    const pool: MemoryPool = makePool(backend, { blockSize: 100, numBlocks: 32 });
    const blocks = Array.from({ length: 5 }, () => pool.getBlock()!);
    blocks.forEach((b, i) => b.set(valuesFor(i + 1, 100)));
    const run = pool.getRun(3)!;
    run.set(valuesFor(9, 300));
    const addresses = [...blocks, run].map((v) => pool.addressOf(v));
    const before = pool.stats();
    const slabBytes = blocks[0]!.buffer.byteLength;
    const target = blocks[2]!;

    const sent = await send(target, target.buffer);

    expectDelivered(sent, valuesFor(3, 100), slabBytes);
    // Every view keeps its length and contents, the transferred block's too.
    expect([...blocks, run].map((v) => v.length)).toEqual([100, 100, 100, 100, 100, 300]);
    blocks.forEach((b, i) => expect(Array.from(b), `block ${i}`).toEqual(valuesFor(i + 1, 100)));
    expect(Array.from(run)).toEqual(valuesFor(9, 300));
    expect(target.buffer.byteLength).toBe(slabBytes);
    pool.check();
    expect(pool.stats()).toEqual(before);
    expect([...blocks, run].map((v) => pool.addressOf(v))).toEqual(addresses);

    // The pool goes on: full-length blocks and runs that hold what is written, and everything goes back.
    const more = Array.from({ length: 4 }, () => pool.getBlock()!);
    const run2 = pool.getRun(4)!;
    expect([...more, run2].map((v) => v.length)).toEqual([100, 100, 100, 100, 400]);
    more.forEach((b, i) => b.set(valuesFor(20 + i, 100)));
    run2.set(valuesFor(30, 400));
    more.forEach((b, i) => expect(Array.from(b)).toEqual(valuesFor(20 + i, 100)));
    expect(Array.from(run2)).toEqual(valuesFor(30, 400));
    expect(Array.from(target)).toEqual(valuesFor(3, 100));
    for (const v of [...blocks, run, ...more, run2]) pool.returnBlock(v);
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, freeBlocks: 32 });
    pool.destroy();
  });

  it('postMessage(block) without a transfer list delivers the block, in a copy of its whole slab; block.slice() sends its contents alone', async () => {
    const pool = makePool(backend, { blockSize: 100, numBlocks: 10_000 });
    const block = pool.getBlock()!;
    block.set(valuesFor(4, 100));
    const slabBytes = block.buffer.byteLength;
    expect(slabBytes).toBeGreaterThanOrEqual(8_320_000); // 10,000 strides of 832 bytes

    const whole = await post(block, []);
    expect(whole.refused).toBe(false);
    expectDelivered(whole, valuesFor(4, 100), slabBytes);
    const alone = await post(block.slice(), []);
    expect(alone.refused).toBe(false);
    const received = (alone as { received: Float64Array }).received;
    expect(Array.from(received)).toEqual(valuesFor(4, 100));
    expect(received.buffer.byteLength).toBe(800);
    expect(Array.from(block)).toEqual(valuesFor(4, 100));
    pool.returnBlock(block);
    pool.check();
    pool.destroy();
  });
});

describe('transfers with the detach option (a debugging option)', () => {
  it('on the js backend leaves slabs transferable, so that trim() and destroy() still detach them; a transfer then takes a whole slab, as documented', () => {
    const pool = makePool('js', { blockSize: 4, numBlocks: 2, grow: true, detach: true });
    const blocks = Array.from({ length: 6 }, () => pool.getBlock()!);
    pool.returnBlock(blocks[4]!);
    pool.returnBlock(blocks[5]!);
    expect(pool.trim()).toBe(2 * 64);
    expect(blocks.map((b) => b.length)).toEqual([4, 4, 4, 4, 0, 0]);
    // No mark on the js backend's slabs here: the transfer moves slab 0 away from both its blocks.
    blocks[0]!.set([1, 2, 3, 4]);
    const moved = structuredClone(blocks[0]!, { transfer: [blocks[0]!.buffer as ArrayBuffer] });
    expect(Array.from(moved)).toEqual([1, 2, 3, 4]);
    expect(blocks.map((b) => b.length)).toEqual([0, 0, 4, 4, 0, 0]);
    pool.destroy();
    expect(blocks.map((b) => b.length)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it.skipIf(!BACKENDS.includes('native'))('on the native backend keeps slabs untransferable: a transfer leaves them; destroy() detaches every block (V8-owned slabs: only where a marked buffer can be detached, else they stay as without detach)', async () => {
    const pool = makePool('native', { blockSize: 4, numBlocks: 8, detach: true });
    const blocks = Array.from({ length: 3 }, () => pool.getBlock()!);
    blocks.forEach((b, i) => b.set(valuesFor(i, 4)));
    for (const [, send] of SENDS) expectDelivered(await send(blocks[1]!, blocks[1]!.buffer), valuesFor(1, 4), blocks[1]!.buffer.byteLength);
    blocks.forEach((b, i) => expect(Array.from(b)).toEqual(valuesFor(i, 4)));
    pool.check();
    const detachable = memoryOf('native') === 'external' || markedBuffersDetachable();
    pool.destroy();
    expect(blocks.map((b) => b.length)).toEqual(detachable ? [0, 0, 0] : [4, 4, 4]);
  });
});

/** Fills a view's bytes with a pattern from `seed`. */
function stamp(view: ArrayBufferView, seed: number): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  for (let j = 0; j < bytes.length; j++) bytes[j] = (seed * 31 + j) & 0xff;
}
function bytesOf(view: ArrayBufferView): number[] {
  return Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
}
function stamped(bytes: number, seed: number): number[] {
  return Array.from({ length: bytes }, (_, j) => (seed * 31 + j) & 0xff);
}

const COMPAT_POOLS: [string, () => TypedArrayPool][] = [
  ["the process-wide pool (require('slabpool/compat'))", () => shared as unknown as TypedArrayPool],
  ...MODES.map(([label, backend]): [string, () => TypedArrayPool] => [`createTypedArrayPool on the ${label} backend`, () => createTypedArrayPool({ backend })]),
];

describe.each(COMPAT_POOLS)('transferring an array from slabpool/compat: %s', (_label, makeCompat) => {
  it.each(SENDS)('%s of x = mallocBuffer(16) leaves every array of its size class intact', async (_name, send) => {
    const pool = makeCompat();
    // One size class (16 bytes): Buffers, Float64Arrays and Int32Arrays from the same slabs.
    const arrays: ArrayBufferView[] = [pool.mallocBuffer(16), pool.mallocDouble(2), pool.mallocBuffer(16), pool.mallocInt32(4), pool.mallocBuffer(16)];
    arrays.forEach((a, i) => stamp(a, i + 1));
    const before = pool.stats();
    const x = arrays[2] as Buffer;
    const slabBytes = x.buffer.byteLength;

    const sent = await send(x, x.buffer);

    if (!sent.refused) {
      const received = sent.received as Uint8Array;
      expect(received).toBeInstanceOf(Uint8Array);
      expect(bytesOf(received)).toEqual(stamped(16, 3));
      expect(received.buffer.byteLength).toBe(slabBytes);
    }
    expect(arrays.map((a) => a.byteLength)).toEqual([16, 16, 16, 16, 16]);
    arrays.forEach((a, i) => expect(bytesOf(a), `array ${i}`).toEqual(stamped(16, i + 1)));
    expect(x.buffer.byteLength).toBe(slabBytes);
    pool.check();
    expect(pool.stats()).toEqual(before);

    // Later mallocs of the class are full length, and everything frees.
    const more = [pool.mallocBuffer(16), pool.mallocDouble(2), pool.mallocUint8(16), pool.mallocBuffer(16)];
    expect(more.map((a) => a.byteLength)).toEqual([16, 16, 16, 16]);
    more.forEach((a, i) => stamp(a, 10 + i));
    more.forEach((a, i) => expect(bytesOf(a)).toEqual(stamped(16, 10 + i)));
    expect(bytesOf(x)).toEqual(stamped(16, 3));
    for (const a of [...arrays, ...more]) pool.free(a);
    pool.check();
    const after = pool.stats();
    expect(after.liveBytes - before.liveBytes).toBe(-5 * 16);
    expect(after.doubleFrees + after.foreignFrees).toBe(before.doubleFrees + before.foreignFrees);
  });
});

describe.each(COMPAT_POOLS)('transferring a buffer from mallocArrayBuffer: %s', (_label, makeCompat) => {
  it('moves the buffer (it is an allocation of its own), and free() then takes it back without caching it', async () => {
    const pool = makeCompat();
    const kept = pool.mallocArrayBuffer(64);
    const ab = pool.mallocArrayBuffer(64);
    stamp(new Uint8Array(kept), 1);
    stamp(new Uint8Array(ab), 2);
    const before = pool.stats().arrayBuffers;
    const { doubleFrees: d0, foreignFrees: f0 } = pool.stats();
    const rejected = { doubleFrees: d0, foreignFrees: f0 };

    const sent = await post(ab, [ab]);

    expect(sent.refused).toBe(false);
    expect(bytesOf(new Uint8Array((sent as { received: ArrayBuffer }).received))).toEqual(stamped(64, 2));
    expect(ab.byteLength).toBe(0); // transferred, as any ArrayBuffer is
    expect(bytesOf(new Uint8Array(kept))).toEqual(stamped(64, 1));
    pool.free(ab);
    pool.check();
    expect(pool.stats().arrayBuffers).toEqual({ ...before, live: before.live - 1, frees: before.frees + 1 });
    const next = pool.mallocArrayBuffer(64);
    expect(next.byteLength).toBe(64);
    expect(next).not.toBe(ab);
    pool.free(next);
    pool.free(kept);
    pool.check();
    const { doubleFrees, foreignFrees } = pool.stats();
    expect({ doubleFrees, foreignFrees }).toEqual(rejected);
  });
});

