// slabpool blocks handed to OpenBLAS through koffi (an FFI: no addon of your own), checked against
// plain JavaScript loops:
//   node examples/koffi-blas.mjs [--backend auto|native|js]
// Needs a CBLAS library: Debian's libopenblas0 (apt-get install libopenblas0), or any library that
// exports cblas_ddot, cblas_daxpy, cblas_dgemm and cblas_dasum, named by SLABPOOL_BLAS=<path>.
//
// Two ways to pass a block, both without a copy:
//  - the typed array itself: koffi passes a typed array to a pointer parameter as a pointer to its
//    memory (it copies only plain JS Arrays), valid for the duration of the call;
//  - its address, a bigint (koffi 3 represents pointers as bigints): pool.addressOf(block), asked
//    once per held block and reused for every call while the block is held, never per call.
//    Native backend only: the JavaScript fallback cannot know addresses (addressOf gives null).
// A matrix is a run: pool.getRun(rows) from a pool whose blockSize is the row length gives
// rows x blockLength dense doubles, row-major with leading dimension blockLength.
import koffi from 'koffi';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryPool } from 'slabpool';

export const CblasRowMajor = 101;
export const CblasNoTrans = 111;

/** Where a CBLAS is looked for, in order: Debian's OpenBLAS first, then generic names. */
export const BLAS_CANDIDATES = ['libopenblas.so.0', 'libopenblas.so', 'libcblas.so.3', 'libblas.so.3', 'libopenblas.dylib'];

/**
 * The first library among `candidates` that loads and exports the four CBLAS functions, with
 * them bound; throws an Error listing every attempt (`attempts`) when none does.
 */
export function loadBlas(candidates = process.env.SLABPOOL_BLAS ? [process.env.SLABPOOL_BLAS] : BLAS_CANDIDATES) {
  const attempts = [];
  for (const name of candidates) {
    let lib;
    try {
      lib = koffi.load(name);
      return {
        name,
        ddot: lib.func('double cblas_ddot(int n, const double *x, int incx, const double *y, int incy)'),
        daxpy: lib.func('void cblas_daxpy(int n, double alpha, const double *x, int incx, double *y, int incy)'),
        dgemm: lib.func(
          'void cblas_dgemm(int order, int transA, int transB, int m, int n, int k, double alpha, ' +
            'const double *a, int lda, const double *b, int ldb, double beta, double *c, int ldc)',
        ),
        dasum: lib.func('double cblas_dasum(int n, const double *x, int incx)'),
      };
    } catch (err) {
      lib?.unload();
      attempts.push(`${name}: ${err.message}`);
    }
  }
  const err = new Error(`no CBLAS library found (apt-get install libopenblas0, or set SLABPOOL_BLAS=<path>); tried:\n  ${attempts.join('\n  ')}`);
  err.attempts = attempts;
  throw err;
}

// ---- the plain JavaScript loops BLAS is checked against

export function dotJs(n, x, y) {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * y[i];
  return s;
}

export function axpyJs(n, alpha, x, y) {
  for (let i = 0; i < n; i++) y[i] += alpha * x[i];
}

/** C = alpha * A B + beta * C, row-major, A m x k (lda), B k x n (ldb), C m x n (ldc). */
export function gemmJs(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
    }
  }
}

/** Seeded values in [-1, 1) (mulberry32), so a failure reproduces. */
export function fillRandom(view, seed) {
  let a = seed | 0;
  for (let i = 0; i < view.length; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    view[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 31) - 1;
  }
  return view;
}

/** Largest |got - want| over the first n elements. */
export function maxError(got, want, n = want.length) {
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst;
}

// BLAS adds in another order than the loops (blocked, vectorised): results agree to rounding.
const TOLERANCE = 1e-12;

/**
 * Runs every check on pools of the given backend; returns [{ name, ok, detail }]. `log` gets one
 * line per check as it completes.
 */
