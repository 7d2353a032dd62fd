'use strict';
// The installed package on a platform where vitest does not run (Windows under wine, .ci/win32):
// node:assert only, slabpool required by name from a project that installed the tarball.
//   node smoke.cjs [<platform-arch>]   (run from that project; default: this process's)
// It checks that the shipped prebuild is the one that loaded, then the public API on it: values
// survive in distinct, 64-byte-aligned blocks, runs are contiguous, stats count, check() passes,
// bad input throws the documented coded errors and changes nothing, destroy() makes later calls
// throw. Prints one line per group and 'smoke: N checks passed' at the end; exits non-zero on the
// first failure.
const assert = require('node:assert/strict');
const { createRequire } = require('node:module');
const path = require('node:path');

// By name from the project in the working directory, not from beside this file (inside the
// slabpool repository the name would resolve to the repository itself).
const projectRequire = createRequire(path.join(process.cwd(), 'package.json'));
const platformArch = process.argv[2] ?? `${process.platform}-${process.arch}`;
const packageDir = path.dirname(projectRequire.resolve('slabpool/package.json'));
const { MemoryPool, backendInfo } = projectRequire('slabpool');

let checks = 0;
function group(name, fn) {
  fn();
  console.log(`ok ${name}`);
}
function ok(value, message) {
  assert.ok(value, message);
  checks++;
}
function equal(actual, expected, message) {
  assert.deepStrictEqual(actual, expected, message);
  checks++;
}
/** fn throws an error of this class, code and message, and leaves the pool as it was. */
function rejects(pool, fn, name, code, message) {
  const before = pool?.stats();
  assert.throws(fn, (err) => {
    assert.equal(err.name, name);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
  if (pool) {
    pool.check();
    assert.deepStrictEqual(pool.stats(), before, 'a rejected call changed the pool');
  }
  checks++;
}

group('the prebuild loads', () => {
  const info = backendInfo();
  const prebuild = path.join(packageDir, 'prebuilds', platformArch, 'slabpool.node');
  equal(info.backend, 'native', `backendInfo: ${JSON.stringify(info)}`);
  // The prebuilds are for glibc on Linux (the loader tells musl apart); other platforms name no C library.
  const libc = process.platform === 'linux' ? 'glibc' : null;
  equal(info.target, { platform: process.platform, arch: process.arch, libc });
  equal(info.reason, `the native addon loaded from ${prebuild} on ${platformArch}${libc ? ` (${libc})` : ''}`);
  equal(info.attempts.at(-1), { path: prebuild, error: null });
  equal(info.attempts[0], { path: path.join(packageDir, 'build', 'Release', 'slabpool.node'), error: 'not found' });
});

group('getBlock/returnBlock: distinct, aligned, values survive', () => {
  const pool = new MemoryPool({ blockSize: [10, 10], numBlocks: 16 });
  equal(pool.backend, 'native');
  equal(pool.alignment, 64);
  const blocks = Array.from({ length: 16 }, () => pool.getBlock());
  ok(blocks.every((b) => b instanceof Float64Array && b.length === 100));
  equal(pool.getBlock(), null, 'a full pool that may not grow gives null');
  blocks.forEach((b, i) => b.fill(i + 0.5));
  const addresses = blocks.map((b) => pool.addressOf(b));
  ok(addresses.every((a) => typeof a === 'bigint' && a % 64n === 0n), `addresses not 64-byte aligned: ${addresses}`);
  equal(new Set(addresses).size, 16, 'two blocks share an address');
  const sorted = [...addresses].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) ok(sorted[i] - sorted[i - 1] >= 800n, 'blocks overlap');
  blocks.forEach((b, i) => ok(b.every((v) => v === i + 0.5), `block ${i} lost its values`));
  equal(blocks.map((b) => pool.indexOf(b)).sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
  pool.returnBlock(blocks[3]);
  pool.returnBlock(pool.indexOf(blocks[4]));
  const s = pool.stats();
  equal([s.inUseBlocks, s.freeBlocks, s.capacityBlocks, s.acquires, s.returns, s.failures], [14, 2, 16, 16, 2, 1]);
  blocks.forEach((b, i) => i !== 3 && i !== 4 && ok(b[99] === i + 0.5, `block ${i} changed after a return`));
  pool.check();
  pool.destroy();
});

group('getRun: contiguous blocks in one view', () => {
  const pool = new MemoryPool({ blockSize: 8, numBlocks: 32, alignment: 64 });
  const run = pool.getRun(5);
  equal(run.length, 5 * 8);
  const start = pool.indexOf(run);
  const base = pool.addressOf(run);
  equal(base % 64n, 0n);
  run.forEach((_, i) => (run[i] = i));
  const block = pool.getBlock();
  ok(pool.indexOf(block) < start || pool.indexOf(block) >= start + 5, 'a block was handed out inside a run');
  const s = pool.stats();
  equal([s.inUseBlocks, s.stride, s.largestFreeRun], [6, 64, 26]);
  equal(pool.getRun(27), null, 'a run longer than the largest free run is refused');
  ok(run.every((v, i) => v === i));
  rejects(pool, () => pool.returnBlock(start + 1), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', new RegExp(`it is inside the run that starts at ${start}`));
  pool.returnBlock(run);
  equal(pool.stats().inUseBlocks, 1);
  rejects(pool, () => pool.returnBlock(run), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /already returned|which is free/);
  pool.returnBlock(block);
  equal(pool.stats().largestFreeRun, 32);
  pool.check();
  pool.destroy();
});

group('growth, trim and stats', () => {
  const pool = new MemoryPool({ blockSize: [10, 10], numBlocks: 8, grow: true, maxBlocks: 16 });
  const blocks = Array.from({ length: 10 }, () => pool.getBlock());
  blocks.forEach((b, i) => b.fill(i));
  const run = pool.getRun(4);
  for (const b of blocks.slice(0, 8)) pool.returnBlock(b);
  pool.check();
  const s = pool.stats();
  equal([s.backend, s.memory, s.inUseBlocks, s.capacityBlocks, s.grows, s.peakInUseBlocks], ['native', 'external', 6, 16, 1, 14]);
  equal(blocks[9][0], 9);
  pool.returnBlock(run);
  for (const b of blocks.slice(8)) pool.returnBlock(b);
  equal(pool.trim(), 8 * 832, 'trim gives back the empty second slab');
  equal(pool.stats().capacityBlocks, 8);
  pool.check();
  pool.destroy();
});

group('bad input: coded errors, pool unchanged', () => {
  rejects(undefined, () => new MemoryPool({ blockSize: 0, numBlocks: 8 }), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /^Expected integer from 1 to 536870912 for blockSize but received 0 of type number$/);
  rejects(undefined, () => new MemoryPool({ blockSize: 4, numBlocks: 8, alignment: 48 }), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /^Expected power of two from 8 to 4096 for alignment/);
  rejects(undefined, () => new MemoryPool({ blockSize: '4', numBlocks: 8 }), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /for blockSize but received '4' of type string$/);
  const pool = new MemoryPool({ blockSize: 4, numBlocks: 8 });
  const a = pool.getBlock();
  a.fill(7);
  rejects(pool, () => pool.getRun(9), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /^Expected integer from 1 to 8 for count but received 9 of type number/);
  rejects(pool, () => pool.getRun('2'), 'TypeError', 'ERR_SLABPOOL_INVALID_ARG', /for count but received '2' of type string$/);
  rejects(pool, () => pool.returnBlock(new Float64Array(4)), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /it was not created by this pool/);
  rejects(pool, () => pool.returnBlock(a.subarray(1)), 'TypeError', 'ERR_SLABPOOL_FOREIGN_BLOCK', /subarray of pool memory/);
  rejects(pool, () => pool.returnBlock(8), 'RangeError', 'ERR_SLABPOOL_INVALID_ARG', /^Expected integer index of a block from 0 to 7 for index/);
  rejects(pool, () => pool.returnBlock(6), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /which is free/);
  ok(a.every((v) => v === 7), 'a rejected call changed a block');
  pool.returnBlock(a);
  rejects(pool, () => pool.returnBlock(a), 'RangeError', 'ERR_SLABPOOL_DOUBLE_RETURN', /^Expected a block in use for block but received block \d+, which is free \(returned twice\?\)$/);
  pool.destroy();
});

group('destroy: later calls throw ERR_SLABPOOL_DESTROYED', () => {
  const pool = new MemoryPool({ blockSize: 4, numBlocks: 8 });
  const held = pool.getBlock();
  pool.destroy();
  equal(pool.destroyed, true);
  for (const [method, call] of [
    ['getBlock', () => pool.getBlock()],
    ['getRun', () => pool.getRun(2)],
    ['returnBlock', () => pool.returnBlock(held)],
    ['stats', () => pool.stats()],
    ['check', () => pool.check()],
  ]) {
    rejects(undefined, call, 'TypeError', 'ERR_SLABPOOL_DESTROYED', new RegExp(`^Cannot call ${method}\\(\\): the pool has been destroyed$`));
  }
});

console.log(`smoke: ${checks} checks passed on ${backendInfo().backend} (${process.platform}-${process.arch}, Node ${process.version})`);
