import { defineConfig } from 'vitest/config';

// npm test builds the native addon first, so every suite must run on both backends: a native
// build that does not load fails the run instead of quietly halving it. Set
// SLABPOOL_REQUIRE_NATIVE=0 to test the fallback alone on a machine without a compiler.
const requireNative = process.env.SLABPOOL_REQUIRE_NATIVE ?? '1';
if (requireNative !== '0' && requireNative !== '1') {
  throw new Error(`Expected '0', '1' or unset for the SLABPOOL_REQUIRE_NATIVE environment variable but received '${requireNative}'`);
}

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'slabpool', include: ['test/**/*.test.ts'], env: { SLABPOOL_REQUIRE_NATIVE: requireNative } },
      },
      {
        // The same behaviour suites with the native engine putting slabs in V8-owned
        // ArrayBuffers, as it does where a runtime refuses external ones (V8 sandbox).
        extends: true,
        test: {
          name: 'native-v8-memory',
          include: ['test/pool.test.ts', 'test/model.test.ts', 'test/differential.test.ts', 'test/errors.test.ts', 'test/compat.test.ts', 'test/pin.test.ts', 'test/transfer.test.ts', 'test/streams.test.ts', 'test/zeroed.test.ts'],
          env: { SLABPOOL_REQUIRE_NATIVE: requireNative, SLABPOOL_NATIVE_MEMORY: 'v8' },
        },
      },
      {
        // The same behaviour suites with the hugePages and prefault options on for every pool that
        // does not set them (slabpool/compat's too): a pool with them must behave exactly as one
        // without. test/model.test.ts runs pools with slabs of 2 MiB and more, so some slabs are
        // advised for huge pages here; test/large-pages.test.ts holds what the options report.
        extends: true,
        test: {
          name: 'huge-pages-prefault',
          include: ['test/pool.test.ts', 'test/model.test.ts', 'test/differential.test.ts', 'test/errors.test.ts', 'test/compat.test.ts', 'test/pin.test.ts', 'test/transfer.test.ts', 'test/streams.test.ts'],
          env: { SLABPOOL_REQUIRE_NATIVE: requireNative, SLABPOOL_HUGE_PAGES: '1', SLABPOOL_PREFAULT: '1' },
        },
      },
    ],
  },
});