export function runChecks(blas, { backend = 'auto', log = () => {} } = {}) {
  const results = [];
  const check = (name, ok, detail) => {
    results.push({ name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  };

  // Vectors: blocks of 1000 doubles.
  const n = 1000;
  const pool = new MemoryPool({ blockSize: n, numBlocks: 4, backend });
  const x = fillRandom(pool.getBlock(), 1);
  const y = fillRandom(pool.getBlock(), 2);
  // Once per held block, reused for every call below while the blocks are held.
  const xAddress = pool.addressOf(x);
  const yAddress = pool.addressOf(y);
  const native = xAddress !== null;

  const dot = dotJs(n, x, y);
  const dotTyped = blas.ddot(n, x, 1, y, 1);
  check('ddot, typed arrays', Math.abs(dotTyped - dot) <= TOLERANCE * n, `${dotTyped} (JS loop ${dot})`);
  if (native) {
    const dotAddress = blas.ddot(n, xAddress, 1, yAddress, 1);
    check('ddot, addresses', Math.abs(dotAddress - dot) <= TOLERANCE * n, `${dotAddress} (JS loop ${dot})`);
  }

  // y += alpha x, ten times: with the typed arrays, then with the addresses asked once above.
  const want = Float64Array.from(y);
  for (let round = 0; round < 10; round++) {
    axpyJs(n, 0.5, x, want);
    blas.daxpy(n, 0.5, x, 1, y, 1);
  }
  check('daxpy x10, typed arrays', maxError(y, want) <= TOLERANCE * 10, `max |error| ${maxError(y, want)} over ${n} elements`);
  if (native) {
    for (let round = 0; round < 10; round++) {
      axpyJs(n, -0.25, x, want);
      blas.daxpy(n, -0.25, xAddress, 1, yAddress, 1);
    }
    check('daxpy x10, addresses', maxError(y, want) <= TOLERANCE * 20, `max |error| ${maxError(y, want)} over ${n} elements`);
  }
  pool.destroy();

  // Matrices: C (m x n) = A (m x k) B (k x n), each a run from a pool whose blockSize is its row
  // length, so its leading dimension is that length. k = 100 doubles (800 bytes) is no multiple of
  // the 64-byte alignment: A's rows are dense (row r starts r * 800 bytes after row 0), so they
  // are 32-byte aligned, and 64-byte aligned only for even r; B's and C's 512-byte rows all are.
  const [m, nn, k] = [30, 64, 100];
  const rowsOf = (cols) => new MemoryPool({ blockSize: cols, numBlocks: 128, backend });
  const poolA = rowsOf(k);
  const poolB = rowsOf(nn);
  const poolC = rowsOf(nn);
  const a = fillRandom(poolA.getRun(m), 3);
  const b = fillRandom(poolB.getRun(k), 4);
  const c = fillRandom(poolC.getRun(m), 5);
  const cWant = Float64Array.from(c);
  gemmJs(m, nn, k, 1.5, a, k, b, nn, 0.5, cWant, nn);
  blas.dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nn, k, 1.5, a, k, b, nn, 0.5, c, nn);
  const shape = `${m}x${k} * ${k}x${nn} from getRun, lda ${k}, ldb ${nn}, ldc ${nn}`;
  check('dgemm, typed arrays', maxError(c, cWant) <= TOLERANCE * k, `${shape}: max |error| ${maxError(c, cWant)}`);
  if (native) {
    const [aAddress, bAddress, cAddress] = [poolA.addressOf(a), poolB.addressOf(b), poolC.addressOf(c)];
    gemmJs(m, nn, k, 1, a, k, b, nn, -1, cWant, nn);
    blas.dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nn, k, 1, aAddress, k, bAddress, nn, -1, cAddress, nn);
    check('dgemm, addresses', maxError(c, cWant) <= TOLERANCE * 2 * k, `${shape}: max |error| ${maxError(c, cWant)}`);
    check(
      'run alignment',
      aAddress % 64n === 0n && bAddress % 64n === 0n && cAddress % 64n === 0n,
      `A, B and C start at 64-byte aligned addresses (A at 0x${aAddress.toString(16)})`,
    );
  }
  for (const p of [poolA, poolB, poolC]) p.destroy();
  return results;
}

/**
 * Whether koffi hands the block's own memory to C: libc's memchr, declared with a double pointer
 * and asked for the block's first byte, returns the pointer it received. Null where libc.so.6
 * does not load (not glibc).
 */
export function pointerKoffiPasses(block) {
  let libc;
  try {
    libc = koffi.load('libc.so.6');
  } catch {
    return null;
  }
  const memchr = libc.func('void *memchr(const double *s, int c, size_t n)');
  const firstByte = new Uint8Array(block.buffer, block.byteOffset, 1)[0];
  return memchr(block, firstByte, 1);
}

function main() {
  const args = process.argv.slice(2);
  const backendAt = args.indexOf('--backend');
  const backend = backendAt >= 0 ? args[backendAt + 1] : 'auto';
  if (!['auto', 'native', 'js'].includes(backend)) {
    console.error('usage: node examples/koffi-blas.mjs [--backend auto|native|js]');
    process.exit(2);
  }
  const blas = loadBlas();
  const probe = new MemoryPool({ blockSize: 8, numBlocks: 1, backend });
  console.log(`CBLAS from ${blas.name}; slabpool backend ${probe.backend}`);
  const block = probe.getBlock();
  const passed = pointerKoffiPasses(block);
  const address = probe.addressOf(block);
  if (passed !== null && address !== null) {
    const same = passed === address;
    console.log(`${same ? 'ok  ' : 'FAIL'} no copy: C received 0x${passed.toString(16)}, addressOf(block) is 0x${address.toString(16)}`);
    if (!same) process.exitCode = 1;
  } else if (address === null) {
    console.log('     (js backend: addressOf() is null, so only typed arrays are passed)');
  }
  probe.destroy();

  const results = runChecks(blas, { backend, log: (line) => console.log(line) });
  const failed = results.filter((r) => !r.ok).length;
  console.log(failed === 0 ? `all ${results.length} BLAS checks agree with the JavaScript loops` : `${failed} of ${results.length} BLAS checks disagree`);
  if (failed > 0) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
