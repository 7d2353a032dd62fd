'use strict';
// Memory and thread checks of the native code, beyond npm test:
//   node scripts/check-native.js asan      (npm run test:asan)
//     1. the C++ unit tests of the allocator core (native/ less binding.cc), of its run index, of
//        the OS layer's page treatments and of the shared region registry, built with
//        AddressSanitizer and UBSan;
//     2. the addon built with both into build-asan/, then the vitest suites on it (the ASAN
//        runtime preloaded into node, which is not itself instrumented).
//   node scripts/check-native.js valgrind  (npm run test:valgrind)
//     the C++ unit tests under valgrind memcheck.
//   node scripts/check-native.js tsan      (npm run test:tsan)
//     ThreadSanitizer (clang++; Debian: clang) on the code threads share: the shared region
//     registry's unit and stress test. Then a control: the same test on a copy of the registry
//     whose acquire() takes no lock must be reported, or the stage could not fail.
// Each fails on any report: a sanitizer finding, a memcheck error or a leak.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { sourceHash, localNodeDir } = require('./source-hash.js');

const root = path.resolve(__dirname, '..');
// The OS layer binding.gyp picks for this platform, and the allocator core without N-API.
const OS_LAYER = process.platform === 'win32' ? 'native/os_windows.cc' : 'native/os_posix.cc';
const CORE = [OS_LAYER, 'native/run_index.cc', 'native/slab.cc', 'native/shared_region.cc'];
const SHARED_REGION_TEST = [OS_LAYER, 'native/shared_region.cc', 'test/native/shared_region_test.cc'];
// Each unit test: its sources beside the core's, and the arguments it runs with (seeds).
const UNIT_TESTS = [
  { name: 'slab_test', sources: [...CORE, 'test/native/slab_test.cc'], asanArgs: ['40'], valgrindArgs: ['8'] },
  { name: 'run_index_test', sources: [OS_LAYER, 'native/run_index.cc', 'test/native/run_index_test.cc'], asanArgs: [], valgrindArgs: [] },
  { name: 'os_test', sources: [...CORE, 'test/native/os_test.cc'], asanArgs: [], valgrindArgs: [] },
  // seeds, operations per thread (4 threads), race rounds: valgrind runs one thread at a time.
  { name: 'shared_region_test', sources: SHARED_REGION_TEST, asanArgs: ['4', '20000', '500'], valgrindArgs: ['2', '2000', '100'] },
];
const cxx = process.env.CXX || 'g++';
const mode = process.argv[2];

