// The worker side of bench/shared.mjs (the benchmark's shared case): attaches to the SharedPool of
// workerData.handle and answers the main thread's messages. Any error is posted as { error }.
//
// mode 'threads': { run: 'shared' | 'private', ms } runs bursts for about `ms` (on the shared pool,
//   or on a MemoryPool of this thread's own, for reference) and answers { pairs, ns }.
// mode 'handOff': a number is the index of a block handed off: blockAt(index), read it all,
//   returnBlock(view); a Float64Array is a copy: read it all. Either way the answer is the sum read.
// { close: true }: closes the attachment (and destroys the private pool), answers { closed: true }
//   and lets the thread end.
import { parentPort, workerData } from 'node:worker_threads';
import { MemoryPool, SharedPool } from 'slabpool';

const { mode, handle, burst } = workerData;
const pool = SharedPool.attach(handle);
const own = mode === 'threads' ? new MemoryPool({ blockSize: pool.blockLength, numBlocks: pool.numBlocks, backend: 'js' }) : null;
// One array of held blocks per loop, so that each sees the views of one pool class.
const sharedHeld = new Array(burst ?? 0).fill(null);
const privateHeld = new Array(burst ?? 0).fill(null);

/**
 * Bursts of `burst` getBlock calls, each block written and held, then `burst` returnBlock calls,
 * until `ms` have passed (checked once a burst). With burst = 2 * magazineSize, each burst refills
 * the magazine from the depot twice and flushes it twice (a depot visit under the lock per
 * magazineSize / 2 calls), as a thread that holds a few dozen blocks at a time does.
 */
function sharedBursts(ms) {
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(ms * 1e6));
  let now = t0;
  let bursts = 0;
  do {
    for (let j = 0; j < burst; j++) {
      const b = pool.getBlock();
      if (b === null) throw new Error(`shared pool exhausted: ${JSON.stringify(pool.stats())}`);
      b[0] = j;
      sharedHeld[j] = b;
    }
    for (let j = 0; j < burst; j++) pool.returnBlock(sharedHeld[j]);
    bursts++;
    now = process.hrtime.bigint();
  } while (now < end);
  return { pairs: bursts * burst, ns: Number(now - t0) };
}

/** The same bursts on this thread's own MemoryPool (a function of its own: one pool class per call site). */
function privateBursts(ms) {
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(ms * 1e6));
  let now = t0;
  let bursts = 0;
  do {
    for (let j = 0; j < burst; j++) {
      const b = own.getBlock();
      if (b === null) throw new Error('private pool exhausted');
      b[0] = j;
      privateHeld[j] = b;
    }
    for (let j = 0; j < burst; j++) own.returnBlock(privateHeld[j]);
    bursts++;
    now = process.hrtime.bigint();
  } while (now < end);
  return { pairs: bursts * burst, ns: Number(now - t0) };
}

function sum(view) {
  let s = 0;
  for (let i = 0; i < view.length; i++) s += view[i];
  return s;
}

parentPort.on('message', (msg) => {
  try {
    if (typeof msg === 'number') {
      const view = pool.blockAt(msg);
      const s = sum(view);
      pool.returnBlock(view);
      parentPort.postMessage(s);
    } else if (msg instanceof Float64Array) {
      parentPort.postMessage(sum(msg));
    } else if (msg.run === 'shared') {
      parentPort.postMessage(sharedBursts(msg.ms));
    } else if (msg.run === 'private') {
      parentPort.postMessage(privateBursts(msg.ms));
    } else if (msg.close) {
      pool.close();
      own?.destroy();
      parentPort.postMessage({ closed: true });
      parentPort.close();
    } else {
      throw new Error(`unknown message ${JSON.stringify(msg)}`);
    }
  } catch (err) {
    parentPort.postMessage({ error: `${err?.stack ?? err}` });
  }
});
