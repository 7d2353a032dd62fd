// npm run bench [-- --json] [-- --trials N] [-- --check] [-- --smoke]
// --smoke runs every case once at toy sizes: it shows that the benchmark works (npm test runs
// it), and its figures mean nothing.
// Every trial runs in a fresh process (bench/trial.mjs). Trials of all cases are interleaved
// round by round, so a noisy neighbour slows every variant alike; each figure is the median of
// its trials, and every ratio is computed from figures of this one run.
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from 'slabpool';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const check = args.includes('--check');
const smoke = args.includes('--smoke');
const trials = smoke ? 1 : Number(args[args.indexOf('--trials') + 1]) || 5;
const log = (line) => process.stderr.write(`${line}\n`);

const backends = backendInfo().backend === 'native' ? ['native', 'js'] : ['js'];
if (backends.length === 1) log(`native backend unavailable (${backendInfo().reason}); measuring js only`);

const lengths = [100, 1000, 100_000];
const sizes = smoke ? { '1e3': 1e2, '1e6': 1e4 } : { '1e3': 1e3, '1e6': 1e6 };
const cycles = smoke ? 1e4 : 1e6;
const budgetMs = smoke ? 5 : undefined;
const specs = [
  ...lengths.flatMap((blockLength) =>
    ['floor', 'newFloat64Array', 'typedarrayPool', ...backends].map((variant) => ({ case: 'acquireRelease', variant, blockLength, budgetMs })),
  ),
  ...['same', 'random'].flatMap((pattern) => ['typedarrayPool', ...backends].map((variant) => ({ case: 'typedarrayPoolApi', variant, pattern, budgetMs }))),
  ...backends.flatMap((backend) => [1, 8, 64].flatMap((k) => Object.values(sizes).map((n) => ({ case: 'getRun', backend, k, n, budgetMs })))),
  ...backends.flatMap((backend) => Object.values(sizes).map((n) => ({ case: 'construct', backend, n }))),
  ...[...backends, 'newFloat64Array'].map((variant) => ({ case: 'steadyState', variant, cycles })),
];

const results = new Map(specs.map((s) => [JSON.stringify(s), []]));
for (let round = 0; round < trials; round++) {
  log(`round ${round + 1} of ${trials}`);
  for (const spec of specs) {
    const key = JSON.stringify(spec);
    const env = spec.case === 'typedarrayPoolApi' && spec.variant !== 'typedarrayPool' ? { ...process.env, SLABPOOL_BACKEND: spec.variant } : process.env;
    const run = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'trial.mjs'), key], { encoding: 'utf8', env });
    if (run.status !== 0) throw new Error(`trial ${key} failed:\n${run.stderr}`);
    results.get(key).push(JSON.parse(run.stdout));
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
/** The trials of the one spec that has every field of `partial`. */
const trialsOf = (partial) => {
  const spec = specs.find((s) => Object.entries(partial).every(([k, v]) => s[k] === v));
  return results.get(JSON.stringify(spec));
};
const pick = (partial, field = 'ns') => median(trialsOf(partial).map((r) => r[field]));
const round2 = (x) => Math.round(x * 100) / 100;

const acquireByLength = Object.fromEntries(
  lengths.map((blockLength) => [
    blockLength,
    Object.fromEntries(['floor', 'newFloat64Array', 'typedarrayPool', ...backends].map((variant) => [variant, round2(pick({ case: 'acquireRelease', variant, blockLength }))])),
  ]),
);
const compat = Object.fromEntries(
  ['same', 'random'].map((pattern) => [
    pattern,
    Object.fromEntries(['typedarrayPool', ...backends].map((variant) => [variant, round2(pick({ case: 'typedarrayPoolApi', variant, pattern }))])),
  ]),
);
const getRun = Object.fromEntries(
  backends.map((backend) => [
    backend,
    Object.fromEntries(
      [1, 8, 64].map((k) => [`k${k}`, Object.fromEntries(Object.entries(sizes).map(([label, n]) => [label, round2(pick({ case: 'getRun', backend, k, n }))]))]),
    ),
  ]),
);
const getRunFound = Object.fromEntries(
  backends.map((backend) => [
    backend,
    Object.fromEntries([1, 8, 64].map((k) => [`k${k}`, Object.fromEntries(Object.entries(sizes).map(([label, n]) => [label, pick({ case: 'getRun', backend, k, n }, 'found')]))])),
  ]),
);
const construct = Object.fromEntries(
  backends.map((backend) => [backend, Object.fromEntries(Object.entries(sizes).map(([label, n]) => [label, Math.round(pick({ case: 'construct', backend, n }))]))]),
);
const steadyState = Object.fromEntries(
  [...backends, 'newFloat64Array'].map((variant) => {
    const spec = { case: 'steadyState', variant };
    const all = trialsOf(spec);
    return [
      variant,
      {
        cycles,
        gcEvents: pick(spec, 'gcEvents'),
        maxGcEvents: Math.max(...all.map((r) => r.gcEvents)),
        rssGrowthBytes: pick(spec, 'rssGrowthBytes'),
        maxRssGrowthBytes: Math.max(...all.map((r) => r.rssGrowthBytes)),
        ns: round2(pick(spec)),
      },
    ];
  }),
);

