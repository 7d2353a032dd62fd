import { envFlag } from './env.js';
import { invalidRange, invalidType } from './errors.js';
import type { Backend, PoolArrayConstructor, PoolConfig, PoolOptions } from './options.js';

/** Every type a pool can hand out; `type` must be one of these very constructors. */
export const POOL_TYPES: readonly PoolArrayConstructor[] = [
  Float64Array,
  Float32Array,
  Int8Array,
  Int16Array,
  Int32Array,
  Uint8Array,
  Uint16Array,
  Uint32Array,
  Uint8ClampedArray,
  BigInt64Array,
  BigUint64Array,
];
const FLOAT_TYPES: readonly PoolArrayConstructor[] = [Float64Array, Float32Array];
// The choices, made once (an array literal in the call would be a new array per pool).
const POISONS = ['none', 'nan'] as const;
const BACKENDS = ['auto', 'native', 'js'] as const;
const SCOPES = ['buffer', 'address'] as const;

/** One slab is one ArrayBuffer; Node 20 caps Buffers at 4 GiB and we use the same cap everywhere. */
export const MAX_SLAB_BYTES = 2 ** 32;
/** Block indices are int32 in the magazine and in C++, with room for one slab past the cap. */
export const MAX_BLOCKS = 2 ** 30;
export const MIN_ALIGNMENT = 8;
export const MAX_ALIGNMENT = 4096;
export const DEFAULT_ALIGNMENT = 64;
export const DEFAULT_AUTO_COALESCE_THRESHOLD = 20;

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'blockSize',
  'type',
  'numBlocks',
  'alignment',
  'grow',
  'maxBlocks',
  'detach',
  'autoCoalesceThreshold',
  'poison',
  'backend',
  'alignmentScope',
  'hugePages',
  'prefault',
]);

/** An integer in [min, max]; TypeError for a non-number, RangeError for a number outside. */
export function requireInteger(name: string, value: unknown, min: number, max: number, detail?: string): number {
  if (typeof value !== 'number') throw invalidType(name, `integer from ${min} to ${max}`, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRange(name, `integer from ${min} to ${max}`, value, detail);
  }
  return value;
}

function requireBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(name, 'boolean', value);
  return value;
}

function requireChoice<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  const expected = `one of ${choices.map((c) => `'${c}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidType(name, expected, value);
  throw invalidRange(name, expected, value);
}

function typeOf(value: unknown): PoolArrayConstructor {
  if (value === undefined) return Float64Array;
  if (!POOL_TYPES.includes(value as PoolArrayConstructor)) {
    const expected = `one of ${POOL_TYPES.map((t) => t.name).join(', ')}`;
    throw invalidType('type', expected, value);
  }
  return value as PoolArrayConstructor;
}

function blockShapeOf(value: unknown, bytesPerElement: number): number[] {
  const maxLength = MAX_SLAB_BYTES / bytesPerElement;
  if (typeof value === 'number') return [requireInteger('blockSize', value, 1, maxLength)];
  if (!Array.isArray(value)) throw invalidType('blockSize', 'positive integer or array of positive integers', value);
  if (value.length === 0) throw invalidRange('blockSize', 'non-empty array of positive integers', value);
  const shape: number[] = [];
  let length = 1;
  for (let i = 0; i < value.length; i++) {
    const dim = requireInteger(`blockSize[${i}]`, value[i] as unknown, 1, maxLength);
    length *= dim;
    // Checked at every step, so a product past 2^53 can never round back into range.
    if (length > maxLength) {
      throw invalidRange('blockSize', `shape whose product is at most ${maxLength} elements`, value, `product exceeds ${maxLength}`);
    }
    shape.push(dim);
  }
  return shape;
}

