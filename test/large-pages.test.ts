import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EnginePages } from '../lib/engine.js';
import { hugePagesStats, prefaultStats, type PagesContext } from '../lib/pages.js';
import { BACKENDS, makePool, thrownBy } from './helpers.js';

/*
 * The hugePages and prefault options (issue 18): validation, their defaults from the environment,
 * what stats() reports on each backend and in V8 memory, and that they take effect: pages resident
 * at construction, slabs at the huge page alignment, huge pages read back from the kernel and
 * checked against /proc/self/smaps. That a pool behaves exactly as without them is held by the
 * behaviour suites re-run with both on (the huge-pages-prefault project of vitest.config.mts) and
 * by test/model.test.ts's pools of 2 MiB slabs with each option. The C++ side: test/native/os_test.cc.
 */

const MiB = 2 ** 20;
const root = path.resolve(__dirname, '..');
const sanitized = process.env.SLABPOOL_SANITIZE === '1'; // ASAN's shadow memory makes RSS meaningless

/** Why this process cannot get transparent huge pages, or null when it can. */
function noHugePages(): string | null {
  if (process.platform !== 'linux') return `${process.platform} is not Linux`;
  let enabled: string;
  try {
    enabled = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  } catch {
    return 'the kernel has no transparent huge pages';
  }
  return /\[never\]/.test(enabled) ? "the THP mode is 'never' (/sys/kernel/mm/transparent_hugepage/enabled)" : null;
}
const thpMissing = noHugePages();
const HUGE = thpMissing === null ? Number(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/hpage_pmd_size', 'utf8')) : 0;
if (thpMissing !== null) console.log(`skipping the huge page take-up tests: ${thpMissing}`);

/** Linux 5.14 or later: MADV_POPULATE_WRITE. */
const populates = process.platform === 'linux' && (([major, minor]) => major! > 5 || (major === 5 && minor! >= 14))(os.release().split('.').map(Number));

/** Runs a script in a fresh `node --expose-gc` (slabpool from dist/, as npm test builds it) and parses the JSON line it prints last. */
function childJson(script: string, env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  expect({ status: run.status, signal: run.signal }, run.stderr).toEqual({ status: 0, signal: null });
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** AnonHugePages of the mapping holding `address`, read here from /proc/self/smaps, and the mapping's range. */
function smapsAt(address: bigint): { start: bigint; end: bigint; hugeBytes: number } | null {
  let current: { start: bigint; end: bigint } | null = null;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      const start = BigInt(`0x${range[1]}`), end = BigInt(`0x${range[2]}`);
      current = start <= address && address < end ? { start, end } : null;
      continue;
    }
    const huge = /^AnonHugePages:\s+(\d+) kB/.exec(line);
    if (huge && current) return { ...current, hugeBytes: Number(huge[1]) * 1024 };
  }
  return null;
}

const OFF = { requested: false, inEffect: false, reason: 'not requested (the hugePages option is off)', pageBytes: 0, advisedBytes: 0, hugeBytes: null, readBack: null };
const PREFAULT_OFF = { requested: false, inEffect: false, method: null, reason: 'not requested (the prefault option is off)', prefaultedBytes: 0 };

