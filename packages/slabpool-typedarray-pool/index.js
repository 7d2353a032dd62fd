'use strict';
// typedarray-pool's module: slabpool's process-wide compat pool.
module.exports = require('slabpool/compat');
