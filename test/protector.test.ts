import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, markedBuffersDetachable } from './helpers.js';

/*
 * No public call may slow the user's other code. Detaching any ArrayBuffer invalidates V8's
 * ArrayBufferDetaching protector for the whole process, for good, and every typed-array kernel
 * pays for it afterwards (napi-facts 11). `node --trace-protector-invalidation` prints the moment
 * it happens, so these tests read that, deterministically, instead of timing anything.
 *
 * Each case runs in a fresh process: a typed-array kernel, the pool operation, the kernel again,
 * then a marker line. Node itself detaches external ArrayBuffers when an environment is torn
 * down (at process or worker exit), after the marker: only what comes before it counts.
 */

const root = path.resolve(__dirname, '..');
const INVALIDATED = 'Invalidating protector cell ArrayBufferDetaching';
const MARKER = 'slabpool-protector-test: done';

const kernel = `
  const kx = new Float64Array(1000).fill(1.5), ky = new Float64Array(1000).fill(0.5);
  const kernel = () => { let s = 0; for (let r = 0; r < 2000; r++) { for (let i = 0; i < 1000; i++) s += kx[i] * ky[i]; for (let i = 0; i < 1000; i++) ky[i] += 1e-9 * kx[i]; } return s; };
`;

/** What each operation does in the child; `detach` is the option's value (undefined: not given). */
const OPERATIONS: Record<string, (backend: string, detach: boolean | undefined) => string> = {
  'MemoryPool destroy()': (backend, detach) => `
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: '${backend}'${opt(detach)} });
    const held = [pool.getBlock(), pool.getRun(3)];
    held[0].fill(1);
    pool.destroy();
    check(held[0].length > 0 || ${detach === true} || (${detach === undefined} && process.env.SLABPOOL_DETACH === '1'), 'a view was detached');`,
  'MemoryPool trim()': (backend, detach) => `
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 100, grow: true, backend: '${backend}'${opt(detach)} });
    const blocks = Array.from({ length: 250 }, () => pool.getBlock());
    const run = pool.getRun(5);
    pool.returnBlock(run);
    for (const b of blocks.slice(100)) pool.returnBlock(b);
    check(pool.trim() > 0, 'trim released nothing');
    pool.destroy();`,
  "compat's trim policy": (backend, detach) => `
    const pool = createTypedArrayPool({ backend: '${backend}'${opt(detach)} });
    const burst = Array.from({ length: 10000 }, () => pool.mallocDouble(100));
    for (const a of burst) pool.free(a);
    for (let i = 0; i < 2000; i++) pool.free(pool.mallocDouble(100));
    check(pool.stats().classes[0].trims > 0, 'the trim policy did not run');`,
  'compat clearCache()': (backend, detach) => `
    const pool = createTypedArrayPool({ backend: '${backend}'${opt(detach)} });
    const arrays = [pool.mallocDouble(16), pool.mallocFloat(1000), pool.malloc(70000, 'uint8'), pool.mallocArrayBuffer(100), pool.mallocBuffer(64)];
    for (const a of arrays) pool.free(a);
    check(pool.clearCache() > 0, 'clearCache released nothing');
    check(pool.stats().reservedBytes === 0, 'clearCache left slabs');`,
  'compat trim() and the process-wide pool': (backend, detach) => `
    const shared = require('slabpool/compat');
    const pool = createTypedArrayPool({ backend: '${backend}'${opt(detach)} });
    const many = Array.from({ length: 3000 }, () => pool.mallocInt32(64));
    for (const a of many) pool.free(a);
    check(pool.trim() > 0, 'trim released nothing');
    const x = shared.mallocDouble(8);
    shared.free(x);
    shared.clearCache();`,
};

function opt(detach: boolean | undefined): string {
  return detach === undefined ? '' : `, detach: ${detach}`;
}

interface Traced {
  /** Whether the protector was invalidated before the marker. */
  invalidated: boolean;
  stdout: string;
  stderr: string;
}

