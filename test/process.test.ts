import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './helpers.js';

// These run the built package (dist/, through its exports map) in child processes, so a crash or
// an exhausted address space fails one test instead of the runner.
const root = path.resolve(__dirname, '..');

function node(args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('package entry points', () => {
  it("works with require('slabpool')", () => {
    const out = node([
      '-e',
      `const m = require('slabpool');
       const pool = new m.MemoryPool({ blockSize: [100], numBlocks: 20 });
       const b = pool.getBlock(); b[0] = 2; pool.returnBlock(b);
       console.log(JSON.stringify({ keys: Object.keys(m).sort(), len: b.length, eff: pool.getEfficiency(), backend: m.backendInfo().backend }));`,
    ]);
    const result = JSON.parse(out);
    expect(result.keys).toEqual(['Lease', 'MemoryPool', 'SharedPool', 'backendInfo']);
    expect(result).toMatchObject({ len: 100, eff: 0 });
    expect(['js', 'native']).toContain(result.backend);
  });

  it("works with import { MemoryPool } from 'slabpool', sharing one instance with require", () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { MemoryPool, Lease, backendInfo } from 'slabpool';
       import { createRequire } from 'node:module';
       const cjs = createRequire(process.cwd() + '/')('slabpool');
       const pool = new MemoryPool({ blockSize: [100], numBlocks: 20 });
       const lease = pool.lease();
       const len = lease.block.length;
       lease[Symbol.dispose]();
       console.log(JSON.stringify({ same: cjs.MemoryPool === MemoryPool && cjs.Lease === Lease && cjs.backendInfo === backendInfo, len, lease: lease instanceof Lease, inUse: pool.stats().inUseBlocks }));`,
    ]).trim();
    expect(JSON.parse(out)).toEqual({ same: true, len: 100, lease: true, inUse: 0 });
  });
});

// AddressSanitizer reserves terabytes of address space, so no address-space limit can run under it.
describe.skipIf(process.env.SLABPOOL_SANITIZE === '1').each(BACKENDS)('out of memory on the %s backend', (backend) => {
  it('fails a slab the machine cannot back with ERR_SLABPOOL_OUT_OF_MEMORY and leaves the pool intact', () => {
    // 3 GB of address space: a 4 GiB slab cannot be had, and growth stops somewhere below it.
    const script = `
      const { MemoryPool } = require('slabpool');
      const out = {};
      try { new MemoryPool({ blockSize: 2 ** 19, numBlocks: 1024, backend: '${backend}' }); } catch (e) { out.construct = { name: e.name, code: e.code, message: e.message }; }
      const pool = new MemoryPool({ blockSize: 2 ** 19, numBlocks: 64, grow: true, backend: '${backend}' });
      let before;
      try { for (;;) { before = pool.stats(); pool.getBlock()[0] = 1; } } catch (e) { out.grow = { name: e.name, code: e.code, message: e.message }; }
      pool.check();
      out.unchanged = JSON.stringify(pool.stats()) === JSON.stringify(before);
      out.capacity = pool.stats().capacityBlocks;
      console.log(JSON.stringify(out));`;
    const out = execFileSync('bash', ['-c', `ulimit -v 3000000 && exec "${process.execPath}" -e "$0"`, script], { cwd: root, encoding: 'utf8' });
    const result = JSON.parse(out);
    expect(result.construct).toEqual({
      name: 'RangeError',
      code: 'ERR_SLABPOOL_OUT_OF_MEMORY',
      message: 'Could not allocate 4294967296 bytes for a slab of 1024 blocks: the machine cannot back this request',
    });
    expect(result.grow).toEqual({
      name: 'RangeError',
      code: 'ERR_SLABPOOL_OUT_OF_MEMORY',
      message: 'Could not allocate 268435456 bytes for a slab of 64 blocks: the machine cannot back this request',
    });
    expect(result.unchanged).toBe(true);
    expect(result.capacity).toBeGreaterThanOrEqual(64);
  });
});