const saved = { SLABPOOL_HUGE_PAGES: process.env.SLABPOOL_HUGE_PAGES, SLABPOOL_PREFAULT: process.env.SLABPOOL_PREFAULT, SLABPOOL_NATIVE_MEMORY: process.env.SLABPOOL_NATIVE_MEMORY };
afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe.each(BACKENDS)('the hugePages and prefault options on the %s backend', (backend) => {
  it('take booleans only, naming the option, and default to the environment', () => {
    for (const [name, value, received] of [
      ['hugePages', 'yes', "'yes' of type string"],
      ['prefault', 1, '1 of type number'],
      ['hugePages', null, 'null'],
    ] as const) {
      const err = thrownBy(() => makePool(backend, { blockSize: 4, numBlocks: 8, [name]: value } as never));
      expect({ name: err.name, code: err.code, message: err.message }).toEqual({
        name: 'TypeError',
        code: 'ERR_SLABPOOL_INVALID_ARG',
        message: `Expected boolean for ${name} but received ${received}`,
      });
    }
    const requested = (options: object = {}) => {
      const s = makePool(backend, { blockSize: 4, numBlocks: 8, ...options }).stats();
      return [s.hugePages.requested, s.prefault.requested];
    };
    delete process.env.SLABPOOL_HUGE_PAGES;
    delete process.env.SLABPOOL_PREFAULT;
    expect(requested()).toEqual([false, false]);
    process.env.SLABPOOL_HUGE_PAGES = '1';
    expect(requested()).toEqual([true, false]);
    process.env.SLABPOOL_PREFAULT = '1';
    expect(requested()).toEqual([true, true]);
    expect(requested({ hugePages: false, prefault: false })).toEqual([false, false]); // the option wins
    process.env.SLABPOOL_HUGE_PAGES = 'true'; // '1' or 'true' turn it on, as SLABPOOL_DETACH (env.ts)
    process.env.SLABPOOL_PREFAULT = '0';
    expect(requested()).toEqual([true, false]);
    process.env.SLABPOOL_HUGE_PAGES = 'false';
    expect(requested()).toEqual([false, false]);
    expect(requested({ hugePages: true, prefault: true })).toEqual([true, true]);
    // Any other value is refused loudly, naming the variable.
    process.env.SLABPOOL_PREFAULT = 'yes';
    const err = thrownBy(() => makePool(backend, { blockSize: 4, numBlocks: 8 }));
    expect({ code: err.code, message: err.message }).toMatchObject({ code: 'ERR_SLABPOOL_INVALID_ARG', message: expect.stringContaining('SLABPOOL_PREFAULT') });
  });

  it('report "not requested" when off, and ask the engine nothing', () => {
    const pool = makePool(backend, { blockSize: 1024, numBlocks: 512, hugePages: false, prefault: false });
    const s = pool.stats();
    expect(s.hugePages).toEqual(OFF);
    expect(s.prefault).toEqual(PREFAULT_OFF);
    pool.destroy();
  });

  it('pre-fault every slab as it is added: resident at once, in a fresh process', () => {
    // RSS in a child with gc() before each reading (in this process, the collection of other
    // tests' ArrayBuffers moves it by tens of MB); on native also the kernel's own page map of the
    // slab (/proc/self/pagemap, bit 63: present).
    const out = childJson(`
      const fs = require('node:fs');
      const { MemoryPool } = require('slabpool');
      const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
      const present = (pool) => {
        if (pool.backend !== 'native') return null;
        const b = pool.getBlock();
        const first = pool.addressOf(b) / 4096n;
        pool.returnBlock(b);
        const pages = pool.stats().reservedBytes / 4096;
        const map = Buffer.alloc(8 * pages);
        const fd = fs.openSync('/proc/self/pagemap', 'r');
        fs.readSync(fd, map, 0, map.length, Number(first * 8n));
        fs.closeSync(fd);
        let n = 0;
        for (let i = 0; i < pages; i++) n += Number(map.readBigUInt64LE(8 * i) >> 63n);
        return n;
      };
      const options = { blockSize: 1024, numBlocks: 8192, backend: ${JSON.stringify(backend)} };
      const r0 = rss();
      const plain = new MemoryPool({ ...options, prefault: false });
      const r1 = rss();
      const prefaulted = new MemoryPool({ ...options, prefault: true });
      const r2 = rss();
      console.log(JSON.stringify({ plain: r1 - r0, prefaulted: r2 - r1, presentPlain: present(plain), presentPrefaulted: present(prefaulted) }));
    `);
    if (!sanitized) {
      expect(out.plain, 'a pool without prefault costs no resident memory until written').toBeLessThan(16 * MiB);
      expect(out.prefaulted, 'a pre-faulted pool is resident at construction').toBeGreaterThan(56 * MiB);
    }
    if (backend === 'native' && process.platform === 'linux') expect([out.presentPlain, out.presentPrefaulted]).toEqual([0, (64 * MiB) / 4096]);
  });

  it('reports pre-faulting per slab, through growth and trim, with blocks as any pool gives them', () => {
    const size = 64 * MiB;
    const pool = makePool(backend, { blockSize: 1024, numBlocks: size / 8192, prefault: true, grow: true });
    const s = pool.stats();
    expect(s.prefault).toMatchObject({ requested: true, inEffect: true, prefaultedBytes: size, method: backend === 'js' ? 'touch' : populates ? 'populate' : 'touch' });
    expect(s.prefault.reason).toMatch(
      backend === 'js'
        ? /^one write per 4096-byte page of each slab's ArrayBuffer as the slab is added: the JavaScript fallback cannot ask the kernel/
        : populates
          ? /^each slab populated by the kernel as it is added \(madvise\(MADV_POPULATE_WRITE\)\)$/
          : /touched, one write per page/,
    );
    expect(s.hugePages).toEqual(OFF);
    const block = pool.getBlock()!;
    expect(block.every((x) => x === 0)).toBe(true);
    // A slab added by growth is pre-faulted too; a trimmed one no longer counts.
    const held = Array.from({ length: pool.numBlocks }, () => pool.getBlock()!);
    expect(pool.stats().prefault.prefaultedBytes).toBe(pool.stats().reservedBytes);
    expect(pool.stats().reservedBytes).toBe(2 * size);
    pool.returnBlock(block);
    for (const b of held) pool.returnBlock(b);
    expect(pool.trim()).toBe(size);
    expect(pool.stats().prefault).toMatchObject({ inEffect: true, prefaultedBytes: size });
    pool.check();
    pool.destroy();
  });

  it('report huge pages honestly where they cannot be had on this backend, and otherwise act as without', () => {
    const pool = makePool(backend, { blockSize: 1024, numBlocks: 512, hugePages: true }); // 4 MiB slabs
    const s = pool.stats();
    expect(s.hugePages.requested).toBe(true);
    if (backend === 'js') {
      expect(s.hugePages).toEqual({ ...OFF, requested: true, reason: "not in effect: the JavaScript fallback's slabs are ArrayBuffers that V8 allocates, which JavaScript cannot place at a huge page's alignment or advise" });
    } else if (thpMissing !== null) {
      expect(s.hugePages).toMatchObject({ inEffect: false, hugeBytes: null, advisedBytes: 0 });
      expect(s.hugePages.reason).toMatch(/^not in effect: /);
    } else {
      expect(s.hugePages).toMatchObject({ inEffect: true, pageBytes: HUGE, advisedBytes: 4 * MiB });
    }
    expect(s.prefault).toEqual(PREFAULT_OFF);
    const b = pool.getBlock()!;
    b.fill(2.5);
    expect(pool.indexOf(b)).toBe(0);
    pool.check();
    pool.destroy();
  });
});

