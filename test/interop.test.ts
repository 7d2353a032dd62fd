import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryPool } from '../lib/index.js';
import { BACKENDS, rng } from './helpers.js';

/*
 * Blocks handed to native code, as the README's "Handing blocks to native code" says: OpenBLAS
 * through koffi (examples/koffi-blas.mjs) and a node-addon-api addon of the user's own
 * (examples/addon/). The addon is built once, here; a test skips, saying why, only where its
 * toolchain or OpenBLAS is absent, and never in CI (CI=true), whose .ci/run installs both: there a
 * missing one fails. Lifetimes (a native call that outlives the JS call while the pool releases
 * the memory) run in child processes, so a crash fails one test.
 */

const root = path.resolve(__dirname, '..');
const addonDir = path.join(root, 'examples', 'addon');
const addonFile = path.join(addonDir, 'build', 'Release', 'interop_sum.node');
// The slabpool addon the loader uses (its counts of native slab bytes), as in lifetime.test.ts.
const slabpoolAddon = process.env.SLABPOOL_NATIVE_PATH ? path.resolve(process.env.SLABPOOL_NATIVE_PATH) : path.join(root, 'build', 'Release', 'slabpool.node');

interface SumResult {
  sum: number;
  path: 'avx2-aligned' | 'scalar';
  address: bigint;
  alignment: number;
}
interface SumAddon {
  sum(array: Float64Array): SumResult;
  sumAsync(array: Float64Array, delayMs: number): Promise<SumResult>;
  hasAvx2: boolean;
}
type Fn = (...args: unknown[]) => unknown;
interface Blas {
  name: string;
  ddot: Fn;
  daxpy: Fn;
  dgemm: Fn;
  dasum: Fn;
}
interface BlasExample {
  loadBlas(): Blas;
  runChecks(blas: Blas, options: { backend: string }): { name: string; ok: boolean; detail: string }[];
  pointerKoffiPasses(block: Float64Array): bigint | null;
  CblasRowMajor: number;
  CblasNoTrans: number;
}

/** Why the addon cannot be built here (a tool is missing), or null. */
function missingToolchain(): string | null {
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
  const missing = [process.env.CXX ?? 'g++', 'make', 'python3'].filter((cmd) => !has(cmd));
  if (missing.length > 0) return `no ${missing.join(', ')} on PATH`;
  if (!fs.existsSync(path.join(path.resolve(process.execPath, '..', '..'), 'include', 'node', 'node_api.h')) && !process.env.npm_config_nodedir) {
    return `no Node headers beside ${process.execPath}`;
  }
  return null;
}

let addon: SumAddon | null = null;
let addonSkip = '';
let blasExample: BlasExample;
let blas: Blas | null = null;
let blasSkip = '';
let buildMs = 0;
const inCi = process.env.CI === 'true';

/** Skips the test for `reason`, printed; in CI, fails it instead. */
function skipBecause(ctx: { skip(note: string): never }, reason: string): never {
  if (inCi) throw new Error(`CI must run this test, but ${reason}`);
  return ctx.skip(reason);
}

beforeAll(async () => {
  const missing = missingToolchain();
  if (missing !== null) {
    addonSkip = `the example addon cannot be built: ${missing}`;
    console.warn(`interop: skipping the addon tests: ${addonSkip}`);
  } else {
    const started = Date.now();
    const build = spawnSync(process.execPath, [path.join(addonDir, 'build.mjs')], { cwd: root, encoding: 'utf8' });
    buildMs = Date.now() - started;
    // The toolchain is there, so a failed build is a failure, not a skip.
    if (build.status !== 0) throw new Error(`examples/addon did not build:\n${build.stdout}${build.stderr}`);
    addon = createRequire(addonFile)(addonFile) as SumAddon;
  }
  const examplePath = pathToFileURL(path.join(root, 'examples', 'koffi-blas.mjs')).href;
  blasExample = (await import(examplePath)) as BlasExample;
  try {
    blas = blasExample.loadBlas();
  } catch (err) {
    blasSkip = `no OpenBLAS (apt-get install libopenblas0): ${(err as Error).message}`;
    console.warn(`interop: skipping the BLAS tests: ${blasSkip}`);
  }
}, 120_000);

