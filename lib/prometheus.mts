// The ES module entry of slabpool/prometheus: the same CommonJS instance re-exported, so pools
// registered through `import` and `require` share one set of families per registry.
export { registerPoolMetrics, unregisterPoolMetrics } from './prometheus.js';
export type { PoolMetricsOptions } from './prometheus.js';
