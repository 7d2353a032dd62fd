// npm start [-- --iterations N] [-- --backend auto|native|js] [-- --workers N] [-- --json] [-- --metrics]
//
// A particle swarm minimises the 30-dimensional Rastrigin function. Every iteration each of the
// 50 particles gets fresh buffers for its new position, its new velocity and two random vectors,
// and gives back the ones it no longer needs: the allocation pattern of numeric code written in
// the natural, immutable style. First the buffers come from a slabpool pool, then the same seeded
// run allocates them with `new Float64Array`; both must find the identical best value.
//
// --workers N runs the same seeded swarm a third time with every buffer from one SharedPool and
// the particles evaluated in N worker_threads: each new position is handed to a worker with
// handOff() (its index is what postMessage carries; nothing is copied), which takes it with
// blockAt(), evaluates it and hands it back. This file is also the workers' script.
import { PerformanceObserver } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MemoryPool, SharedPool, backendInfo } from 'slabpool';

const DIMENSIONS = 30;
const PARTICLES = 50;
const BOUND = 5.12;
const SEED = 20261124;
const OPTIONS = '--iterations N, --backend auto|native|js, --workers N, --json, --metrics';

function parseArgs(argv) {
  const options = { iterations: 10_000, backend: 'auto', workers: 0, json: false, metrics: false };
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
    } else if (arg === '--workers') {
      const v = value();
      options.workers = Number(v);
      if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error(`--workers takes a positive integer, not ${v}`);
      if (options.workers > PARTICLES) throw new Error(`--workers takes at most ${PARTICLES} (the swarm has ${PARTICLES} particles), not ${v}`);
    } else if (arg === '--json') options.json = true;
    else if (arg === '--metrics') options.metrics = true;
    else throw new Error(`unknown option ${arg} (options: ${OPTIONS})`);
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
 * buffers instead of mixing them in shared type feedback (which would leave them running
 * partly unoptimised, boxing numbers on every step).
 *
 * optimise() evaluates each particle right after moving it, and the particles after it move
 * towards the swarm's best as that evaluation left it. optimiseAcross() evaluates elsewhere
 * (`evaluate`: in workers), so it moves every particle first, towards the best known then, and
 * hands their positions out together; taking the values in particle order, when one moves the
 * swarm's best, the particles after it are moved again from their same random vectors and
 * evaluated again. Both therefore compute exactly the same swarm, number for number;
 * `movedAgain` counts those second moves (optimise() counts the ones optimiseAcross() would make).
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

  /** A particle's new velocity and position, written into `velocity` and `position`. */
  function move(velocity, position, oldVelocity, oldPosition, personal, bestPosition, r1, r2) {
    const w = 0.729;
    const c1 = 1.49445;
    const c2 = 1.49445;
    for (let d = 0; d < DIMENSIONS; d++) {
      const v = w * oldVelocity[d] + c1 * r1[d] * (personal[d] - oldPosition[d]) + c2 * r2[d] * (bestPosition[d] - oldPosition[d]);
      velocity[d] = Math.max(-BOUND, Math.min(BOUND, v));
      position[d] = Math.max(-BOUND, Math.min(BOUND, oldPosition[d] + velocity[d]));
    }
  }

  /** The swarm's start: per particle a position, a velocity and its best position seen (the position), drawn in this order. */
  function begin(random, take) {
    const positions = [];
    const velocities = [];
    const personals = [];
    for (let p = 0; p < PARTICLES; p++) {
      positions.push(random(take(), -BOUND, 2 * BOUND));
      velocities.push(random(take(), -0.1 * BOUND, 0.2 * BOUND));
      personals.push(copy(take(), positions[p]));
    }
    // personalValues: each best position's value (numbers in a Float64Array, so storing them never boxes).
    return { positions, velocities, personals, personalValues: new Float64Array(PARTICLES), best: new Float64Array(1).fill(Infinity), bestPosition: take(), movedAgain: 0 };
  }

  /** The start's values, taken in particle order. */
  function firstValues(swarm) {
    const { positions, personalValues, best } = swarm;
    for (let p = 0; p < PARTICLES; p++) {
      if (personalValues[p] < best[0]) {
        best[0] = personalValues[p];
        copy(swarm.bestPosition, positions[p]);
      }
    }
  }

  /** Particle p's new `position` was evaluated to `value`: its best and the swarm's; true if the swarm's best moved. */
  function record(swarm, p, position, value, take, give) {
    const { personals, personalValues, best } = swarm;
    if (!(value < personalValues[p])) return false;
    personalValues[p] = value;
    const personal = personals[p];
    personals[p] = copy(take(), position);
    give(personal);
    if (!(value < best[0])) return false;
    best[0] = value;
    const bestPosition = swarm.bestPosition;
    swarm.bestPosition = copy(take(), position);
    give(bestPosition);
    return true;
  }

  /** Gives back every buffer of the swarm; returns its best value. */
  function end(swarm, give) {
    for (let p = 0; p < PARTICLES; p++) {
      give(swarm.positions[p]);
      give(swarm.velocities[p]);
      give(swarm.personals[p]);
    }
    give(swarm.bestPosition);
    return swarm.best[0];
  }

  // One iteration of the swarm; a function of its own, so that the warm-up optimises exactly
  // the code the measured run then calls.
  function step(swarm, random, take, give) {
    const { positions, velocities } = swarm;
    for (let p = 0; p < PARTICLES; p++) {
      const r1 = random(take(), 0, 1);
      const r2 = random(take(), 0, 1);
      const oldPosition = positions[p];
      const oldVelocity = velocities[p];
      const velocity = take();
      const position = take();
      move(velocity, position, oldVelocity, oldPosition, swarm.personals[p], swarm.bestPosition, r1, r2);
      give(r1);
      give(r2);
      give(oldVelocity);
      give(oldPosition);
      velocities[p] = velocity;
      positions[p] = position;
      if (record(swarm, p, position, rastrigin(position), take, give)) swarm.movedAgain += PARTICLES - 1 - p;
    }
  }

  function optimise({ iterations, take, give, onProgress, every }) {
    const random = makeRandom(SEED);
    const swarm = begin(random, take);
    for (let p = 0; p < PARTICLES; p++) swarm.personalValues[p] = rastrigin(swarm.positions[p]);
    firstValues(swarm);
    for (let it = 1; it <= iterations; it++) {
      step(swarm, random, take, give);
      if (it % every === 0 || it === iterations) onProgress(it, swarm.best[0]);
    }
    return { best: end(swarm, give), movedAgain: swarm.movedAgain };
  }

  // One iteration with the evaluations elsewhere: `evaluate(positions, from, values)` fills
  // values[from ..] with the values of positions[from ..] (handed out and back). `next` holds the
  // iteration's buffers: random vectors, new velocities and positions, and their values.
  async function stepAcross(swarm, random, take, give, evaluate, next) {
    const { positions, velocities } = swarm;
    const { r1s, r2s, velocityOf, positionOf, values } = next;
    for (let p = 0; p < PARTICLES; p++) {
      r1s[p] = random(take(), 0, 1);
      r2s[p] = random(take(), 0, 1);
      velocityOf[p] = take();
      positionOf[p] = take();
    }
    for (let from = 0; from < PARTICLES; ) {
      for (let p = from; p < PARTICLES; p++) move(velocityOf[p], positionOf[p], velocities[p], positions[p], swarm.personals[p], swarm.bestPosition, r1s[p], r2s[p]);
      await evaluate(positionOf, from, values);
      let p = from;
      while (p < PARTICLES && !record(swarm, p, positionOf[p], values[p], take, give)) p++;
      // The swarm's best moved at particle p: the ones after it move again, towards it.
      if (p < PARTICLES - 1) swarm.movedAgain += PARTICLES - 1 - p;
      from = p + 1;
    }
    for (let p = 0; p < PARTICLES; p++) {
      give(r1s[p]);
      give(r2s[p]);
      give(velocities[p]);
      give(positions[p]);
      velocities[p] = velocityOf[p];
      positions[p] = positionOf[p];
    }
  }

  async function optimiseAcross({ iterations, take, give, evaluate, onProgress, every }) {
    const random = makeRandom(SEED);
    const swarm = begin(random, take);
    await evaluate(swarm.positions, 0, swarm.personalValues);
    firstValues(swarm);
    const buffers = () => new Array(PARTICLES).fill(null);
    const next = { r1s: buffers(), r2s: buffers(), velocityOf: buffers(), positionOf: buffers(), values: new Float64Array(PARTICLES) };
    for (let it = 1; it <= iterations; it++) {
      await stepAcross(swarm, random, take, give, evaluate, next);
      if (it % every === 0 || it === iterations) onProgress(it, swarm.best[0]);
    }
    return { best: end(swarm, give), movedAgain: swarm.movedAgain };
  }

  return { optimise, optimiseAcross, rastrigin };
}

