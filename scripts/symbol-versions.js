'use strict';
// The symbol versions an ELF file needs from glibc (GLIBC), libstdc++ (GLIBCXX) and its C++ ABI
// (CXXABI), read with readelf (binutils) from its version-needs section. The newest version of each
// family is the oldest system the file loads on, so a prebuild loads wherever the Node that runs it
// does when, family by family, it needs nothing newer than that Node's own binary.
const { execFileSync } = require('node:child_process');

const FAMILIES = ['GLIBC', 'GLIBCXX', 'CXXABI'];

/** Compares dotted versions numerically: '3.4.9' < '3.4.21'. */
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * The newest needed version per family, from `readelf -V --wide` output: { GLIBC: '2.14', ... };
 * a family the file needs nothing from is absent. Only the version-needs section counts (a file's
 * own version definitions are not needs).
 */
function parseNeeds(readelfText) {
  const newest = {};
  let inNeeds = false;
  for (const line of readelfText.split('\n')) {
    if (/^Version \w+ section/.test(line)) inNeeds = line.startsWith('Version needs section');
    if (!inNeeds) continue;
    const m = /Name: ([A-Z]+)_([0-9][0-9.]*)\b/.exec(line);
    if (!m || !FAMILIES.includes(m[1])) continue;
    if (newest[m[1]] === undefined || compareVersions(m[2], newest[m[1]]) > 0) newest[m[1]] = m[2];
  }
  return newest;
}

/** The newest needed version per family of an ELF file (any architecture: readelf reads them all). */
function neededVersions(file) {
  return parseNeeds(execFileSync('readelf', ['-V', '--wide', file], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

/**
 * What `needs` asks for beyond `floor` (both from neededVersions), one sentence per family:
 * a newer version, or a family the floor does not need at all. Empty when `needs` is covered.
 */
function newerThan(needs, floor, floorName = 'node') {
  const out = [];
  for (const family of FAMILIES) {
    const v = needs[family];
    if (v === undefined) continue;
    if (floor[family] === undefined) out.push(`${family}_${v}, and ${floorName} needs nothing from ${family}`);
    else if (compareVersions(v, floor[family]) > 0) out.push(`${family}_${v}, newer than ${floorName}'s ${family}_${floor[family]}`);
  }
  return out;
}

/** 'GLIBC_2.14 GLIBCXX_3.4.21 CXXABI_1.3.9' */
function formatNeeds(needs) {
  return FAMILIES.filter((f) => needs[f] !== undefined).map((f) => `${f}_${needs[f]}`).join(' ');
}

module.exports = { FAMILIES, compareVersions, parseNeeds, neededVersions, newerThan, formatNeeds };

if (require.main === module) {
  for (const file of process.argv.slice(2)) console.log(`${file}: ${formatNeeds(neededVersions(file))}`);
}
