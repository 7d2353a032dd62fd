import type { Pooled } from '../lib/compat.js';

/** Every dtype string typedarray-pool 1.2 accepts, and the mallocX function that serves each. */
export const DTYPES: readonly (readonly [string | undefined, string])[] = [
  [undefined, 'mallocArrayBuffer'],
  ['arraybuffer', 'mallocArrayBuffer'],
  ['uint8', 'mallocUint8'],
  ['uint16', 'mallocUint16'],
  ['uint32', 'mallocUint32'],
  ['int8', 'mallocInt8'],
  ['int16', 'mallocInt16'],
  ['int32', 'mallocInt32'],
  ['float', 'mallocFloat'],
  ['float32', 'mallocFloat32'],
  ['double', 'mallocDouble'],
  ['float64', 'mallocFloat64'],
  ['uint8_clamped', 'mallocUint8Clamped'],
  ['bigint64', 'mallocBigInt64'],
  ['biguint64', 'mallocBigUint64'],
  ['buffer', 'mallocBuffer'],
  ['data', 'mallocDataView'],
  ['dataview', 'mallocDataView'],
];

export function kindOf(value: unknown): string {
  if (Buffer.isBuffer(value)) return 'Buffer';
  return Object.prototype.toString.call(value);
}

export function sizeOf(value: unknown): number {
  return value instanceof ArrayBuffer || value instanceof DataView ? value.byteLength : (value as { length: number }).length;
}

/** The bytes an allocation covers, as [buffer, start, end). */
export function extent(value: Pooled): [ArrayBufferLike, number, number] {
  if (value instanceof ArrayBuffer) return [value, 0, value.byteLength];
  return [value.buffer, value.byteOffset, value.byteOffset + value.byteLength];
}

export function bytesOf(value: Pooled): Uint8Array {
  const [buffer, start, end] = extent(value);
  return new Uint8Array(buffer, start, end - start);
}