/**
 * Runs one optimisation (`run()` returns { best, movedAgain } or a promise of it), measuring time,
 * GC events (delivered after the loop turns) and RSS. Returns the figures and movedAgain.
 */
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
  let result = run();
  if (result instanceof Promise) result = await result;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssGrowthBytes = process.memoryUsage().rss - rss0;
  await turn();
  observer.disconnect();
  return { figures: { label, ms, gcEvents, rssGrowthBytes, best: result.best }, movedAgain: result.movedAgain };
}

/**
 * --workers: the worker threads that evaluate the particles, each attached to the shared pool.
 * ask(message) posts a message and resolves with the worker's answer (rejects if the worker
 * fails or exits first); close() has it close its attachment and waits until its thread ended.
 */
function startWorkers(n, handle) {
  return Array.from({ length: n }, () => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { handle } });
    let waiting = null;
    let failure = null;
    const fail = (err) => {
      failure ??= err;
      waiting?.reject(failure);
      waiting = null;
    };
    worker.on('message', (answer) => {
      const w = waiting;
      waiting = null;
      w?.resolve(answer);
    });
    worker.on('error', fail);
    const exited = new Promise((resolve) => worker.on('exit', resolve));
    worker.on('exit', (code) => fail(new Error(`a worker exited (code ${code}) before it answered`)));
    const ask = (message) => {
      if (failure !== null) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        worker.postMessage(message);
      });
    };
    const close = async () => {
      await ask({ close: true });
      const code = await exited;
      if (code !== 0) throw new Error(`a worker exited with code ${code}`);
    };
    return { worker, ask, close };
  });
}

