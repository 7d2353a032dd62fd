// vitest under wine (.ci/win32): Vite 8's resolver runs in rolldown's WebAssembly build there
// (the native win32 one needs bcryptprimitives.dll, which wine 8 lacks), and its WASI sandbox does
// not see drive paths such as Z:\, so the suites' '../lib/x.js' imports are resolved to their
// .ts files here, with node:fs. Plain JavaScript, for --configLoader native.
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const tsFromJs = {
  name: 'slabpool-ts-from-js',
  enforce: 'pre',
  resolveId(id, importer) {
    if (!importer || !id.startsWith('.') || !id.endsWith('.js')) return null;
    const ts = path.resolve(path.dirname(importer), `${id.slice(0, -3)}.ts`);
    return fs.existsSync(ts) ? ts : null;
  },
};

export default defineConfig({
  plugins: [tsFromJs],
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    // As vitest.config.mts: every suite on both backends, then the native backend again with its
    // slabs in V8-owned ArrayBuffers. A native addon that does not load fails the run.
    projects: [
      { extends: true, test: { name: 'slabpool', include: ['test/**/*.test.ts'], env: { SLABPOOL_REQUIRE_NATIVE: '1' } } },
      {
        extends: true,
        test: { name: 'native-v8-memory', include: ['test/pool.test.ts', 'test/errors.test.ts'], env: { SLABPOOL_REQUIRE_NATIVE: '1', SLABPOOL_NATIVE_MEMORY: 'v8' } },
      },
    ],
  },
});
