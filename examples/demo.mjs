// npm start [-- --iterations N] [-- --backend auto|native|js] [-- --json] [-- --metrics]
//
// A particle swarm minimises the 30-dimensional Rastrigin function. Every iteration each of the
// 50 particles gets fresh buffers for its new position, its new velocity and two random vectors,
// and gives back the ones it no longer needs: the allocation pattern of numeric code written in
// the natural, immutable style. First the buffers come from a slabpool pool, then the same seeded
// run allocates them with `new Float64Array`; both must find the identical best value.
import { PerformanceObserver } from 'node:perf_hooks';
import { MemoryPool, backendInfo } from 'slabpool';

const DIMENSIONS = 30;
const PARTICLES = 50;
const BOUND = 5.12;

function parseArgs(argv) {
  const options = { iterations: 10_000, backend: 'auto', json: false, metrics: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--iterations') {
      options.iterations = Number(value());
      if (!Number.isInteger(options.iterations) || options.iterations < 1) throw new Error('--iterations takes a positive integer');
    } else if (arg === '--backend') {
      options.backend = value();
      if (!['auto', 'native', 'js'].includes(options.backend)) throw new Error("--backend takes 'auto', 'native' or 'js'");
    } else if (arg === '--json') options.json = true;
    else if (arg === '--metrics') options.metrics = true;
    else throw new Error(`unknown option ${arg} (options: --iterations N, --backend auto|native|js, --json, --metrics)`);
  }
  return options;
}

/**
 * A seeded random source (mulberry32) that fills a buffer with numbers uniform in
 * [lo, lo + width). The generator runs inside the fill loop, so no number is boxed on its way out
 * of a call: the demo's own code allocates nothing per step, and what is compared is the buffers.
 */
function makeRandom(seed) {
  let a = seed | 0;
  return function fill(buffer, lo, width) {
    for (let d = 0; d < buffer.length; d++) {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      buffer[d] = lo + width * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
    }
    return buffer;
  };
}

/**
 * A particle swarm optimiser (Clerc's constriction coefficients) with buffers from `take()`,
 * handed back through `give(buffer)`; `onProgress(iteration, best)` is called now and then.
 * Each variant gets its own copy of these functions, so that V8 compiles each for its own
 * buffers instead of mixing the two in shared type feedback (which would leave both running
 * partly unoptimised, boxing numbers on every step).
 */
function makeOptimiser() {
  function rastrigin(x) {
    let sum = 10 * x.length;
    for (let i = 0; i < x.length; i++) sum += x[i] * x[i] - 10 * Math.cos(2 * Math.PI * x[i]);
    return sum;
  }

  function copy(buffer, from) {
    for (let d = 0; d < DIMENSIONS; d++) buffer[d] = from[d];
    return buffer;
  }

  // One iteration of the swarm; a function of its own, so that the warm-up optimises exactly
  // the code the measured run then calls.
  function step(swarm, random, take, give) {
    const { positions, velocities, personals, personalValues, best } = swarm;
    const w = 0.729;
    const c1 = 1.49445;
    const c2 = 1.49445;
    for (let p = 0; p < PARTICLES; p++) {
      const r1 = random(take(), 0, 1);
      const r2 = random(take(), 0, 1);
      const oldPosition = positions[p];
      const oldVelocity = velocities[p];
      const personal = personals[p];
      const bestPosition = swarm.bestPosition;
      const velocity = take();
      const position = take();
      for (let d = 0; d < DIMENSIONS; d++) {
        const v = w * oldVelocity[d] + c1 * r1[d] * (personal[d] - oldPosition[d]) + c2 * r2[d] * (bestPosition[d] - oldPosition[d]);
        velocity[d] = Math.max(-BOUND, Math.min(BOUND, v));
        position[d] = Math.max(-BOUND, Math.min(BOUND, oldPosition[d] + velocity[d]));
      }
      give(r1);
      give(r2);
      give(oldVelocity);
      give(oldPosition);
      velocities[p] = velocity;
      positions[p] = position;
      const value = rastrigin(position);
      if (value < personalValues[p]) {
        personalValues[p] = value;
        personals[p] = copy(take(), position);
        give(personal);
        if (value < best[0]) {
          best[0] = value;
          swarm.bestPosition = copy(take(), position);
          give(bestPosition);
        }
      }
    }
  }

  return function optimise({ iterations, take, give, onProgress, every }) {
    const random = makeRandom(20261124);
    // The swarm's state: per particle its position, velocity, best position seen and that
    // position's value (numbers in a Float64Array, so storing them never boxes).
    const positions = [];
    const velocities = [];
    const personals = [];
    const personalValues = new Float64Array(PARTICLES);
    const best = new Float64Array(1).fill(Infinity);
    let bestPosition = take();
    for (let p = 0; p < PARTICLES; p++) {
      positions.push(random(take(), -BOUND, 2 * BOUND));
      velocities.push(random(take(), -0.1 * BOUND, 0.2 * BOUND));
      personals.push(copy(take(), positions[p]));
      personalValues[p] = rastrigin(positions[p]);
      if (personalValues[p] < best[0]) {
        best[0] = personalValues[p];
        copy(bestPosition, positions[p]);
      }
    }
    const swarm = { positions, velocities, personals, personalValues, best, bestPosition };
    for (let it = 1; it <= iterations; it++) {
      step(swarm, random, take, give);
      if (it % every === 0 || it === iterations) onProgress(it, best[0]);
    }
    bestPosition = swarm.bestPosition;
    for (let p = 0; p < PARTICLES; p++) {
      give(positions[p]);
      give(velocities[p]);
      give(personals[p]);
    }
    give(bestPosition);
    return best[0];
  };
}

