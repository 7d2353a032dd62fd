import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// The C++ allocator core tested alone, without Node: compiles test/native/slab_test.cc with
// native/slab.cc and runs it. It prints its own 'N passed, N failed' line.
const root = path.resolve(__dirname, '..');

describe('native/slab.cc on its own', () => {
  it('passes its unit test program', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-core-'));
    const exe = path.join(dir, 'slab_test');
    try {
      execFileSync(process.env.CXX ?? 'g++', [
        '-std=c++17', '-O2', '-g', '-Wall', '-Wextra', '-Werror',
        path.join(root, 'native', 'slab.cc'), path.join(root, 'test', 'native', 'slab_test.cc'), '-o', exe,
      ], { stdio: 'pipe' });
      const out = execFileSync(exe, ['60'], { encoding: 'utf8' });
      const match = /^(\d+) passed, (\d+) failed$/m.exec(out);
      expect(match, out).not.toBeNull();
      expect(Number(match![2])).toBe(0);
      // 60 seeds of a 4,000-step walk, each step verified once, plus the scenario checks.
      expect(Number(match![1])).toBeGreaterThan(60 * 4000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
