import type { SlotTable } from './slots.js';
import { INDEX, MARK, ViewState, runOf, type PoolView, type ViewTable } from './views.js';

/*
 * Pristine memory: which free blocks are known to read zeros, so that a zeroed acquisition
 * (getBlockZeroed, getRunZeroed, leaseZeroed) fills only memory that may have been written, as
 * calloc skips pages fresh from the kernel. One record for both backends: the engines only
 * supply memory that is zero when a slab is added, and the pool knows everything handed out since.
 *
 * Why a new slab reads zeros (a slot trimmed and grown again gets a new slab, new memory too):
 *   js             new ArrayBuffer(bytes) (fallback.ts addSlab): ECMAScript's CreateByteDataBlock
 *                  sets every byte to 0.
 *   native         binding.cc AddSlab -> slab.cc add_slab -> os::alloc_slab: a slab of a page or
 *                  more is an anonymous mmap (zero-fill-on-demand pages) or VirtualAlloc with
 *                  MEM_COMMIT (zeroed pages); a smaller one comes from posix_memalign or
 *                  _aligned_malloc, then memset to 0 (os_posix.cc, os_windows.cc). Memory is
 *                  never recycled into a new slab while the old one is referenced (slab.h).
 *   native, V8     napi_create_arraybuffer -> v8::ArrayBuffer::New, which asks for a
 *   memory         zero-initialized backing store; Node's allocator skips the zeroing only inside
 *                  Buffer.allocUnsafe's own synchronous JavaScript, never during an addon call.
 * test/zeroed.test.ts reads every block of new and regrown slabs on every backend as well.
 *
 * Nothing else writes a free block: the engines keep their bitmaps and tags in memory of their
 * own, and the pool writes a block only to poison it, at its return, when it is no longer
 * pristine anyway. What no record can see: writes through a view the pool did not hand out (a
 * block's `.buffer` reaches its whole slab) or through one kept after its return; calloc's
 * promise has the same limit.
 *
 * The record, per slab slot s, in blocks counted from the slab's first (O(1) per event, no state
 * per block, nothing on getBlock's or returnBlock's path):
 *   handedOut[s]  every block at or above it was never handed out since the slab was added,
 *                 singly or in a run. Raised when a refill puts blocks in the magazine (a getBlock
 *                 may then hand them out without a word to anyone) and when getRun takes a run.
 *   runs[s]       every block at or above it was never inside a run handed out. Raised by getRun.
 * and per block view, its mark: ViewState.Pristine from its making (by a refill) until its first
 * return, which writes ViewState.Free over it (views.ts); the hot path writes that mark anyway.
 * So a free block view is taken to read zeros iff it is marked Pristine and lies at or above
 * runs[s]: no one wrote it as a block (its mark) nor as part of a run (runs[s]). A run [a, a + k)
 * is taken to read zeros from handedOut[s] on; only its part below that is filled. Both records
 * are conservative: a block below a run handed out elsewhere, or (for a run) a block that went
 * through the magazine but was never popped, is filled needlessly.
 *
 * Invariants (check() verifies them): 0 <= runs[s] <= handedOut[s] <= blocks of slab s; every
 * block view of slot s lies below handedOut[s] (views are made by refills); every live run of
 * slot s ends at or below runs[s].
 */
export class PristineMemory {
  readonly #slabBlocks: number;
  readonly #handedOut: number[] = [];
  readonly #runs: number[] = [];

  constructor(slabBlocks: number) {
    this.#slabBlocks = slabBlocks;
  }

  /** A new slab in `slot`: new memory, all of it zero. */
  slabAdded(slot: number): void {
    this.#handedOut[slot] = 0;
    this.#runs[slot] = 0;
  }

  /** A refill put the blocks batch[0..n) in the magazine, from which getBlock hands them out. */
  refilled(batch: Int32Array, n: number): void {
    const slabBlocks = this.#slabBlocks;
    for (let j = 0; j < n; j++) {
      const idx = batch[j]!;
      const slot = Math.floor(idx / slabBlocks);
      const end = idx - slot * slabBlocks + 1;
      if (end > this.#handedOut[slot]!) this.#handedOut[slot] = end;
    }
  }

  /**
   * The run of k blocks at `start` is handed out. Returns how many of its first blocks may hold
   * data: the blocks from that many on were never handed out.
   */
  runHandedOut(start: number, k: number): number {
    const slot = start < this.#slabBlocks ? 0 : Math.floor(start / this.#slabBlocks);
    const first = start - slot * this.#slabBlocks;
    const end = first + k;
    const dirty = Math.min(k, Math.max(0, this.#handedOut[slot]! - first));
    if (end > this.#handedOut[slot]!) this.#handedOut[slot] = end;
    if (end > this.#runs[slot]!) this.#runs[slot] = end;
    return dirty;
  }

  /** Whether the free view of a block, about to be handed out, reads zeros (before its mark changes). */
  isPristine(view: PoolView): boolean {
    if (view[MARK] !== ViewState.Pristine) return false;
    const idx = view[INDEX]!;
    const slot = idx < this.#slabBlocks ? 0 : Math.floor(idx / this.#slabBlocks);
    return idx - slot * this.#slabBlocks >= this.#runs[slot]!;
  }

  clear(): void {
    this.#handedOut.length = 0;
    this.#runs.length = 0;
  }

  /** The first broken invariant (above), or null. `runMark`: the mark of a live run. O(capacity). */
  check(slots: SlotTable, views: ViewTable, runMark: number): string | null {
    const slabBlocks = this.#slabBlocks;
    for (let s = 0; s < slots.length; s++) {
      const blocks = slots.at(s).blocks;
      if (blocks === 0) continue;
      const handedOut = this.#handedOut[s];
      const runs = this.#runs[s];
      if (handedOut === undefined || runs === undefined || !(runs >= 0 && runs <= handedOut && handedOut <= blocks)) {
        return `slab ${s} of ${blocks} blocks records blocks handed out up to ${handedOut}, in runs up to ${runs}`;
      }
    }
    let problem: string | null = null;
    views.forEachBlock((view) => {
      const idx = view[INDEX]!;
      const s = Math.floor(idx / slabBlocks);
      if (problem === null && idx - s * slabBlocks >= this.#handedOut[s]!) problem = `block ${idx} has a view but lies above the blocks slab ${s} records handed out`;
    });
    views.forEachRun((start, view) => {
      const run = runOf(view)!;
      const s = Math.floor(start / slabBlocks);
      if (problem === null && run.mark === runMark && start - s * slabBlocks + run.length > this.#runs[s]!) {
        problem = `the live run at ${start} of ${run.length} blocks ends above the runs slab ${s} records`;
      }
    });
    return problem;
  }
}

/** Sets elements [0, end) of a view to zero (`zero`: 0n for the BigInt arrays, else 0). */
export function fillZero(view: PoolView, zero: number | bigint, end: number): void {
  (view as unknown as { fill(value: number | bigint, start: number, end: number): unknown }).fill(zero, 0, end);
}
