'use strict';
// npm run fuzz:native: libFuzzer on the allocator core alone (native/ less binding.cc, driven by
// test/native/slab_fuzz.cc) with AddressSanitizer and UBSan, for SLABPOOL_FUZZ_SECONDS (default
// 60). Needs clang with its libFuzzer runtime; as root on Debian it installs them (clang,
// libclang-rt-14-dev) if missing.
// The corpus lives in build-asan/fuzz-corpus and grows from run to run; a finding is written to
// build-asan/ and fails the run.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-asan');
const seconds = Number(process.env.SLABPOOL_FUZZ_SECONDS) || 60;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function compile() {
  return spawnSync('clang++', [
    '-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror',
    '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined',
    'native/os_posix.cc', 'native/run_index.cc', 'native/slab.cc', 'test/native/slab_fuzz.cc', '-o', path.join(out, 'slab_fuzz'),
  ], { cwd: root, encoding: 'utf8' });
}

fs.mkdirSync(path.join(out, 'fuzz-corpus'), { recursive: true });
let build = has('clang++') ? compile() : null;
if (!build || build.status !== 0) {
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    console.error(`fuzz:native needs clang++ with libFuzzer (Debian: clang libclang-rt-14-dev)\n${build?.stderr ?? ''}`);
    process.exit(1);
  }
  console.log('installing clang and its libFuzzer runtime from Debian');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const apt = spawnSync('apt-get', ['install', '-y', '-qq', 'clang', 'libclang-rt-14-dev'], { stdio: 'inherit', env });
  if (apt.status !== 0) process.exit(1);
  build = compile();
  if (build.status !== 0) {
    console.error(build.stderr);
    process.exit(1);
  }
}

const run = spawnSync(
  path.join(out, 'slab_fuzz'),
  [`-max_total_time=${seconds}`, '-max_len=4096', '-print_final_stats=1', `-artifact_prefix=${out}/`, path.join(out, 'fuzz-corpus')],
  { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 },
);
const log = `${run.stdout}${run.stderr}`;
const done = /Done (\d+) runs in (\d+) second/.exec(log);
if (run.status !== 0 || !done) {
  console.error(log.split('\n').slice(-40).join('\n'));
  console.error('fuzz:native: a finding (see above and build-asan/crash-*)');
  process.exit(1);
}
const corpus = fs.readdirSync(path.join(out, 'fuzz-corpus')).length;
console.log(`fuzz:native: ${done[1]} inputs in ${done[2]} s, no finding (corpus ${corpus} inputs)`);