export function validateOptions(options: unknown): PoolConfig {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidType('options', 'object with blockSize and numBlocks', options);
  }
  const opts = options as Record<string, unknown>;
  // Indexed loops, no iterators or callbacks here: this runs once per pool, while V8 still
  // interprets it without type feedback, where every call and iteration step is costly (validation
  // was ~40 % of a first 1e3-block pool's construction).
  const keys = Object.keys(opts);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalidType(`options.${key}`, `no such option (known: ${[...KNOWN_OPTIONS].join(', ')})`, opts[key]);
    }
  }
  const o = opts as Partial<Record<keyof PoolOptions, unknown>>;

  // The common cases answered in line, the helpers (and their messages) for everything else.
  const type = o.type === undefined ? Float64Array : typeOf(o.type);
  const size = o.blockSize;
  const blockShape =
    typeof size === 'number' && Number.isInteger(size) && size >= 1 && size <= MAX_SLAB_BYTES / type.BYTES_PER_ELEMENT
      ? [size]
      : blockShapeOf(size, type.BYTES_PER_ELEMENT);
  let blockLength = 1;
  for (let i = 0; i < blockShape.length; i++) blockLength *= blockShape[i]!;
  const blockBytes = blockLength * type.BYTES_PER_ELEMENT;

  let alignment = DEFAULT_ALIGNMENT;
  if (o.alignment !== undefined) {
    alignment = requireInteger('alignment', o.alignment, MIN_ALIGNMENT, MAX_ALIGNMENT);
    if ((alignment & (alignment - 1)) !== 0) {
      throw invalidRange('alignment', `power of two from ${MIN_ALIGNMENT} to ${MAX_ALIGNMENT}`, alignment);
    }
  }
  const stride = Math.ceil(blockBytes / alignment) * alignment;

  const n = o.numBlocks;
  const slabBlocks = typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_BLOCKS ? n : requireInteger('numBlocks', n, 1, MAX_BLOCKS);
  if (slabBlocks * stride > MAX_SLAB_BYTES) {
    throw invalidRange(
      'numBlocks',
      `integer from 1 to ${Math.floor(MAX_SLAB_BYTES / stride)}`,
      slabBlocks,
      `a slab of ${slabBlocks} blocks of ${stride} bytes would exceed the ${MAX_SLAB_BYTES}-byte limit of one slab`,
    );
  }

  const grow = o.grow === undefined ? false : requireBoolean('grow', o.grow);
  let maxBlocks = grow ? MAX_BLOCKS : slabBlocks;
  if (o.maxBlocks !== undefined) {
    maxBlocks = requireInteger('maxBlocks', o.maxBlocks, slabBlocks, MAX_BLOCKS);
    if (!grow && maxBlocks !== slabBlocks) {
      throw invalidRange('maxBlocks', `numBlocks (${slabBlocks}) when grow is false`, maxBlocks, 'set grow: true to let the pool grow');
    }
  }

  let autoCoalesceThreshold = DEFAULT_AUTO_COALESCE_THRESHOLD;
  if (o.autoCoalesceThreshold !== undefined) {
    const t = o.autoCoalesceThreshold;
    if (typeof t !== 'number') throw invalidType('autoCoalesceThreshold', 'number from 0 to 100', t);
    if (!(t >= 0 && t <= 100)) throw invalidRange('autoCoalesceThreshold', 'number from 0 to 100', t);
    autoCoalesceThreshold = t;
  }

  const poison = o.poison === undefined ? 'none' : requireChoice('poison', o.poison, POISONS);
  if (poison === 'nan' && !FLOAT_TYPES.includes(type)) {
    throw invalidRange('poison', `'none' for ${type.name} blocks`, poison, 'only Float64Array and Float32Array can hold NaN');
  }
  const b = o.backend;
  const backend = b === undefined ? 'auto' : b === 'js' || b === 'native' || b === 'auto' ? b : requireChoice('backend', b, BACKENDS);
  const detach = o.detach === undefined ? detachByDefault() : requireBoolean('detach', o.detach);
  const alignmentScope = o.alignmentScope === undefined ? 'buffer' : requireChoice('alignmentScope', o.alignmentScope, SCOPES);
  const hugePages = o.hugePages === undefined ? envFlag('SLABPOOL_HUGE_PAGES') : requireBoolean('hugePages', o.hugePages);
  const prefault = o.prefault === undefined ? envFlag('SLABPOOL_PREFAULT') : requireBoolean('prefault', o.prefault);
  if (alignmentScope === 'address' && backend === 'js') {
    throw invalidRange('alignmentScope', "'buffer' with backend 'js'", alignmentScope, 'the JavaScript fallback cannot align absolute addresses');
  }

  return new Config(type, blockShape, blockLength, blockBytes, stride, alignment, slabBlocks, grow, maxBlocks, autoCoalesceThreshold, poison, backend, detach, alignmentScope, hugePages, prefault);
}

