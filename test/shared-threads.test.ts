import { MessageChannel, threadId, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedPool } from '../lib/index.js';
import { CACHED, HELD, RUN, TRANSIT, kindOf, regions, slotOf } from '../lib/shared-layout.js';
import { LOCK_TIMEOUT_MS, TAKEOVER_MS } from '../lib/shared-lock.js';
import { BACKENDS, fuzzSettings, thrownBy } from './helpers.js';
import { rawBlocks, start } from './shared-workers.js';

/*
 * SharedPool across real worker_threads: zero-copy hand-off along a chain of threads, the race of
 * two threads for one block (exactly one wins, in every round), and what happens when a worker
 * ends holding blocks, a magazine, or the depot lock. The concurrent fuzz is shared-fuzz.test.ts.
 */

const { full } = fuzzSettings(1, 1, 1);

describe.each(BACKENDS)('SharedPool across worker_threads (%s)', (backend) => {
  it('hands a block from thread to thread without copying: each reads what the last wrote, in the same memory', async () => {
    const pool = new SharedPool({ backend, blockSize: 100_000, numBlocks: 8 });
    const toA = new MessageChannel();
    const aToB = new MessageChannel();
    const a = start({ mode: 'handoff', handle: pool.handle, value: 2.5, inbox: toA.port2, outbox: aToB.port1, last: false }, [toA.port2, aToB.port1]);
    const b = start({ mode: 'handoff', handle: pool.handle, value: 3.5, inbox: aToB.port2, last: true }, [aToB.port2]);

    const block = pool.getBlock()!;
    block.fill(1.5);
    const address = String(pool.addressOf(block)); // 'null' on js; on native, the same in every thread
    const index = pool.handOff(block);
    toA.port1.postMessage({ index });
    const reply = await b.next<{ index: number; trail: { first: number; uniform: boolean; length: number; slot: number }[] }>();
    expect(reply.index).toBe(index);
    expect(reply.trail).toEqual([
      { first: 1.5, uniform: true, length: 100_000, slot: expect.any(Number), address },
      { first: 2.5, uniform: true, length: 100_000, slot: expect.any(Number), address },
    ]);
    expect(address === 'null').toBe(backend === 'js');
    // Three attachments, three slots: the workers took 1 and 2, in whichever order they attached.
    expect(reply.trail.map((t) => t.slot).sort()).toEqual([1, 2]);
    // The view this thread handed off reads what the last thread wrote: one memory, no copy.
    expect(block[0]).toBe(3.5);
    expect(block[99_999]).toBe(3.5);
    expect(block.buffer instanceof SharedArrayBuffer).toBe(backend === 'js'); // native: an external ArrayBuffer of this thread's over the region
    const back = pool.blockAt(reply.index);
    expect(back).toBe(block); // this thread's own view of the block, claimed back
    expect(pool.stats()).toMatchObject({ inUseBlocks: 1, inTransitBlocks: 0, handOffs: 3, claims: 3, acquires: 1, threads: 3 });
    pool.returnBlock(back);
    toA.port1.postMessage({ stop: true });
    await Promise.all([a.next(), b.next()]); // { closed }
    await Promise.all([a.worker.terminate(), b.worker.terminate()]);
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, freeBlocks: 8, threads: 1, orphanedBlocks: 0 });
  });

  it('lets exactly one of two racing threads return (or claim) a block handed off to both, in every round', async () => {
    const rounds = full ? 100_000 : 2_000;
    // This thread hands off one block per round before the race starts, so that neither racer is its sender.
    const pool = new SharedPool({ backend, blockSize: 4, numBlocks: rounds });
    const indices = new Int32Array(new SharedArrayBuffer(4 * rounds));
    for (let r = 0; r < rounds; r++) indices[r] = pool.handOff(pool.getBlock()!);
    const ctl = new SharedArrayBuffer(64);
    const racers = [0, 1].map((me) => start({ mode: 'race', handle: pool.handle, ctl, indices: indices.buffer, me, rounds }));
    const reports = await Promise.all(racers.map((w) => w.next<{ errors: string; check: string; tally: { oneWinner: number; wins: number[]; bad: string[] } }>()));
    const { tally } = reports[0]!;
    expect({ oneWinner: tally.oneWinner, bad: tally.bad }).toEqual({ oneWinner: rounds, bad: [] });
    expect(reports.map((x) => [x.errors, x.check])).toEqual([['', 'ok'], ['', 'ok']]);
    console.log(`fuzz: shared pool race: ${rounds} rounds, each won by exactly one of two workers (wins ${tally.wins.join(' / ')})`);
    await Promise.all(racers.map((w) => w.exited));
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, inTransitBlocks: 0, acquires: rounds, returns: rounds, handOffs: rounds, claims: rounds / 2, threads: 1 });
  });

  it("returns a terminated worker's magazine to the depot, reports its held blocks, and reclaims them on request", async () => {
    const pool = new SharedPool({ backend, blockSize: 16, numBlocks: 256, maxThreads: 2 });
    const w = start({ mode: 'hold', handle: pool.handle, take: 12, give: 5 });
    const ready = await w.next<{ threadId: number; slot: number; held: number[] }>();
    // M = 16, batches of 8: two refills gave 16, 12 were taken, 5 came back: 9 cached, 7 held.
    expect(pool.stats()).toMatchObject({ cachedBlocks: 9, inUseBlocks: 7, orphanedBlocks: 0, threads: 2 });
    for (const [k, index] of ready.held.entries()) {
      const raw = new Float64Array(rawBlocks(pool), index * pool.stats().stride, 16);
      expect([...raw]).toEqual(new Array(16).fill(k + 1));
    }
    expect(thrownBy(() => pool.reclaim(ready.threadId))).toMatchObject({ name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG', message: expect.stringMatching(/^Expected the threadId of a thread whose attachments ended for threadId but received \d+ of type number \(it is attached/) });
    await w.worker.terminate();
    expect(pool.threadExited(ready.threadId)).toBe(9);
    expect(pool.stats()).toMatchObject({ cachedBlocks: 0, inUseBlocks: 7, orphanedBlocks: 7, depotBlocks: 249, threads: 1 });
    pool.check();
    expect(pool.threadExited(ready.threadId)).toBe(0);
    expect(pool.reclaim(ready.threadId)).toBe(7);
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, orphanedBlocks: 0, freeBlocks: 256, reclaimed: 7, acquires: 12, returns: 5 });
    pool.check();
    expect(thrownBy(() => pool.threadExited(threadId))).toMatchObject({ name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG', message: `Expected the threadId of another thread for threadId but received ${threadId} of type number (it is this thread, which is running)` });
    // Its slot (the only one besides this thread's) holds nothing now: a new attachment may take it.
    const again = start({ mode: 'hold', handle: pool.handle, take: 1, give: 1 });
    expect((await again.next<{ slot: number }>()).slot).toBe(ready.slot);
    await again.worker.terminate();
  });

  it('ends the attachment of a thread still running when threadExited() is called for it: its every later call throws, changing nothing', async () => {
    const pool = new SharedPool({ backend, blockSize: 16, numBlocks: 256 });
    const w = start({ mode: 'hold', handle: pool.handle, take: 12, give: 5 });
    const ready = await w.next<{ threadId: number }>();
    expect(pool.threadExited(ready.threadId)).toBe(9); // its magazine, taken while it runs
    w.worker.postMessage({ take: 3 });
    expect(await w.next()).toEqual({
      got: 0,
      code: 'ERR_SLABPOOL_DESTROYED',
      message: "Cannot call getBlock(): this thread's attachment to the shared pool was ended by threadExited() in another thread",
      closed: true,
    });
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 7, orphanedBlocks: 7, cachedBlocks: 0, threads: 1 });
    await w.worker.terminate();
    expect(pool.reclaim(ready.threadId)).toBe(7);
    pool.check();
  });

  it('refuses every call of an attachment ended by threadExited() even after a new thread took its slot: no block taken from the new one\'s magazine', async () => {
    // The ended attachment's magazine still lists blocks the new attachment of the same slot may
    // have in its own magazine (cached for the same slot number): a check of the slot that sees
    // it live again, the new attachment's, would let the old one take them, two owners.
    // Two of them: the first calls getBlock, the second close() (which must neither flush the
    // new attachment's magazine nor end its slot).
    const pool = new SharedPool({ backend, blockSize: 4, numBlocks: 256, maxThreads: 3 });
    const old = [start({ mode: 'hold', handle: pool.handle, take: 4, give: 4 }), start({ mode: 'hold', handle: pool.handle, take: 4, give: 4 })];
    const was = await Promise.all(old.map((w) => w.next<{ threadId: number; slot: number }>()));
    for (const { threadId: id } of was) expect(pool.threadExited(id)).toBe(8); // a batch of 8 each, all back in the magazine
    const fresh = [start({ mode: 'hold', handle: pool.handle, take: 1, give: 0 }), start({ mode: 'hold', handle: pool.handle, take: 1, give: 0 })];
    const now = await Promise.all(fresh.map((w) => w.next<{ slot: number }>()));
    expect(now.map((x) => x.slot).sort()).toEqual(was.map((x) => x.slot).sort());
    expect(pool.stats()).toMatchObject({ cachedBlocks: 14, inUseBlocks: 2, threads: 3 });
    old[0]!.worker.postMessage({ take: 8 });
    expect(await old[0]!.next()).toMatchObject({ got: 0, code: 'ERR_SLABPOOL_DESTROYED', closed: true });
    old[1]!.worker.postMessage({ close: true });
    expect(await old[1]!.next()).toEqual({ closed: true });
    expect(pool.stats()).toMatchObject({ cachedBlocks: 14, inUseBlocks: 2, threads: 3 });
    for (const w of fresh) w.worker.postMessage({ take: 7 });
    expect(await Promise.all(fresh.map((w) => w.next()))).toEqual([{ got: 7, code: null }, { got: 7, code: null }]);
    expect(pool.stats()).toMatchObject({ cachedBlocks: 0, inUseBlocks: 16, orphanedBlocks: 0, threads: 3 });
    pool.check();
    await Promise.all([...old, ...fresh].map((w) => w.worker.terminate()));
  });

  it('never takes the depot lock from under a thread still running when threadExited() is called for it: no block handed out twice, every block accounted for', async () => {
    for (let round = 0; round < 3; round++) {
      const pool = new SharedPool({ backend, blockSize: 2, numBlocks: 20_000 });
      const w = start({ mode: 'busy', handle: pool.handle });
      const { threadId: id } = await w.next<{ threadId: number }>();
      await new Promise((resolve) => setTimeout(resolve, 20 + 10 * round));
      pool.threadExited(id); // the worker holds the depot lock most of the time: its getRun walks 20,000 states under it
      const { code, held } = await w.next<{ code: string | null; held: number[] }>();
      expect(code).toBe('ERR_SLABPOOL_DESTROYED');
      pool.check();
      const mine = new Set<number>();
      for (let b = pool.getBlock(); b !== null; b = pool.getBlock()) {
        const i = pool.indexOf(b);
        expect(mine.has(i), `block ${i} handed out twice`).toBe(false);
        mine.add(i);
      }
      for (const i of held) expect(mine.has(i), `block ${i}, the worker's, handed out here too`).toBe(false);
      expect(mine.size + pool.stats().orphanedBlocks).toBe(20_000);
      expect(pool.stats().orphanedBlocks).toBe(held.length);
      pool.check();
      await w.worker.terminate();
    }
  }, 60_000);

  it('keeps every block accounted for whichever atomic step of a call threadExited() interrupts: never cached for an ended slot, held where the thread believes', async () => {
    // Each call of each kind, stopped at each of its atomic steps outside the depot lock (a worker
    // replaces Atomics' functions to pause there) while this thread calls threadExited() for it.
    // Found this way: a returnBlock stopped between its check of the slot and its compareExchange
    // into the magazine left the block cached for the ended slot, neither free nor orphaned.
    const ops = ['returnBlock', 'returnIndex', 'flush', 'getBlock', 'refill', 'getRun', 'handOff', 'blockAt', 'returnTransit'];
    const numBlocks = 128;
    let cases = 0;
    for (const op of ops) {
      for (let step = 1; ; step++) {
        const pool = new SharedPool({ backend, blockSize: 2, numBlocks, maxThreads: 2 });
        const transit = pool.handOff(pool.getBlock()!);
        const ctl = new Int32Array(new SharedArrayBuffer(8));
        const w = start({ mode: 'interleave', handle: pool.handle, ctl: ctl.buffer, op, step, transit });
        const { threadId: id, slot } = await w.next<{ threadId: number; slot: number }>();
        while (Atomics.load(ctl, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
        pool.threadExited(id);
        Atomics.store(ctl, 1, 1);
        Atomics.notify(ctl, 1);
        const report = await w.next<{ reached: boolean; code: string | null; held: number[]; handedOff: number[] }>();
        await w.worker.terminate();
        const where = `${op}, paused at step ${step}: ${JSON.stringify(report)}`;
        expect(report.code, where).toBeOneOf([null, 'ERR_SLABPOOL_DESTROYED']);
        expect(() => pool.check(), where).not.toThrow();
        const words = new Int32Array(pool.handle.meta);
        const { states, runLen } = regions(numBlocks, 2);
        // The blocks in state `kind` for the worker's slot; a run (whose body blocks name no slot) as all its blocks.
        const of = (kinds: number[]): number[] => {
          const out: number[] = [];
          for (let i = 0; i < numBlocks; i++) {
            const s = words[states + i]!;
            if (slotOf(s) !== slot || !kinds.includes(kindOf(s))) continue;
            for (let j = 0; j < (kindOf(s) === RUN ? words[runLen + i]! : 1); j++) out.push(i + j);
          }
          return out;
        };
        expect({ where, cached: of([CACHED]), held: of([HELD, RUN]), handedOff: of([TRANSIT]) }).toEqual({
          where,
          cached: [],
          held: [...report.held].sort((a, b) => a - b),
          handedOff: report.handedOff,
        });
        expect(pool.stats().orphanedBlocks, where).toBe(report.held.length);
        cases++;
        if (!report.reached) break;
      }
    }
    expect(cases).toBeGreaterThan(ops.length * 2);
  }, 60_000);

  it("ends an attachment whose thread changes a block in the middle of threadExited()'s pass: the pass looks again, and the thread's every later call throws", async () => {
    // This thread's end pass is stopped just before its compareExchange of one block (it replaces
    // Atomics.compareExchange for the call) while the worker, still running, returns that block
    // (the pass read it held) or takes it from its magazine (the pass read it cached). A pass that
    // gave up on that block left it cached or held for the ended attachment: the worker went on
    // taking and returning it, and nothing would ever free it.
    for (const race of ['returnBlock', 'getBlock'] as const) {
      const numBlocks = 128;
      const pool = new SharedPool({ backend, blockSize: 2, numBlocks, maxThreads: 2 });
      const ctl = new Int32Array(new SharedArrayBuffer(16));
      const w = start({ mode: 'onCommand', handle: pool.handle, ctl: ctl.buffer });
      const { threadId: id, slot, held, top } = await w.next<{ threadId: number; slot: number; held: number; top: number }>();
      const command = (c: number): { outcome: number; index: number } => {
        Atomics.store(ctl, 1, 0);
        Atomics.store(ctl, 0, c);
        Atomics.notify(ctl, 0);
        if (c !== 9) Atomics.wait(ctl, 1, 0, 10_000);
        return { outcome: Atomics.load(ctl, 1), index: Atomics.load(ctl, 2) };
      };
      const { states } = regions(numBlocks, 2);
      const target = race === 'returnBlock' ? held : top;
      const meta = pool.handle.meta;
      const real = Atomics.compareExchange;
      let during: { outcome: number; index: number } | null = null;
      Atomics.compareExchange = ((ta: Int32Array, index: number, expected: number, replacement: number): number => {
        if (during === null && ta.buffer === meta && index === states + target && slotOf(expected) === slot) during = command(race === 'returnBlock' ? 1 : 2);
        return real(ta, index, expected, replacement);
      }) as typeof Atomics.compareExchange;
      try {
        pool.threadExited(id);
      } finally {
        Atomics.compareExchange = real;
      }
      expect({ race, during }).toEqual({ race, during: { outcome: 1, index: target } }); // the worker's call came first, and completed
      // Its next call: the block it just returned (now on top of its magazine), or the one it just took.
      expect({ race, after: command(race === 'returnBlock' ? 2 : 3).outcome }).toEqual({ race, after: 2 });
      const words = new Int32Array(meta);
      const left = [...Array(numBlocks).keys()].filter((i) => {
        const s = words[states + i]!;
        return slotOf(s) === slot && (kindOf(s) === CACHED || (kindOf(s) === HELD && s >>> 14 !== 0));
      });
      expect({ race, left }).toEqual({ race, left: [] });
      expect(pool.stats()).toMatchObject({ cachedBlocks: 0, orphanedBlocks: race === 'returnBlock' ? 0 : 2 }); // `held`, and the block it took
      pool.check();
      command(9);
      await w.next();
      await w.worker.terminate();
    }
  });

  it('frees at reclaim() a block a thread terminated inside returnBlock(index) left cached after threadExited() ended it', async () => {
    // returnBlock(index) of another thread's hand-off, paused before its compareExchange into the
    // magazine (step 3) while threadExited() ends the attachment, then terminated before it looks
    // at the slot (step 4) and puts the block back in transit: the block is cached for an ended
    // attachment, which only reclaim() can see to.
    const numBlocks = 128;
    const pool = new SharedPool({ backend, blockSize: 2, numBlocks, maxThreads: 2 });
    const transit = pool.handOff(pool.getBlock()!);
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const w = start({ mode: 'interleave', handle: pool.handle, ctl: ctl.buffer, op: 'returnTransit', step: [3, 4], transit });
    const { threadId: id, slot } = await w.next<{ threadId: number; slot: number }>();
    const pausedAt = async (k: number): Promise<void> => {
      while (Atomics.load(ctl, 0) < k) await new Promise((resolve) => setTimeout(resolve, 1));
    };
    await pausedAt(1);
    expect(pool.threadExited(id)).toBeGreaterThan(0); // the magazine a refill filled
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 1);
    await pausedAt(2);
    await w.worker.terminate();
    const words = new Int32Array(pool.handle.meta);
    const { states } = regions(numBlocks, 2);
    const cachedThere = [...words.subarray(states, states + numBlocks).keys()].filter((i) => kindOf(words[states + i]!) === CACHED && slotOf(words[states + i]!) === slot);
    expect({ cachedThere, ...pool.stats() }).toMatchObject({ cachedThere: [transit], orphanedBlocks: 2, inUseBlocks: 2, inTransitBlocks: 0 });
    expect(pool.reclaim(id)).toBe(3); // the two blocks it held, and the one left cached
    expect(pool.stats()).toMatchObject({ orphanedBlocks: 0, inUseBlocks: 0 });
    expect([...words.subarray(states, states + numBlocks)].filter((s) => slotOf(s) === slot && s !== 0)).toEqual([]);
    pool.check();
  });

  it('survives a worker terminated in the middle of the fuzz: its magazine comes back, its blocks are orphaned and reclaimed, every block accounted for', async () => {
    const pool = new SharedPool({ backend, blockSize: 4, numBlocks: 200 });
    const ports: MessagePort[][] = [[], [], []];
    for (let i = 0; i < 3; i++) {
      for (let j = i + 1; j < 3; j++) {
        const { port1, port2 } = new MessageChannel();
        ports[i]!.push(port1);
        ports[j]!.push(port2);
      }
    }
    const barrier = new SharedArrayBuffer(64);
    // Worker 2 runs until it is terminated, anywhere: inside a call, holding the depot lock, between a hand-off and its message.
    const workers = ports.map((peers, me) =>
      start({ mode: 'fuzz', handle: pool.handle, me, seed: 77 + me, ops: me === 2 ? 1e9 : 30_000, peers, barrier, finsExpected: 1, announce: me === 2 }, peers),
    );
    const victim = workers[2]!;
    const { threadId: victimId } = await victim.next<{ threadId: number }>();
    await new Promise((resolve) => setTimeout(resolve, 40));
    await victim.worker.terminate();
    const cached = pool.threadExited(victimId); // a survivor waiting on a lock the victim held goes on from here
    const reports = await Promise.all(workers.slice(0, 2).map((w) => w.next<{ owned: { index: number; k: number }[] }>()));
    pool.check();
    const stats = pool.stats();
    const owner = new Map<number, number>();
    let owned = 0;
    for (const [w, report] of reports.entries()) {
      for (const { index, k } of report.owned) {
        for (let j = index; j < index + k; j++) {
          expect(owner.get(j), `block ${j} owned by workers ${owner.get(j)} and ${w}`).toBeUndefined();
          owner.set(j, w);
        }
        owned += k;
      }
    }
    // Held by the survivors, orphaned by the victim, or handed to the victim (or by it) and never claimed: nothing else is in use.
    expect(stats.inUseBlocks).toBe(owned + stats.orphanedBlocks + stats.inTransitBlocks);
    expect(stats).toMatchObject({ threads: 3 }); // this thread and the two survivors
    const orphaned = stats.orphanedBlocks;
    expect(pool.reclaim(victimId)).toBe(orphaned);
    // Blocks in transit to a thread that is gone: any thread may claim them with their index, and free them.
    let claimed = 0;
    for (let i = 0; i < pool.numBlocks; i++) {
      if (owner.has(i)) continue;
      try {
        const view = pool.blockAt(i);
        pool.returnBlock(view);
        claimed += view.length / pool.blockLength;
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ERR_SLABPOOL_INVALID_ARG');
      }
    }
    expect(claimed).toBe(stats.inTransitBlocks);
    for (const w of workers.slice(0, 2)) w.worker.postMessage({ release: true });
    await Promise.all(workers.slice(0, 2).map((w) => w.next()));
    pool.check();
    expect(pool.stats()).toMatchObject({ inUseBlocks: 0, orphanedBlocks: 0, inTransitBlocks: 0, freeBlocks: 200, threads: 1, reclaimed: orphaned });
    console.log(`shared pool: a worker terminated mid-fuzz left ${cached} cached, ${orphaned} held and ${claimed} in-transit blocks, all recovered`);
  });
});

