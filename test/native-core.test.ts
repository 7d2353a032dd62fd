import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

// The C++ allocator core tested alone, without Node: each program is compiled with the native
// sources it tests and run. Each prints its own 'N passed, N failed' line.
const root = path.resolve(__dirname, '..');
const native = (file: string) => path.join(root, 'native', file);
const test = (file: string) => path.join(root, 'test', 'native', file);

function runProgram(name: string, sources: string[], args: string[]): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-core-'));
  const exe = path.join(dir, name);
  try {
    execFileSync(process.env.CXX ?? 'g++', ['-std=c++17', '-O2', '-g', '-Wall', '-Wextra', '-Werror', ...sources, '-o', exe], { stdio: 'pipe' });
    const out = execFileSync(exe, args, { encoding: 'utf8' });
    const match = /^(\d+) passed, (\d+) failed$/m.exec(out);
    expect(match, out).not.toBeNull();
    expect(Number(match![2])).toBe(0);
    return Number(match![1]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the native allocator core on its own', () => {
  it('native/slab.cc passes its unit test program', () => {
    const passed = runProgram('slab_test', [native('os_posix.cc'), native('run_index.cc'), native('slab.cc'), test('slab_test.cc')], ['60']);
    // 60 seeds of a 4,000-step walk, each step verified once, plus the scenario checks.
    expect(passed).toBeGreaterThan(60 * 4000);
  });

  it('native/run_index.cc passes its unit test program', () => {
    const passed = runProgram('run_index_test', [native('os_posix.cc'), native('run_index.cc'), test('run_index_test.cc')], []);
    // 20 seeds of a 2,000-step walk, plus the scenario checks.
    expect(passed).toBeGreaterThan(20 * 2000);
  });
});
