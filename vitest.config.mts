import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    // npm test builds the native addon first, so every suite must run on both backends: a native
    // build that does not load fails the run instead of quietly halving it. Set to 0 to test the
    // fallback alone on a machine without a compiler.
    env: { SLABPOOL_REQUIRE_NATIVE: process.env.SLABPOOL_REQUIRE_NATIVE ?? '1' },
  },
});
