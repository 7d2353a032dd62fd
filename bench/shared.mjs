// The benchmark's shared case (issue 16), run by bench/trial.mjs in a fresh process per trial:
// SharedPool in one thread beside a private MemoryPool ('pair'), two workers on one SharedPool
// against one ('threads'), and a block handed to another worker against a copy sent by
// postMessage ('handOff'). The workers run bench/shared-worker.mjs. Each trial measures its
// variants in turn, round by round, in one process, and returns the median over rounds of each
// figure and of each round's own ratio.
import { Worker } from 'node:worker_threads';
import { MemoryPool, SharedPool } from 'slabpool';

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** A worker of bench/shared-worker.mjs; ask(msg) posts and resolves with its answer (rejects on { error } or an exit). */
function start(workerData) {
  const worker = new Worker(new URL('./shared-worker.mjs', import.meta.url), { workerData });
  let waiting = null;
  let failure = null;
  const fail = (err) => {
    failure ??= err;
    waiting?.reject(failure);
    waiting = null;
  };
  worker.on('message', (msg) => {
    if (msg !== null && typeof msg === 'object' && typeof msg.error === 'string') return fail(new Error(`worker: ${msg.error}`));
    const w = waiting;
    waiting = null;
    w?.resolve(msg);
  });
  worker.on('error', fail);
  const exited = new Promise((resolve) => worker.on('exit', resolve));
  worker.on('exit', (code) => fail(new Error(`worker exited (code ${code}) before answering`)));
  return {
    worker,
    exited,
    /** Posts msg and resolves with the next message (one question at a time). */
    ask(msg) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        worker.postMessage(msg);
      });
    },
    /** Closes the worker's attachment and waits for the thread to end. */
    async close() {
      await this.ask({ close: true });
      const code = await exited;
      if (code !== 0) throw new Error(`worker exit code ${code}`);
    },
  };
}

/** The shared pool's books at the end of a trial: check() passes, nothing in use, every get returned. */
function checkEmpty(pool, what) {
  pool.check();
  const s = pool.stats();
  if (s.inUseBlocks !== 0 || s.acquires !== s.returns || s.handOffs !== s.claims) {
    throw new Error(`${what}: the shared pool's books do not balance: ${JSON.stringify(s)}`);
  }
}

/**
 * One thread: a getBlock+returnBlock pair (the block written) on a SharedPool, and on a private
 * MemoryPool of `backend`, both of `blockLength` elements and 1024 blocks as acquireRelease's,
 * timed in turn (which goes first alternates) for `rounds` rounds of about `budgetMs` each, after
 * `warmupMs` of each. The two loops are written out, so that each call site sees one pool class
 * (and MemoryPool's code one backend: a process that used both backends' pools measured native
 * ~50 % slower). Returns ns per pair of each and the median of the rounds' shared / MemoryPool.
 */
export function sharedPair({ backend, blockLength, rounds, budgetMs, warmupMs }) {
  const shared = new SharedPool({ blockSize: blockLength, numBlocks: 1024, backend: 'js' });
  const pool = new MemoryPool({ blockSize: blockLength, numBlocks: 1024, backend });
  if (pool.backend !== backend) throw new Error(`MemoryPool runs on ${pool.backend}, not ${backend}`);
  const sharedLoop = (n) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const b = shared.getBlock();
      b[0] = i;
      shared.returnBlock(b);
    }
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const poolLoop = (n) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const b = pool.getBlock();
      b[0] = i;
      pool.returnBlock(b);
    }
    return Number(process.hrtime.bigint() - t0) / n;
  };
  /** Warms `loop` up for `ms` in growing calls; returns the calls that take about budgetMs. */
  const size = (loop, ms) => {
    let n = 1000;
    let spent = 0;
    let perCall = 0;
    while (spent < ms || n < 1e5) {
      perCall = loop(n);
      spent += (perCall * n) / 1e6;
      if (n < 1e7) n *= 2;
    }
    return Math.max(1000, Math.round((budgetMs * 1e6) / perCall));
  };
  const nShared = size(sharedLoop, warmupMs);
  const nPool = size(poolLoop, warmupMs);
  const sharedNs = [];
  const poolNs = [];
  const ratios = [];
  for (let r = 0; r < rounds; r++) {
    let s;
    let p;
    if (r % 2 === 0) {
      s = sharedLoop(nShared);
      p = poolLoop(nPool);
    } else {
      p = poolLoop(nPool);
      s = sharedLoop(nShared);
    }
    sharedNs.push(s);
    poolNs.push(p);
    ratios.push(s / p);
  }
  checkEmpty(shared, 'pair');
  shared.close();
  pool.check();
  pool.destroy();
  return { shared: median(sharedNs), pool: median(poolNs), ratio: median(ratios) };
}

/** Million pairs per second from the workers' answers ({ pairs, ns } each, run at the same time). */
const mpps = (answers) => answers.reduce((sum, a) => sum + (a.pairs / a.ns) * 1e3, 0);

