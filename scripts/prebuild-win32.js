'use strict';
// The win32-x64 prebuild, cross-compiled on Linux: prebuilds/win32-x64/slabpool.node.
//   node scripts/prebuild-win32.js     (also called by npm run prebuild on Linux x64)
// The compiler is mingw-w64's g++, posix threads variant, from Debian (installed with apt-get when
// missing and running as root). The addon takes Node-API from the process that loads it: a
// delay-import library made from the .def file in the npm package node-api-headers (installed
// into build-win32/ unless it is already in node_modules) names "node.exe", and
// scripts/win32/delay-load-hook.cc binds that name to the running executable, as node-gyp's hook
// does for MSVC builds. libstdc++, libgcc and winpthread are linked statically, so the addon
// needs nothing but KERNEL32 and msvcrt. Sources, defines and flags are read
// from binding.gyp, so this build cannot drift from the node-gyp one.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { sourceHash } = require('./source-hash.js');

const TRIPLE = 'x86_64-w64-mingw32';
const CXX = `${TRIPLE}-g++-posix`;
const DLLTOOL = `${TRIPLE}-dlltool`;
const OBJDUMP = `${TRIPLE}-objdump`;
const APT_PACKAGES = ['g++-mingw-w64-x86-64-posix', 'binutils-mingw-w64-x86-64'];
// Exact, so that a rebuild on another machine links the same import table.
const NODE_API_HEADERS = 'node-api-headers@1.9.0';
// The only DLLs the prebuild may import: what every Windows has. The host node.exe is a delay
// import, bound to the running process (scripts/win32/delay-load-hook.cc).
const ALLOWED_IMPORTS = new Set(['kernel32.dll', 'msvcrt.dll']);
// Defines node-gyp adds to every addon it builds on Windows (common.gypi), that binding.gyp
// therefore does not list: BUILDING_NODE_EXTENSION makes node_api.h declare its functions
// dllimport.
const NODE_GYP_DEFINES = ['BUILDING_NODE_EXTENSION', 'NODE_GYP_MODULE_NAME=slabpool', 'WIN32', '_WINDOWS', '_HAS_EXCEPTIONS=0'];

function log(message) {
  console.log(`prebuild-win32: ${message}`);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
    throw new Error(`${[cmd, ...args].join(' ')} failed (status ${result.status}):\n${output.split('\n').slice(-40).join('\n')}`);
  }
  return result.stdout;
}