describe.skipIf(!BACKENDS.includes('native'))('native slabs in V8-owned memory (SLABPOOL_NATIVE_MEMORY=v8)', () => {
  it('are pre-faulted by the OS layer as native ones, and say why huge pages are not in effect', () => {
    process.env.SLABPOOL_NATIVE_MEMORY = 'v8';
    const pool = makePool('native', { blockSize: 1024, numBlocks: 8192, hugePages: true, prefault: true });
    const s = pool.stats();
    expect(s.memory).toBe('v8');
    if (!sanitized) {
      const out = childJson(`
        const { MemoryPool } = require('slabpool');
        const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
        const r0 = rss();
        const pool = new MemoryPool({ blockSize: 1024, numBlocks: 8192, prefault: true, backend: 'native' });
        console.log(JSON.stringify({ memory: pool.stats().memory, grown: rss() - r0 }));
      `, { SLABPOOL_NATIVE_MEMORY: 'v8' });
      expect(out.memory).toBe('v8');
      expect(out.grown).toBeGreaterThan(56 * MiB);
    }
    expect(s.prefault).toMatchObject({ inEffect: true, prefaultedBytes: 64 * MiB, method: populates ? 'populate' : 'touch' });
    expect(s.prefault.reason).toMatch(/^the V8-owned ArrayBuffer of each slab /);
    expect(s.hugePages).toEqual({
      ...OFF,
      requested: true,
      reason: "not in effect: the slabs are V8-owned ArrayBuffers (SLABPOOL_NATIVE_MEMORY=v8, or a runtime that refuses external ones), which slabpool cannot place at a huge page's alignment or advise",
    });
    pool.check();
    pool.destroy();
  });
});

