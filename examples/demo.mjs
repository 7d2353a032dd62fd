// A first look at slabpool: a pool of 100-double blocks used in a loop, with its health figures.
// (The full demo, a particle swarm optimisation compared against plain allocation, comes with the
// performance work.)
import { MemoryPool, backendInfo } from 'slabpool';

const info = backendInfo();
console.log(`backend: ${info.backend} (${info.reason})`);

const pool = new MemoryPool({ blockSize: [100], numBlocks: 64 });
const live = [];
let checksum = 0;
for (let step = 0; step < 100_000; step++) {
  // Keep between 0 and 48 blocks alive, taking and giving back in a shuffled order.
  if (live.length < 48 && (live.length === 0 || (step * 2654435761) % 7 < 4)) {
    const block = pool.getBlock();
    block.fill(step);
    live.push(block);
  } else {
    const i = (step * 40503) % live.length;
    checksum += live[i][0];
    pool.returnBlock(live[i]);
    live[i] = live[live.length - 1];
    live.pop();
  }
}
const s = pool.stats();
console.log(`100000 steps: ${s.acquires} blocks taken, ${s.returns} returned, peak ${s.peakInUseBlocks} of ${s.capacityBlocks}`);
console.log(`efficiency ${s.efficiency.toFixed(1)} %, fragmentation ${s.fragmentation.toFixed(1)} %, largest free run ${s.largestFreeRun}, coalesces ${s.coalesces}`);
console.log(`checksum ${checksum}`);
pool.check();
pool.destroy();