/**
 * validateOptions' result. A class rather than an object literal: V8 makes a literal's boilerplate
 * the second time the literal runs, which is a program's second pool, where the 16-field literal
 * cost ~5 us of validation's ~12 (bench/trial.mjs construct case, measured); stores in a
 * constructor cost no such step. `declare` fields: assigned once, in the constructor, and not
 * defined as undefined first.
 */
class Config implements PoolConfig {
  declare readonly type: PoolArrayConstructor;
  declare readonly blockShape: readonly number[];
  declare readonly blockLength: number;
  declare readonly blockBytes: number;
  declare readonly stride: number;
  declare readonly alignment: number;
  declare readonly slabBlocks: number;
  declare readonly grow: boolean;
  declare readonly maxBlocks: number;
  declare readonly autoCoalesceThreshold: number;
  declare readonly poison: 'none' | 'nan';
  declare readonly backend: 'auto' | Backend;
  declare readonly detach: boolean;
  declare readonly alignmentScope: 'buffer' | 'address';
  declare readonly hugePages: boolean;
  declare readonly prefault: boolean;

  constructor(
    type: PoolArrayConstructor,
    blockShape: readonly number[],
    blockLength: number,
    blockBytes: number,
    stride: number,
    alignment: number,
    slabBlocks: number,
    grow: boolean,
    maxBlocks: number,
    autoCoalesceThreshold: number,
    poison: 'none' | 'nan',
    backend: 'auto' | Backend,
    detach: boolean,
    alignmentScope: 'buffer' | 'address',
    hugePages: boolean,
    prefault: boolean,
  ) {
    const self = this as { -readonly [K in keyof PoolConfig]: PoolConfig[K] };
    self.type = type;
    self.blockShape = blockShape;
    self.blockLength = blockLength;
    self.blockBytes = blockBytes;
    self.stride = stride;
    self.alignment = alignment;
    self.slabBlocks = slabBlocks;
    self.grow = grow;
    self.maxBlocks = maxBlocks;
    self.autoCoalesceThreshold = autoCoalesceThreshold;
    self.poison = poison;
    self.backend = backend;
    self.detach = detach;
    self.alignmentScope = alignmentScope;
    self.hugePages = hugePages;
    self.prefault = prefault;
  }
}

let detachWarned = false;

/**
 * The `detach` option's default: SLABPOOL_DETACH=1 in the environment. A variable left set by
 * mistake would slow every typed array in the process without a word, so the first pool it
 * applies to says so, once per thread (a warning with code SLABPOOL_DETACH; each worker loads
 * its own copy of this module, and slabpool/compat's shared pool is made when it is loaded).
 */
export function detachByDefault(): boolean {
  if (!envFlag('SLABPOOL_DETACH')) return false;
  if (!detachWarned) {
    detachWarned = true;
    process.emitWarning(
      'SLABPOOL_DETACH=1: slabpool pools detach the memory they release, which turns off a V8 fast path for every typed array in this process. Use it for debugging only.',
      { code: 'SLABPOOL_DETACH' },
    );
  }
  return true;
}

/** The options of slabpool/compat's `createTypedArrayPool` (see CompatOptions in compat.ts). */
export function validateCompatOptions(options: unknown): { backend: 'auto' | Backend; strict: boolean | undefined; detach: boolean } {
  if (options === undefined) return { backend: 'auto', strict: undefined, detach: detachByDefault() };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidType('options', 'object', options);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'backend' && key !== 'strict' && key !== 'detach') throw invalidType(`options.${key}`, 'no such option (known: backend, strict, detach)', o[key]);
  }
  return {
    backend: o.backend === undefined ? 'auto' : requireChoice('backend', o.backend, BACKENDS),
    strict: o.strict === undefined ? undefined : requireBoolean('strict', o.strict),
    detach: o.detach === undefined ? detachByDefault() : requireBoolean('detach', o.detach),
  };
}