/** Integers whose every partial sum is exact, so any order of addition gives the JS loop's sum. */
function fillExact(view: Float64Array, seed: number): void {
  for (let i = 0; i < view.length; i++) view[i] = ((i * 7919 + seed * 104729) % 2001) - 1000;
}

function sumJs(view: Float64Array): number {
  let s = 0;
  for (let i = 0; i < view.length; i++) s += view[i]!;
  return s;
}

const ALIGNMENTS = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

describe.each(BACKENDS)('a node-addon-api addon reading blocks on the %s backend', (backend) => {
  it(`sums blocks and runs at alignments 8..4096 as the JS loop does, with aligned AVX2 loads exactly where the address allows them`, (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const paths = new Set<string>();
    let unaligned = 0;
    for (const alignment of ALIGNMENTS) {
      // 13 doubles: a tail after the 4-lane loop, and at alignment 8 a stride (104 bytes) that puts
      // most blocks off a 32-byte boundary; 64 blocks make a slab of a page or more (mapped).
      for (const blockSize of [1, 13, 100, 1024]) {
        const pool = new MemoryPool({ blockSize, numBlocks: 64, alignment, backend });
        const views = [pool.getBlock()!, pool.getBlock()!, pool.getRun(3)!, pool.getBlock()!, pool.getRun(7)!];
        views.forEach((view, i) => fillExact(view, i));
        for (const view of views) {
          const got = addon!.sum(view);
          const where = `${backend}, alignment ${alignment}, blockSize ${blockSize}, view of ${view.length}`;
          expect(got.sum, where).toBe(sumJs(view));
          // The path follows the address the addon saw, on any backend.
          expect(got.alignment, where).toBe(Number(got.address & -got.address));
          expect(got.path, where).toBe(addon!.hasAvx2 && got.address % 32n === 0n ? 'avx2-aligned' : 'scalar');
          paths.add(got.path);
          if (got.address % 32n !== 0n) unaligned++;
          const address = pool.addressOf(view);
          if (backend === 'native') {
            // The addon reads the block's own memory, aligned to the pool's alignment at least.
            expect(got.address, where).toBe(address);
            expect(got.alignment, where).toBeGreaterThanOrEqual(alignment);
            if (alignment >= 32 && addon!.hasAvx2) expect(got.path, where).toBe('avx2-aligned');
          } else {
            expect(address).toBeNull();
          }
        }
        pool.destroy();
      }
    }
    // Both loops ran: the scalar one on addresses off a 32-byte boundary (alignment 8 and 16).
    expect(unaligned).toBeGreaterThan(0);
    expect([...paths].sort()).toEqual(addon!.hasAvx2 ? ['avx2-aligned', 'scalar'] : ['scalar']);
  });

  it('gives the JS sum of random doubles: bit for bit on the scalar path (same order), within rounding on the AVX2 path', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const random = rng(13);
    const pool = new MemoryPool({ blockSize: 1001, numBlocks: 8, alignment: 64, backend });
    const block = pool.getBlock()!;
    for (let i = 0; i < block.length; i++) block[i] = random() * 2 - 1;
    const scalar = addon!.sum(block.subarray(1)); // 8 bytes past an aligned start: never 32-byte aligned
    expect(scalar.path).toBe('scalar');
    expect(scalar.sum).toBe(sumJs(block.subarray(1)));
    const whole = addon!.sum(block);
    expect(Math.abs(whole.sum - sumJs(block))).toBeLessThanOrEqual(1e-12 * block.length);
    pool.destroy();
  });

  it('sumAsync reads the block on a worker thread, after the call returned', async (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 8, backend });
    const block = pool.getBlock()!;
    fillExact(block, 1);
    const pending = addon!.sumAsync(block, 50);
    // Written after sumAsync returned and before the worker reads: the worker sees it.
    block[0]! += 1e6;
    const got = await pending;
    expect(got.sum).toBe(sumJs(block));
    pool.returnBlock(block);
    pool.destroy();
  });
});