describe.skipIf(!BACKENDS.includes('native') || thpMissing !== null)('huge pages on the native backend, read back from the kernel', () => {
  it('map a slab at the huge page alignment, advise it, and report the huge pages the kernel gives as they come and go', () => {
    const pool = makePool('native', { blockSize: 1024, numBlocks: 1024, grow: true }); // a plain neighbour first
    const huge = makePool('native', { blockSize: 1024, numBlocks: 1024, hugePages: true, grow: true }); // 8 MiB slabs
    const s0 = huge.stats().hugePages;
    expect(s0).toMatchObject({ requested: true, inEffect: true, pageBytes: HUGE, advisedBytes: 8 * MiB, hugeBytes: 0 });
    expect(['pagemap', 'smaps']).toContain(s0.readBack);
    expect(s0.reason).toMatch(new RegExp(`^1 of 1 slabs mapped at ${HUGE}-byte alignment and advised with madvise\\(MADV_HUGEPAGE\\) \\(THP mode '(madvise|always)`));
    const blocks = Array.from({ length: 1024 }, () => huge.getBlock()!);
    const address = huge.addressOf(blocks[0]!)!;
    expect(address % BigInt(HUGE)).toBe(0n);
    for (const b of blocks) b.fill(1);
    const s1 = huge.stats().hugePages;
    // The kernel may give fewer when short of free huge pages; never more than the slab.
    expect(s1.hugeBytes).toBeGreaterThan(0);
    expect(s1.hugeBytes).toBeLessThanOrEqual(8 * MiB);
    expect(s1.hugeBytes! % HUGE).toBe(0);
    // The same figure, read here from /proc/self/smaps: the slab's mapping is its own (advised,
    // it does not merge with plain neighbours), so its AnonHugePages is the slab's.
    const smaps = smapsAt(address);
    expect(smaps).not.toBeNull();
    expect(smaps!.hugeBytes).toBeGreaterThanOrEqual(s1.hugeBytes!);
    if (smaps!.start === address && smaps!.end === address + BigInt(8 * MiB)) expect(smaps!.hugeBytes).toBe(s1.hugeBytes);
    // The plain pool beside it has none, however written: THP mode 'madvise' backs only what is advised.
    for (let b = pool.getBlock(); b !== null && pool.stats().inUseBlocks <= 1024; b = pool.getBlock()) b.fill(1);
    expect(pool.stats().hugePages.hugeBytes).toBeNull(); // not requested: not read
    // A second slab by growth is advised too; trim() gives its huge pages back.
    const more = Array.from({ length: 512 }, () => huge.getBlock()!);
    for (const b of more) b.fill(3);
    const s2 = huge.stats().hugePages;
    expect(s2).toMatchObject({ inEffect: true, advisedBytes: 16 * MiB });
    expect(s2.reason).toMatch(/^2 of 2 slabs mapped/);
    expect(s2.hugeBytes).toBeGreaterThan(s1.hugeBytes!);
    for (const b of more) huge.returnBlock(b);
    expect(huge.trim()).toBe(8 * MiB);
    expect(huge.stats().hugePages).toMatchObject({ advisedBytes: 8 * MiB, hugeBytes: s1.hugeBytes });
    expect(blocks.every((b) => b.every((x) => x === 1))).toBe(true);
    huge.check();
    huge.destroy();
    pool.destroy();
  });

  it('with prefault, the slab is backed by huge pages before anything is written', () => {
    const pool = makePool('native', { blockSize: 1024, numBlocks: 1024, hugePages: true, prefault: true });
    const s = pool.stats();
    expect(s.hugePages.hugeBytes).toBeGreaterThan(0);
    expect(s.prefault).toMatchObject({ inEffect: true, prefaultedBytes: 8 * MiB });
    pool.destroy();
  });

  it('leave slabs under a huge page as they are, and say so', () => {
    const small = makePool('native', { blockSize: 1024, numBlocks: 128, hugePages: true }); // 1 MiB
    expect(small.stats().hugePages).toEqual({
      requested: true,
      inEffect: false,
      reason: `not in effect: every slab is smaller than one huge page (${HUGE} bytes), so none fits in it; slabs of numBlocks * stride >= ${HUGE} bytes gain from it`,
      pageBytes: HUGE,
      advisedBytes: 0,
      hugeBytes: 0,
      readBack: null,
    });
    small.destroy();
    // A full slab of 2 MiB and a last one of 1 MiB (maxBlocks): the first advised, the last not.
    const mixed = makePool('native', { blockSize: 1024, numBlocks: HUGE / 8192, grow: true, maxBlocks: (1.5 * HUGE) / 8192, hugePages: true });
    const blocks = Array.from({ length: mixed.stats().slabBlocks + 1 }, () => mixed.getBlock()!);
    const s = mixed.stats().hugePages;
    expect(s).toMatchObject({ inEffect: true, advisedBytes: HUGE });
    expect(s.reason).toMatch(/^1 of 2 slabs mapped .*; 1 smaller than a huge page left as they are; /);
    expect(blocks.length).toBe(HUGE / 8192 + 1);
    mixed.destroy();
  });
});

