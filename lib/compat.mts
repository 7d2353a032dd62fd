// The ES module entry of slabpool/compat: the same CommonJS instance re-exported (one process-wide
// pool whether it is imported or required), with the module object as default export, as
// `import pool from 'typedarray-pool'` gives.
import compat from './compat.js';

export default compat;
export {
  createTypedArrayPool,
  malloc,
  mallocArrayBuffer,
  mallocInt8,
  mallocInt16,
  mallocInt32,
  mallocUint8,
  mallocUint16,
  mallocUint32,
  mallocFloat,
  mallocFloat32,
  mallocDouble,
  mallocFloat64,
  mallocUint8Clamped,
  mallocBigInt64,
  mallocBigUint64,
  mallocBuffer,
  mallocDataView,
  free,
  freeArrayBuffer,
  freeInt8,
  freeInt16,
  freeInt32,
  freeUint8,
  freeUint16,
  freeUint32,
  freeFloat,
  freeFloat32,
  freeDouble,
  freeFloat64,
  freeUint8Clamped,
  freeBigInt64,
  freeBigUint64,
  freeBuffer,
  freeDataView,
  clearCache,
  trim,
  stats,
  check,
} from './compat.js';
export type { CompatClassStats, CompatOptions, CompatStats, DtypeMap, Pooled, TypedArrayPool } from './compat.js';
