import * as fs from 'node:fs';
import * as path from 'node:path';
import bindings = require('bindings');
import { envBackend, envNativeMemoryV8 } from './env.js';
import { nativeUnavailable } from './errors.js';
import type { EngineFactory } from './engine.js';
import { createJsEngine } from './fallback.js';
import { isNativeAddon, nativeEngineFactory, type NativeAddon } from './native.js';
import type { Backend } from './options.js';

/** One place the loader looked for the native addon, and why it did not load from there. */
export interface LoadAttempt {
  readonly path: string;
  /** null for the attempt that loaded. */
  readonly error: string | null;
}

/** What this process runs on, which chooses the prebuild: `prebuilds/<platform>-<arch>/`. */
export interface LoadTarget {
  readonly platform: string;
  readonly arch: string;
  /**
   * On Linux, the C library, from the ELF interpreter of the Node executable (`ld-linux-*`:
   * glibc, `ld-musl-*`: musl); null elsewhere, or on Linux when it cannot be told.
   */
  readonly libc: 'glibc' | 'musl' | null;
}

/** Which backend `backend: 'auto'` uses in this process, and why. */
export interface BackendInfo {
  /**
   * The backend a pool with `backend: 'auto'` runs on; null when such a pool cannot be made:
   * SLABPOOL_BACKEND=native and no addon loads (creating it throws ERR_SLABPOOL_NATIVE_UNAVAILABLE).
   */
  readonly backend: Backend | null;
  /** One sentence: why this backend, naming the platform, architecture and C library. */
  readonly reason: string;
  /** The platform, architecture and C library the addon was chosen for. */
  readonly target: LoadTarget;
  /**
   * Every place the native addon was looked for, in order, with the error from each that failed;
   * empty when nothing tried to load it (SLABPOOL_BACKEND=js, and no pool asked for 'native').
   */
  readonly attempts: readonly LoadAttempt[];
}

interface NativeLoad {
  readonly factory: EngineFactory | undefined;
  /** The addon the factory is over (SharedPool uses its shared regions). */
  readonly addon: NativeAddon | undefined;
  readonly target: LoadTarget;
  readonly attempts: readonly LoadAttempt[];
}

const packageRoot = path.resolve(__dirname, '..');

/**
 * Where the addon is looked for, in order, as `bindings` path templates (each part is replaced by
 * the option of that name when there is one): a local build from source first, since it was made
 * on this machine, then the prebuild for this platform and architecture shipped in the package.
 * The Linux prebuilds are built against glibc (scripts/prebuild-targets.js).
 */
const PLACES: readonly { readonly template: readonly string[]; readonly linuxLibc?: 'glibc' }[] = [
  { template: ['module_root', 'build', 'Release', 'bindings'] },
  { template: ['module_root', 'prebuilds', 'platform_arch', 'bindings'], linuxLibc: 'glibc' },
];

/**
 * The ELF interpreter (PT_INTERP) of an executable, or null when it has none (static, not ELF,
 * unreadable). It names the C library the process runs on: the dynamic loader is part of it.
 */
