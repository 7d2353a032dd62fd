'use strict';
// The hash of the native sources an addon is built from. binding.gyp compiles it into the addon
// (sourceHash), so a build or prebuild made from other sources can be told apart.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function nativeSources(base = root) {
  const dir = path.join(base, 'native');
  const files = fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f)).sort().map((f) => path.join('native', f));
  return [...files, 'binding.gyp'];
}

function sourceHash(base = root) {
  const hash = crypto.createHash('sha256');
  for (const file of nativeSources(base)) {
    hash.update(file + '\0');
    hash.update(fs.readFileSync(path.join(base, file), 'utf8').replace(/\r\n/g, '\n'));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

module.exports = { sourceHash, nativeSources };

if (require.main === module) process.stdout.write(sourceHash());