/** Runs one optimisation, measuring time, GC events (delivered after the loop turns) and RSS. */
async function measure(label, run) {
  let gcEvents = 0;
  const observer = new PerformanceObserver((list) => {
    gcEvents += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  const turn = () => new Promise((resolve) => setTimeout(resolve, 20));
  await turn();
  gcEvents = 0;
  const rss0 = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const best = run();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssGrowthBytes = process.memoryUsage().rss - rss0;
  await turn();
  observer.disconnect();
  return { label, ms, gcEvents, rssGrowthBytes, best };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const tty = process.stdout.isTTY && !options.json;
  const say = (line) => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

  const pool = new MemoryPool({ blockSize: DIMENSIONS, numBlocks: 256, grow: true, backend: options.backend });
  say(`slabpool demo: particle swarm on Rastrigin, ${DIMENSIONS} dimensions, ${PARTICLES} particles, ${options.iterations} iterations`);
  say(`backend: ${pool.backend} (${options.backend === 'auto' ? backendInfo().reason : `asked for ${options.backend}`})`);

  const status = (it, best) => {
    const s = pool.stats();
    const line =
      `iteration ${String(it).padStart(String(options.iterations).length)}/${options.iterations}` +
      `  best ${best.toFixed(6)}  pool: ${s.inUseBlocks}/${s.capacityBlocks} blocks, efficiency ${s.efficiency.toFixed(1)} %,` +
      ` fragmentation ${s.fragmentation.toFixed(1)} %  rss ${mb(process.memoryUsage().rss)}`;
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else say(line);
  };
  const every = tty ? 50 : Math.max(1, Math.round(options.iterations / 10));
  const pooledBuffers = { take: () => pool.getBlock(), give: (b) => pool.returnBlock(b) };
  const plainBuffers = { take: () => new Float64Array(DIMENSIONS), give: () => {} };

  // Each variant is warmed up just before it is measured, so that neither pays for the JIT
  // (V8 recompiles optimise() when the buffer functions change).
  const warmup = Math.min(500, options.iterations);
  const pooledOptimise = makeOptimiser();
  const plainOptimise = makeOptimiser();
  const warm = (optimise, buffers) => optimise({ iterations: warmup, every: Infinity, onProgress: () => {}, ...buffers });
  say(`(each variant first runs ${warmup} unmeasured iterations to warm up the JIT)`);
  warm(pooledOptimise, pooledBuffers);

  const before = pool.stats();
  const pooled = await measure('slabpool', () => pooledOptimise({ iterations: options.iterations, every, onProgress: status, ...pooledBuffers }));
  if (tty) process.stdout.write('\n');
  const stats = pool.stats();
  pool.check();
  say(
    `pool after the run: ${stats.acquires - before.acquires} buffers taken and returned, peak ${stats.peakInUseBlocks} in use, ` +
      `${stats.inUseBlocks} now, capacity ${stats.capacityBlocks} (${stats.grows} grows)`,
  );
  say('now the same seeded run with new Float64Array ...');
  warm(plainOptimise, plainBuffers);
  const plain = await measure('new Float64Array', () => plainOptimise({ iterations: options.iterations, every: Infinity, onProgress: () => {}, ...plainBuffers }));

  const same = Object.is(pooled.best, plain.best);
  const summary = {
    iterations: options.iterations,
    dimensions: DIMENSIONS,
    particles: PARTICLES,
    backend: pool.backend,
    buffersTaken: stats.acquires - before.acquires,
    slabpool: pooled,
    newFloat64Array: plain,
    sameBest: same,
    speedup: plain.ms / pooled.ms,
  };
  // --metrics: the pool's Prometheus scrape (slabpool/prometheus, which needs prom-client), to stderr with --json.
  let scrape = null;
  if (options.metrics) {
    const { Registry } = await import('prom-client');
    const { registerPoolMetrics } = await import('slabpool/prometheus');
    const registry = new Registry();
    registerPoolMetrics(registry, pool, { name: 'demo' });
    scrape = await registry.metrics();
  }
  pool.destroy();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const rows = [
      ['', 'slabpool', 'new Float64Array'],
      ['time', `${pooled.ms.toFixed(0)} ms`, `${plain.ms.toFixed(0)} ms`],
      ['GC events', String(pooled.gcEvents), String(plain.gcEvents)],
      ['RSS growth', mb(pooled.rssGrowthBytes), mb(plain.rssGrowthBytes)],
      ['best value', pooled.best.toPrecision(17), plain.best.toPrecision(17)],
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    say('');
    for (const row of rows) say(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '));
    say('');
    say(same ? `identical best value; slabpool was ${summary.speedup.toFixed(2)}x as fast` : 'the best values differ: this is a bug, please report it');
  }
  if (scrape !== null) (options.json ? process.stderr : process.stdout).write(`${options.json ? '' : '\n'}${scrape}`);
  if (!same) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err.message);
  process.exitCode = 1;
});
