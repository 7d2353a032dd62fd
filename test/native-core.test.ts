import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The C++ allocator core tested alone, without Node: each program is compiled with the native
// sources it tests and run. Each prints its own 'N passed, N failed' line.
const root = path.resolve(__dirname, '..');
const native = (file: string) => path.join(root, 'native', file);
const test = (file: string) => path.join(root, 'test', 'native', file);
const CXX = process.env.CXX ?? 'g++';
const FLAGS = ['-std=c++17', '-Wall', '-Wextra', '-Werror'];
// The OS layer binding.gyp picks for this platform (.ci/win32 builds the Windows one with mingw).
const OS_LAYER = process.platform === 'win32' ? 'os_windows.cc' : 'os_posix.cc';

function runProgram(name: string, sources: string[], args: string[]): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-core-'));
  const exe = path.join(dir, name);
  try {
    execFileSync(CXX, [...FLAGS, '-O2', '-g', '-pthread', ...sources, '-o', exe], { stdio: 'pipe' });
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
    const passed = runProgram('slab_test', [native(OS_LAYER), native('run_index.cc'), native('slab.cc'), test('slab_test.cc')], ['60']);
    // 60 seeds of a 4,000-step walk, each step verified once, plus the scenario checks.
    expect(passed).toBeGreaterThan(60 * 4000);
  });

  it('the OS layer (huge pages, pre-faulting, reading back) passes its unit test program', () => {
    const passed = runProgram('os_test', [native(OS_LAYER), native('run_index.cc'), native('slab.cc'), test('os_test.cc')], []);
    expect(passed).toBeGreaterThan(25);
  });

  it('native/shared_region.cc passes its unit test program (threads included)', () => {
    const passed = runProgram('shared_region_test', [native(OS_LAYER), native('shared_region.cc'), test('shared_region_test.cc')], ['4', '20000', '500']);
    // Scenarios, 3 x 500 two-thread races, and 4 seeds of 4 threads x 20,000 operations, each checked.
    expect(passed).toBeGreaterThan(100_000);
  });

  it('native/run_index.cc passes its unit test program', () => {
    const passed = runProgram('run_index_test', [native(OS_LAYER), native('run_index.cc'), test('run_index_test.cc')], []);
    // 20 seeds of a 2,000-step walk, plus the scenario checks.
    expect(passed).toBeGreaterThan(20 * 2000);
  });
});

/**
 * A bug planted in one native source: `find` replaced by `replace`, which must be found exactly
 * once (if the source moved on, the mutant is updated rather than silently testing nothing).
 * `caughtBy` names the programs that must fail on it, and what the failure report must contain.
 */
interface Mutant {
  readonly name: string;
  readonly file: 'run_index.cc' | 'slab.cc' | 'os_posix.cc' | 'shared_region.cc';
  readonly find: string;
  readonly replace: string;
  readonly caughtBy: { readonly run_index_test?: RegExp; readonly slab_test?: RegExp; readonly os_test?: RegExp; readonly shared_region_test?: RegExp };
  /** Only where the kernel gives transparent huge pages (else skipped, saying so). */
  readonly needsHugePages?: boolean;
}

/** Why this machine cannot back memory with transparent huge pages, or null when it can. */
function noHugePages(): string | null {
  if (process.platform !== 'linux') return `${process.platform} is not Linux`;
  try {
    const mode = /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
    return mode === 'never' ? "the THP mode is 'never'" : null;
  } catch {
    return 'the kernel has no transparent huge pages';
  }
}

/**
 * What slab_test reports for a broken index: in its shadow walk, Allocator::check() naming a leaf
 * or node that disagrees with the bitmap, or (it reads the counters first) a largest-run counter
 * the index's root left wrong, or acquire_run missing the first fit; in its scenarios, an
 * acquire_run that is not the first fit.
 */
const SLAB_FINDING =
  /seed \d+ step \d+: (check\(\): (run index (leaf|node) \d+ holds \d+|engine records largest free run \d+)|acquire_run\(\d+\) gave -?\d+, first fit is -?\d+)|slab_test\.cc:\d+: a\.acquire_run\(\d+\) == \w+: -?\d+ vs -?\d+/;

