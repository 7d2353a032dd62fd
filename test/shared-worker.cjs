'use strict';
// The worker side of test/shared-*.test.ts: attaches to a SharedPool from workerData.handle (the
// package as npm test builds it, dist/) and runs workerData.mode. Reports with postMessage; any
// unexpected error is posted as { error } so the test fails with its message and stack.
const path = require('node:path');
const { parentPort, workerData, threadId } = require('node:worker_threads');
const { SharedPool } = require(path.join(__dirname, '..', 'dist', 'index.js'));

const modes = { handoff, race, hold, lockAndHang, fuzz, busy, attachAndHang, interleave, onCommand, closeAndHang };

(async () => {
  try {
    await modes[workerData.mode](workerData);
  } catch (err) {
    parentPort.postMessage({ error: `${err && err.stack ? err.stack : err}` });
  }
})();

function next(port) {
  return new Promise((resolve) => port.once('message', resolve));
}

/** A relay of hand-offs: take the block named by each message, check what the sender wrote, write `value`, hand it on. */
async function handoff({ handle, value, inbox, outbox, last }) {
  const pool = SharedPool.attach(handle);
  for (;;) {
    const msg = await next(inbox);
    if (msg.stop) {
      if (!last) outbox.postMessage({ stop: true });
      break;
    }
    const view = pool.blockAt(msg.index);
    const read = { first: view[0], uniform: view.every((x) => x === view[0]), length: view.length, slot: pool.slot, address: String(pool.addressOf(view)) };
    view.fill(value);
    (last ? parentPort : outbox).postMessage({ index: pool.handOff(view), trail: [...(msg.trail ?? []), read] });
  }
  pool.close();
  parentPort.postMessage({ closed: true });
}

/**
 * Rounds of a race between two workers for blocks a third thread (the main one) handed off, one
 * a round: indices[r - 1]. In each round worker 0 sets ctl[GO] to the round; both workers,
 * spinning on GO, then at once try returnBlock(index) (even rounds) or blockAt(index) and return
 * it (odd rounds). Each puts 1
 * (accepted), 2 (refused as expected) or 3 (anything else) in ctl[RESULT + me] and counts itself
 * in ctl[DONE]; worker 0 tallies the round once both are done. Worker 0 coordinates, rather than
 * the main thread, so that only two threads spin on the machine's two cores and the racers see GO
 * within a cache-line transfer of each other.
 */
function race({ handle, ctl: ctlBuffer, indices: indexBuffer, me, rounds }) {
  const GO = 0, DONE = 2, RESULT = 4;
  const ctl = new Int32Array(ctlBuffer);
  const indices = new Int32Array(indexBuffer);
  const pool = SharedPool.attach(handle);
  const spinUntil = (at, value) => {
    let spins = 0;
    while (Atomics.load(ctl, at) < value) if (++spins > 1e6) Atomics.wait(ctl, at, Atomics.load(ctl, at), 1);
  };
  const tally = { oneWinner: 0, wins: [0, 0], bad: [] };
  let errors = '';
  for (let r = 1; r <= rounds; r++) {
    if (me === 0) {
      spinUntil(DONE, 2 * (r - 1));
      Atomics.store(ctl, GO, r);
      // Worker 1 sees GO some 100 ns later: a varying head start for it, so that both orders and overlaps occur.
      for (let spin = (r * 7919) % 150; spin > 0; spin--);
    } else {
      spinUntil(GO, r);
    }
    const index = indices[r - 1];
    let result;
    try {
      if (r % 2 === 0) pool.returnBlock(index);
      else pool.returnBlock(pool.blockAt(index));
      result = 1;
    } catch (err) {
      const expected = r % 2 === 0 ? 'ERR_SLABPOOL_DOUBLE_RETURN' : 'ERR_SLABPOOL_INVALID_ARG';
      result = err.code === expected ? 2 : 3;
      if (result === 3 && errors === '') errors = `round ${r}: ${err.stack}`;
    }
    Atomics.store(ctl, RESULT + me, result);
    Atomics.add(ctl, DONE, 1);
    if (me === 0) {
      spinUntil(DONE, 2 * r);
      const results = [Atomics.load(ctl, RESULT), Atomics.load(ctl, RESULT + 1)];
      if (results.includes(1) && results.includes(2)) {
        tally.oneWinner++;
        tally.wins[results.indexOf(1)]++;
      } else if (tally.bad.length < 5) tally.bad.push(`round ${r}: results ${results.join(', ')} (1 accepted, 2 refused as expected, 3 other)`);
    }
  }
  let check = 'ok';
  try {
    pool.check();
  } catch (err) {
    check = err.message;
  }
  parentPort.postMessage({ done: true, errors, tally, check });
  if (check === 'ok') pool.close();
}

