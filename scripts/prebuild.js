'use strict';
// npm run prebuild: the N-API prebuild for this platform, stripped, into
// prebuilds/<platform>-<arch>/slabpool.node (prebuildify 6), built against the headers installed
// beside this node so that nothing is downloaded; then checks it was built from native/ as it is.
// On Linux x64 it then cross-compiles prebuilds/win32-x64 (scripts/prebuild-win32.js).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { sourceHash, builtHash, localNodeDir } = require('./source-hash.js');

const root = path.resolve(__dirname, '..');
const env = { ...process.env };
env.npm_config_nodedir ??= localNodeDir() ?? undefined;
const prebuildify = require.resolve('prebuildify/bin.js');
const build = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--target', process.versions.node], {
  cwd: root,
  env,
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(build.status ?? 1);

const file = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'slabpool.node');
const expected = sourceHash();
const built = builtHash(file);
if (built !== expected) {
  console.error(`prebuild at ${file} does not load as the current sources (${expected}): ${built ?? 'it does not load'}`);
  process.exit(1);
}
console.log(`prebuilt ${path.relative(root, file)} (${fs.statSync(file).size} bytes, sources ${expected})`);

// Windows x64 is cross-compiled here with mingw-w64 (scripts/prebuild-win32.js).
if (process.platform === 'linux' && process.arch === 'x64') {
  try {
    require('./prebuild-win32.js').build({ root, nodeVersion: process.versions.node });
  } catch (err) {
    console.error(`prebuild-win32: ${err.message}`);
    process.exit(1);
  }
}