// The depot lock is the same code over the same metadata on both engines: its take-overs and time-outs run once.
describe('SharedPool depot lock across worker_threads', () => {
  it('gives up on a depot lock a terminated worker left held, after LOCK_TIMEOUT_MS with no progress, with a coded error and nothing changed: the thread can then run threadExited()', async () => {
    const pool = new SharedPool({ blockSize: 4, numBlocks: 64 });
    const w = start({ mode: 'lockAndHang', handle: pool.handle });
    const ready = await w.next<{ threadId: number; slot: number }>();
    await w.worker.terminate();
    const before = pool.stats();
    const t0 = performance.now();
    // This thread's magazine is empty: getBlock() must visit the depot, whose lock the dead thread holds.
    expect(() => pool.getBlock()).toThrow(
      expect.objectContaining({ name: 'Error', code: 'ERR_SLABPOOL_LOCK_TIMEOUT', message: expect.stringContaining(`(thread ${ready.threadId}) for 10 s with no progress`) }),
    );
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS - 60);
    expect(pool.stats()).toEqual(before);
    expect(pool.threadExited(ready.threadId)).toBe(2);
    expect(pool.getBlock()).not.toBeNull();
    pool.check();
  }, 40_000);

  it('takes over the depot lock of a worker terminated inside attach(), after TAKEOVER_MS with no progress: no thread waits forever', async () => {
    const pool = new SharedPool({ blockSize: 4, numBlocks: 64 });
    const w = start({ mode: 'attachAndHang', handle: pool.handle });
    await w.next<{ threadId: number }>();
    await w.worker.terminate();
    const t0 = performance.now();
    expect(pool.getBlock()).not.toBeNull(); // its refill waits out the dead attacher's lock, then takes it
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TAKEOVER_MS - 60);
    pool.check();
    const other = SharedPool.attach(pool.handle); // attaching works again
    expect(other.getBlock()).not.toBeNull();
    other.close();
    pool.check();
  }, 30_000);

  it('takes over the depot lock of a worker terminated inside close(), and finishes its end pass: the pool is usable again', async () => {
    // Its slot already ended, threadExited() found no attachment of it and returned 0 without
    // taking the lock over: every call needing the lock then timed out, in every thread, for good.
    const pool = new SharedPool({ blockSize: 4, numBlocks: 64 });
    const w = start({ mode: 'closeAndHang', handle: pool.handle });
    const { threadId: id } = await w.next<{ threadId: number; held: number }>();
    await w.worker.terminate();
    const t0 = performance.now();
    expect(pool.threadExited(id)).toBe(1); // its magazine: the block it returned
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TAKEOVER_MS - 50);
    pool.check();
    expect(pool.stats()).toMatchObject({ cachedBlocks: 0, orphanedBlocks: 1, inUseBlocks: 1, threads: 1 });
    expect(pool.getRun(32)).not.toBeNull(); // the depot works again
    expect(pool.reclaim(id)).toBe(1);
    expect(pool.threadExited(id)).toBe(0); // nothing more of it: no wait
  }, 20_000);

  it('takes over the depot lock of a worker terminated inside a depot operation, and rebuilds the depot', async () => {
    const pool = new SharedPool({ blockSize: 4, numBlocks: 64 });
    const w = start({ mode: 'lockAndHang', handle: pool.handle });
    const ready = await w.next<{ threadId: number; slot: number }>();
    await w.worker.terminate();
    // The dead thread left the lock held and the depot's top two entries short: check() would wait on the lock forever.
    expect(Atomics.load(new Int32Array(pool.handle.meta), 2)).toBe(ready.slot + 1);
    expect(pool.threadExited(ready.threadId)).toBe(2); // its magazine: one refill of 2
    pool.check();
    expect(pool.stats()).toMatchObject({ depotBlocks: 64, cachedBlocks: 0, inUseBlocks: 0 });
    const blocks = Array.from({ length: 64 }, () => pool.getBlock());
    expect(new Set(blocks.map((b) => pool.indexOf(b!))).size).toBe(64);
    expect(pool.getBlock()).toBeNull();
    pool.check();
  });
});
