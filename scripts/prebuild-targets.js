'use strict';
// The prebuilds `npm run prebuild` makes (scripts/prebuild.js loops over TARGETS). Each target
// says where it can be built, what it needs from Debian, how prebuildify builds it, and which Node
// runs it there, so that the build is checked in that Node and against that Node's own needs.
//
// A target is { name, platform, arch, unbuildable(), apt, prebuildify, env, runner() }, or
// { name, platform, arch, unbuildable(), apt, build(options) } for one built by a script of its own:
//   unbuildable()  null when this machine can build it, else why not (then it is skipped)
//   apt            the Debian packages the build and its check need, installed when missing
//   prebuildify    extra prebuildify arguments; env: extra environment for the build
//   runner()       { node, command }: the Node binary the prebuild is for (its symbol versions are
//                  the floor the prebuild must not exceed) and the command that runs it here
//                  (node itself, or node under qemu-user); may install that Node
//
// Cross-built targets take their Node from the npm registry (node-<platform>-<arch>, at this
// Node's version) into a cache outside the project: never a dependency of the package.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const host = `${process.platform}-${process.arch}`;
const isDebian = () => process.platform === 'linux' && fs.existsSync('/etc/debian_version') && fs.existsSync('/usr/bin/apt-get');

/** Where fetched Node binaries are kept between runs (SLABPOOL_CACHE, else ~/.cache/slabpool). */
function cacheDir() {
  return process.env.SLABPOOL_CACHE || path.join(os.homedir(), '.cache', 'slabpool');
}

/**
 * The official Node binary for `platform-arch` at this Node's version, from the npm package
 * node-<platform>-<arch> (unpacked with `npm pack`: npm would refuse to install a package for
 * another CPU). Fetched once into cacheDir().
 */
function officialNode(platform, arch, version = process.versions.node) {
  const dir = path.join(cacheDir(), `node-${platform}-${arch}-${version}`);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const spec = `node-${platform}-${arch}@${version}`;
  console.error(`fetching ${spec} from the npm registry into ${dir}`);
  const tgz = execFileSync('npm', ['pack', '--silent', spec, '--pack-destination', dir], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop();
  execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', dir, 'package/bin/node', 'package/package.json']);
  fs.rmSync(path.join(dir, tgz));
  if (!fs.existsSync(bin)) throw new Error(`${spec} has no package/bin/node`);
  return bin;
}

const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

/** The arm64 Node under qemu-user, with Debian's arm64 cross libraries as its root. */
function emulatedArm64() {
  const node = officialNode('linux', 'arm64');
  return { node, command: ['qemu-aarch64', '-L', AARCH64_SYSROOT, node] };
}

const hostNode = () => ({ node: process.execPath, command: [process.execPath] });

const TARGETS = [
  {
    name: 'linux-arm64',
    platform: 'linux',
    arch: 'arm64',
    unbuildable() {
      if (host === 'linux-arm64') return null;
      if (host === 'linux-x64' && isDebian()) return null;
      return 'built natively on linux-arm64, or cross-compiled on Debian linux-x64';
    },
    get apt() {
      return host === 'linux-arm64'
        ? ['g++', 'make', 'python3', 'binutils']
        : ['g++-aarch64-linux-gnu', 'binutils-aarch64-linux-gnu', 'make', 'python3', 'binutils', 'qemu-user'];
    },
    get prebuildify() {
      return host === 'linux-arm64' ? [] : ['--arch', 'arm64', '--strip-bin', 'aarch64-linux-gnu-strip'];
    },
    get env() {
      if (host === 'linux-arm64') return {};
      const tool = (t) => `aarch64-linux-gnu-${t}`;
      return { CC: tool('gcc'), CXX: tool('g++'), LINK: tool('g++'), AR: tool('ar') };
    },
    runner() {
      return host === 'linux-arm64' ? hostNode() : emulatedArm64();
    },
  },
  {
    name: 'linux-x64',
    platform: 'linux',
    arch: 'x64',
    unbuildable() {
      return host === 'linux-x64' ? null : 'built on linux-x64';
    },
    apt: ['g++', 'make', 'python3', 'binutils'],
    prebuildify: [],
    env: {},
    runner: hostNode,
  },
  {
    name: 'win32-x64',
    platform: 'win32',
    arch: 'x64',
    unbuildable() {
      return host === 'linux-x64' && isDebian() ? null : 'cross-compiled on Debian linux-x64 with mingw-w64';
    },
    // prebuild-win32.js installs its own toolchain (mingw-w64, posix threads) and node-api-headers.
    apt: [],
    build(options) {
      require('./prebuild-win32.js').build(options);
    },
  },
];

module.exports = { TARGETS, officialNode, emulatedArm64, cacheDir, AARCH64_SYSROOT };

// `node scripts/prebuild-targets.js official-node linux arm64 [version]` prints the path of that
// official Node (the version of the Node running this by default), fetched once (for .ci/).
if (require.main === module) {
  const [cmd, platform, arch, version] = process.argv.slice(2);
  if (cmd !== 'official-node' || !platform || !arch || (version !== undefined && !/^\d+\.\d+\.\d+$/.test(version))) {
    console.error('usage: node scripts/prebuild-targets.js official-node <platform> <arch> [<major.minor.patch>]');
    process.exit(2);
  }
  console.log(officialNode(platform, arch, version));
}