/** Takes `take` blocks, returns `give` of them (so they sit in this thread's magazine), reports, and waits for { take } or to be terminated. */
async function hold({ handle, take, give }) {
  const pool = SharedPool.attach(handle);
  const blocks = [];
  for (let i = 0; i < take; i++) blocks.push(pool.getBlock());
  for (let i = 0; i < give; i++) pool.returnBlock(blocks.pop());
  blocks.forEach((b, i) => b.fill(i + 1));
  parentPort.postMessage({ ready: true, threadId, slot: pool.slot, held: blocks.map((b) => pool.indexOf(b)) });
  // On { take: n }: n more getBlock calls; posts how many came and the code of what was thrown.
  // On { close: true }: close(), and posts { closed }.
  parentPort.on('message', ({ take: more, close }) => {
    if (close) {
      pool.close();
      return parentPort.postMessage({ closed: pool.closed });
    }
    let got = 0;
    try {
      for (; got < more; got++) pool.getBlock();
      parentPort.postMessage({ got, code: null });
    } catch (err) {
      parentPort.postMessage({ got, code: err.code, message: err.message, closed: pool.closed });
    }
  });
}

/**
 * Runs depot operations without pause (getRun of half the pool, O(capacity) under the depot lock,
 * and single blocks, some kept) until a call throws (threadExited() for this thread, elsewhere);
 * then posts the code and every block and run it still holds.
 */
function busy({ handle }) {
  const pool = SharedPool.attach(handle);
  parentPort.postMessage({ ready: true, threadId });
  const held = []; // [view, index], the last one being given back when a call throws
  let run = null; // [view, start, k] while held
  let code = null;
  const stride = pool.stats().stride; // indices from offsets: indexOf() throws too once the attachment ended
  const at = (view) => view.byteOffset / stride;
  try {
    for (let r = 0; ; r++) {
      const k = (pool.numBlocks >> 1) + (r % 7);
      const view = pool.getRun(k);
      if (view !== null) {
        run = [view, at(view), k];
        pool.returnBlock(view);
        run = null;
      }
      const b = pool.getBlock();
      if (b !== null) {
        held.push([b, at(b)]);
        if (r % 3 !== 0) {
          pool.returnBlock(b);
          held.pop();
        }
      }
      if (held.length > 20) {
        pool.returnBlock(held[0][0]);
        held.shift();
      }
    }
  } catch (err) {
    code = err.code;
  }
  const blocks = held.map(([, i]) => i);
  if (run !== null) for (let j = 0; j < run[2]; j++) blocks.push(run[1] + j);
  parentPort.postMessage({ code, held: blocks });
}

/**
 * Dies inside attach(), as worker.terminate() can make a thread do: takes the depot lock as
 * attach() does before the thread has a slot (as slot `maxThreads`), says so, and spins.
 */
function attachAndHang({ handle }) {
  const words = new Int32Array(handle.meta);
  const layout = require(path.join(__dirname, '..', 'dist', 'shared-layout.js'));
  require(path.join(__dirname, '..', 'dist', 'shared-lock.js')).lock(words, Atomics.load(words, layout.H_SLOTS));
  parentPort.postMessage({ ready: true, threadId });
  for (;;);
}

/**
 * Dies inside close(), as worker.terminate() can make a thread do: holds a block, has others in
 * its magazine, then does close()'s first steps (takes the depot lock, marks its slot ended) and
 * spins before the end pass, until terminated.
 */