/**
 * optimiseAcross()'s evaluate(positions, from, values) over `workers`: positions[from ..] split
 * into one contiguous share per worker, each position handed off (its block index is what the
 * message carries), evaluated there and handed back; values[from ..] filled in. `totals` counts
 * the evaluations and batches, the nanoseconds spent in handOff() and blockAt() in every thread,
 * and those the main thread waited for the answers.
 */
function makeEvaluate(pool, workers, totals) {
  return async function evaluate(positions, from, values) {
    const count = PARTICLES - from;
    const shares = Math.min(workers.length, count);
    const asked = [];
    for (let k = 0; k < shares; k++) {
      const lo = from + Math.floor((count * k) / shares);
      const hi = from + Math.floor((count * (k + 1)) / shares);
      const indices = new Int32Array(hi - lo);
      const t0 = process.hrtime.bigint();
      for (let p = lo; p < hi; p++) indices[p - lo] = pool.handOff(positions[p]);
      totals.callNs += Number(process.hrtime.bigint() - t0);
      asked.push(workers[k].ask({ lo, indices }));
    }
    const t1 = process.hrtime.bigint();
    const answers = await Promise.all(asked);
    const t2 = process.hrtime.bigint();
    totals.waitNs += Number(t2 - t1);
    for (const { lo, indices, values: got, callNs } of answers) {
      for (let j = 0; j < indices.length; j++) {
        // The block comes back as this thread's own view of it: the same object, the same memory.
        if (pool.blockAt(indices[j]) !== positions[lo + j]) throw new Error(`block ${indices[j]} came back as another view`);
        values[lo + j] = got[j];
      }
      totals.callNs += callNs;
    }
    totals.callNs += Number(process.hrtime.bigint() - t2);
    totals.evaluations += count;
    totals.batches += 1;
  };
}