function run(cmd, args, options = {}) {
  console.log(`$ ${[cmd, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  return { status: result.status, output };
}

function fail(message, output = '') {
  console.error(`${output.split('\n').slice(-60).join('\n')}\ncheck-native: ${message}`);
  process.exit(1);
}

const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer', '-g', '-O1'];
const REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

function unitTest(test, flags, out) {
  const exe = path.join(root, 'build-asan', out);
  fs.mkdirSync(path.dirname(exe), { recursive: true });
  const build = run(cxx, ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-pthread', ...flags, ...test.sources, '-o', exe]);
  if (build.status !== 0) fail(`could not build the C++ unit test ${test.name}`, build.output);
  return exe;
}

function asan() {
  for (const test of UNIT_TESTS) {
    const exe = unitTest(test, SANITIZE, `${test.name}_asan`);
    const unit = run(exe, test.asanArgs, { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' } });
    if (unit.status !== 0 || REPORT.test(unit.output)) fail(`the C++ unit test ${test.name} failed under ASAN+UBSan`, unit.output);
    console.log(`${test.name}: ${unit.output.trim().split('\n').at(-1)}`);
  }

  const addon = path.join(root, 'build-asan', 'slabpool.node');
  const include = require('node-addon-api').include_dir;
  const headers = path.join(localNodeDir() ?? fail('no Node headers beside this node'), 'include', 'node');
  const build = run(cxx, [
    '-std=c++17', '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror', ...SANITIZE,
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED', `-DSLABPOOL_SOURCE_HASH="${sourceHash()}"`,
    `-I${headers}`, `-I${include}`, ...CORE, 'native/shared_binding.cc', 'native/binding.cc', '-o', addon,
  ]);
  if (build.status !== 0) fail('could not build the instrumented addon', build.output);

  const runtime = run(cxx, ['-print-file-name=libasan.so']).output.trim();
  const env = {
    ...process.env,
    LD_PRELOAD: runtime,
    // Node itself is not instrumented and keeps memory until exit: leaks are checked on the unit
    // test above, memory errors here.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:allocator_may_return_null=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
    SLABPOOL_NATIVE_PATH: addon,
    SLABPOOL_SANITIZE: '1',
    SLABPOOL_REQUIRE_NATIVE: '1',
  };
  // Packaging tests install tarballs and check where the addon came from; they test no memory.
  const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const suite = run(process.execPath, [vitest, 'run', '--exclude', 'test/package.test.ts', '--exclude', 'test/prebuild.test.ts', '--exclude', 'test/native-core.test.ts', '--exclude', 'test/bench-demo.test.ts', '--exclude', 'test/override.test.ts'], { env });
  process.stdout.write(suite.output.split('\n').filter((l) => /Tests |Test Files|FAIL|✗|×/.test(l)).join('\n') + '\n');
  if (suite.status !== 0 || REPORT.test(suite.output)) fail('the test suite failed, or a sanitizer reported, on the instrumented addon', suite.output);
  console.log('check-native asan: 0 sanitizer reports');
}

function valgrind() {
  for (const test of UNIT_TESTS) {
    const exe = unitTest(test, ['-g', '-O1'], `${test.name}_plain`);
    const memcheck = run('valgrind', ['--tool=memcheck', '--error-exitcode=99', '--leak-check=full', '--show-leak-kinds=all', '--errors-for-leak-kinds=all', exe, ...test.valgrindArgs]);
    const summary = /ERROR SUMMARY: (\d+) errors/.exec(memcheck.output);
    const leaks = /All heap blocks were freed -- no leaks are possible/.test(memcheck.output);
    if (memcheck.status !== 0 || !summary || summary[1] !== '0' || !leaks) fail(`valgrind memcheck reported errors or leaks in ${test.name}`, memcheck.output);
    console.log(`${test.name}:\n${memcheck.output.split('\n').filter((l) => /passed|ERROR SUMMARY|All heap blocks/.test(l)).join('\n')}`);
  }
  console.log('check-native valgrind: 0 errors, 0 leaks');
}

// TSAN with libstdc++ uninstrumented: std::mutex and std::thread reach pthreads, which it
// intercepts. halt_on_error: the first report ends the run with exitcode 66.
const TSAN_ENV = { ...process.env, TSAN_OPTIONS: 'halt_on_error=1:exitcode=66:second_deadlock_stack=1' };
const TSAN_REPORT = /WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|SUMMARY: ThreadSanitizer/;
// The control's planted bug: acquire() reads the region list without the registry's mutex.
const UNLOCKED_ACQUIRE = {
  find: '  std::lock_guard<std::mutex> lock(mutex);\n  Region* r = token == 0 ? nullptr : find(token);',
  replace: '  Region* r = token == 0 ? nullptr : find(token);',
};

function tsan() {
  if (spawnSync('sh', ['-c', 'command -v clang++'], { stdio: 'ignore' }).status !== 0) fail('the tsan check needs clang++ (Debian: apt-get install clang)');
  const out = path.join(root, 'build-asan');
  fs.mkdirSync(out, { recursive: true });
  const build = (sources, exe) => {
    const b = run('clang++', ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-fsanitize=thread', '-fno-omit-frame-pointer', '-g', '-O1', '-I', path.join(root, 'native'), ...sources, '-o', exe]);
    if (b.status !== 0) fail('could not build shared_region_test with ThreadSanitizer', b.output);
  };
  const started = Date.now();
  const exe = path.join(out, 'shared_region_test_tsan');
  build(SHARED_REGION_TEST, exe);
  const test = run(exe, ['4', '20000', '500'], { env: TSAN_ENV, timeout: 300_000 });
  if (test.status !== 0 || TSAN_REPORT.test(test.output)) fail('shared_region_test failed, or ThreadSanitizer reported', test.output);
  console.log(`shared_region_test: ${test.output.trim().split('\n').at(-1)}, no ThreadSanitizer report (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  const source = fs.readFileSync(path.join(root, 'native', 'shared_region.cc'), 'utf8');
  if (source.split(UNLOCKED_ACQUIRE.find).length !== 2) fail("the control's planted bug no longer matches native/shared_region.cc: update UNLOCKED_ACQUIRE");
  const mutant = path.join(out, 'shared_region_unlocked.cc');
  fs.writeFileSync(mutant, source.replace(UNLOCKED_ACQUIRE.find, UNLOCKED_ACQUIRE.replace));
  const control = path.join(out, 'shared_region_test_tsan_control');
  build([OS_LAYER, mutant, 'test/native/shared_region_test.cc'], control);
  const caught = run(control, ['4', '20000', '500'], { env: TSAN_ENV, timeout: 300_000 });
  if (!/WARNING: ThreadSanitizer: (data race|heap-use-after-free)/.test(caught.output)) fail('ThreadSanitizer did not report the control (acquire() without the lock)', caught.output);
  console.log(`control (acquire() without the lock): ${/SUMMARY: ThreadSanitizer: [^\n]*/.exec(caught.output)?.[0] ?? 'reported'}`);
  console.log(`check-native tsan: 0 reports, the control caught (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

if (mode === 'asan') asan();
else if (mode === 'valgrind') valgrind();
else if (mode === 'tsan') tsan();
else fail('usage: node scripts/check-native.js asan|valgrind|tsan');