function closeAndHang({ handle }) {
  const pool = SharedPool.attach(handle);
  const held = pool.getBlock();
  pool.returnBlock(pool.getBlock());
  const stride = pool.stats().stride;
  const words = new Int32Array(handle.meta);
  const layout = require(path.join(__dirname, '..', 'dist', 'shared-layout.js'));
  require(path.join(__dirname, '..', 'dist', 'shared-lock.js')).lock(words, pool.slot);
  const at = layout.recordOf(pool.slot) + layout.S_STATE;
  Atomics.store(words, at, Atomics.load(words, at) - layout.SLOT_LIVE + layout.SLOT_ENDED);
  parentPort.postMessage({ ready: true, threadId, held: held.byteOffset / stride });
  for (;;);
}

/**
 * Dies inside a depot operation, as worker.terminate() can make a thread do: takes the depot
 * lock as its slot, half-does a refill (takes blocks off the depot stack without marking them),
 * says so, and spins until terminated.
 */
function lockAndHang({ handle }) {
  const pool = SharedPool.attach(handle);
  pool.returnBlock(pool.getBlock()); // something in its magazine
  const words = new Int32Array(handle.meta);
  require(path.join(__dirname, '..', 'dist', 'shared-lock.js')).lock(words, pool.slot);
  const H_TOP = require(path.join(__dirname, '..', 'dist', 'shared-layout.js')).H_TOP;
  Atomics.sub(words, H_TOP, 2);
  parentPort.postMessage({ ready: true, threadId, slot: pool.slot });
  for (;;);
}

/**
 * One pool call, `op`, stopped at its `step`-th atomic access of the pool's metadata (Atomics
 * load, store, compareExchange, exchange, add or sub; accesses of the lock words, and those made
 * while this thread holds the depot lock, are not counted: a pause there would only make
 * threadExited() wait for the lock). At the pause it sets ctl[0] = 1 and waits for ctl[1]; the
 * main thread calls threadExited() for this thread in between. `step` may be a list of steps. ctl[0] = 2 if the call ended
 * before reaching that step. Then posts what the call did and the blocks this thread believes
 * it holds, and the ones it believes it handed off. `transit` is a block the main thread handed off.
 */
function interleave({ handle, ctl: ctlBuffer, op, step, transit }) {
  const steps = [step].flat(); // or several: the k-th pause sets ctl[0] = k and waits for ctl[1] >= k
  const ctl = new Int32Array(ctlBuffer);
  const layout = require(path.join(__dirname, '..', 'dist', 'shared-layout.js'));
  const pool = SharedPool.attach(handle);
  const words = new Int32Array(handle.meta);
  const stride = pool.stats().stride;
  const at = (view) => view.byteOffset / stride;
  const capacity = pool.numBlocks;
  const states = layout.regions(capacity, words[layout.H_SLOTS]).states;
  const magazine = words[layout.H_MAGAZINE];
  const cachedHere = () => {
    let n = 0;
    for (let i = 0; i < capacity; i++) if (words[states + i] === layout.state(pool.slot, layout.CACHED)) n++;
    return n;
  };
  const held = new Map(); // index -> view
  const take = () => {
    const b = pool.getBlock();
    held.set(at(b), b);
    return b;
  };
  const give = (i) => {
    pool.returnBlock(held.get(i));
    held.delete(i);
  };
  const handedOff = [];
  // Set-up: two blocks held, the magazine partly full; then what the op needs.
  take();
  take();
  if (op === 'refill') while (cachedHere() > 0) take();
  if (op === 'flush') {
    while (held.size < magazine + 1 || cachedHere() > 0) take();
    for (const i of [...held.keys()].slice(0, magazine)) give(i);
  }
  const first = () => held.keys().next().value;
  const ops = {
    returnBlock: () => give(first()),
    returnIndex: () => {
      const i = first();
      pool.returnBlock(i);
      held.delete(i);
    },
    flush: () => give(first()),
    getBlock: () => take(),
    refill: () => take(),
    getRun: () => {
      const run = pool.getRun(3);
      for (let j = 0; j < 3; j++) held.set(at(run) + j, run);
    },
    handOff: () => {
      const i = first();
      handedOff.push(pool.handOff(held.get(i)));
      held.delete(i);
    },
    blockAt: () => held.set(transit, pool.blockAt(transit)),
    returnTransit: () => pool.returnBlock(transit),
  };
  const real = {};
  for (const name of ['load', 'store', 'compareExchange', 'exchange', 'add', 'sub']) real[name] = Atomics[name];
  const skipped = new Set([layout.H_LOCK, layout.H_WAITERS, layout.H_LOCK_TAKES]);
  let seen = 0;
  let reached = false;
  for (const name of Object.keys(real)) {
    Atomics[name] = function (ta, index, ...rest) {
      if (!reached && ta.buffer === handle.meta && !skipped.has(index) && real.load(words, layout.H_LOCK) !== pool.slot + 1 && steps.includes(++seen)) {
        const k = steps.indexOf(seen) + 1;
        reached = k === steps.length;
        real.store(ctl, 0, k);
        Atomics.notify(ctl, 0);
        while (real.load(ctl, 1) < k) Atomics.wait(ctl, 1, real.load(ctl, 1));
      }
      return real[name](ta, index, ...rest);
    };
  }
  parentPort.postMessage({ ready: true, threadId, slot: pool.slot });
  let code = null;
  try {
    ops[op]();
  } catch (err) {
    code = err.code ?? `${err.stack}`;
  }
  Object.assign(Atomics, real);
  if (!reached) {
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    Atomics.wait(ctl, 1, 0); // threadExited() runs after the call here
  }
  parentPort.postMessage({ reached, code, held: [...held.keys()], handedOff });
}