const a = acquireByLength[100];
const targets = [];
const target = (name, value, limit, met) => targets.push({ name, value: round2(value), limit, met });
for (const b of backends) {
  target(`${b}: getBlock+returnBlock / floor`, a[b] / a.floor, '<= 1.5', a[b] / a.floor <= 1.5);
  target(`${b}: new Float64Array(100) / getBlock+returnBlock`, a.newFloat64Array / a[b], '>= 50', a.newFloat64Array / a[b] >= 50);
  target(`${b}: typedarray-pool / getBlock+returnBlock`, a.typedarrayPool / a[b], '>= 3', a.typedarrayPool / a[b] >= 3);
  target(`${b}: GC events in 1e6 steady cycles (worst trial)`, steadyState[b].maxGcEvents, '= 0', steadyState[b].maxGcEvents === 0);
  target(`${b}: RSS growth in 1e6 steady cycles, bytes (worst trial)`, steadyState[b].maxRssGrowthBytes, '< 1048576', steadyState[b].maxRssGrowthBytes < 2 ** 20);
  target(`${b}: compat, same size: typedarray-pool / compat`, compat.same.typedarrayPool / compat.same[b], '>= 2', compat.same.typedarrayPool / compat.same[b] >= 2);
  target(`${b}: compat, random sizes: compat / typedarray-pool`, compat.random[b] / compat.random.typedarrayPool, '<= 1.2', compat.random[b] / compat.random.typedarrayPool <= 1.2);
  target(`${b}: construct 1e6 / 1e3 blocks`, construct[b]['1e6'] / construct[b]['1e3'], '<= 2', construct[b]['1e6'] / construct[b]['1e3'] <= 2);
  for (const k of [1, 8, 64]) {
    const g = getRun[b][`k${k}`];
    target(`${b}: getRun(${k}) on 1e6 / 1e3 blocks`, g['1e6'] / g['1e3'], '<= 2', g['1e6'] / g['1e3'] <= 2);
  }
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  v8: process.versions.v8,
  platform: `${process.platform}-${process.arch}`,
};

const report = {
  blockLength: 100,
  acquireRelease: a,
  acquireReleaseByLength: acquireByLength,
  compat,
  steadyState,
  construct,
  getRun,
  getRunFound,
  targets,
  machine,
  trials,
  smoke,
};

if (json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const out = [];
  const table = (title, head, rows) => {
    out.push('', `### ${title}`, '', `| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`));
  };
  const variants = ['floor', 'newFloat64Array', 'typedarrayPool', ...backends];
  const names = { floor: 'array pop/push (floor)', newFloat64Array: 'new Float64Array(n)', typedarrayPool: 'typedarray-pool 1.2', native: 'slabpool native', js: 'slabpool js' };
  table('Take and give back one block (ns per pair, median)', ['', ...lengths.map((l) => `${l} doubles`), 'vs floor (100)'], variants.map((v) => [names[v], ...lengths.map((l) => acquireByLength[l][v]), `${round2(a[v] / a.floor)}x`]));
  table(
    'typedarray-pool API: mallocDouble + freeDouble (ns per pair, median)',
    ['', 'same size (1024 doubles)', 'random sizes (1 to 4096 doubles)'],
    ['typedarrayPool', ...backends].map((v) => [v === 'typedarrayPool' ? names[v] : `slabpool/compat ${v}`, compat.same[v], compat.random[v]]),
  );
  table('getRun(k) + returnBlock at 50 % random occupancy (ns per pair, median; share of calls that found a run)', ['', ...backends.flatMap((b) => Object.keys(sizes).map((s) => `${b} ${s}`))], [1, 8, 64].map((k) => [`k = ${k}`, ...backends.flatMap((b) => Object.keys(sizes).map((s) => `${getRun[b][`k${k}`][s]} (${Math.round(getRunFound[b][`k${k}`][s] * 100)} %)`))]));
  table('Pool construction (ns, median)', ['', ...Object.keys(sizes).map((s) => `${s} blocks`)], backends.map((b) => [b, ...Object.keys(sizes).map((s) => construct[b][s])]));
  table('Steady state: 1e6 take/give-back cycles (median; worst trial)', ['', 'ns per cycle', 'GC events', 'RSS growth'], [...backends, 'newFloat64Array'].map((v) => [names[v] ?? v, steadyState[v].ns, `${steadyState[v].gcEvents} (${steadyState[v].maxGcEvents})`, `${(steadyState[v].rssGrowthBytes / 1024).toFixed(0)} KiB (${(steadyState[v].maxRssGrowthBytes / 1024).toFixed(0)} KiB)`]));
  table('Targets', ['', 'measured', 'target', ''], targets.map((t) => [t.name, t.value, t.limit, t.met ? 'met' : '**missed**']));
  out.push('', `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node} (V8 ${machine.v8}), ${machine.platform}; ${trials} trials per figure, each in a fresh process.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
if (check && targets.some((t) => !t.met)) process.exitCode = 1;
