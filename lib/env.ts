import { invalidRange } from './errors.js';

/*
 * Every environment variable the library reads, and the values each accepts. A value outside
 * them throws ERR_SLABPOOL_INVALID_ARG naming the variable where it is read (creating a pool,
 * loading slabpool/compat, backendInfo()): a typo never silently means "off". README.md,
 * "Environment variables", lists the same; test/env.test.ts holds each.
 */

const TRUE = new Set(['1', 'true']);
const FALSE = new Set(['', '0', 'false']);

/** A boolean switch: '1' or 'true' turn it on; unset, '', '0' or 'false' leave it off. */
export function envFlag(name: 'SLABPOOL_DETACH' | 'SLABPOOL_COMPAT_STRICT' | 'SLABPOOL_HUGE_PAGES' | 'SLABPOOL_PREFAULT'): boolean {
  const value = process.env[name];
  if (value === undefined || FALSE.has(value)) return false;
  if (TRUE.has(value)) return true;
  throw invalidRange(`the ${name} environment variable`, "'1', 'true', '0', 'false' or unset", value);
}

/** SLABPOOL_BACKEND: the backend `backend: 'auto'` means. */
export function envBackend(): 'auto' | 'native' | 'js' {
  const value = process.env.SLABPOOL_BACKEND;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'js' || value === 'native') return value;
  throw invalidRange('the SLABPOOL_BACKEND environment variable', "'js', 'native' or 'auto'", value);
}

/** SLABPOOL_NATIVE_MEMORY=v8: native slabs in V8-owned ArrayBuffers (diagnosis, tests). */
export function envNativeMemoryV8(): boolean {
  const value = process.env.SLABPOOL_NATIVE_MEMORY;
  if (value === undefined || value === '' || value === 'external') return false;
  if (value === 'v8') return true;
  throw invalidRange('the SLABPOOL_NATIVE_MEMORY environment variable', "'v8', 'external' or unset", value);
}
