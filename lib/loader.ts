import * as path from 'node:path';
import { invalidRange, nativeUnavailable } from './errors.js';
import type { EngineFactory } from './engine.js';
import { createJsEngine } from './fallback.js';
import type { Backend } from './options.js';

/** One place the loader looked for the native addon, and why it did not load from there. */
export interface LoadAttempt {
  readonly path: string;
  readonly error: string;
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

const ADDON = 'slabpool.node';
const packageRoot = path.resolve(__dirname, '..');

function candidatePaths(): string[] {
  return [
    path.join(packageRoot, 'build', 'Release', ADDON),
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, ADDON),
  ];
}

let nativeLoad: NativeLoad | undefined;

function loadNative(): NativeLoad {
  if (nativeLoad) return nativeLoad;
  const attempts: LoadAttempt[] = [];
  for (const file of candidatePaths()) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(file);
      attempts.push({ path: file, error: 'loaded, but this version of slabpool has no native engine for it' });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      attempts.push({ path: file, error: e.code === 'MODULE_NOT_FOUND' ? 'not found' : String(e.message).split('\n')[0]! });
    }
  }
  nativeLoad = { factory: undefined, attempts };
  return nativeLoad;
}

function environmentChoice(): 'auto' | Backend {
  const value = process.env.SLABPOOL_BACKEND;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'js' || value === 'native') return value;
  throw invalidRange('the SLABPOOL_BACKEND environment variable', "'js', 'native' or 'auto'", value);
}

export function backendInfo(): BackendInfo {
  const choice = environmentChoice();
  const { factory, attempts } = loadNative();
  if (choice === 'js') return { backend: 'js', reason: 'SLABPOOL_BACKEND=js selects the JavaScript fallback', attempts };
  if (factory) return { backend: 'native', reason: `the native addon loaded from ${attempts.at(-1)!.path}`, attempts };
  const why = attempts.map((a) => `${a.path}: ${a.error}`).join('; ');
  return { backend: 'js', reason: `no native addon loaded (${why})`, attempts };
}

/** The engine factory for a pool's `backend` option. */
export function engineFactory(requested: 'auto' | Backend): EngineFactory {
  const choice = requested === 'auto' ? environmentChoice() : requested;
  if (choice === 'js') return createJsEngine;
  const { factory, attempts } = loadNative();
  if (factory) return factory;
  if (choice === 'native') throw nativeUnavailable(attempts.map((a) => `${a.path}: ${a.error}`));
  return createJsEngine;
}
