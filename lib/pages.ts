import type { EnginePages } from './engine.js';
import type { Backend } from './options.js';
import type { HugePagesStats, PrefaultStats } from './stats.js';

/*
 * The hugePages and prefault options as the pool reports them (stats().hugePages, .prefault), and
 * the one thing the JavaScript fallback can do to its pages itself (touch them). The mechanism of
 * the native backend is the OS layer's (native/os.h); this file only words what it reports.
 */

/** The page size the fallback touches by: the smallest in use (x86-64, arm64 with 4 KiB pages); larger pages are touched more than once, harmlessly. */
export const TOUCH_BYTES = 4096;

/**
 * The fallback's pre-fault: one write per 4 KiB page of a new ArrayBuffer, so that the kernel
 * backs every page now rather than at the first write in a hot loop. V8 allocates a large
 * ArrayBuffer zeroed by the kernel (calloc over mmap), untouched; writing the zero already there
 * changes nothing but that. A write, not a read: a read would map the shared zero page, and the
 * first real write fault again.
 */
export function touchPages(buffer: ArrayBuffer): void {
  const bytes = new Uint8Array(buffer);
  const n = bytes.length;
  for (let i = 0; i < n; i += TOUCH_BYTES) bytes[i] = 0;
  if (n > 0) bytes[n - 1] = 0;
}

/** What the pool knows about itself for these reports. */
export interface PagesContext {
  readonly backend: Backend;
  readonly memory: 'external' | 'v8';
  readonly slabs: number;
  readonly reservedBytes: number;
  /** Engine.pages() when an option is on, else null (nothing is asked of the engine). */
  readonly pages: EnginePages | null;
}

const V8_SLABS = "the slabs are V8-owned ArrayBuffers (SLABPOOL_NATIVE_MEMORY=v8, or a runtime that refuses external ones), which slabpool cannot place at a huge page's alignment or advise";
const FALLBACK_SLABS = "the JavaScript fallback's slabs are ArrayBuffers that V8 allocates, which JavaScript cannot place at a huge page's alignment or advise";

export function hugePagesStats(requested: boolean, c: PagesContext): HugePagesStats {
  // One key order for every case, as JSON shows it.
  const report = (inEffect: boolean, reason: string, figures?: { pageBytes: number; advisedBytes: number; hugeBytes: number | null; readBack: 'pagemap' | 'smaps' | null }): HugePagesStats => ({
    requested,
    inEffect,
    reason,
    pageBytes: figures?.pageBytes ?? 0,
    advisedBytes: figures?.advisedBytes ?? 0,
    hugeBytes: figures?.hugeBytes ?? null,
    readBack: figures?.readBack ?? null,
  });
  const p = c.pages;
  if (!requested || p === null) return report(false, 'not requested (the hugePages option is off)');
  if (c.backend === 'js') return report(false, `not in effect: ${FALLBACK_SLABS}`);
  if (c.memory === 'v8') return report(false, `not in effect: ${V8_SLABS}`);
  if (p.pageBytes === 0) return report(false, `not in effect: ${p.whyNot ?? 'this system offers no huge pages'}`);
  const read = { pageBytes: p.pageBytes, advisedBytes: p.advisedBytes, hugeBytes: p.hugeBytes, readBack: p.readBack };
  const unread = p.hugeBytes === null ? '; what the kernel gave cannot be read back here (neither PAGEMAP_SCAN nor /proc/self/smaps answered)' : '';
  if (p.advisedSlabs === 0) {
    if (p.refusedSlabs > 0) return report(false, `not in effect: the kernel refused to map or advise the slabs (${p.refusedError ?? 'no error given'}), so they are mapped as without the option${unread}`, read);
    if (p.unavailableSlabs > 0) return report(false, `not in effect: ${p.whyNot ?? 'this system offered no huge pages when the slabs were made'}`);
    // Every slab is smaller than one huge page: none fits in it, so none backs it, whatever the mode.
    return report(false, `not in effect: every slab is smaller than one huge page (${p.pageBytes} bytes), so none fits in it; slabs of numBlocks * stride >= ${p.pageBytes} bytes gain from it`, { ...read, hugeBytes: 0, readBack: null });
  }
  const others = [
    p.tooSmallSlabs > 0 ? `${p.tooSmallSlabs} smaller than a huge page left as they are` : '',
    p.refusedSlabs > 0 ? `${p.refusedSlabs} refused by the kernel (${p.refusedError ?? 'no error given'})` : '',
    p.unavailableSlabs > 0 ? `${p.unavailableSlabs} made while the system offered none` : '',
  ].filter((s) => s !== '');
  const mode = p.mode === 'always' ? " (THP mode 'always': the kernel may give huge pages to unadvised memory too)" : p.mode === null ? '' : ` (THP mode '${p.mode}')`;
  const reason = `${p.advisedSlabs} of ${c.slabs} slabs mapped at ${p.pageBytes}-byte alignment and advised with madvise(MADV_HUGEPAGE)${mode}${others.length > 0 ? `; ${others.join(', ')}` : ''}; hugeBytes is what the kernel backs with huge pages now${unread}`;
  return report(true, reason, read);
}

export function prefaultStats(requested: boolean, c: PagesContext): PrefaultStats {
  const p = c.pages;
  if (!requested || p === null) return { requested, inEffect: false, method: null, reason: 'not requested (the prefault option is off)', prefaultedBytes: 0 };
  const prefaultedBytes = p.populatedBytes + p.touchedBytes;
  const inEffect = prefaultedBytes === c.reservedBytes;
  const method = p.touchedBytes > 0 ? 'touch' : 'populate';
  let reason: string;
  if (c.backend === 'js') {
    reason = `one write per ${TOUCH_BYTES}-byte page of each slab's ArrayBuffer as the slab is added: the JavaScript fallback cannot ask the kernel to populate memory V8 allocated`;
  } else {
    const where = c.memory === 'v8' ? "the V8-owned ArrayBuffer of each slab" : 'each slab';
    reason =
      method === 'populate'
        ? `${where} populated by the kernel as it is added (madvise(MADV_POPULATE_WRITE))`
        : `${where} touched, one write per page, as it is added${p.populatedBytes > 0 ? ` (${p.populatedBytes} bytes populated by the kernel)` : ''}: slabs under a page come from the C heap and are zeroed by memset, and without MADV_POPULATE_WRITE (Linux before 5.14, or not Linux) every mapped slab is touched`;
  }
  return { requested, inEffect, method, reason, prefaultedBytes };
}
