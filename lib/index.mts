// The ES module entry: the same CommonJS instance re-exported, so `import` and `require` share
// one module state (no dual-package hazard).
export { MemoryPool, Lease, SharedPool, backendInfo } from './index.js';
export type { Backend, BackendInfo, LoadAttempt, Pin, PoolArray, PoolArrayConstructor, PoolOptions, PoolStats, SharedPoolHandle, SharedPoolOptions, SharedPoolStats, SlabpoolError, SlabpoolErrorCode } from './index.js';