describe('the example addon', () => {
  it('is built by node-gyp in seconds, rejects what is not a Float64Array, and its demo runs', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    console.log(`interop: examples/addon built in ${buildMs} ms`);
    expect(buildMs).toBeLessThan(60_000);
    expect(() => addon!.sum([1, 2] as unknown as Float64Array)).toThrow(new TypeError('Expected a Float64Array for array'));
    expect(() => addon!.sumAsync(new Float64Array(4), -1)).toThrow(new RangeError('Expected a number from 0 to 60000 for delayMs'));
    const demo = spawnSync(process.execPath, [path.join(addonDir, 'demo.mjs')], { cwd: root, encoding: 'utf8' });
    expect(demo.status, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/^block: sum \S+ = JS \S+/m);
    expect(demo.stdout).toMatch(/^matrix of 16 rows: sum \S+ = JS \S+/m);
    expect(demo.stdout).toMatch(/^sumAsync: sum \S+ = JS \S+/m);
  });
});

describe('getRun as a matrix', () => {
  // Row r of a run starts r * blockBytes after the run: the rows are dense (leading dimension
  // blockLength), every one aligned to gcd(alignment, blockBytes); to the alignment itself
  // exactly when blockBytes is a multiple of it (no padding: stride == blockBytes).
  it.for([
    [64, 64],
    [100, 64],
    [13, 8],
    [6, 32],
  ] as const)('rows of blockSize %i at alignment %i: dense, each aligned to gcd(alignment, blockBytes)', ([blockSize, alignment], ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    if (!BACKENDS.includes('native')) ctx.skip('absolute addresses are known on the native backend only');
    const pool = new MemoryPool({ blockSize, numBlocks: 64, alignment, backend: 'native' });
    const rows = 9;
    const run = pool.getRun(rows)!;
    expect(run.length).toBe(rows * blockSize);
    const start = pool.addressOf(run)!;
    const blockBytes = blockSize * 8;
    const rowAlignment = Math.min(alignment, blockBytes & -blockBytes);
    for (let r = 0; r < rows; r++) {
      const got = addon!.sum(run.subarray(r * blockSize, (r + 1) * blockSize));
      expect(got.address).toBe(start + BigInt(r * blockBytes));
      expect(got.alignment).toBeGreaterThanOrEqual(rowAlignment);
      if (blockBytes % alignment === 0) expect(got.alignment).toBeGreaterThanOrEqual(alignment);
    }
    // Otherwise the second row is not aligned to the alignment: "exactly when" holds both ways.
    if (blockBytes % alignment !== 0) expect((start + BigInt(blockBytes)) % BigInt(alignment)).not.toBe(0n);
    pool.destroy();
  });
});