function traced(body: string, env: NodeJS.ProcessEnv = {}): Traced {
  const script = `
    const { MemoryPool } = require('slabpool');
    const { createTypedArrayPool } = require('slabpool/compat');
    const check = (ok, what) => { if (!ok) { console.error(what); process.exit(3); } };
    ${kernel}
    kernel();
    ${body}
    kernel();
    console.log(${JSON.stringify(MARKER)});
  `;
  const run = spawnSync(process.execPath, ['--trace-protector-invalidation', '-e', script], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(run, run.stderr).toMatchObject({ status: 0, signal: null });
  // V8 prints its trace to stdout, in order with console.log.
  const marker = run.stdout.indexOf(MARKER);
  expect(marker, run.stdout).toBeGreaterThanOrEqual(0);
  return { invalidated: run.stdout.slice(0, marker).includes(INVALIDATED), stdout: run.stdout, stderr: run.stderr };
}

const MODES: [string, string, NodeJS.ProcessEnv][] = BACKENDS.flatMap((backend): [string, string, NodeJS.ProcessEnv][] =>
  backend === 'native' ? [['native', backend, {}], ['native in V8 memory', backend, { SLABPOOL_NATIVE_MEMORY: 'v8' }]] : [[backend, backend, {}]],
);

describe.each(MODES)('V8 keeps its typed-array fast path: %s backend', (_label, backend, env) => {
  // V8-owned native slabs are marked untransferable; where a marked buffer cannot be detached
  // (Node >= 24) the option leaves them attached, says so once, and detaches nothing at all.
  const detaches = env.SLABPOOL_NATIVE_MEMORY !== 'v8' || markedBuffersDetachable();
  const CANNOT = /\[SLABPOOL_DETACH\] Warning: slabpool: the detach option cannot detach slabs in V8-owned memory/g;

  it.each(Object.keys(OPERATIONS))('%s detaches nothing by default', (name) => {
    const { invalidated, stdout } = traced(OPERATIONS[name]!(backend, undefined), env);
    expect(invalidated, stdout).toBe(false);
  });

  it.each(Object.keys(OPERATIONS))('%s detaches with the detach option, as documented', (name) => {
    const { invalidated, stderr } = traced(OPERATIONS[name]!(backend, true), env);
    expect(invalidated).toBe(detaches);
    expect(stderr.match(CANNOT) ?? []).toHaveLength(detaches ? 0 : 1);
  });

  it("a transfer of a block's buffer, by postMessage or structuredClone, detaches nothing: it is refused or copies", () => {
    const { invalidated, stdout } = traced(
      `
      const { MessageChannel } = require('node:worker_threads');
      const pool = new MemoryPool({ blockSize: 100, numBlocks: 1000, backend: '${backend}' });
      const compat = createTypedArrayPool({ backend: '${backend}' });
      const views = [pool.getBlock(), pool.getRun(3), compat.mallocBuffer(16), compat.mallocDouble(100)];
      const { port1 } = new MessageChannel();
      for (const v of views) {
        try { port1.postMessage(v, [v.buffer]); } catch (e) { check(e.name === 'DataCloneError', e.stack); }
        try { structuredClone(v, { transfer: [v.buffer] }); } catch (e) { check(e.name === 'DataCloneError', e.stack); }
      }
      port1.close();
      check(views.map((v) => v.byteLength).join() === '800,2400,16,800', 'a view was detached');`,
      env,
    );
    expect(invalidated, stdout).toBe(false);
  });

  it('SLABPOOL_DETACH=1 turns detaching on where the option is not given, with one warning, and detach: false wins over it', () => {
    const body = OPERATIONS['MemoryPool destroy()']!;
    const byEnv = traced(`{ ${body(backend, undefined)} } { ${body(backend, undefined)} }`, { ...env, SLABPOOL_DETACH: '1' });
    expect(byEnv.invalidated).toBe(detaches);
    expect(byEnv.stderr.match(/\[SLABPOOL_DETACH\] Warning: SLABPOOL_DETACH=1: slabpool pools detach/g)).toHaveLength(1);
    expect(traced(body(backend, false), { ...env, SLABPOOL_DETACH: '1' }).invalidated).toBe(false);
    // Asked for in code: no warning, but where the option cannot detach, the one that says so.
    const stderr = traced(body(backend, true), env).stderr;
    expect(stderr.match(CANNOT) ?? []).toHaveLength(detaches ? 0 : 1);
    expect(stderr.split('\n').filter((line) => line !== '' && !line.includes('the detach option cannot detach slabs') && !line.includes('--trace-warnings'))).toEqual([]);
  });
});

/*
 * The other process-wide cost: a property added to any typed array made by a built-in
 * constructor gives that constructor's V8 map a transition, and the map stops being "stable", so
 * every optimized function that embedded such an array as a constant is re-optimized with checks
 * (1.8x slower measured). `%DebugPrint` (--allow-natives-syntax) says whether a map is stable.
 */
const TYPE_NAMES = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];

const KIND_OF_TYPE: Record<string, string> = {
  INT8: 'Int8Array', UINT8: 'Uint8Array', UINT8_CLAMPED: 'Uint8ClampedArray', INT16: 'Int16Array', UINT16: 'Uint16Array', INT32: 'Int32Array',
  UINT32: 'Uint32Array', FLOAT32: 'Float32Array', FLOAT64: 'Float64Array', BIGINT64: 'BigInt64Array', BIGUINT64: 'BigUint64Array',
};

/** The built-in typed-array types whose initial map is not stable after `body` ran. */
function unstableMaps(body: string, env: NodeJS.ProcessEnv): string[] {
  const script = `
    const { MemoryPool } = require('slabpool');
    ${body}
    for (const name of ${JSON.stringify(TYPE_NAMES)}) %DebugPrint(new globalThis[name](1));
  `;
  const run = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  expect(run, run.stderr).toMatchObject({ status: 0, signal: null });
  // V8 prints each object and then its map; the map's block says "stable_map" when it is.
  const printed = run.stdout.split('DebugPrint: ').slice(1);
  expect(printed).toHaveLength(TYPE_NAMES.length);
  return printed.filter((chunk) => !chunk.includes('\n - stable_map')).map((chunk) => KIND_OF_TYPE[/elements kind: (\w+)ELEMENTS/.exec(chunk)![1]!]!);
}