const MUTANTS: readonly Mutant[] = [
  {
    name: 'set() stops below the root',
    file: 'run_index.cc',
    find: 'for (; i > 1; i >>= 1) {',
    replace: 'for (; i > 2; i >>= 1) {',
    caughtBy: { run_index_test: /check\(\): run index node 1 holds \d+, its children \d+/, slab_test: SLAB_FINDING },
  },
  {
    name: 'the descent of first_at_least goes right on a tie',
    file: 'run_index.cc',
    find: 'if (tree_[i] < k) i++;',
    replace: 'if (tree_[i] <= k) i++;',
    caughtBy: { run_index_test: /first_at_least\(\d+, \d+\) -?\d+, expected -?\d+/, slab_test: SLAB_FINDING },
  },
  {
    name: 'the climb of first_at_least stops one level up (wraps to the left edge)',
    file: 'run_index.cc',
    find: 'while (i & 1) i >>= 1;',
    replace: 'if (i & 1) i >>= 1;',
    // The allocator never searches from where a fit lies only to the left, so only the unit test sees it.
    caughtBy: { run_index_test: /first_at_least\(\d+, \d+\) \d+, expected -1/ },
  },
  {
    name: 'cover() loses the leaves when it grows',
    file: 'run_index.cc',
    find: 'std::memcpy(tree + size, tree_ + size_, leaf_count_ * sizeof(uint32_t));',
    replace: 'std::memcpy(tree + size, tree_ + size_, 0);',
    caughtBy: { run_index_test: /check\(\): run index leaf \d+ holds 0, the slabs [1-9]/, slab_test: SLAB_FINDING },
  },
  {
    name: "a leaf holds its word's last run start, not its longest",
    file: 'slab.cc',
    find: 'longest = std::max(longest, s.tags[(w << 5) + ctz32(starts)]);',
    replace: 'longest = s.tags[(w << 5) + ctz32(starts)];',
    caughtBy: { slab_test: SLAB_FINDING },
  },
  {
    name: "a run that goes or shrinks leaves its leaf as it was when it held the word's longest",
    file: 'slab.cc',
    find: 'if (length >= index_.get(leaf)) touch(s, a >> 5);',
    replace: 'if (length > index_.get(leaf)) touch(s, a >> 5);',
    caughtBy: { slab_test: SLAB_FINDING },
  },
  {
    name: "release forgets the word of the right neighbour's run start",
    file: 'slab.cc',
    find: 'if (right) shrank(s, a + k, right);',
    replace: '',
    caughtBy: { slab_test: SLAB_FINDING },
  },
  {
    name: 'decommit_all (destroy) decommits a pinned slab under native code',
    file: 'slab.cc',
    find: 'if (s->memory->pins.load(std::memory_order_acquire) == 0 && s->memory->refs',
    replace: 'if (s->memory->refs',
    caughtBy: { slab_test: /slab_test\.cc:\d+: expected all_bytes\(v0, bytes, 0x44\)/ },
  },
  {
    name: 'the last unpin of a slab given up leaves it committed',
    file: 'slab.cc',
    find: 'memory->retired.load(std::memory_order_acquire) &&',
    replace: 'false &&',
    caughtBy: { slab_test: /slab_test\.cc:\d+: expected all_bytes\(v0, bytes, 0\)/ },
  },
  {
    name: 'pre-faulting gives the kernel advice that populates nothing, and reports the pages populated',
    file: 'os_posix.cc',
    find: 'if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) == 0) return Prefault::kPopulated;',
    replace: 'if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_NORMAL) == 0) return Prefault::kPopulated;',
    caughtBy: { os_test: /os_test\.cc:\d+: resident_pages\(p, bytes\) == pages_spanned\(p, bytes\)/ },
  },
  {
    name: "reading smaps counts a mapping's huge pages beyond the range asked about",
    file: 'os_posix.cc',
    find: 'total += static_cast<int64_t>(std::min<uint64_t>(kb * 1024, overlap));',
    replace: 'total += static_cast<int64_t>(kb * 1024);',
    caughtBy: { os_test: /os_test\.cc:\d+: read_back\(p \+ huge, huge, os::ReadBack::kSmaps, &how\) == static_cast<int64_t>\(huge\)/ },
    needsHugePages: true,
  },
  {
    name: 'acquire() takes a reference whatever the size asked',
    file: 'shared_region.cc',
    find: 'r->bytes != expected_bytes ? Status::kSizeMismatch : Status::kOk',
    replace: 'r->bytes + expected_bytes == 0 ? Status::kSizeMismatch : Status::kOk', // never true
    caughtBy: { shared_region_test: /shared_region_test\.cc:\d+: sr::acquire\(a\.token, 4999, 2, &c\) == Status::kSizeMismatch: ok vs size mismatch/ },
  },
  {
    name: 'release() frees a region with one reference left',
    file: 'shared_region.cc',
    find: 'if (--(*r)->count == 0) {',
    replace: 'if (--(*r)->count <= 1) {',
    caughtBy: { shared_region_test: /shared_region_test\.cc:\d+: sr::release\(a\.id\) == Status::kOk: freed vs ok/ },
  },
  {
    name: "release_owner() drops the references but never frees a region",
    file: 'shared_region.cc',
    find: '      if ((*r)->count == 0) {\n        Region* region = *r;',
    replace: '      if (false) {\n        Region* region = *r;',
    caughtBy: { shared_region_test: /shared_region_test\.cc:\d+: dropped\.regions == size_t\{1\}: 0 vs 1/ },
  },
  {
    name: 'tokens are the plain counter (a round function of zero: the permutation is the identity)',
    file: 'shared_region.cc',
    find: 'return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);',
    replace: 'return static_cast<uint32_t>(0 * z);',
    caughtBy: { shared_region_test: /shared_region_test\.cc:\d+: expected bits > 28 && bits < 36/ },
  },
];

