// The ES module entry of slabpool/compat: the same CommonJS instance re-exported (one process-wide
// pool whether it is imported or required), with the module object as default export, as
// `import pool from 'typedarray-pool'` gives.
import compat from './compat.js';

export default compat;
export * from './compat.js';
