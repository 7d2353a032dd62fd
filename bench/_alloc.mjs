import { MemoryPool } from 'slabpool';
const pool = new MemoryPool({ blockSize: 30, numBlocks: 256, grow: true, backend: process.argv[2] });
const held = [];
for (let i = 0; i < 150; i++) held.push(pool.getBlock());
let x = 1;
for (let i = 0; i < 3e6; i++) { if (i === 0) {}
  const j = (x = (x * 1103515245 + 12345) & 0x7fffffff) % held.length;
  pool.returnBlock(held[j]);
  held[j] = pool.getBlock();
}
console.log(JSON.stringify(pool.stats()).slice(0, 80));