export function elfInterpreter(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const read = (offset: number, length: number): Buffer => {
      const b = Buffer.alloc(length);
      return b.subarray(0, fs.readSync(fd!, b, 0, length, offset));
    };
    const header = read(0, 64);
    if (header.length < 52 || header.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = header[4] === 2;
    const le = header[5] === 1;
    if (is64 && header.length < 64) return null;
    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number): number => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = word(header, is64 ? 32 : 28);
    const phentsize = u16(header, is64 ? 54 : 42);
    const phnum = u16(header, is64 ? 56 : 44);
    if (phentsize < (is64 ? 56 : 32) || phnum > 256) return null;
    const table = read(phoff, phentsize * phnum);
    for (let i = 0; (i + 1) * phentsize <= table.length; i++) {
      const ph = table.subarray(i * phentsize);
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const offset = word(ph, is64 ? 8 : 4);
      const size = word(ph, is64 ? 32 : 16);
      if (size > 4096) return null;
      const name = read(offset, size).toString('latin1');
      const end = name.indexOf('\0');
      return end >= 0 ? name.slice(0, end) : name;
    }
    return null;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The C library of a Linux process whose executable is `executable`, from its interpreter. */
export function detectLibc(executable: string = process.execPath): 'glibc' | 'musl' | null {
  const interpreter = elfInterpreter(executable);
  if (interpreter === null) return null;
  const name = path.basename(interpreter);
  if (name.startsWith('ld-musl-')) return 'musl';
  if (/^ld(-linux[\w.-]*|64)?\.so\.\d+$/.test(name)) return 'glibc';
  return null;
}

function loadTarget(): LoadTarget {
  return { platform: process.platform, arch: process.arch, libc: process.platform === 'linux' ? detectLibc() : null };
}

/** 'linux-x64 (glibc)', 'linux-x64 (musl)', 'linux-x64 (C library unknown)', 'darwin-arm64' */
function describeTarget(target: LoadTarget): string {
  const name = `${target.platform}-${target.arch}`;
  if (target.platform !== 'linux') return name;
  return `${name} (${target.libc ?? 'C library unknown'})`;
}

/** The hash of native/ when the sources are present (they ship in the package), else null. */
function currentSourceHash(): string | null {
  try {
    if (!fs.existsSync(path.join(packageRoot, 'native'))) return null;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(path.join(packageRoot, 'scripts', 'source-hash.js')) as { sourceHash(): string }).sourceHash();
  } catch {
    return null;
  }
}

let nativeLoad: NativeLoad | undefined;

/**
 * SLABPOOL_NATIVE_PATH=<file> loads the addon from that file and nowhere else: for diagnosis,
 * and for the sanitizer run, which tests an instrumented build without replacing the usual one.
 */
function overridePath(): string | undefined {
  const file = process.env.SLABPOOL_NATIVE_PATH;
  return file ? path.resolve(file) : undefined;
}

function loadNative(): NativeLoad {
  if (nativeLoad) return nativeLoad;
  const expectedHash = currentSourceHash();
  const target = loadTarget();
  const options = { bindings: 'slabpool.node', module_root: packageRoot, platform_arch: `${target.platform}-${target.arch}` };
  const override = overridePath();
  const attempts: LoadAttempt[] = [];
  let factory: EngineFactory | undefined;
  let loaded: NativeAddon | undefined;
  for (const place of override ? [{ template: [override] }] : PLACES) {
    const file = override ?? path.join(...place.template.map((part) => (options as Record<string, string>)[part] ?? part));
    let error: string | null = null;
    // A glibc build on musl may load and then crash, or fail with an obscure symbol error: not
    // tried. Where the C library cannot be told, it is tried, and the reason says so.
    const otherLibc = place.linuxLibc && target.platform === 'linux' && target.libc !== null && target.libc !== place.linuxLibc;
    if (otherLibc && fs.existsSync(file)) {
      attempts.push({ path: file, error: `not tried: built for ${place.linuxLibc}, and this process runs on ${target.libc}` });
      continue;
    }
    try {
      // One place per call, so that every failure keeps its own reason.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const addon: unknown = override ? require(override) : bindings({ ...options, try: [place.template] } as bindings.Options);
      if (!isNativeAddon(addon)) error = 'not a slabpool addon';
      else if (expectedHash !== null && addon.sourceHash !== expectedHash) {
        error = `stale: built from native sources ${addon.sourceHash}, but native/ is ${expectedHash}`;
      } else {
        factory = nativeEngineFactory(addon);
        loaded = addon;
      }
    } catch (err) {
      const e = err as Error & { tries?: string[]; code?: string };
      error = e.tries || e.code === 'MODULE_NOT_FOUND' ? 'not found' : String(e.message).split(/\r?\n/)[0]!.trimEnd();
    }
    attempts.push({ path: file, error });
    if (factory) break;
  }
  nativeLoad = { factory, addon: loaded, target, attempts };
  // Set for a reason (diagnosis, the sanitizer run): that it did not load must not pass unseen.
  if (override && !factory) {
    process.emitWarning(`SLABPOOL_NATIVE_PATH=${override} did not load (${attempts[0]!.error}); no other place is tried`, { code: 'SLABPOOL_NATIVE_PATH' });
  }
  return nativeLoad;
}