/**
 * Throughput of getBlock+returnBlock pairs in bursts (bench/shared-worker.mjs sharedBursts: a
 * burst takes 2 * magazineSize blocks, writing each, then gives them back, so magazines refill
 * from and flush to the depot) by one worker alone and by two at once on one SharedPool of
 * `numBlocks` blocks of 100 doubles; and for reference the same bursts on a private MemoryPool
 * (js) in each worker, which share nothing. Each round runs, for about `phaseMs` each: one worker
 * (the two take turns), both; then the same on private pools. Returns million pairs per second
 * (the sum over the workers of each one's own rate), medians over rounds, and the median of the
 * rounds' 2-thread / 1-thread ratios.
 */
export async function sharedThreads({ numBlocks, rounds, phaseMs, warmupMs }) {
  const pool = new SharedPool({ blockSize: 100, numBlocks, backend: 'js' });
  const magazine = pool.stats().magazineSize;
  const burst = 2 * magazine;
  const workers = [0, 1].map(() => start({ mode: 'threads', handle: pool.handle, burst }));
  try {
    const phase = (run, which) => Promise.all(which.map((w) => w.ask({ run, ms: phaseMs })));
    for (const run of ['shared', 'private']) await Promise.all(workers.map((w) => w.ask({ run, ms: warmupMs })));
    const rows = { shared: { one: [], two: [], ratio: [] }, private: { one: [], two: [], ratio: [] } };
    for (let r = 0; r < rounds; r++) {
      for (const run of ['shared', 'private']) {
        const one = mpps(await phase(run, [workers[r % 2]]));
        const two = mpps(await phase(run, workers));
        rows[run].one.push(one);
        rows[run].two.push(two);
        rows[run].ratio.push(two / one);
      }
    }
    for (const w of workers) await w.close();
    checkEmpty(pool, 'threads');
    const summary = (row) => ({ one: median(row.one), two: median(row.two), ratio: median(row.ratio) });
    return { burst, magazine, shared: summary(rows.shared), private: summary(rows.private) };
  } finally {
    for (const w of workers) w.worker.terminate();
    pool.close();
  }
}

/**
 * A block of `length` doubles sent to a worker and answered, ping-pong, two ways: 'handOff'
 * (getBlock, fill, handOff, postMessage(index); the worker: blockAt(index), read every element,
 * returnBlock(view), post the sum) and 'copy' (a plain Float64Array filled, postMessage(slice());
 * the worker reads every element of its copy and posts the sum). The sender sends the next
 * message when the answer arrives, and checks the sum (what was written arrived). Each round times
 * a batch of each (which goes first alternates) of about `budgetMs`, after `warmupMs` of each.
 * Returns us per message (its answer included), medians over rounds, and the median of the
 * rounds' copy / hand-off ratios.
 */
export async function sharedHandOff({ length, numBlocks, rounds, budgetMs, warmupMs }) {
  const pool = new SharedPool({ blockSize: length, numBlocks, backend: 'js' });
  const peer = start({ mode: 'handOff', handle: pool.handle });
  const plain = new Float64Array(length);
  let stamp = 0;
  const send = {
    handOff: () => {
      const block = pool.getBlock();
      if (block === null) throw new Error(`shared pool exhausted: ${JSON.stringify(pool.stats())}`);
      block.fill(stamp);
      return pool.handOff(block);
    },
    copy: () => {
      plain.fill(stamp);
      return plain.slice();
    },
  };
  /** n messages of one kind in turn; ns per message. */
  const batch = async (kind, n) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      stamp = (stamp + 1) % 1000;
      const sum = await peer.ask(send[kind]());
      if (sum !== stamp * length) throw new Error(`${kind}: the worker read a sum of ${sum}, not ${stamp * length}`);
    }
    return Number(process.hrtime.bigint() - t0) / n;
  };
  try {
    // Warm-up in growing batches of each kind in turn (the first messages also make each block's
    // view in both threads), then a batch of each sized from a calibration of at least 10 ms.
    for (let n = 1, spent = 0; spent < warmupMs || n < 8; n *= 2) {
      for (const kind of ['handOff', 'copy']) spent += (n * (await batch(kind, n))) / 2e6;
    }
    const calls = {};
    for (const kind of ['handOff', 'copy']) {
      let n = 0;
      let ns = 0;
      while (ns < 10e6 || n < 4) {
        ns += 4 * (await batch(kind, 4));
        n += 4;
      }
      calls[kind] = Math.max(5, Math.round((budgetMs * 1e6 * n) / ns));
    }
    const us = { handOff: [], copy: [] };
    const ratios = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['handOff', 'copy'] : ['copy', 'handOff'];
      const ns = {};
      for (const kind of order) ns[kind] = await batch(kind, calls[kind]);
      us.handOff.push(ns.handOff / 1e3);
      us.copy.push(ns.copy / 1e3);
      ratios.push(ns.copy / ns.handOff);
    }
    await peer.close();
    checkEmpty(pool, 'handOff');
    return { handOffUs: median(us.handOff), copyUs: median(us.copy), ratio: median(ratios), messages: calls };
  } finally {
    peer.worker.terminate();
    pool.close();
  }
}
