'use strict';
// Builds the native addon with node-gyp when build/Release has none built from the current
// native/ sources.
//   node scripts/build-native.js            for npm test: a failed build fails
//   node scripts/build-native.js --install  for npm install: first use an addon that loads
//       (a fresh build or a matching prebuild), else try to build; if that fails too, warn and
//       succeed, and slabpool runs on its JavaScript fallback. SLABPOOL_BUILD_FROM_SOURCE=1 (or
//       npm_config_build_from_source=true)
//       forces the build.
//   SLABPOOL_REQUIRE_NATIVE=0 (npm test on a machine without a compiler): a failed build warns
//       and succeeds, so that the tests run on what does load (a prebuild, else the fallback).
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { sourceHash, builtHash, localNodeDir } = require('./source-hash.js');

const root = path.resolve(__dirname, '..');
const install = process.argv.includes('--install');
const expected = sourceHash();

/** True when `file` loads and was built from the current sources. */
const loads = (file) => builtHash(file) === expected;

function nodeGyp() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    // A consumer's install: npm hands its own node-gyp to lifecycle scripts.
    const bundled = process.env.npm_config_node_gyp;
    return bundled ? [process.execPath, bundled] : ['node-gyp'];
  }
}

function build() {
  const args = [...nodeGyp(), 'rebuild'];
  // Use the headers installed beside this node when there are any, so nothing is downloaded.
  const nodedir = localNodeDir();
  if (!process.env.npm_config_nodedir && nodedir) args.push(`--nodedir=${nodedir}`);
  const result = spawnSync(args[0], args.slice(1), { cwd: root, stdio: install ? 'pipe' : 'inherit', encoding: 'utf8' });
  if (result.status === 0 && loads(path.join(root, 'build', 'Release', 'slabpool.node'))) return true;
  if (install) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n').slice(-15).join('\n') + '\n');
  return false;
}

// SLABPOOL_BUILD_FROM_SOURCE=1 is ours; npm_config_build_from_source (npm install
// --build-from-source, the convention of prebuild-install and node-pre-gyp) is what npm 11 still
// hands to install scripts, with a warning that a later npm may not.
// Any other value of ours is refused loudly: a typo must not silently skip the build asked for.
const fromSource = process.env.SLABPOOL_BUILD_FROM_SOURCE;
if (fromSource !== undefined && !['', '0', 'false', '1', 'true'].includes(fromSource)) {
  console.error(`slabpool: Expected '1', 'true', '0', 'false' or unset for the SLABPOOL_BUILD_FROM_SOURCE environment variable but received '${fromSource}'`);
  process.exit(1);
}
const forced = fromSource === '1' || fromSource === 'true' || process.env.npm_config_build_from_source === 'true';
const built = path.join(root, 'build', 'Release', 'slabpool.node');
// The Linux prebuilds are glibc builds: on musl (no glibc version in the process report) the
// loader does not try them, so the install must not count on one either, and builds.
const musl = process.platform === 'linux' && !process.report?.getReport().header.glibcVersionRuntime;
const prebuilt = musl ? null : path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'slabpool.node');

if (!forced && loads(built)) {
  if (!install) console.log(`slabpool: native addon up to date (${expected})`);
} else if (install && !forced && prebuilt && loads(prebuilt)) {
  // The prebuild matches these sources: nothing to build.
} else if (build()) {
  console.log(`slabpool: built the native addon (${expected})`);
} else if (install && prebuilt && loads(prebuilt)) {
  // A forced build failed, but the prebuild for this platform loads: that is what will run.
  const rel = path.relative(root, prebuilt);
  console.warn(`slabpool: could not build the native addon from source; the prebuild ${rel} loads and will be used (see backendInfo()).`);
} else if (install) {
  console.warn('slabpool: could not build the native addon, and no prebuild loads here; the JavaScript fallback will be used (see backendInfo()).');
} else if (process.env.SLABPOOL_REQUIRE_NATIVE === '0') {
  console.warn('slabpool: building the native addon failed; SLABPOOL_REQUIRE_NATIVE=0, so the tests run on what loads (a matching prebuild, else the JavaScript fallback alone)');
} else {
  console.error('slabpool: building the native addon failed');
  process.exit(1);
}