/** mingw-w64's g++ and binutils, installed from Debian when missing. */
function ensureToolchain() {
  if (has(CXX) && has(DLLTOOL) && has(OBJDUMP)) return;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !has('apt-get')) {
    throw new Error(`${CXX} is missing: install ${APT_PACKAGES.join(' ')} (Debian/Ubuntu), or run this as root where apt-get works`);
  }
  log(`installing ${APT_PACKAGES.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env, stdio: 'inherit' });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...APT_PACKAGES], { env, stdio: 'inherit' });
}

/** The directory of the node-api-headers package (include/, def/). */
function nodeApiHeaders(work) {
  const wanted = NODE_API_HEADERS.split('@')[1];
  const version = (dir) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  try {
    const dir = path.dirname(require.resolve('node-api-headers/package.json'));
    if (version(dir) === wanted) return dir;
  } catch {
    // Not a dependency of slabpool: fetched for this build only.
  }
  const prefix = path.join(work, 'tools');
  const dir = path.join(prefix, 'node_modules', 'node-api-headers');
  if (version(dir) !== wanted) {
    log(`installing ${NODE_API_HEADERS} into ${path.relative(process.cwd(), prefix) || prefix}`);
    fs.mkdirSync(prefix, { recursive: true });
    run('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', NODE_API_HEADERS], { stdio: 'inherit' });
  }
  return dir;
}

/** Expands gyp's `<!(command)` in a binding.gyp string, running the command in `root`. */
function expand(value, root) {
  return value.replace(/<!\(([^()]*(?:\([^()]*\)[^()]*)*)\)/g, (_, command) => execFileSync('sh', ['-c', command], { cwd: root, encoding: 'utf8' }).trim());
}

/** The slabpool target of binding.gyp as gyp would see it for OS=='win'. */
function gypTarget(root) {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8'));
  const target = gyp.targets.find((t) => t.target_name === 'slabpool');
  const merged = { sources: [...target.sources], defines: [...(target.defines ?? [])], include_dirs: [...(target.include_dirs ?? [])], cflags_cc: [...(target.cflags_cc ?? [])] };
  for (const [condition, then, otherwise] of target.conditions ?? []) {
    const match = /^OS\s*(==|!=)\s*'(\w+)'$/.exec(condition.trim());
    if (!match) throw new Error(`binding.gyp: condition ${condition} is not understood by scripts/prebuild-win32.js`);
    const chosen = (match[1] === '==') === (match[2] === 'win') ? then : otherwise;
    for (const key of Object.keys(chosen ?? {})) {
      if (!(key in merged)) throw new Error(`binding.gyp: ${key} in a condition is not understood by scripts/prebuild-win32.js`);
      merged[key].push(...chosen[key]);
    }
  }
  for (const key of Object.keys(merged)) merged[key] = merged[key].map((v) => expand(v, root));
  return merged;
}

/** DLL names the PE file imports, lower-cased. */
function imports(file) {
  return [...run(OBJDUMP, ['-p', file]).matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toLowerCase());
}

/**
 * Builds prebuilds/win32-x64/slabpool.node from the sources in `root`; returns its path.
 * nodeVersion is only reported: a Node-API addon does not depend on it.
 */
function build({ root = path.resolve(__dirname, '..'), nodeVersion = process.versions.node } = {}) {
  ensureToolchain();
  const work = path.join(root, 'build-win32');
  fs.mkdirSync(work, { recursive: true });
  const headers = nodeApiHeaders(work);

  // The import library: every Node-API function, from "node.exe", delay-loaded, so that
  // scripts/win32/delay-load-hook.cc binds them to the process that loads the addon (node-gyp
  // does the same for MSVC builds) instead of whatever node.exe the DLL search finds first.
  const importLib = path.join(work, 'libnode_api_delay.a');
  run(DLLTOOL, ['--input-def', path.join(headers, 'def', 'node_api.def'), '--output-delaylib', importLib, '--dllname', 'node.exe']);

  const target = gypTarget(root);
  const out = path.join(root, 'prebuilds', 'win32-x64', 'slabpool.node');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const args = [
    ...target.cflags_cc,
    ...[...NODE_GYP_DEFINES, ...target.defines].map((d) => `-D${d}`),
    // Paths relative to root (the compiler runs there), so the bytes do not depend on where the
    // checkout is.
    `-I${path.relative(root, path.join(headers, 'include'))}`,
    ...target.include_dirs.map((d) => `-I${path.relative(root, path.resolve(root, d))}`),
    ...target.sources,
    path.relative(root, path.join(__dirname, 'win32', 'delay-load-hook.cc')),
    // No link timestamp: the same sources give the same bytes, so a rebuild shows no diff.
    '-shared', '-static', '-s', '-Wl,--no-insert-timestamp',
    path.relative(root, importLib),
    '-o', path.relative(root, out),
  ];
  log(`building with ${run(CXX, ['--version']).split('\n')[0]} for Node ${nodeVersion} (Node-API ${target.defines.find((d) => d.startsWith('NAPI_VERSION='))?.split('=')[1]})`);
  run(CXX, args, { cwd: root });

  const dlls = imports(out);
  const unexpected = dlls.filter((d) => !ALLOWED_IMPORTS.has(d));
  if (unexpected.length > 0) throw new Error(`${out} imports ${unexpected.join(', ')}, which Windows does not ship beside node.exe`);
  // node.exe is delay-loaded (not in the import table above): its name must be in the delay imports.
  if (!fs.readFileSync(out).includes(Buffer.from('node.exe\0'))) throw new Error(`${out} does not delay-load node.exe`);
  const hash = sourceHash(root);
  if (!fs.readFileSync(out).includes(Buffer.from(`${hash}\0`))) throw new Error(`${out} does not embed the source hash ${hash}`);
  log(`prebuilt ${path.relative(root, out)} (${fs.statSync(out).size} bytes, sources ${hash}, imports ${dlls.join(', ')})`);
  return out;
}

module.exports = { build };

if (require.main === module) {
  try {
    build();
  } catch (err) {
    console.error(`prebuild-win32: ${err.message}`);
    process.exit(1);
  }
}