const execFileAsync = promisify(execFile);

async function compile(source: string, object: string, include: string[] = []): Promise<void> {
  await execFileAsync(CXX, [...FLAGS, '-O1', '-pthread', ...include.flatMap((dir) => ['-I', dir]), '-c', source, '-o', object]);
}

/** Runs a test program; what it counted and printed, a crash or a hang counting as a failure. */
async function outcome(exe: string, args: string[]): Promise<{ failed: number; report: string }> {
  try {
    const { stdout } = await execFileAsync(exe, args, { timeout: 60_000, maxBuffer: 1 << 26 });
    return { failed: Number(/^\d+ passed, (\d+) failed$/m.exec(stdout)?.[2] ?? NaN), report: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; signal?: string | null };
    const stdout = e.stdout ?? '';
    const failed = Number(/^\d+ passed, (\d+) failed$/m.exec(stdout)?.[2] ?? 1);
    return { failed, report: `${e.stderr ?? ''}${stdout}${e.signal ? ` (killed by ${e.signal})` : ''}` };
  }
}

describe('a bug planted in the run index, its upkeep, slab pins, the OS layer or the shared region registry is caught by the native unit tests', () => {
  it('fails run_index_test, slab_test, os_test or shared_region_test on every mutant, for the reason each names', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-mutants-'));
    const obj = (name: string) => path.join(dir, `${name}.o`);
    try {
      // The unchanged parts once; each mutant recompiles only the file it changes.
      await Promise.all([
        compile(native(OS_LAYER), obj('os_posix')),
        compile(native('run_index.cc'), obj('run_index')),
        compile(native('slab.cc'), obj('slab')),
        compile(test('run_index_test.cc'), obj('run_index_test')),
        compile(test('slab_test.cc'), obj('slab_test')),
        compile(test('os_test.cc'), obj('os_test')),
        compile(native('shared_region.cc'), obj('shared_region')),
        compile(test('shared_region_test.cc'), obj('shared_region_test')),
      ]);
      for (const [i, mutant] of MUTANTS.entries()) {
        const skip = mutant.needsHugePages ? noHugePages() : null;
        if (skip !== null) {
          console.log(`skipped the mutant "${mutant.name}": ${skip}`);
          continue;
        }
        const original = fs.readFileSync(native(mutant.file), 'utf8');
        expect(original.split(mutant.find).length - 1, `${mutant.name}: '${mutant.find}' in native/${mutant.file}`).toBe(1);
        const source = path.join(dir, `mutant${i}_${mutant.file}`);
        fs.writeFileSync(source, original.replace(mutant.find, mutant.replace));
        const mutated = obj(`mutant${i}`);
        await compile(source, mutated, [path.join(root, 'native')]); // its own headers from native/
        const objects = (...names: string[]) => names.map((name) => (name === mutant.file.replace('.cc', '') ? mutated : obj(name)));
        for (const [program, reason] of Object.entries(mutant.caughtBy)) {
          const exe = path.join(dir, `${program}_mutant${i}`);
          const parts =
            program === 'run_index_test'
              ? ['os_posix', 'run_index', 'run_index_test']
              : program === 'shared_region_test'
                ? ['os_posix', 'shared_region', 'shared_region_test']
                : ['os_posix', 'run_index', 'slab', program];
          await execFileAsync(CXX, [...objects(...parts), '-pthread', '-o', exe]);
          const args = program === 'slab_test' ? ['6'] : program === 'shared_region_test' ? ['1', '2000', '50'] : [];
          const { failed, report } = await outcome(exe, args);
          expect(failed, `${mutant.name}: ${program} did not fail\n${report.slice(0, 2000)}`).toBeGreaterThan(0);
          expect(report, `${mutant.name}: ${program}`).toMatch(reason);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
