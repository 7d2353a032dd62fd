import * as path from 'node:path';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { SharedPool } from '../lib/index.js';
import { loadedAddon } from '../lib/loader.js';
import type { PoolArray } from '../lib/options.js';

/*
 * Starting the workers of test/shared-worker.cjs (which runs the package from dist/, as npm test
 * builds it) and reading what they post. The main thread's pool comes from lib/ (the TypeScript
 * source): a handle crosses between the two because it is plain data over shared memory.
 */

const script = path.join(__dirname, 'shared-worker.cjs');

export interface Started {
  readonly worker: Worker;
  /** The next message, rejected on a posted { error }, an 'error' event, or an exit first. */
  next<M = Record<string, unknown>>(): Promise<M>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
}

export function start(workerData: Record<string, unknown>, transferList: TransferListItem[] = []): Started {
  const worker = new Worker(script, { workerData, transferList });
  const queue: unknown[] = [];
  const waiting: { resolve: (m: unknown) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | null = null;
  const fail = (err: Error): void => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  worker.on('message', (msg: { error?: string }) => {
    if (typeof msg === 'object' && msg !== null && typeof msg.error === 'string') return fail(new Error(`worker: ${msg.error}`));
    const w = waiting.shift();
    if (w) w.resolve(msg);
    else queue.push(msg);
  });
  worker.on('error', fail);
  const exited = new Promise<number>((resolve) => {
    worker.on('exit', (code) => {
      fail(new Error(`worker exited with code ${code} before posting the message awaited`));
      resolve(code);
    });
  });
  return {
    worker,
    exited,
    next<M>(): Promise<M> {
      if (queue.length > 0) return Promise.resolve(queue.shift() as M);
      if (failure) return Promise.reject(failure);
      return new Promise<M>((resolve, reject) => waiting.push({ resolve: resolve as (m: unknown) => void, reject }));
    },
  };
}

/**
 * The whole of a shared pool's block memory as a buffer of this thread's, to read what other
 * threads wrote (a test's view, outside the pool's bookkeeping): the SharedArrayBuffer (js), or a
 * reference of its own to the addon's shared region (native).
 */
export function rawBlocks(pool: SharedPool<PoolArray>): ArrayBuffer {
  const handle = pool.handle;
  if (handle.backend === 'js') return handle.blocks as unknown as ArrayBuffer;
  const region = loadedAddon()!.sharedRegionAttach(handle.region!, pool.numBlocks * pool.stats().stride);
  if (typeof region !== 'object') throw new Error(`the shared region did not attach: ${region}`);
  return region.buffer;
}
