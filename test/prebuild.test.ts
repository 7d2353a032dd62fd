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

describe('the committed prebuild', () => {
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('exists for linux-x64 and was built from the current native sources', () => {
    const file = path.join(root, 'prebuilds', 'linux-x64', 'slabpool.node');
    expect(fs.existsSync(file), `${file} is missing: run npm run prebuild`).toBe(true);
    expect(builtHash(file), 'prebuilds/linux-x64/slabpool.node is stale or does not load: run npm run prebuild and commit it').toBe(sourceHash());
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