/**
 * Pool calls on command, synchronously, so that they can run while the main thread is blocked
 * inside a pool call of its own. Holds block `held`, with block `top` on top of its magazine;
 * then for each command in ctl[0] (1: returnBlock(held's view), 2: getBlock(), 3: returnBlock of
 * what the last getBlock gave, 9: stop) puts the index concerned in ctl[2] and the outcome in
 * ctl[1] (1 done, 2 ERR_SLABPOOL_DESTROYED, 3 anything else, 4 null) and notifies it.
 */
function onCommand({ handle, ctl: ctlBuffer }) {
  const ctl = new Int32Array(ctlBuffer);
  const pool = SharedPool.attach(handle);
  const stride = pool.stats().stride;
  const held = pool.getBlock();
  const b = pool.getBlock();
  pool.returnBlock(b);
  parentPort.postMessage({ ready: true, threadId, slot: pool.slot, held: held.byteOffset / stride, top: b.byteOffset / stride });
  let last = null;
  for (;;) {
    Atomics.wait(ctl, 0, 0);
    const command = Atomics.exchange(ctl, 0, 0);
    if (command === 9) break;
    let outcome = 1;
    let index = -1;
    try {
      if (command === 1) {
        index = held.byteOffset / stride;
        pool.returnBlock(held);
      } else if (command === 2) {
        last = pool.getBlock();
        if (last === null) outcome = 4;
        else index = last.byteOffset / stride;
      } else if (command === 3) {
        index = last.byteOffset / stride;
        pool.returnBlock(last);
      }
    } catch (err) {
      outcome = err.code === 'ERR_SLABPOOL_DESTROYED' ? 2 : 3;
    }
    Atomics.store(ctl, 2, index);
    Atomics.store(ctl, 1, outcome);
    Atomics.notify(ctl, 1);
  }
  parentPort.postMessage({ stopped: true });
}

