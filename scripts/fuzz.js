'use strict';
// npm run fuzz: the fast-check model-based fuzzer (test/fuzz.test.ts), compat's overlap
// property (test/compat-overlap.test.ts) and the shared pool's concurrent fuzz and race
// (test/shared-fuzz.test.ts, test/shared-threads.test.ts) at full size, with a fresh seed unless
// SLABPOOL_FUZZ_SEED is set; SLABPOOL_FUZZ_RUNS sets the runs (default 4000 per backend for the
// core, over a million operations each, and 5000 for compat). A failure prints the shrunk
// command sequence with the seed and path that replay it.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run', '--project', 'slabpool', 'test/fuzz.test.ts', 'test/compat-overlap.test.ts', 'test/shared-fuzz.test.ts', 'test/shared-threads.test.ts'], {
  cwd: root,
  env: { ...process.env, SLABPOOL_FUZZ: 'full' },
  encoding: 'utf8',
  maxBuffer: 1 << 28,
});
const log = `${run.stdout}${run.stderr}`;
// eslint-disable-next-line no-control-regex
const summary = log.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => /^fuzz: /.test(l));
if (run.status !== 0) {
  console.error(log);
  process.exit(1);
}
console.log(summary.join('\n'));
