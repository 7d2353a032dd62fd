import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadedAddon } from '../lib/loader.js';
import { BACKENDS } from './helpers.js';

/*
 * A shared pool's memory over its whole life, in child processes (so that a crash fails one test,
 * and garbage collection can be asked for): on the native engine a shared region of the addon,
 * which every thread's views keep alive and which is freed with the last of them or when the
 * last thread holding it ends; on both engines, a process whose main thread ends with workers
 * still attached and running exits cleanly.
 */

const root = path.resolve(__dirname, '..');

function run(script: string, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const child = spawnSync(process.execPath, [...args, '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}

const PRELUDE = `
  const { SharedPool } = require('slabpool');
  const { loadedAddon } = require(${JSON.stringify(path.join(root, 'dist', 'loader.js'))});
  const { Worker } = require('node:worker_threads');
  const { once } = require('node:events');
  const totals = () => { const t = loadedAddon().sharedRegionTotals(); return { regions: t.regions, references: t.references, freed: t.freed }; };
  // Finalizers of external ArrayBuffers run at a setImmediate after the collection (napi-facts 4).
  const collect = async () => { for (let i = 0; i < 6; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
  const worker = (body, workerData) => new Worker(\`
    const { parentPort, workerData } = require('node:worker_threads');
    const { SharedPool } = require('slabpool');
    const next = () => new Promise((r) => parentPort.once('message', r));
    (async () => { \${body} })().catch((e) => parentPort.postMessage({ error: String(e.stack) }));\`, { eval: true, workerData });
`;

describe.runIf(BACKENDS.includes('native'))('SharedPool native memory: a shared region of the addon', () => {
  it('lives while any thread holds a view of it, after the thread that made it closed and let go; is freed with the last; a later attach() is refused', () => {
    const script = `${PRELUDE}
      (async () => {
        const out = {};
        let pool = new SharedPool({ backend: 'native', blockSize: 1000, numBlocks: 64 });
        const handle = pool.handle;
        out.made = totals();
        let block = pool.getBlock();
        block.fill(7);
        const index = pool.handOff(block);
        const w = worker(\`
          const pool = SharedPool.attach(workerData.handle);
          const block = pool.blockAt(workerData.index);
          parentPort.postMessage({ attached: true });
          await next();
          parentPort.postMessage({ sum: block.reduce((a, b) => a + b, 0), address: String(pool.addressOf(block)) });
          pool.returnBlock(block);
          pool.close();
          await next();
        \`, { handle, index });
        await once(w, 'message');
        out.attached = totals();
        const address = String(pool.stats().alignmentScope);
        pool.close();
        pool = null;
        block = null;
        await collect();
        out.mainGone = totals(); // the worker's reference keeps the region
        w.postMessage('read');
        const [read] = await once(w, 'message');
        out.read = read.sum;
        w.postMessage('exit');
        await once(w, 'exit');
        await collect();
        out.allGone = totals();
        try { SharedPool.attach(handle); out.attach = 'attached'; } catch (e) { out.attach = { name: e.name, code: e.code, message: e.message }; }
        console.log(JSON.stringify(out));
      })();`;
    const { status, stdout, stderr } = run(script, ['--expose-gc']);
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const out = JSON.parse(stdout);
    expect(out).toEqual({
      made: { regions: 1, references: 1, freed: 0 },
      attached: { regions: 1, references: 2, freed: 0 },
      mainGone: { regions: 1, references: 1, freed: 0 },
      read: 7000,
      allGone: { regions: 0, references: 0, freed: 1 },
      attach: { name: 'TypeError', code: 'ERR_SLABPOOL_DESTROYED', message: expect.stringMatching(/^Cannot call attach\(\): the shared pool's memory was freed/) },
    });
  });

  it("drops a terminated worker's references when its thread ends, views and all, without its close()", () => {
    const script = `${PRELUDE}
      (async () => {
        const out = {};
        let pool = new SharedPool({ backend: 'native', blockSize: 100, numBlocks: 16 });
        const ws = [0, 1].map(() => worker(\`
          const pool = SharedPool.attach(workerData.handle);
          globalThis.kept = [pool.getBlock(), pool.getBlock()];
          parentPort.postMessage({ attached: true });
          for (;;) await next();
        \`, { handle: pool.handle }));
        await Promise.all(ws.map((w) => once(w, 'message')));
        out.attached = totals();
        await Promise.all(ws.map((w) => w.terminate()));
        out.terminated = totals();
        pool.close();
        pool = null;
        await collect();
        out.allGone = totals();
        console.log(JSON.stringify(out));
      })();`;
    const { status, stdout, stderr } = run(script, ['--expose-gc']);
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({
      attached: { regions: 1, references: 3, freed: 0 },
      terminated: { regions: 1, references: 1, freed: 0 },
      allGone: { regions: 0, references: 0, freed: 1 },
    });
  });
});

describe.runIf(BACKENDS.includes('native'))("the addon's shared-region functions (native/shared_binding.cc)", () => {
  it('refuse arguments outside their contract with ERR_SLABPOOL_INTERNAL, and tell a token they do not know or a size that differs', () => {
    const addon = loadedAddon()!;
    const internal = (fn: () => unknown, what: RegExp) => expect(fn).toThrow(expect.objectContaining({ code: 'ERR_SLABPOOL_INTERNAL', message: expect.stringMatching(what) }));
    for (const bytes of [0, -1, 1.5, NaN, 2 ** 32 + 1, '64' as never]) internal(() => addon.sharedRegionCreate(bytes, 64), /^slabpool internal error: sharedRegionCreate: bytes must be/);
    for (const alignment of [0, 4, 24, 8192, 64.5, null as never]) internal(() => addon.sharedRegionCreate(64, alignment), /^slabpool internal error: sharedRegionCreate: /);
    internal(() => addon.sharedRegionAttach(1 as never, 64), /token must be a bigint$/);
    const before = addon.sharedRegionTotals();
    const region = addon.sharedRegionCreate(4096, 64);
    if (typeof region !== 'object') throw new Error(`no region: ${region}`);
    expect(region.address % 64n).toBe(0n);
    internal(() => addon.sharedRegionAttach(region.token, 0), /bytes must be/);
    expect([addon.sharedRegionAttach(region.token, 4095), addon.sharedRegionAttach(region.token ^ 1n, 4096), addon.sharedRegionAttach(-1n, 4096), addon.sharedRegionAttach(2n ** 64n, 4096)]).toEqual(['size mismatch', 'unknown', 'unknown', 'unknown']);
    const again = addon.sharedRegionAttach(region.token, 4096);
    if (typeof again !== 'object') throw new Error(`no second reference: ${again}`);
    expect({ address: again.address, token: again.token, bytes: again.buffer.byteLength }).toEqual({ address: region.address, token: region.token, bytes: 4096 });
    new Uint8Array(region.buffer)[100] = 42;
    expect(new Uint8Array(again.buffer)[100]).toBe(42); // two buffers, one memory
    expect(addon.sharedRegionTotals()).toMatchObject({ regions: before.regions + 1, references: before.references + 2 });
  });
});

describe.each(BACKENDS)('SharedPool at process exit (%s)', (backend) => {
  it('exits cleanly when the main thread ends with workers attached and running, holding blocks', () => {
    const script = `${PRELUDE}
      const pool = new SharedPool({ backend: '${backend}', blockSize: 100, numBlocks: 256 });
      const kept = pool.getBlock();
      const ws = [0, 1].map(() => worker(\`
        const pool = SharedPool.attach(workerData.handle);
        const mine = pool.getBlock();
        parentPort.postMessage({ attached: true });
        for (let i = 0; ; i++) { const b = pool.getBlock(); b[0] = i; pool.returnBlock(b); mine[0] = i; }
      \`, { handle: pool.handle }));
      Promise.all(ws.map((w) => once(w, 'message'))).then(() => {
        for (const w of ws) w.unref();
        console.log(JSON.stringify({ threads: pool.stats().threads, inUse: pool.stats().inUseBlocks }));
      });`;
    const { status, stdout, stderr } = run(script);
    // In use: the block each thread keeps, and what the two running workers hold at that moment (0 or 1 each).
    expect({ status, stderr, out: JSON.parse(stdout) }).toEqual({ status: 0, stderr: '', out: { threads: 3, inUse: expect.toBeOneOf([3, 4, 5]) } });
  });
});
