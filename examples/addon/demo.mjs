// A node-addon-api addon of your own reading slabpool blocks:
//   node examples/addon/build.mjs && node examples/addon/demo.mjs
// The addon (sum.cc) takes a Float64Array and reads its memory where it is: no copy. It uses
// aligned AVX2 loads when the CPU has AVX2 and the pointer is 32-byte aligned, which every block
// of a pool with alignment >= 32 is on the native backend.
import { createRequire } from 'node:module';
import { MemoryPool } from 'slabpool';
import { addonFile } from './build.mjs';

let addon;
try {
  addon = createRequire(import.meta.url)(addonFile);
} catch (err) {
  console.error(`the example addon is not built: run node examples/addon/build.mjs first\n(${err.message})`);
  process.exit(1);
}

function sumJs(view) {
  let s = 0;
  for (let i = 0; i < view.length; i++) s += view[i];
  return s;
}

function report(what, got, want) {
  const ok = got.sum === want;
  console.log(`${what}: sum ${got.sum} ${ok ? '=' : '!='} JS ${want} (${got.path}, address 0x${got.address.toString(16)}, aligned to ${got.alignment} bytes)`);
  if (!ok) process.exitCode = 1;
}

const pool = new MemoryPool({ blockSize: 1024, numBlocks: 64 }); // alignment 64 (the default)
console.log(`slabpool backend ${pool.backend}; this CPU ${addon.hasAvx2 ? 'has' : 'lacks'} AVX2`);

const block = pool.getBlock();
for (let i = 0; i < block.length; i++) block[i] = i % 10;
report('block', addon.sum(block), sumJs(block));

// A 16 x 1024 matrix: dense rows, leading dimension 1024; 8192-byte rows keep every row aligned.
const matrix = pool.getRun(16);
for (let i = 0; i < matrix.length; i++) matrix[i] = (i % 7) - 3;
report('matrix of 16 rows', addon.sum(matrix), sumJs(matrix));

// sumAsync reads the memory on a worker thread after this call returns. Until then the pool must
// not release it (destroy(), trim()): pin the block for the duration where pool.pin exists.
const pin = typeof pool.pin === 'function' ? pool.pin(block) : null;
try {
  report('sumAsync', await addon.sumAsync(block, 10), sumJs(block));
} finally {
  pin?.release();
}

pool.returnBlock(matrix);
pool.returnBlock(block);
pool.destroy();
