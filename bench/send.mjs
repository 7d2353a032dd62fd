// node bench/send.mjs [js|native]: what postMessage(block) costs without a transfer list, for the
// README's "Sending blocks to other threads". One 100-double block of a slab of 10,000 blocks
// (8.32 MB) through a MessageChannel, against postMessage(block.slice()): the bytes the receiver
// gets, the time inside postMessage (the copy is made there) and until the message arrives, each
// the median of 21 sends after 5 warm-ups. The package must be built (npm run compile).
import { MessageChannel } from 'node:worker_threads';
import { MemoryPool } from 'slabpool';

const backend = process.argv[2] ?? 'auto';
const pool = new MemoryPool({ blockSize: 100, numBlocks: 10_000, backend });
const block = pool.getBlock();
block.fill(1.5);
const { port1, port2 } = new MessageChannel();

async function send(value) {
  const arrived = new Promise((resolve) => port2.once('message', resolve));
  const t0 = process.hrtime.bigint();
  port1.postMessage(value);
  const t1 = process.hrtime.bigint();
  const received = await arrived;
  const t2 = process.hrtime.bigint();
  return { postMs: Number(t1 - t0) / 1e6, arrivedMs: Number(t2 - t0) / 1e6, bytes: received.buffer.byteLength, length: received.length };
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const { backend: used, memory } = pool.stats();
for (const [name, make] of [
  ['block', () => block],
  ['block.slice()', () => block.slice()],
]) {
  for (let i = 0; i < 5; i++) await send(make());
  const runs = [];
  for (let i = 0; i < 21; i++) runs.push(await send(make()));
  const ms = (field) => median(runs.map((r) => r[field])).toFixed(3);
  console.log(`${used} (${memory} memory), postMessage(${name}): ${runs[0].bytes} bytes received for ${runs[0].length} elements; ${ms('postMs')} ms in postMessage, ${ms('arrivedMs')} ms until it arrived`);
}
port1.close();
port2.close();
pool.destroy();