describe('the words of stats().hugePages and .prefault for what this machine cannot show', () => {
  // The OS layer's answers on other systems (native/os_posix.cc, native/os_windows.cc), fed to the
  // pool's wording as the native engine reports them.
  const pages = (over: Partial<EnginePages>): EnginePages => ({
    pageBytes: 2 * MiB,
    mode: 'madvise',
    whyNot: null,
    advisedSlabs: 0,
    advisedBytes: 0,
    tooSmallSlabs: 0,
    unavailableSlabs: 0,
    refusedSlabs: 0,
    refusedError: null,
    populatedBytes: 0,
    touchedBytes: 0,
    hugeBytes: null,
    readBack: null,
    ...over,
  });
  const native = (p: EnginePages): PagesContext => ({ backend: 'native', memory: 'external', slabs: 2, reservedBytes: 8 * MiB, pages: p });
  const never = "transparent huge pages are off on this system (/sys/kernel/mm/transparent_hugepage/enabled is 'never')";
  const windows = 'Windows gives large pages only to a process holding SeLockMemoryPrivilege, and never pages them out; slabpool does not ask for them';

  it.each([
    ["THP mode 'never'", pages({ pageBytes: 0, mode: 'never', whyNot: never, unavailableSlabs: 2 }), `not in effect: ${never}`],
    ['Windows', pages({ pageBytes: 0, mode: null, whyNot: windows, unavailableSlabs: 2 }), `not in effect: ${windows}`],
    ['macOS', pages({ pageBytes: 0, mode: null, whyNot: 'macOS has no transparent huge pages', unavailableSlabs: 2 }), 'not in effect: macOS has no transparent huge pages'],
  ])('%s: not in effect, the OS layer saying why, nothing read back', (_name, p, reason) => {
    expect(hugePagesStats(true, native(p))).toEqual({ ...OFF, requested: true, reason });
  });

  it('a kernel that refuses the advice, and one whose take-up cannot be read', () => {
    const refused = hugePagesStats(true, native(pages({ refusedSlabs: 2, refusedError: 'EINVAL', hugeBytes: 0, readBack: 'smaps' })));
    expect(refused).toMatchObject({ inEffect: false, hugeBytes: 0, readBack: 'smaps' });
    expect(refused.reason).toBe('not in effect: the kernel refused to map or advise the slabs (EINVAL), so they are mapped as without the option');
    const unread = hugePagesStats(true, native(pages({ advisedSlabs: 2, advisedBytes: 8 * MiB, mode: 'always' })));
    expect(unread).toMatchObject({ inEffect: true, hugeBytes: null, readBack: null, advisedBytes: 8 * MiB });
    expect(unread.reason).toBe(
      "2 of 2 slabs mapped at 2097152-byte alignment and advised with madvise(MADV_HUGEPAGE) (THP mode 'always': the kernel may give huge pages to unadvised memory too); hugeBytes is what the kernel backs with huge pages now; what the kernel gave cannot be read back here (neither PAGEMAP_SCAN nor /proc/self/smaps answered)",
    );
  });

  it('pre-faulting by a write per page where the kernel has no MADV_POPULATE_WRITE', () => {
    const s = prefaultStats(true, native(pages({ touchedBytes: 8 * MiB })));
    expect(s).toMatchObject({ requested: true, inEffect: true, method: 'touch', prefaultedBytes: 8 * MiB });
    expect(s.reason).toMatch(/^each slab touched, one write per page, as it is added: .*without MADV_POPULATE_WRITE \(Linux before 5\.14, or not Linux\)/);
  });
});