const environmentChoice = envBackend;

function describeAttempts(attempts: readonly LoadAttempt[]): string[] {
  return attempts.map((a) => `${a.path}: ${a.error ?? 'loaded'}`);
}

export function backendInfo(): BackendInfo {
  const choice = environmentChoice();
  // SLABPOOL_BACKEND=js loads nothing (no attempts): it is the way round an addon that cannot be loaded safely.
  if (choice === 'js') return { backend: 'js', reason: 'SLABPOOL_BACKEND=js selects the JavaScript fallback', target: nativeLoad?.target ?? loadTarget(), attempts: nativeLoad?.attempts ?? [] };
  const { factory, target, attempts } = loadNative();
  const on = describeTarget(target);
  if (factory) return { backend: 'native', reason: `the native addon loaded from ${attempts.at(-1)!.path} on ${on}`, target, attempts };
  if (choice === 'native') {
    const why = `SLABPOOL_BACKEND=native, and no native addon loaded on ${on}: creating a pool throws ERR_SLABPOOL_NATIVE_UNAVAILABLE`;
    return { backend: null, reason: `${why} (${describeAttempts(attempts).join('; ')})`, target, attempts };
  }
  return { backend: 'js', reason: `no native addon loaded on ${on} (${describeAttempts(attempts).join('; ')})`, target, attempts };
}

/**
 * The engine factory for a pool's `backend` option. With `requireAddress` (the alignmentScope
 * option 'address'), a choice that would give the JavaScript fallback throws
 * ERR_SLABPOOL_NATIVE_UNAVAILABLE instead, saying why.
 */
export function engineFactory(requested: 'auto' | Backend, requireAddress = false): EngineFactory {
  const choice = requested === 'auto' ? environmentChoice() : requested;
  if (choice === 'js') {
    if (requireAddress) throw nativeUnavailable(['SLABPOOL_BACKEND=js in the environment selects the JavaScript fallback'], "alignmentScope 'address'");
    return createJsEngine;
  }
  const { factory, attempts } = loadNative();
  if (factory) return factory;
  if (choice === 'native') throw nativeUnavailable(describeAttempts(attempts), "backend 'native'");
  if (requireAddress) throw nativeUnavailable(describeAttempts(attempts), "alignmentScope 'address'");
  return createJsEngine;
}

/**
 * The addon for a SharedPool's `backend` option ('auto' follows SLABPOOL_BACKEND, as MemoryPool's
 * does), or null for the JavaScript engine. Throws ERR_SLABPOOL_NATIVE_UNAVAILABLE when 'native'
 * (asked, or by the variable) cannot be had: no addon loaded, or external ArrayBuffers are refused
 * here or not wanted (SLABPOOL_NATIVE_MEMORY=v8), since every thread wraps the blocks in one.
 */
export function sharedAddon(requested: 'auto' | Backend): NativeAddon | null {
  const choice = requested === 'auto' ? environmentChoice() : requested;
  if (choice === 'js') return null;
  const { addon, attempts } = loadNative();
  const reasons = addon ? (envNativeMemoryV8() ? ['SLABPOOL_NATIVE_MEMORY=v8: no external ArrayBuffers, which every thread of a native SharedPool wraps its blocks in'] : []) : describeAttempts(attempts);
  if (addon && reasons.length === 0) return addon;
  if (choice === 'native') throw nativeUnavailable(reasons, requested === 'native' ? "a SharedPool's backend 'native'" : 'SLABPOOL_BACKEND=native with a SharedPool');
  return null;
}

/** The addon loaded in this process, if any (a native SharedPool's attach()). */
export function loadedAddon(): NativeAddon | undefined {
  return loadNative().addon;
}

/** The backend a pool with this `backend` option runs on; throws as the pool would when 'native' cannot load. */
export function resolveBackend(requested: 'auto' | Backend): Backend {
  return engineFactory(requested) === createJsEngine ? 'js' : 'native';
}
