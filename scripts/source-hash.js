'use strict';
// The hash of the native sources an addon is built from. binding.gyp compiles it into the addon
// (sourceHash), so a build or prebuild made from other sources can be told apart; builtHash()
// reads it back from a built addon. localNodeDir() finds the headers to build against.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/**
 * The files hashed, relative to `base`, as POSIX paths ('native/slab.cc') on every OS: the names
 * are part of the hash, and a prebuild made on Linux must match the sources on Windows.
 */
function nativeSources(base = root) {
  const dir = path.join(base, 'native');
  const files = fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f)).sort().map((f) => path.posix.join('native', f));
  return [...files, 'binding.gyp'];
}

function sourceHash(base = root) {
  const hash = crypto.createHash('sha256');
  for (const file of nativeSources(base)) {
    hash.update(file + '\0');
    hash.update(fs.readFileSync(path.join(base, ...file.split('/')), 'utf8').replace(/\r\n/g, '\n'));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The source hash an addon file was built from, or null when it does not load. Asked of a child
 * process: a process cannot load a .node file twice, so asking in this one would hide a rebuild.
 * `node` is the command that runs Node: this one by default, or another architecture's under
 * emulation (a prebuild for it).
 */
function builtHash(file, node = [process.execPath]) {
  file = path.resolve(file);
  if (!fs.existsSync(file)) return null;
  const probe = spawnSync(node[0], [...node.slice(1), '-p', `require(${JSON.stringify(file)}).sourceHash`], { encoding: 'utf8' });
  return probe.status === 0 ? probe.stdout.trim() : null;
}

/** The prefix holding this node's own headers (include/node), so nothing is downloaded; or null. */
function localNodeDir() {
  const prefix = path.resolve(process.execPath, '..', '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

module.exports = { sourceHash, nativeSources, builtHash, localNodeDir };

if (require.main === module) process.stdout.write(sourceHash());
