'use strict';
// npm run prebuild [-- <target>...]: every N-API prebuild this machine can build (the targets are
// in scripts/prebuild-targets.js), stripped, into prebuilds/<platform>-<arch>/slabpool.node
// (prebuildify 6), built against the headers installed beside this node so that no headers are
// downloaded. What a target needs from Debian is installed when missing (as root), and a
// cross-built target's Node comes from the npm registry. Each prebuild is then checked in the Node
// it is for: it loads there and was built from native/ as it is, and it needs no symbol version
// newer than that Node's own binary does (GLIBC, GLIBCXX, CXXABI). win32-x64 is cross-compiled
// with mingw-w64 by scripts/prebuild-win32.js, which checks its imports and embedded source hash
// (.ci/win32 loads it in the official node.exe under wine). Running it again rebuilds the same
// prebuilds.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { sourceHash, builtHash, localNodeDir } = require('./source-hash.js');
const { neededVersions, newerThan, formatNeeds } = require('./symbol-versions.js');
const { TARGETS } = require('./prebuild-targets.js');

const root = path.resolve(__dirname, '..');
const host = `${process.platform}-${process.arch}`;
const asked = process.argv.slice(2);
for (const name of asked) {
  if (!TARGETS.some((t) => t.name === name)) fail(`unknown target ${name}; the targets are ${TARGETS.map((t) => t.name).join(', ')}`);
}

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

/** Installs the Debian packages of `names` that are not installed yet. */
function aptInstall(names) {
  const missing = names.filter((name) => {
    const q = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return q.status !== 0 || !q.stdout.includes('install ok installed');
  });
  if (missing.length === 0) return;
  console.log(`prebuild: installing ${missing.join(' ')} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for another apt run instead of failing on its lock.
  const apt = (args) => spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { env, stdio: 'inherit' }).status === 0;
  if (!apt(['install', '-y', '-qq', ...missing]) && !(apt(['update', '-qq']) && apt(['install', '-y', '-qq', ...missing]))) {
    fail(`could not install ${missing.join(' ')} (apt-get needs root)`);
  }
}

// The host's own target last, so that build/ (which prebuildify builds in) ends up with a build
// for this machine.
const targets = TARGETS.filter((t) => asked.length === 0 || asked.includes(t.name)).sort((a, b) => (a.name === host) - (b.name === host));
const expected = sourceHash();
const env = { ...process.env };
env.npm_config_nodedir ??= localNodeDir() ?? undefined;
const prebuildify = require.resolve('prebuildify/bin.js');
let built = 0;

for (const target of targets) {
  const why = target.unbuildable();
  if (why) {
    if (asked.includes(target.name)) fail(`${target.name} cannot be built here: ${why}`);
    console.log(`prebuild: skipping ${target.name} (${why})`);
    continue;
  }
  console.log(`prebuild: ${target.name}`);
  aptInstall(target.apt);
  if (target.build) {
    // A target with a build of its own (win32-x64: mingw-w64, scripts/prebuild-win32.js), which
    // checks its own result (its imports, the source hash it embeds).
    try {
      target.build({ root, nodeVersion: process.versions.node });
    } catch (err) {
      fail(`building ${target.name} failed: ${err.message}`);
    }
    built++;
    continue;
  }
  const build = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--target', process.versions.node, ...target.prebuildify], {
    cwd: root,
    env: { ...env, ...target.env },
    stdio: 'inherit',
  });
  if (build.status !== 0) fail(`building ${target.name} failed`);
  // Warnings are errors on every target: read back the flags node-gyp's make files compiled with.
  const mk = path.join(root, 'build', 'slabpool.target.mk');
  if (fs.existsSync(mk)) {
    const flags = /^CFLAGS_CC_Release := ((?:.*\\\n)*.*)$/m.exec(fs.readFileSync(mk, 'utf8'))?.[1] ?? '';
    const lacking = ['-Wall', '-Wextra', '-Werror'].filter((f) => !flags.split(/[\s\\]+/).includes(f));
    if (lacking.length > 0) fail(`${target.name} was compiled without ${lacking.join(' ')}`);
  }

  const file = path.join(root, 'prebuilds', target.name, 'slabpool.node');
  const { node, command } = target.runner();
  const loaded = builtHash(file, command);
  if (loaded !== expected) fail(`${file} does not load as the current sources (${expected}) in ${command.join(' ')}: ${loaded ?? 'it does not load'}`);
  const needs = neededVersions(file);
  const floor = neededVersions(node);
  const newer = newerThan(needs, floor, `the Node binary it is for (${node})`);
  if (newer.length > 0) fail(`${file} needs more than Node does: ${newer.join('; ')}`);
  console.log(`prebuilt ${path.relative(root, file)} (${fs.statSync(file).size} bytes, sources ${expected}); needs ${formatNeeds(needs)}, Node needs ${formatNeeds(floor)}`);
  built++;
}
if (built === 0) fail('no target can be built on this machine');
