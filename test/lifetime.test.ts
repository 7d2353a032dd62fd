import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

/*
 * Lifetimes of native memory, each in a child process so that a crash fails one test and not the
 * runner. The addon counts native slab memory: `liveSlabBytes()` the address ranges not yet freed,
 * `committedSlabBytes()` those not yet given back to the OS by a decommit, so these tests see
 * when memory is really given back, not only what JavaScript observes.
 */

const root = path.resolve(__dirname, '..');

// The addon the loader uses: build/Release, or the instrumented one in the sanitizer run.
const addonPath = process.env.SLABPOOL_NATIVE_PATH ? path.resolve(process.env.SLABPOOL_NATIVE_PATH) : path.join(root, 'build', 'Release', 'slabpool.node');
// Under AddressSanitizer freed memory sits in quarantine, so RSS says nothing about leaks there.
const sanitized = process.env.SLABPOOL_SANITIZE === '1';

const prelude = `
  const { MemoryPool } = require('slabpool');
  // Native slab bytes not yet freed (0 where no addon loads: the fallback's memory is V8's).
  const addon = (() => { try { return require(${JSON.stringify(addonPath)}); } catch { return { liveSlabBytes: () => 0, committedSlabBytes: () => 0 }; } })();
  const live = () => addon.liveSlabBytes();
  const committed = () => addon.committedSlabBytes();
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const settle = async () => { for (let i = 0; i < 4; i++) { globalThis.gc?.(); await tick(); } };
`;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function child(script: string, env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync(process.execPath, ['--expose-gc', '-e', prelude + script], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the script and parses the JSON it prints last; a crash or non-zero exit fails with its output. */
function childJson(script: string, env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const run = child(script, env);
  expect(run, run.stderr).toMatchObject({ status: 0, signal: null });
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

describe.skipIf(!BACKENDS.includes('native'))('native memory lifetimes', () => {
  it('keeps blocks valid after their pool is garbage-collected, and frees the slab once they are unreachable', () => {
    const out = childJson(`(async () => {
      const before = live();
      let ref, block, run;
      (() => {
        const pool = new MemoryPool({ blockSize: 1000, numBlocks: 64, backend: 'native' });
        ref = new WeakRef(pool);
        block = pool.getBlock();
        run = pool.getRun(4);
        block.fill(7);
        run.fill(9);
      })();
      await settle();
      const out = { collected: ref.deref() === undefined, held: live() - before };
      block[999] = 8;
      out.read = [block[0], block[999], run[0], run[3999], block.length, run.length];
      block = run = null;
      await settle();
      out.after = live() - before;
      console.log(JSON.stringify(out));
    })()`);
    expect(out).toEqual({ collected: true, held: 64 * 8000, read: [7, 8, 9, 9, 1000, 4000], after: 0 });
  });

  it('gives memory back at destroy() even while blocks are held: they read zeros, and the range goes once they are unreachable', () => {
    const out = childJson(`(async () => {
      const before = [live(), committed()];
      const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: 'native' });
      let block = pool.getBlock();
      block.fill(3);
      const during = [live() - before[0], committed() - before[1]];
      pool.destroy();
      const out = { during, after: [live() - before[0], committed() - before[1]], length: block.length, read: [block[0], block[99]] };
      block[0] = 5; // a stale write lands in the range the view still owns, nowhere else
      out.written = block[0];
      block = null;
      await settle();
      out.collected = [live() - before[0], committed() - before[1]];
      console.log(JSON.stringify(out));
    })()`);
    expect(out).toEqual({ during: [1000 * 832, 1000 * 832], after: [1000 * 832, 0], length: 100, read: [0, 0], written: 5, collected: [0, 0] });
  });

  it('keeps a pinned slab committed and intact through destroy(), collection of its views and the pool; the last unpin decommits or frees it', () => {
    // Two slabs (grow): slab 0 holds a pinned block, slab 1 an unpinned one. Then, as native code
    // holding only the pin (and so the address) would see it: nothing freed, nothing zeroed.
    const out = childJson(`(async () => {
      const before = [live(), committed()];
      const bytes = 1000 * 832;
      const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: 'native', grow: true });
      const all = Array.from({ length: 1001 }, () => pool.getBlock());
      all[0].fill(3);
      all[1000].fill(4);
      let pin = pool.pin(all[0]);
      pool.destroy();
      const out = { afterDestroy: [live() - before[0], committed() - before[1]], read: [all[0][0], all[0][99], all[1000][0]] };
      // The pin alone keeps the memory: drop every view (and so both ArrayBuffers).
      all.length = 0;
      await settle();
      out.pinOnly = [live() - before[0], committed() - before[1], pin.block[0], pin.block.length];
      pin.release();
      out.released = [live() - before[0], committed() - before[1], pin.block[0]];
      pin = null;
      await settle();
      out.collected = [live() - before[0], committed() - before[1]];
      console.log(JSON.stringify(out));
    })()`);
    expect(out).toEqual({
      afterDestroy: [2 * 1000 * 832, 1000 * 832], // slab 1 decommitted at once, slab 0 kept
      read: [3, 3, 0],
      pinOnly: [1000 * 832, 1000 * 832, 3, 100], // slab 1's range freed with its buffer; slab 0 intact
      released: [1000 * 832, 0, 0], // the last unpin decommits: the view still held reads zeros
      collected: [0, 0],
    });
  });

  it('with detach: true, does not detach a pinned slab at destroy(); its pin keeps the memory until released', () => {
    const out = childJson(`(async () => {
      const before = live();
      const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: 'native', detach: true, grow: true });
      const all = Array.from({ length: 1001 }, () => pool.getBlock());
      all[0].fill(3);
      let pin = pool.pin(all[0]);
      pool.destroy();
      const out = { lengths: [all[0].length, all[1000].length], read: all[0][99], live: live() - before };
      pin.release();
      pin = null;
      all.length = 0;
      await settle();
      out.after = live() - before;
      console.log(JSON.stringify(out));
    })()`);
    expect(out).toEqual({ lengths: [100, 0], read: 3, live: 1000 * 832, after: 0 });
  });

  it('with detach: true, detaches the blocks at destroy() and frees their memory at once', () => {
    const out = childJson(`
      const before = live();
      const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: 'native', detach: true });
      const block = pool.getBlock();
      block.fill(3);
      pool.destroy();
      block[0] = 5;
      console.log(JSON.stringify({ after: live() - before, length: block.length, read: String(block[0]), fill: (() => { try { block.fill(1); return 'no throw'; } catch (e) { return e.name; } })() }));
    `);
    // Detached: length 0, reads undefined, writes dropped, fill/set throw (never freed memory).
    expect(out).toEqual({ after: 0, length: 0, read: 'undefined', fill: 'TypeError' });
  });

  it('gives a trimmed slab back at once, mapped or from the heap; its views read zeros and a later slab never shares their range', () => {
    const out = childJson(`(async () => {
      const out = {};
      // 64-byte strides: 100 blocks make a mapped slab (6400 bytes), 50 a heap slab (3200, below a page).
      for (const numBlocks of [100, 50]) {
        const before = [live(), committed()];
        const pool = new MemoryPool({ blockSize: 8, numBlocks, grow: true, backend: 'native' });
        let blocks = Array.from({ length: 1.5 * numBlocks }, () => pool.getBlock());
        blocks.forEach((b) => b.fill(7));
        const grown = committed() - before[1];
        for (const b of blocks.slice(numBlocks)) pool.returnBlock(b);
        const released = pool.trim();
        const stale = blocks[numBlocks + numBlocks / 5];
        const regrown = Array.from({ length: numBlocks / 2 }, () => pool.getBlock());
        regrown.forEach((b) => b.fill(9));
        const shared = regrown.some((b) => pool.addressOf(b) === pool.addressOf(blocks[0]) + BigInt(stale.byteOffset - blocks[0].byteOffset));
        out[numBlocks] = { grown, released, afterTrim: [live() - before[0], committed() - before[1]], stale: [stale.length, stale[0], stale[7]], kept: blocks[10][0], regrownRead: regrown[0][0], shared };
        pool.destroy();
        blocks = null;
      }
      console.log(JSON.stringify(out));
    })()`);
    // Mapped: the trimmed slab's pages go back at once (committed drops), its range stays until
    // its views are collected (live); the regrown slab lives elsewhere. Heap: zeroed in place.
    expect(out).toEqual({
      100: { grown: 200 * 64, released: 100 * 64, afterTrim: [300 * 64, 200 * 64], stale: [8, 0, 0], kept: 7, regrownRead: 9, shared: false },
      50: { grown: 100 * 64, released: 50 * 64, afterTrim: [150 * 64, 150 * 64], stale: [8, 0, 0], kept: 7, regrownRead: 9, shared: false },
    });
  });

  it('loads in worker_threads, one pool per thread, and frees everything when 2 workers end and 8 are terminated mid-use', () => {
    const out = childJson(`(async () => {
      const { Worker } = require('node:worker_threads');
      const before = live();
      const body = \`
        const { parentPort, workerData } = require('node:worker_threads');
        const { MemoryPool } = require('slabpool');
        const pool = new MemoryPool({ blockSize: 64, numBlocks: 256, grow: true, backend: 'native' });
        const held = [];
        parentPort.postMessage('started');
        for (let i = 0; i < (workerData.forever ? Infinity : 20000); i++) {
          if (held.length < 300 && (i % 3 !== 0 || held.length === 0)) held.push(pool.getBlock());
          else pool.returnBlock(held.splice((i * 7919) % held.length, 1)[0]);
          if (i % 5000 === 0) pool.check();
        }
        parentPort.postMessage({ backend: pool.backend, inUse: pool.stats().inUseBlocks, held: held.length });
      \`;
      const start = (forever) => new Promise((resolve) => {
        const w = new Worker(body, { eval: true, workerData: { forever } });
        const result = { messages: [] };
        w.on('message', (m) => {
          result.messages.push(m);
          if (forever && m === 'started') setTimeout(() => w.terminate(), 50);
        });
        w.on('error', (e) => { result.error = String(e); });
        w.on('exit', (code) => { result.code = code; resolve(result); });
      });
      const results = await Promise.all([start(false), start(false), ...Array.from({ length: 8 }, () => start(true))]);
      await settle();
      const main = new MemoryPool({ blockSize: 64, numBlocks: 8, backend: 'native' });
      main.returnBlock(main.getBlock());
      main.check();
      console.log(JSON.stringify({ results, leftover: live() - before - 8 * 512 }));
    })()`);
    const results = out.results as { code: number; messages: unknown[]; error?: string }[];
    for (const r of results.slice(0, 2)) {
      expect(r.code).toBe(0);
      expect(r.messages[1]).toMatchObject({ backend: 'native' });
      expect((r.messages[1] as { inUse: number; held: number }).inUse).toBe((r.messages[1] as { held: number }).held);
    }
    for (const r of results.slice(2)) {
      expect(r.error).toBeUndefined();
      expect(r.code).toBe(1); // terminated
    }
    expect(out.leftover).toBe(0);
  });

  it('survives workers terminated while inside a native call (the process used to abort in napi_throw)', () => {
    // Regression: terminating a worker in the middle of an engine call made every N-API call in
    // it fail, the binding's error could not be thrown, and node-addon-api aborted the whole
    // process (5 of 5 runs before the fix). NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS fixes it.
    const out = childJson(`(async () => {
      const { Worker } = require('node:worker_threads');
      const body = \`
        const { parentPort } = require('node:worker_threads');
        const { MemoryPool } = require('slabpool');
        const pool = new MemoryPool({ blockSize: 8, numBlocks: 64, backend: 'native' });
        parentPort.postMessage('started');
        for (;;) { pool.returnBlock(pool.getRun(3)); pool.stats(); pool.check(); }
      \`;
      let terminated = 0;
      for (let round = 0; round < 6; round++) {
        await Promise.all(Array.from({ length: 6 }, (_, i) => new Promise((resolve) => {
          const w = new Worker(body, { eval: true });
          w.on('message', () => setTimeout(() => w.terminate(), (round * 6 + i) % 20));
          w.on('exit', (code) => { if (code === 1) terminated++; resolve(); });
        })));
      }
      console.log(JSON.stringify({ terminated }));
    })()`);
    expect(out).toEqual({ terminated: 36 });
  });

  it('puts slabs in V8-owned ArrayBuffers, still aligned, when asked to (as where external buffers are refused)', () => {
    const out = childJson(
      `(async () => {
        const before = live();
        const pool = new MemoryPool({ blockSize: 3, numBlocks: 50, alignment: 4096, backend: 'native' });
        let block = pool.getBlock();
        block.fill(4);
        const out = { memory: pool.stats().memory, native: live() - before, aligned: pool.addressOf(block) % 4096n === 0n };
        const ref = new WeakRef(pool);
        pool.returnBlock(block);
        block = pool.getBlock();
        block.fill(6);
        await settle();
        out.stillHeld = block[2];
        console.log(JSON.stringify(out));
      })()`,
      { SLABPOOL_NATIVE_MEMORY: 'v8' },
    );
    expect(out).toEqual({ memory: 'v8', native: 0, aligned: true, stillHeld: 6 });
  });

  it('refuses an engine method called on a wrong receiver, or a hot function given no engine, instead of crashing', () => {
    const out = childJson(`
      const results = [];
      for (const name of ['addSlab', 'check', 'destroy', 'slabBuffer', 'largestRunWith']) {
        try { addon.NativeEngine.prototype[name].call({}, new Int32Array(4), 1); results.push('no throw'); }
        catch (e) { results.push(e.name); }
      }
      // The hot functions take an engine's handle first (lib/native.ts): anything else is refused,
      // and so is the handle of an engine destroyed.
      const engine = new addon.NativeEngine(8, 64, 64, 10, false, false);
      engine.addSlab(0, 10);
      for (const handle of [{}, 1, undefined, null, new Int32Array(4)]) {
        for (const name of ['acquire', 'release', 'acquireRun', 'releaseRun']) {
          try { addon[name](handle, 1, 1); results.push('no throw'); } catch (e) { results.push(e.code); }
        }
      }
      results.push(addon.acquireRun(engine.handle, 3), addon.acquire(engine.handle, 2), [...engine.scratch.subarray(0, 2)].join());
      engine.destroy();
      try { addon.acquireRun(engine.handle, 1); results.push('no throw'); } catch (e) { results.push(e.code, e.message); }
      try { new addon.NativeEngine(8, 4, 64, 10); results.push('no throw'); } catch (e) { results.push(e.code); }
      console.log(JSON.stringify(results));
    `);
    expect(out).toEqual([
      ...Array(5).fill('TypeError'),
      ...Array(20).fill('ERR_SLABPOOL_INTERNAL'),
      0,
      2,
      '4,3',
      'ERR_SLABPOOL_INTERNAL',
      'slabpool internal error: engine used after destroy',
      'ERR_SLABPOOL_INTERNAL',
    ]);
  });
});

describe.each(BACKENDS)('lifecycles on the %s backend', (backend) => {
  it.each([
    ['1 MiB', 128],
    ['16 KiB', 2],
  ])('keeps memory bounded while creating and destroying 10,000 pools of %s in a synchronous loop', (_label, numBlocks) => {
    const out = childJson(`(async () => {
      const before = committed();
      const rss0 = process.memoryUsage().rss;
      let peak = 0;
      for (let i = 0; i < 10000; i++) {
        const pool = new MemoryPool({ blockSize: 1024, numBlocks: ${numBlocks}, backend: '${backend}' });
        pool.getBlock().fill(i);
        peak = Math.max(peak, committed() - before);
        pool.destroy();
      }
      const out = { peak, after: committed() - before, rssGrowthMB: Math.round((process.memoryUsage().rss - rss0) / 2 ** 20) };
      await settle();
      out.ranges = live();
      console.log(JSON.stringify(out));
    })()`);
    // Native slabs are counted while they are committed and given back at destroy (their ranges
    // once the event loop turns); the fallback's memory is V8's.
    const slab = numBlocks * 8192;
    expect(out).toMatchObject(backend === 'native' && !process.env.SLABPOOL_NATIVE_MEMORY ? { peak: slab, after: 0, ranges: 0 } : { peak: 0, after: 0, ranges: 0 });
    // Bounded, against 10 GB allocated in all: the fallback's slabs are V8's ArrayBuffers, freed
    // when V8 collects them, so its figure depends on where in the collector's cycle the loop ends
    // (44 to 75 MB over runs of one build for 1 MiB pools on Node 20; 153 MB once on Node 26 with
    // the machine's other core busy, V8's background sweeping starved); native's are freed at
    // destroy(). Either way a small fraction of the 10 GB: the loop does not accumulate.
    if (!sanitized) expect(out.rssGrowthMB as number).toBeLessThan(backend === 'js' ? 256 : 64);
  });

  it('dropping pools without destroy() in a synchronous loop: native memory is held until the loop yields, destroy() keeps it flat (the README rule)', () => {
    // 100 pools of 4 MiB, every block written, as the README's figures were measured.
    const out = childJson(`(async () => {
      const pools = (form) => {
        const before = committed();
        let peak = 0;
        for (let i = 0; i < 100; i++) {
          const pool = new MemoryPool({ blockSize: 1024, numBlocks: 512, backend: '${backend}' });
          for (let j = 0; j < 512; j++) pool.getBlock().fill(j);
          peak = Math.max(peak, committed() - before);
          if (form === 'destroy') pool.destroy();
        }
        return peak;
      };
      const out = { destroyPeak: pools('destroy') };
      await settle();
      out.dropPeak = pools('drop');
      await settle();
      out.afterYield = { committed: committed(), ranges: live() };
      console.log(JSON.stringify(out));
    })()`);
    // Physical memory the addon holds (committed slab bytes), at its highest in the loop.
    const pool = 512 * 8192;
    if (backend === 'native') {
      // External memory is finalized only after the event loop turns (napi-facts 4): every dropped
      // pool is still there at the end of the loop; a destroyed one is at most one pool.
      expect(out.destroyPeak).toBe(pool);
      expect(out.dropPeak).toBe(100 * pool);
    } else {
      expect(out).toMatchObject({ destroyPeak: 0, dropPeak: 0 }); // V8's memory, not counted by the addon
    }
    expect(out.afterYield).toEqual({ committed: 0, ranges: 0 });
  });

  it('exits cleanly with live blocks, by process.exit and by running out of work', () => {
    for (const ending of ['process.exit(0)', '']) {
      const run = child(`
        const pool = new MemoryPool({ blockSize: 100, numBlocks: 100, backend: '${backend}' });
        const held = [pool.getBlock(), pool.getRun(10)];
        held[0].fill(1);
        console.log('ending');
        ${ending}
      `);
      expect(run, run.stderr).toMatchObject({ status: 0, signal: null, stdout: 'ending\n', stderr: '' });
    }
  });

  it('keeps blocks of a garbage-collected pool readable and writable', () => {
    const out = childJson(`(async () => {
      let ref, block;
      (() => {
        const pool = new MemoryPool({ blockSize: 8, numBlocks: 16, backend: '${backend}' });
        ref = new WeakRef(pool);
        block = pool.getBlock();
        block.fill(3);
      })();
      await settle();
      block[7] = 4;
      console.log(JSON.stringify({ collected: ref.deref() === undefined, values: [block[0], block[7]], length: block.length }));
    })()`);
    expect(out).toEqual({ collected: true, values: [3, 4], length: 8 });
  });
});

describe.each(BACKENDS)('wrong receivers on the %s backend', (backend) => {
  it('throws a TypeError for a pool method called on something that is not a pool', () => {
    const run = child(`
      const names = ['getBlock', 'returnBlock', 'getRun', 'lease', 'indexOf', 'addressOf', 'coalesce', 'trim', 'destroy', 'getFragmentation', 'getEfficiency', 'stats', 'check'];
      const out = names.map((name) => { try { MemoryPool.prototype[name].call({}, 0); return 'no throw'; } catch (e) { return e.name; } });
      const pool = new MemoryPool({ blockSize: 4, numBlocks: 4, backend: '${backend}' });
      out.push(pool.getBlock().length);
      console.log(JSON.stringify(out));
    `);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([...Array(13).fill('TypeError'), 4]);
  });
});