/** A worker of --workers: takes the positions handed to it, evaluates each and hands it back. */
function evaluateInWorker() {
  const pool = SharedPool.attach(workerData.handle);
  const { rastrigin } = makeOptimiser();
  parentPort.on('message', (message) => {
    if (message.close) {
      pool.close();
      parentPort.postMessage({ closed: true });
      parentPort.close();
      return;
    }
    const { lo, indices } = message;
    const values = new Float64Array(indices.length);
    const views = new Array(indices.length);
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < indices.length; j++) views[j] = pool.blockAt(indices[j]);
    const t1 = process.hrtime.bigint();
    for (let j = 0; j < views.length; j++) values[j] = rastrigin(views[j]);
    const t2 = process.hrtime.bigint();
    for (let j = 0; j < views.length; j++) indices[j] = pool.handOff(views[j]);
    const callNs = Number(t1 - t0) + Number(process.hrtime.bigint() - t2);
    parentPort.postMessage({ lo, indices, values, callNs });
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const tty = process.stdout.isTTY && !options.json;
  const say = (line) => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  const count = (n) => n.toLocaleString('en-US');

  const pool = new MemoryPool({ blockSize: DIMENSIONS, numBlocks: 256, grow: true, backend: options.backend });
  say(`slabpool demo: particle swarm on Rastrigin, ${DIMENSIONS} dimensions, ${PARTICLES} particles, ${options.iterations} iterations`);
  say(`backend: ${pool.backend} (${options.backend === 'auto' ? backendInfo().reason : `asked for ${options.backend}`})`);

  const status = (it, best, of = pool) => {
    const s = of.stats();
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

  // Each variant is warmed up just before it is measured, so that none pays for the JIT
  // (V8 recompiles optimise() when the buffer functions change).
  const warmup = Math.min(500, options.iterations);
  const pooledOptimise = makeOptimiser().optimise;
  const plainOptimise = makeOptimiser().optimise;
  const warm = (optimise, buffers) => optimise({ iterations: warmup, every: Infinity, onProgress: () => {}, ...buffers });
  say(`(each variant first runs ${warmup} unmeasured iterations to warm up the JIT)`);
  warm(pooledOptimise, pooledBuffers);

  const before = pool.stats();
  const { figures: pooled, movedAgain } = await measure('slabpool', () => pooledOptimise({ iterations: options.iterations, every, onProgress: status, ...pooledBuffers }));
  if (tty) process.stdout.write('\n');
  const stats = pool.stats();
  pool.check();
  say(
    `pool after the run: ${stats.acquires - before.acquires} buffers taken and returned, peak ${stats.peakInUseBlocks} in use, ` +
      `${stats.inUseBlocks} now, capacity ${stats.capacityBlocks} (${stats.grows} grows)`,
  );
  say('now the same seeded run with new Float64Array ...');
  warm(plainOptimise, plainBuffers);
  const { figures: plain } = await measure('new Float64Array', () => plainOptimise({ iterations: options.iterations, every: Infinity, onProgress: () => {}, ...plainBuffers }));

  let across = null;
  if (options.workers > 0) {
    const label = `SharedPool, ${options.workers} ${options.workers === 1 ? 'worker' : 'workers'}`;
    say(`now the same seeded run with its buffers from one SharedPool and the particles evaluated in ${options.workers} worker ${options.workers === 1 ? 'thread' : 'threads'} ...`);
    across = await runAcross({ workers: options.workers, iterations: options.iterations, warmup, every, label, status });
    if (tty) process.stdout.write('\n');
    // What the run implies: every particle evaluated at the start and in every iteration, plus
    // the moves made again after the swarm's best moved (counted by the single-thread run too);
    // each evaluation is two hand-offs, to a worker and back.
    const evaluations = PARTICLES * (options.iterations + 1) + movedAgain;
    if (across.movedAgain !== movedAgain || across.evaluations !== evaluations || across.handOffs !== 2 * evaluations || across.claims !== across.handOffs) {
      throw new Error(`the hand-offs do not add up: ${JSON.stringify({ ...across, expectedEvaluations: evaluations })}`);
    }
  }

  const same = Object.is(pooled.best, plain.best) && (across === null || Object.is(across.figures.best, pooled.best));
  const summary = {
    iterations: options.iterations,
    dimensions: DIMENSIONS,
    particles: PARTICLES,
    backend: pool.backend,
    buffersTaken: stats.acquires - before.acquires,
    movedAgain,
    slabpool: pooled,
    newFloat64Array: plain,
    ...(across === null ? {} : { workers: { threads: options.workers, ...across.figures, ...across.handOff } }),
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
    const runs = [pooled, plain, ...(across === null ? [] : [across.figures])];
    const rows = [
      ['', ...runs.map((r) => r.label)],
      ['time', ...runs.map((r) => `${r.ms.toFixed(0)} ms`)],
      ['GC events', ...runs.map((r) => String(r.gcEvents))],
      ['RSS growth', ...runs.map((r) => mb(r.rssGrowthBytes))],
      ['best value', ...runs.map((r) => r.best.toPrecision(17))],
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    say('');
    for (const row of rows) say(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '));
    if (across !== null) {
      const h = across.handOff;
      say('');
      say(
        `hand-offs: ${count(h.handOffs)}, each position to a worker and back for ${count(h.evaluations)} evaluations ` +
          `(${PARTICLES} particles x ${count(options.iterations + 1)}, the start included, and ${count(h.movedAgain)} moved again after the swarm's best moved)`,
      );
      say(
        `hand-off time: ${h.handOffMs.toFixed(1)} ms in handOff() and blockAt() over all threads, ${h.perHandOffUs.toFixed(3)} us per hand-off; ` +
          `the main thread waited ${h.waitMs.toFixed(0)} ms for ${count(h.batches)} batches to come back (${h.perBatchUs.toFixed(1)} us each)`,
      );
    }
    say('');
    const verdict = `slabpool was ${summary.speedup.toFixed(2)}x as fast as new Float64Array`;
    say(same ? `identical best value${across === null ? '' : ' in all three runs'}; ${verdict}` : 'the best values differ: this is a bug, please report it');
  }
  if (scrape !== null) (options.json ? process.stderr : process.stdout).write(`${options.json ? '' : '\n'}${scrape}`);
  if (!same) process.exitCode = 1;
}

/**
 * --workers: the same seeded swarm with every buffer from one SharedPool (taken and given back in
 * the main thread) and the particles evaluated in `workers` worker threads; warmed up, measured,
 * then the workers close their attachments and exit, the pool is checked (nothing left in use)
 * and closed, also when something failed.
 */
async function runAcross({ workers: n, iterations, warmup, every, label, status }) {
  // Blocks in use at most: 3 per particle, the swarm's best, and 4 per particle during an
  // iteration (random vectors, new velocity and position), a few more while bests are copied.
  const shared = new SharedPool({ blockSize: DIMENSIONS, numBlocks: 512, backend: 'js', maxThreads: n + 1 });
  const workers = startWorkers(n, shared.handle);
  try {
    const totals = { evaluations: 0, batches: 0, callNs: 0, waitNs: 0 };
    const take = () => {
      const block = shared.getBlock();
      if (block === null) throw new Error(`the shared pool ran out of blocks: ${JSON.stringify(shared.stats())}`);
      return block;
    };
    const buffers = { take, give: (b) => shared.returnBlock(b), evaluate: makeEvaluate(shared, workers, totals) };
    const optimiseAcross = makeOptimiser().optimiseAcross;
    await optimiseAcross({ iterations: warmup, every: Infinity, onProgress: () => {}, ...buffers });
    Object.assign(totals, { evaluations: 0, batches: 0, callNs: 0, waitNs: 0 });
    const before = shared.stats();
    const { figures, movedAgain } = await measure(label, () => optimiseAcross({ iterations, every, onProgress: (it, best) => status(it, best, shared), ...buffers }));
    const after = shared.stats();
    await Promise.all(workers.map((w) => w.close()));
    shared.check();
    if (after.inUseBlocks !== 0 || after.inTransitBlocks !== 0) throw new Error(`blocks left in use after the run: ${JSON.stringify(after)}`);
    const handOffs = after.handOffs - before.handOffs;
    return {
      figures,
      movedAgain,
      evaluations: totals.evaluations,
      handOffs,
      claims: after.claims - before.claims,
      handOff: {
        handOffs,
        evaluations: totals.evaluations,
        movedAgain,
        handOffMs: totals.callNs / 1e6,
        perHandOffUs: totals.callNs / 1e3 / handOffs,
        batches: totals.batches,
        waitMs: totals.waitNs / 1e6,
        perBatchUs: totals.waitNs / 1e3 / totals.batches,
      },
    };
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
    shared.close();
  }
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err.message);
    process.exitCode = 1;
  });
} else {
  evaluateInWorker();
}
