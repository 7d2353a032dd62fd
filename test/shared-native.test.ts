import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
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