describe.each(MODES)('the built-in typed-array maps stay stable: %s backend', (label, backend, env) => {
  it('after pools of every element type hand out, take back, trim and destroy blocks, runs and leases, plain and zeroed', () => {
    const body = `
      for (const name of ${JSON.stringify(TYPE_NAMES)}) {
        const pool = new MemoryPool({ type: globalThis[name], blockSize: 16, numBlocks: 8, grow: true, backend: '${backend}' });
        const blocks = Array.from({ length: 12 }, () => pool.getBlock());
        const run = pool.getRun(3);
        const lease = pool.lease();
        lease[Symbol.dispose]();
        pool.returnBlock(run);
        for (const b of blocks.slice(4)) pool.returnBlock(b);
        const zeroed = [pool.getBlockZeroed(), pool.getRunZeroed(2), pool.getRunZeroed(4)];
        pool.leaseZeroed()[Symbol.dispose]();
        for (const z of zeroed) pool.returnBlock(z);
        pool.trim();
        pool.check();
        pool.stats();
        pool.destroy();
      }
    `;
    expect(unstableMaps('', env), 'a plain process').toEqual([]);
    // Node 20 makes every external ArrayBuffer through its C++ Buffer, which moves a Uint8Array
    // to Buffer.prototype: the built-in Uint8Array map's transition comes from Node itself (as
    // for any addon or core module that makes a Buffer in C++), not from the pool's views.
    const nodeOwn = label === 'native' ? ['Uint8Array'] : [];
    expect(unstableMaps(body, env)).toEqual(nodeOwn);
  });

  it("after compat's mallocs of every dtype, one-off and cached, frees, double frees, trims and clearCache", () => {
    const body = `
      const { createTypedArrayPool } = require('slabpool/compat');
      const pool = createTypedArrayPool({ backend: '${backend}' });
      const dtypes = ['uint8', 'uint16', 'uint32', 'int8', 'int16', 'int32', 'float', 'double', 'uint8_clamped', 'bigint64', 'biguint64', 'buffer', 'dataview', 'arraybuffer'];
      const held = [];
      for (let i = 0; i < 600; i++) {
        const a = pool.malloc(1 + ((i * 7919) % 300) * (i % 3 === 0 ? 0 : 1), dtypes[i % dtypes.length]);
        if (i % 4 === 0) held.push(a); else { pool.free(a); pool.free(a); }
      }
      pool.trim();
      for (const a of held) pool.free(a);
      pool.check();
      pool.clearCache();
    `;
    expect(unstableMaps(body, env)).toEqual(label === 'native' ? ['Uint8Array'] : []);
  });

  // Slabs are marked untransferable (a private symbol set on the ArrayBuffer): that must be the
  // transition Node itself gives the built-in ArrayBuffer map at startup (it marks its Buffer
  // pool's ArrayBuffer), and nothing else. (compat's mallocArrayBuffer stamps the buffers it hands
  // out with a private field, compat-arraybuffer-cache.ts, a second transition; not a slab's, so
  // not made here.)
  it('leaves the built-in ArrayBuffer map with the one transition Node gives it, after pools and compat made and released slabs', () => {
    const body = `
      const { createTypedArrayPool } = require('slabpool/compat');
      for (const type of [Float64Array, Uint8Array]) {
        const pool = new MemoryPool({ type, blockSize: 16, numBlocks: 8, grow: true, backend: '${backend}' });
        const blocks = Array.from({ length: 12 }, () => pool.getBlock());
        for (const b of blocks.slice(4)) pool.returnBlock(b);
        pool.trim();
        pool.destroy();
      }
      const compat = createTypedArrayPool({ backend: '${backend}' });
      for (const n of [1, 100, 70000]) compat.free(compat.mallocDouble(n));
      compat.clearCache();
    `;
    const plain = arrayBufferTransitions('', env);
    expect(plain).toEqual(['node:untransferableObject']);
    expect(arrayBufferTransitions(body, env)).toEqual(plain);
  });
});

/** The property keys by which the initial map of the built-in ArrayBuffer has transitioned after `body` ran. */
function arrayBufferTransitions(body: string, env: NodeJS.ProcessEnv): string[] {
  const script = `
    const { MemoryPool } = require('slabpool');
    ${body}
    %DebugPrint(new ArrayBuffer(1));
  `;
  const run = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  expect(run, run.stderr).toMatchObject({ status: 0, signal: null });
  // The map's block lists each transition as "<key>: (transition to ...)", a key a symbol or a #name.
  const map = run.stdout.slice(run.stdout.indexOf('[Map]'));
  expect(map).toContain('JS_ARRAY_BUFFER_TYPE');
  return map
    .split('\n')
    .filter((line) => line.includes('(transition to'))
    .map((line) => {
      const key = /<Symbol: ([^>]+)>|#([^:\s]+):/.exec(line);
      return key ? key[1] ?? key[2]! : line;
    })
    .sort();
}