/** mulberry32, as test/helpers.ts rng. */
function rng(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The concurrent fuzz: seeded random operations on the shared pool, with every block this
 * thread owns stamped (every element) and the stamp verified at each return and hand-off, and by
 * the receiver of a hand-off. Peers are MessagePorts to the other workers; after `ops`
 * operations each sends { fin } to every peer and drains its ports until it has every peer's fin
 * (a port delivers in order, so every hand-off sent to it has then arrived; finsExpected says how
 * many, when a peer is to be terminated). Then it reports what
 * it owns and waits for { release }, when it verifies and returns everything and closes.
 */
async function fuzz({ handle, me, seed, ops, peers, barrier, finsExpected = peers.length, announce = false }) {
  const pool = SharedPool.attach(handle);
  const random = rng(seed);
  const pick = (n) => Math.floor(random() * n);
  const Type = { Float64Array, Int32Array }[pool.stats().type];
  const gate = new Int32Array(barrier); // [0]: workers started; [1 + w]: blocks worker w handed off that were claimed
  const share = (pool.numBlocks / (peers.length + 1)) * 0.9; // the pool runs dry now and then, not always
  let sentBlocks = 0;
  /** index -> { view, k, run, stamp } */
  const owned = new Map();
  const stale = []; // views this thread returned or handed off
  const counts = { get: 0, getNull: 0, run: 0, runNull: 0, ret: 0, handOut: 0, handIn: 0, wrong: 0, checks: 0 };
  let serial = 0;
  const stampOf = () => ((me + 1) * 100003 + ++serial) % 2 ** 24;
  const fail = (what) => {
    throw new Error(`worker ${me} (seed ${seed}): ${what}`);
  };
  const verify = (view, stamp, what) => {
    for (let j = 0; j < view.length; j++) if (view[j] !== stamp) fail(`${what}: element ${j} reads ${view[j]}, not its stamp ${stamp}`);
  };
  const own = (index, view, run) => {
    const k = run ? view.length / pool.blockLength : 1;
    for (let j = index; j < index + k; j++) {
      for (const [s, o] of owned) if (j >= s && j < s + o.k) fail(`block ${j} handed to this thread while it owns it (from ${s})`);
    }
    const stamp = stampOf();
    view.fill(stamp);
    owned.set(index, { view, k, run, stamp });
  };
  const expectCode = (fn, codes, what) => {
    try {
      fn();
    } catch (err) {
      if (!codes.includes(err.code)) fail(`${what}: expected ${codes.join(' or ')} but got ${err.code}: ${err.message}`);
      counts.wrong++;
      return;
    }
    fail(`${what}: expected ${codes.join(' or ')} but it was accepted`);
  };
  const receive = (msg) => {
    const view = pool.blockAt(msg.index);
    if (view.length !== msg.k * pool.blockLength) fail(`hand-off of ${msg.index}: length ${view.length}, sent ${msg.k} blocks`);
    verify(view, msg.stamp, `hand-off of ${msg.index} from worker ${msg.from}`);
    own(msg.index, view, msg.run);
    Atomics.add(gate, 1 + msg.from, msg.k);
    counts.handIn++;
  };
  const inbox = [];
  let fins = 0;
  for (const port of peers) {
    port.on('message', (msg) => {
      if (msg.fin) fins++;
      else inbox.push(msg);
    });
  }
  const drain = () => {
    while (inbox.length > 0) receive(inbox.shift());
  };
  const anyOwned = () => {
    const keys = [...owned.keys()];
    return keys.length === 0 ? undefined : keys[pick(keys.length)];
  };

  // Start together: a worker starts in tens of milliseconds, and runs thousands of operations in that time.
  Atomics.add(gate, 0, 1);
  Atomics.notify(gate, 0);
  for (let n = Atomics.load(gate, 0); n < peers.length + 1; n = Atomics.load(gate, 0)) Atomics.wait(gate, 0, n, 100);
  if (announce) parentPort.postMessage({ started: true, threadId, slot: pool.slot });
  for (let step = 0; step < ops; step++) {
    if (step % 50 === 0) {
      await new Promise((resolve) => setImmediate(resolve));
      drain();
    }
    // A worker holding more than half its share of the pool mostly gives back, so that the pool
    // is neither always exhausted nor always empty.
    // Blocks handed off and not yet claimed count as this worker's: a peer not scheduled for a
    // while would otherwise let them pile up in transit until the pool ran dry.
    let ownedBlocks = sentBlocks - Atomics.load(gate, 1 + me);
    for (const o of owned.values()) ownedBlocks += o.k;
    let r = random();
    if (r < 0.37 && ownedBlocks > share && random() < 0.8) r = 0.37 + random() * 0.45;
    if (r >= 0.65 && r < 0.82 && ownedBlocks > share) r = 0.37 + random() * 0.28;
    if (process.env.FUZZ_DEBUG && step % 1000 === 0) console.log(me, step, ownedBlocks, owned.size, pool.stats().inUseBlocks, pool.stats().inTransitBlocks, inbox.length);
    if (r < 0.32) {
      const view = pool.getBlock();
      if (view === null) counts.getNull++;
      else {
        own(pool.indexOf(view), view, false);
        counts.get++;
      }
    } else if (r < 0.37) {
      const view = pool.getRun(1 + pick(4));
      if (view === null) counts.runNull++;
      else {
        own(pool.indexOf(view), view, true);
        counts.run++;
      }
    } else if (r < 0.65) {
      const index = anyOwned();
      if (index === undefined) continue;
      const o = owned.get(index);
      verify(o.view, o.stamp, `return of ${index}`);
      owned.delete(index);
      if (random() < 0.5) pool.returnBlock(o.view);
      else pool.returnBlock(index);
      stale.push(o);
      counts.ret++;
    } else if (r < 0.82) {
      const index = anyOwned();
      if (index === undefined || peers.length === 0) continue;
      const o = owned.get(index);
      verify(o.view, o.stamp, `hand-off of ${index}`);
      owned.delete(index);
      const sent = pool.handOff(o.view);
      if (sent !== index) fail(`handOff gave ${sent} for block ${index}`);
      peers[pick(peers.length)].postMessage({ index, k: o.k, run: o.run, stamp: o.stamp, from: me });
      stale.push(o);
      sentBlocks += o.k;
      counts.handOut++;
    } else if (r < 0.97) {
      // Wrong calls the pool must refuse whatever the other threads are doing.
      const w = pick(5);
      if (w <= 1 && stale.length > 0) {
        const o = stale[pick(stale.length)];
        const index = pool.indexOf(o.view);
        if (index >= 0 && owned.has(index) && owned.get(index).view === o.view) continue; // it is ours again
        // A block view: refused as a second return. A run view: the same, or foreign once a run of another length was made at its start.
        expectCode(() => pool.returnBlock(o.view), o.run ? ['ERR_SLABPOOL_DOUBLE_RETURN', 'ERR_SLABPOOL_FOREIGN_BLOCK'] : ['ERR_SLABPOOL_DOUBLE_RETURN'], `stale return of ${o.run ? 'run' : 'block'} ${index}`);
        if (!o.run && index >= 0) expectCode(() => pool.handOff(o.view), ['ERR_SLABPOOL_DOUBLE_RETURN', 'ERR_SLABPOOL_INVALID_ARG'], `stale hand-off of ${index}`);
      } else if (w === 2) {
        const runStart = [...owned.keys()].find((s) => owned.get(s).k > 1);
        if (runStart === undefined) continue;
        expectCode(() => pool.returnBlock(runStart + 1), ['ERR_SLABPOOL_INVALID_ARG'], `return of index ${runStart + 1} inside a run`);
      } else if (w === 3) {
        expectCode(() => pool.returnBlock(pool.numBlocks + pick(10)), ['ERR_SLABPOOL_INVALID_ARG'], 'return of an index past the pool');
      } else {
        expectCode(() => pool.returnBlock(new Type(pool.blockLength)), ['ERR_SLABPOOL_FOREIGN_BLOCK'], 'return of a foreign array');
      }
    } else {
      pool.check();
      counts.checks++;
    }
  }
  for (const port of peers) port.postMessage({ fin: true });
  // Until the others finish, what they hand over is checked and given back at once: a thread that
  // finished first would otherwise hoard the pool while the others still run.
  while (fins < finsExpected || inbox.length > 0) {
    await new Promise((resolve) => setImmediate(resolve));
    while (inbox.length > 0) {
      const msg = inbox.shift();
      receive(msg);
      pool.returnBlock(owned.get(msg.index).view);
      owned.delete(msg.index);
    }
  }
  for (const [index, o] of owned) verify(o.view, o.stamp, `owned block ${index} at quiescence`);
  parentPort.postMessage({
    quiescent: true,
    slot: pool.slot,
    owned: [...owned].map(([index, o]) => ({ index, k: o.k, stamp: o.stamp })),
    counts,
  });
  await next(parentPort); // { release }
  for (const [index, o] of owned) {
    verify(o.view, o.stamp, `owned block ${index} at release`);
    pool.returnBlock(o.view);
  }
  pool.check();
  pool.close();
  for (const port of peers) port.close();
  parentPort.postMessage({ released: true });
}