describe.each(BACKENDS)('OpenBLAS through koffi on the %s backend', (backend) => {
  it('runs examples/koffi-blas.mjs: every check agrees with the JS loops', (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const run = spawnSync(process.execPath, [path.join('examples', 'koffi-blas.mjs'), '--backend', backend], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`slabpool backend ${backend}`);
    const checks = backend === 'native' ? 7 : 3;
    expect(run.stdout).toContain(`all ${checks} BLAS checks agree with the JavaScript loops`);
    expect(run.stdout.match(/^ok {2}/gm)).toHaveLength(checks + (backend === 'native' ? 1 : 0));
    if (backend === 'native') expect(run.stdout).toMatch(/^ok {3}no copy: C received (0x[0-9a-f]+), addressOf\(block\) is \1$/m);
  });

  it('ddot, daxpy and dgemm on blocks and runs, by typed array and by address, match the JS loops', (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const b = blas!;
    const random = rng(7);
    const fill = (v: Float64Array) => {
      for (let i = 0; i < v.length; i++) v[i] = random() * 2 - 1;
      return v;
    };
    // Blocks of 1000 doubles at three alignments; addresses asked once per held block.
    for (const alignment of [8, 64, 4096]) {
      const pool = new MemoryPool({ blockSize: 1000, numBlocks: 4, alignment, backend });
      const x = fill(pool.getBlock()!);
      const y = fill(pool.getBlock()!);
      const [xa, ya] = [pool.addressOf(x), pool.addressOf(y)];
      let dot = 0;
      for (let i = 0; i < 1000; i++) dot += x[i]! * y[i]!;
      expect(b.ddot(1000, x, 1, y, 1) as number).toBeCloseTo(dot, 10);
      const want = Float64Array.from(y, (v, i) => v + 0.75 * x[i]!);
      b.daxpy(1000, 0.75, x, 1, y, 1);
      expect(Array.from(y)).toEqual(Array.from(want)); // one multiply-add per element: exact
      if (backend === 'native') {
        expect(b.ddot(1000, xa, 1, ya, 1) as number).toBeCloseTo(dot + 0.75 * sumSquares(x), 10);
        b.daxpy(1000, -0.75, xa, 1, ya, 1);
        want.forEach((v, i) => (want[i] = v - 0.75 * x[i]!));
        expect(Array.from(y)).toEqual(Array.from(want));
      } else {
        expect([xa, ya]).toEqual([null, null]);
      }
      pool.destroy();
    }
    // C = A B with A (m x k), B (k x n), C (m x n) runs of pools whose blockSize is the row
    // length: leading dimensions k, n, n whatever the padding between the pool's blocks.
    for (const [m, n, k] of [
      [5, 64, 100],
      [16, 13, 7],
    ] as const) {
      const rowsOf = (cols: number) => new MemoryPool({ blockSize: cols, numBlocks: 128, backend });
      const [pa, pb, pc] = [rowsOf(k), rowsOf(n), rowsOf(n)];
      const [a, bm, c] = [fill(pa.getRun(m)!), fill(pb.getRun(k)!), pc.getRun(m)!];
      c.fill(0);
      const want = new Float64Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) want[i * n + j]! += a[i * k + p]! * bm[p * n + j]!;
      b.dgemm(blasExample.CblasRowMajor, blasExample.CblasNoTrans, blasExample.CblasNoTrans, m, n, k, 1, a, k, bm, n, 0, c, n);
      expect(maxDiff(c, want), `${m}x${k} * ${k}x${n}, typed arrays`).toBeLessThan(1e-12);
      if (backend === 'native') {
        c.fill(0);
        b.dgemm(blasExample.CblasRowMajor, blasExample.CblasNoTrans, blasExample.CblasNoTrans, m, n, k, 1, pa.addressOf(a), k, pb.addressOf(bm), n, 0, pc.addressOf(c), n);
        expect(maxDiff(c, want), `${m}x${k} * ${k}x${n}, addresses`).toBeLessThan(1e-12);
      }
      for (const p of [pa, pb, pc]) p.destroy();
    }
  });

  it.runIf(backend === 'native')('hands C the block itself, not a copy: the pointer koffi passes is addressOf(block)', (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const pool = new MemoryPool({ blockSize: 100, numBlocks: 4, backend });
    pool.getBlock();
    const block = pool.getBlock()!;
    block.fill(1.5);
    const passed = blasExample.pointerKoffiPasses(block);
    expect(passed).not.toBeNull();
    expect(passed).toBe(pool.addressOf(block));
    pool.destroy();
  });
});

