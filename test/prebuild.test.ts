import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { describe, expect, it } from 'vitest';

// A stale prebuild is a bug users cannot see: the package would run code other than its sources.
// The addon reports the hash of the native sources it was built from; the committed prebuild for
// the platform CI runs on must match native/ as it is. After changing native/, run
// `npm run prebuild` and commit prebuilds/.
const root = path.resolve(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { sourceHash, builtHash, nativeSources } = require(path.join(root, 'scripts', 'source-hash.js')) as {
  sourceHash(base?: string): string;
  builtHash(file: string): string | null;
  nativeSources(base?: string): string[];
};

// eslint-disable-next-line @typescript-eslint/no-require-imports
const versions = require(path.join(root, 'scripts', 'symbol-versions.js')) as {
  parseNeeds(readelfText: string): Record<string, string>;
  neededVersions(file: string): Record<string, string>;
  newerThan(needs: Record<string, string>, floor: Record<string, string>): string[];
};

// The prebuilds CI can run: on linux-x64 natively, on linux-arm64 under qemu-user (.ci/arm64).
const platformArch = `${process.platform}-${process.arch}`;
const runsHere = ['linux-x64', 'linux-arm64'].includes(platformArch);
const prebuild = path.join(root, 'prebuilds', platformArch, 'slabpool.node');

describe('the committed prebuild', () => {
  it.runIf(runsHere)(`exists for ${platformArch} and was built from the current native sources`, () => {
    expect(fs.existsSync(prebuild), `${prebuild} is missing: run npm run prebuild`).toBe(true);
    expect(builtHash(prebuild), `prebuilds/${platformArch}/slabpool.node is stale or does not load: run npm run prebuild and commit it`).toBe(sourceHash());
  });

  // A prebuild that needs a newer glibc or libstdc++ than Node does fails to load on systems
  // where Node runs (GCC 11+ made libstdc++ 3.4.29 creep in): its needs must stay within those
  // of the Node binary running this test, family by family.
  it.runIf(runsHere)(`needs no symbol version newer than this Node binary does (${platformArch})`, () => {
    const node = versions.neededVersions(fs.realpathSync(process.execPath));
    const needs = versions.neededVersions(prebuild);
    expect(node.GLIBC, `${process.execPath} needs no GLIBC version: not the dynamically linked Node this checks against`).toBeDefined();
    expect(needs.GLIBC, 'readelf found no GLIBC version in the prebuild').toBeDefined();
    expect(versions.newerThan(needs, node)).toEqual([]);
  });

  it('reads the needed versions per family, and flags one newer than the floor or absent from it', () => {
    const readelf = [
      "Version symbols section '.gnu.version' contains 3 entries:",
      '  000:   0 (*local*)       2 (GLIBCXX_3.4.30)',
      "Version definition section '.gnu.version_d' contains 1 entry:",
      '  000000: Rev: 1  Flags: BASE  Index: 1  Cnt: 1  Name: GLIBCXX_9.9',
      "Version needs section '.gnu.version_r' contains 2 entries:",
      '  000000: Version: 1  File: libstdc++.so.6  Cnt: 4',
      '  0x0010:   Name: CXXABI_1.3.9  Flags: none  Version: 9',
      '  0x0020:   Name: GLIBCXX_3.4.29  Flags: none  Version: 7',
      '  0x0030:   Name: GLIBCXX_3.4.9  Flags: none  Version: 6',
      '  0x0040:   Name: GLIBCXX_3.4  Flags: none  Version: 5',
      '  0x0050: Version: 1  File: libc.so.6  Cnt: 2',
      '  0x0060:   Name: GLIBC_2.14  Flags: none  Version: 4',
      '  0x0070:   Name: GLIBC_2.2.5  Flags: none  Version: 3',
      '  0x0080: Version: 1  File: libgcc_s.so.1  Cnt: 1',
      '  0x0090:   Name: GCC_3.0  Flags: none  Version: 2',
    ].join('\n');
    const needs = versions.parseNeeds(readelf);
    expect(needs).toEqual({ GLIBC: '2.14', GLIBCXX: '3.4.29', CXXABI: '1.3.9' });
    const node20 = { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' };
    expect(versions.newerThan(needs, node20)).toEqual(['GLIBCXX_3.4.29, newer than node\'s GLIBCXX_3.4.21']);
    expect(versions.newerThan({ GLIBC: '2.28' }, node20)).toEqual([]);
    expect(versions.newerThan({ GLIBC: '2.29', CXXABI: '1.3.9' }, { GLIBC: '2.28' })).toEqual([
      "GLIBC_2.29, newer than node's GLIBC_2.28",
      'CXXABI_1.3.9, and node needs nothing from CXXABI',
    ]);
  });

  it('is told apart by a hash that changes with every native source and binding.gyp', () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-hash-'));
    try {
      fs.cpSync(path.join(root, 'native'), path.join(copy, 'native'), { recursive: true });
      fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(copy, 'binding.gyp'));
      const files = nativeSources(copy);
      expect(files).toEqual(expect.arrayContaining(['native/slab.cc', 'native/slab.h', 'native/run_index.cc', 'native/run_index.h', 'native/os.h', 'native/os_posix.cc', 'native/bits.h', 'native/binding.cc', 'binding.gyp']));
      const original = sourceHash(copy);
      expect(original).toBe(sourceHash());
      const seen = new Set([original]);
      for (const file of files) {
        const full = path.join(copy, file);
        const text = fs.readFileSync(full, 'utf8');
        fs.writeFileSync(full, text + ' ');
        seen.add(sourceHash(copy));
        fs.writeFileSync(full, text);
      }
      expect(seen.size).toBe(files.length + 1);
      expect(sourceHash(copy)).toBe(original);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  it('is the same on Windows: the hashed names are POSIX paths whatever path.sep is', () => {
    // scripts/source-hash.js as Windows runs it: node:path is path.win32 (path.join gives
    // backslashes), and fs, here a shim over the real one, takes backslashed paths.
    const source = fs.readFileSync(path.join(root, 'scripts', 'source-hash.js'), 'utf8');
    const toPosix = (p: unknown) => (typeof p === 'string' ? p.replace(/\\/g, '/') : p);
    const winFs = {
      ...fs,
      readdirSync: (p: string) => fs.readdirSync(toPosix(p) as string),
      readFileSync: (p: string, encoding: BufferEncoding) => fs.readFileSync(toPosix(p) as string, encoding),
      existsSync: (p: string) => fs.existsSync(toPosix(p) as string),
    };
    const modules: Record<string, unknown> = { 'node:path': path.win32, 'node:fs': winFs };
    const loaded = { exports: {} as { sourceHash(base?: string): string; nativeSources(base?: string): string[] } };
    const requireShim = (id: string) => modules[id] ?? require(id);
    vm.runInThisContext(`(function (require, module, exports, __dirname, __filename) {${source}\n})`)(requireShim, loaded, loaded.exports, path.join(root, 'scripts'), path.join(root, 'scripts', 'source-hash.js'));
    const win = loaded.exports;
    expect(path.win32.sep).toBe('\\');
    const winFiles = win.nativeSources(root);
    expect(winFiles.every((f) => !f.includes('\\'))).toBe(true);
    expect(winFiles).toEqual(nativeSources(root));
    expect(win.sourceHash(root)).toBe(sourceHash());
  });
});
