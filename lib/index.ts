export { MemoryPool, Lease } from './pool.js';
export type { Pin } from './pin.js';
export { backendInfo } from './loader.js';
export type { BackendInfo, LoadAttempt } from './loader.js';
export type { Backend, PoolArray, PoolArrayConstructor, PoolOptions } from './options.js';
export type { HugePagesStats, PoolStats, PrefaultStats } from './stats.js';
export type { SlabpoolError, SlabpoolErrorCode } from './errors.js';