function sumSquares(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

// ---- a native read that outlives the JS call, while the pool releases the memory ----------------

const SIZES = {
  '8 MB': { blockSize: 1000, numBlocks: 1000 }, // mapped
  '8 KB': { blockSize: 8, numBlocks: 128 }, // mapped
  '1 KB': { blockSize: 8, numBlocks: 16 }, // from the heap (below a page)
};
type Size = keyof typeof SIZES;
const SLAB_BYTES: Record<Size, number> = { '8 MB': 8_000_000, '8 KB': 8192, '1 KB': 1024 };
/** The sum of 1..n that each block is filled with. */
const WANT: Record<Size, number> = { '8 MB': 500500, '8 KB': 36, '1 KB': 36 };

interface ReadConfig {
  /** sumAsync(block, 200) of the example addon, or koffi's cblas_dasum.async on the address. */
  via: 'addon' | 'koffi';
  pin: boolean;
  /** destroy() the pool, or returnBlock() the block (the first of a second slab) and trim(). */
  action: 'destroy' | 'return-trim';
  /** Drop the last reference to the block and collect it while the read waits (koffi only: it holds nothing). */
  drop?: boolean;
  sizes?: Size[];
}

/**
 * A child process that, for each pool size, fills one block with 1..n, starts a native read of it
 * that lasts past the JS call (sumAsync's 200 ms delay; koffi's dasum queued behind a 200 ms
 * usleep on the one libuv thread, UV_THREADPOOL_SIZE=1), and at once releases the memory as
 * `action` says. It prints, per size, what the read summed and what the pool did, and how many
 * native slab bytes were left once everything was released and collected.
 */
function readWhileReleasing(config: ReadConfig): ReturnType<typeof spawnSync> {
  const script = `
    const { MemoryPool } = require('slabpool');
    const counts = require(${JSON.stringify(slabpoolAddon)});
    const config = ${JSON.stringify({ ...config, sizes: config.sizes ?? Object.keys(SIZES) })};
    const shapes = ${JSON.stringify(SIZES)};
    let read;
    if (config.via === 'addon') {
      const addon = require(${JSON.stringify(addonFile)});
      read = (block, address) => addon.sumAsync(block, 200).then((r) => r.sum);
    } else {
      const koffi = require('koffi');
      const usleep = koffi.load('libc.so.6').func('int usleep(uint32_t us)');
      const dasum = koffi.load(${JSON.stringify(blas?.name ?? '')}).func('double cblas_dasum(int n, const double *x, int incx)');
      // Takes the length, not the block: nothing here may keep the block reachable.
      read = (n, address) => {
        usleep.async(200000, () => {});
        return new Promise((resolve, reject) => dasum.async(n, address, 1, (err, sum) => (err ? reject(err) : resolve(sum))));
      };
    }
    const settle = async () => { for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
    async function scenario(shape) {
      const out = {};
      const pool = new MemoryPool({ ...shape, backend: 'native', grow: config.action === 'return-trim' });
      const filler = config.action === 'return-trim' ? Array.from({ length: shape.numBlocks }, () => pool.getBlock()) : [];
      let block = pool.getBlock();
      for (let i = 0; i < block.length; i++) block[i] = i + 1;
      const n = block.length;
      out.want = (n * (n + 1)) / 2;
      const address = pool.addressOf(block);
      let pin = config.pin ? pool.pin(block) : null;
      if (pin) out.pin = { address: pin.address === address, byteLength: pin.byteLength === block.byteLength, released: pin.released };
      const pending = config.via === 'addon' ? read(block, address) : read(n, pin ? pin.address : address);
      if (config.action === 'destroy') {
        pool.destroy();
      } else {
        const before = JSON.stringify(pool.stats());
        try { pool.returnBlock(block); out.returned = true; } catch (e) { out.returnError = { name: e.name, code: e.code, unchanged: JSON.stringify(pool.stats()) === before }; }
        out.trimmed = pool.trim();
      }
      if (config.drop) {
        block = null;
        await settle();
      }
      out.sum = await pending;
      // Unless dropped, the block stays reachable until the read is done (this use keeps it so).
      if (block !== null && block.length !== n) throw new Error('the block changed length');
      if (pin) {
        pin.release();
        pin.release(); // idempotent
        out.releasedAfter = pin.released;
        if (config.action === 'return-trim') {
          pool.returnBlock(block);
          out.trimmedAfterRelease = pool.trim();
        }
        pin = null;
      }
      if (!pool.destroyed) pool.destroy();
      filler.length = 0;
      return out;
    }
    (async () => {
      const out = {};
      for (const name of config.sizes) {
        const before = [counts.liveSlabBytes(), counts.committedSlabBytes()];
        out[name] = await scenario(shapes[name]);
        await settle();
        out[name].leftover = [counts.liveSlabBytes() - before[0], counts.committedSlabBytes() - before[1]];
      }
      console.log(JSON.stringify(out));
    })();`;
  return spawnSync(process.execPath, ['--expose-gc', '-e', script], {
    cwd: root,
    // Under the sanitizer run, a fault is to end the child with its signal, as it would without.
    env: { ...process.env, UV_THREADPOOL_SIZE: '1', ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:handle_segv=0` },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** readWhileReleasing, which must exit 0; what it printed, per size. */
function readResults(config: ReadConfig): Record<string, Record<string, unknown>> {
  const run = readWhileReleasing(config);
  expect({ status: run.status, signal: run.signal }, String(run.stderr)).toEqual({ status: 0, signal: null });
  return JSON.parse(String(run.stdout).trim().split('\n').at(-1)!);
}


const sizes = Object.keys(SIZES) as Size[];

describe.skipIf(!BACKENDS.includes('native'))('a native read that outlives the call, while the pool releases its memory', () => {
  // What happens today without a pin. The addon's reference keeps the ArrayBuffer alive, not the
  // memory: destroy() and trim() give the pages back at the call (the range stays mapped while a
  // view lives), so the worker reads zeros, silently. With only an address handed over and the
  // view collected, the range is unmapped and the read faults. These tests hold that down, so the
  // pinned tests below show that the pin is what fixes it.
  it('without a pin, destroy() under sumAsync: the worker reads zeros (sum 0, no crash)', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const out = readResults({ via: 'addon', pin: false, action: 'destroy' });
    for (const size of sizes) expect(out[size], size).toEqual({ want: WANT[size], sum: 0, leftover: [0, 0] });
  });

  it('without a pin, returnBlock() and trim() under sumAsync: the slab is released and the worker reads zeros', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const out = readResults({ via: 'addon', pin: false, action: 'return-trim' });
    for (const size of sizes) expect(out[size], size).toEqual({ want: WANT[size], returned: true, trimmed: SLAB_BYTES[size], sum: 0, leftover: [0, 0] });
  });

  it("without a pin, destroy() under koffi's cblas_dasum.async on addressOf(block): it reads zeros", (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const out = readResults({ via: 'koffi', pin: false, action: 'destroy' });
    for (const size of sizes) expect(out[size], size).toEqual({ want: WANT[size], sum: 0, leftover: [0, 0] });
  });

  it.for(['8 MB', '8 KB'] as const)(
    "without a pin, destroy() under koffi's dasum.async with the block dropped and collected: the %s slab is unmapped and the read crashes the process (SIGSEGV)",
    (size, ctx) => {
      if (blas === null) skipBecause(ctx, blasSkip);
      const run = readWhileReleasing({ via: 'koffi', pin: false, action: 'destroy', drop: true, sizes: [size] });
      expect({ status: run.status, signal: run.signal, stdout: run.stdout }, String(run.stderr)).toEqual({ status: null, signal: 'SIGSEGV', stdout: '' });
    },
  );

  const pinned = (size: Size) => ({
    want: WANT[size],
    pin: { address: true, byteLength: true, released: false },
    sum: WANT[size],
    releasedAfter: true,
    leftover: [0, 0],
  });

  it('pinned, destroy() under sumAsync: the worker reads the values written, and all memory goes once released', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const out = readResults({ via: 'addon', pin: true, action: 'destroy' });
    for (const size of sizes) expect(out[size], size).toEqual(pinned(size));
  });

  it('pinned, returnBlock() throws ERR_SLABPOOL_PINNED (pool unchanged) and trim() keeps the slab; the worker reads the values; after release both work', (ctx) => {
    if (addon === null) skipBecause(ctx, addonSkip);
    const out = readResults({ via: 'addon', pin: true, action: 'return-trim' });
    for (const size of sizes) {
      expect(out[size], size).toEqual({
        ...pinned(size),
        returnError: { name: 'RangeError', code: 'ERR_SLABPOOL_PINNED', unchanged: true },
        trimmed: 0,
        trimmedAfterRelease: SLAB_BYTES[size],
      });
    }
  });

  it("pinned, destroy() under koffi's dasum.async on pin.address: it reads the values written", (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const out = readResults({ via: 'koffi', pin: true, action: 'destroy' });
    for (const size of sizes) expect(out[size], size).toEqual(pinned(size));
  });

  it("pinned, destroy() under koffi's dasum.async with the block dropped and collected: the pin keeps the memory, the read is right", (ctx) => {
    if (blas === null) skipBecause(ctx, blasSkip);
    const out = readResults({ via: 'koffi', pin: true, action: 'destroy', drop: true });
    for (const size of sizes) expect(out[size], size).toEqual(pinned(size));
  });
});
