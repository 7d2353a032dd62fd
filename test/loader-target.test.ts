import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendInfo, detectLibc, elfInterpreter } from '../lib/loader.js';

/*
 * The loader picks the prebuild by platform and architecture, and on Linux by C library: the
 * prebuilds are glibc builds, which a musl process must not load blindly. The C library is told by
 * the ELF interpreter of the Node executable.
 */

const root = path.resolve(__dirname, '..');
const platformArch = `${process.platform}-${process.arch}`;
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-libc-'));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A minimal ELF executable header with a PT_LOAD and, when given, a PT_INTERP naming `interp`. */
function elf(options: { is64: boolean; le: boolean; interp?: string }): Buffer {
  const { is64, le, interp } = options;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = interp === undefined ? 1 : 2;
  const interpOffset = ehsize + phentsize * phnum;
  const name = Buffer.from(`${interp ?? ''}\0`, 'latin1');
  const b = Buffer.alloc(interpOffset + name.length);
  const u16 = (o: number, v: number): void => void (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const u32 = (o: number, v: number): void => void (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const word = (o: number, v: number): void => (is64 ? void (le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o)) : u32(o, v));
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = is64 ? 2 : 1;
  b[5] = le ? 1 : 2;
  b[6] = 1;
  u16(16, 2);
  word(is64 ? 32 : 28, ehsize);
  u16(is64 ? 52 : 40, ehsize);
  u16(is64 ? 54 : 42, phentsize);
  u16(is64 ? 56 : 44, phnum);
  u32(ehsize, 1); // PT_LOAD
  if (interp !== undefined) {
    const ph = ehsize + phentsize;
    u32(ph, 3); // PT_INTERP
    word(ph + (is64 ? 8 : 4), interpOffset);
    word(ph + (is64 ? 32 : 16), name.length);
  }
  name.copy(b, interpOffset);
  return b;
}

function file(name: string, content: Buffer): string {
  const f = path.join(work, name);
  fs.writeFileSync(f, content);
  return f;
}

describe('telling the C library', () => {
  it.runIf(process.platform === 'linux')('agrees with the process report on this Node', () => {
    const header = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header;
    expect(detectLibc(process.execPath)).toBe(header.glibcVersionRuntime === undefined ? 'musl' : 'glibc');
    expect(backendInfo().target).toEqual({ platform: 'linux', arch: process.arch, libc: detectLibc(process.execPath) });
  });

  it('reads the interpreter of 64- and 32-bit, little- and big-endian executables', () => {
    const cases: [boolean, boolean, string, 'glibc' | 'musl'][] = [
      [true, true, '/lib64/ld-linux-x86-64.so.2', 'glibc'],
      [true, true, '/lib/ld-linux-aarch64.so.1', 'glibc'],
      [true, true, '/lib/ld-musl-x86_64.so.1', 'musl'],
      [true, true, '/lib/ld-musl-aarch64.so.1', 'musl'],
      [false, true, '/lib/ld-linux-armhf.so.3', 'glibc'],
      [false, true, '/lib/ld-musl-armhf.so.1', 'musl'],
      [true, false, '/lib64/ld64.so.1', 'glibc'],
      [false, false, '/lib/ld.so.1', 'glibc'],
    ];
    for (const [is64, le, interp, libc] of cases) {
      const f = file(`elf-${is64}-${le}-${path.basename(interp)}`, elf({ is64, le, interp }));
      expect(elfInterpreter(f), interp).toBe(interp);
      expect(detectLibc(f), interp).toBe(libc);
    }
  });

  it('says it cannot tell for a static executable, an unknown loader, a truncated or non-ELF file, or none', () => {
    expect(detectLibc(file('static', elf({ is64: true, le: true })))).toBe(null);
    expect(detectLibc(file('bionic', elf({ is64: true, le: true, interp: '/system/bin/linker64' })))).toBe(null);
    expect(detectLibc(file('truncated', elf({ is64: true, le: true, interp: '/lib/ld-musl-x86_64.so.1' }).subarray(0, 100)))).toBe(null);
    expect(detectLibc(file('script', Buffer.from('#!/bin/sh\necho hi\n')))).toBe(null);
    expect(detectLibc(path.join(work, 'absent'))).toBe(null);
  });
});

describe.runIf(process.platform === 'linux' && fs.existsSync(path.join(root, 'prebuilds', platformArch, 'slabpool.node')))('choosing the prebuild', () => {
  // A copy of the package as installed (dist/ from npm test's compile, the prebuild, the native
  // sources it is checked against), without build/, so the prebuild is the place that decides.
  function installedCopy(): string {
    const pkg = path.join(work, 'pkg');
    if (fs.existsSync(pkg)) return pkg;
    for (const part of ['dist', 'native', 'binding.gyp', 'package.json', 'scripts/source-hash.js', `prebuilds/${platformArch}`]) {
      fs.cpSync(path.join(root, part), path.join(pkg, part), { recursive: true });
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
    return pkg;
  }

  function infoAs(executable: string, backend = ''): { backend: string; reason: string; target: unknown; attempts: { path: string; error: string | null }[] } {
    const pkg = installedCopy();
    const script = `process.execPath = ${JSON.stringify(executable)}; console.log(JSON.stringify(require(${JSON.stringify(path.join(pkg, 'dist', 'loader.js'))}).backendInfo()))`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SLABPOOL_BACKEND: backend, SLABPOOL_NATIVE_PATH: '' } }); // not the sanitizer run's override
    expect(child.status, child.stderr).toBe(0);
    return JSON.parse(child.stdout);
  }

  it('loads the glibc prebuild for this platform and architecture on glibc, and says so', () => {
    const pkg = installedCopy();
    const prebuild = path.join(pkg, 'prebuilds', platformArch, 'slabpool.node');
    expect(infoAs(process.execPath)).toEqual({
      backend: 'native',
      reason: `the native addon loaded from ${prebuild} on ${platformArch} (glibc)`,
      target: { platform: 'linux', arch: process.arch, libc: 'glibc' },
      attempts: [
        { path: path.join(pkg, 'build', 'Release', 'slabpool.node'), error: 'not found' },
        { path: prebuild, error: null },
      ],
    });
  });

  it('does not try it on musl, and says why', () => {
    const musl = file(`node-musl-${process.arch}`, elf({ is64: true, le: true, interp: `/lib/ld-musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1` }));
    const pkg = installedCopy();
    const info = infoAs(musl);
    const attempts = [
      { path: path.join(pkg, 'build', 'Release', 'slabpool.node'), error: 'not found' },
      { path: path.join(pkg, 'prebuilds', platformArch, 'slabpool.node'), error: 'not tried: built for glibc, and this process runs on musl' },
    ];
    expect(info).toEqual({
      backend: 'js',
      reason: `no native addon loaded on ${platformArch} (musl) (${attempts.map((a) => `${a.path}: ${a.error}`).join('; ')})`,
      target: { platform: 'linux', arch: process.arch, libc: 'musl' },
      attempts,
    });
  });

  it('loads no addon at all with SLABPOOL_BACKEND=js, the way round one that cannot be loaded safely', () => {
    const pkg = installedCopy();
    // An "addon" that ends the process when loaded: with SLABPOOL_BACKEND=js nothing may load it.
    const bomb = file('bomb.js', Buffer.from('process.exit(99);\n'));
    const script = [
      `const { MemoryPool, backendInfo } = require(${JSON.stringify(path.join(pkg, 'dist', 'index.js'))});`,
      'const info = backendInfo();',
      "const pool = new MemoryPool({ blockSize: 4, numBlocks: 4 });",
      "console.log(JSON.stringify({ info, backend: pool.backend, loaded: Object.keys(require.cache).filter((k) => k.endsWith('.node')) }));",
    ].join('\n');
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SLABPOOL_BACKEND: 'js', SLABPOOL_NATIVE_PATH: bomb } });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      info: { backend: 'js', reason: 'SLABPOOL_BACKEND=js selects the JavaScript fallback', target: { platform: 'linux', arch: process.arch, libc: 'glibc' }, attempts: [] },
      backend: 'js',
      loaded: [],
    });
    // The same without it: the override is loaded (and ends the process), so the test above can fail.
    const loads = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SLABPOOL_BACKEND: '', SLABPOOL_NATIVE_PATH: bomb } });
    expect(loads.status).toBe(99);
  });

  it('tries it where the C library cannot be told, and says that', () => {
    const info = infoAs(file('node-static', elf({ is64: true, le: true })));
    expect(info.backend).toBe('native');
    expect(info.reason).toMatch(new RegExp(`on ${platformArch} \\(C library unknown\\)$`));
    expect(info.target).toEqual({ platform: 'linux', arch: process.arch, libc: null });
  });
});
