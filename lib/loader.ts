import * as fs from 'node:fs';
import * as path from 'node:path';
import bindings = require('bindings');
import { invalidRange, nativeUnavailable } from './errors.js';
import type { EngineFactory } from './engine.js';
import { createJsEngine } from './fallback.js';
import { isNativeAddon, nativeEngineFactory } from './native.js';
import type { Backend } from './options.js';

/** One place the loader looked for the native addon, and why it did not load from there. */
export interface LoadAttempt {
  readonly path: string;
  /** null for the attempt that loaded. */
  readonly error: string | null;
}

/** Which backend `backend: 'auto'` uses in this process, and why. */
export interface BackendInfo {
  readonly backend: Backend;
  /** One sentence: why this backend. */
  readonly reason: string;
  /** Every place the native addon was looked for, in order, with the error from each that failed. */
  readonly attempts: readonly LoadAttempt[];
}

interface NativeLoad {
  readonly factory: EngineFactory | undefined;
  readonly attempts: readonly LoadAttempt[];
}

const packageRoot = path.resolve(__dirname, '..');

/**
 * Where the addon is looked for, in order, as `bindings` path templates (each part is replaced by
 * the option of that name when there is one): a local build from source first, since it was made
 * on this machine, then the prebuild for this platform and architecture shipped in the package.
 */
const PLACES: readonly (readonly string[])[] = [
  ['module_root', 'build', 'Release', 'bindings'],
  ['module_root', 'prebuilds', 'platform_arch', 'bindings'],
];

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
  const options = { bindings: 'slabpool.node', module_root: packageRoot, platform_arch: `${process.platform}-${process.arch}` };
  const override = overridePath();
  const attempts: LoadAttempt[] = [];
  let factory: EngineFactory | undefined;
  for (const place of override ? [[override]] : PLACES) {
    const file = override ?? path.join(...place.map((part) => (options as Record<string, string>)[part] ?? part));
    let error: string | null = null;
    try {
      // One place per call, so that every failure keeps its own reason.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const addon: unknown = override ? require(override) : bindings({ ...options, try: [place] } as bindings.Options);
      if (!isNativeAddon(addon)) error = 'not a slabpool addon';
      else if (expectedHash !== null && addon.sourceHash !== expectedHash) {
        error = `stale: built from native sources ${addon.sourceHash}, but native/ is ${expectedHash}`;
      } else factory = nativeEngineFactory(addon);
    } catch (err) {
      const e = err as Error & { tries?: string[]; code?: string };
      error = e.tries || e.code === 'MODULE_NOT_FOUND' ? 'not found' : String(e.message).split('\n')[0]!;
    }
    attempts.push({ path: file, error });
    if (factory) break;
  }
  nativeLoad = { factory, attempts };
  return nativeLoad;
}

function environmentChoice(): 'auto' | Backend {
  const value = process.env.SLABPOOL_BACKEND;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'js' || value === 'native') return value;
  throw invalidRange('the SLABPOOL_BACKEND environment variable', "'js', 'native' or 'auto'", value);
}

function describeAttempts(attempts: readonly LoadAttempt[]): string[] {
  return attempts.map((a) => `${a.path}: ${a.error ?? 'loaded'}`);
}

export function backendInfo(): BackendInfo {
  const choice = environmentChoice();
  const { factory, attempts } = loadNative();
  if (choice === 'js') return { backend: 'js', reason: 'SLABPOOL_BACKEND=js selects the JavaScript fallback', attempts };
  if (factory) return { backend: 'native', reason: `the native addon loaded from ${attempts.at(-1)!.path}`, attempts };
  return { backend: 'js', reason: `no native addon loaded (${describeAttempts(attempts).join('; ')})`, attempts };
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

/** The backend a pool with this `backend` option runs on; throws as the pool would when 'native' cannot load. */
export function resolveBackend(requested: 'auto' | Backend): Backend {
  return engineFactory(requested) === createJsEngine ? 'js' : 'native';
}
