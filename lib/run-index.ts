/**
 * The free-run index: what the engine knows about its free runs beyond the bitmap, so that it
 * can tell the largest run in O(1) and find a run for acquireRun(k). Its own unit (and
 * native/run_index.h, the same in C++) so that a better index replaces this one file per
 * language. The engine tells it of every maximal free run that appears or disappears, by
 * position; an index may read the free structure through FreeLayout.
 *
 * This index: a histogram of run lengths and a bitmap over lengths (bit len set iff some run has
 * that length). add/remove O(1); largest() O(1); when the largest run goes, the next length down
 * is found a bitmap word at a time (O(maxLength / 32) worst case). firstFit walks the runs from
 * the lowest free block, one run at a time: O(runs below the first fit), which depends on the
 * layout: a long walk past many short runs is possible, which a better index bounds.
 *
 * Invariants: count[len] = number of free runs of length len; bit len of lengthBits = count[len] > 0;
 * largest = max { len : count[len] > 0 }, 0 if none.
 */

/** How an index may read the free structure it summarises (implemented by the engine). */
export interface FreeLayout {
  /** Lowest free block at or after `from`, or -1. */
  nextFree(from: number): number;
  /** Length of the free run that starts at block `start`. */
  runLength(start: number): number;
}

/** A maximal run of free blocks [start, start + length). */
export interface Run {
  readonly start: number;
  readonly length: number;
}

export class RunIndex {
  readonly #layout: FreeLayout;
  readonly #count: Int32Array;
  readonly #lengthBits: Uint32Array;
  #largest = 0;

  /** `maxLength`: the longest run there can be (blocks per slab). */
  constructor(maxLength: number, layout: FreeLayout) {
    this.#layout = layout;
    this.#count = new Int32Array(maxLength + 1);
    this.#lengthBits = new Uint32Array((maxLength >>> 5) + 1);
  }

  /** A free run [start, start + length) now exists. A length outside 1..maxLength changes nothing (check() then shows it). */
  add(_start: number, length: number): void {
    if (!(length >= 1 && length < this.#count.length)) return;
    if (this.#count[length]!++ === 0) this.#lengthBits[length >>> 5]! |= 1 << (length & 31);
    if (length > this.#largest) this.#largest = length;
  }

  /** The free run [start, start + length) no longer exists (merged, split or taken). Removing a length no run has changes nothing. */
  remove(_start: number, length: number): void {
    if (!(length >= 1 && length < this.#count.length) || this.#count[length] === 0) return;
    if (--this.#count[length]! !== 0) return;
    this.#lengthBits[length >>> 5]! &= ~(1 << (length & 31));
    if (length === this.#largest) this.#largest = this.#highestLengthBelow(length);
  }

  /** The longest run present, 0 if none. */
  largest(): number {
    return this.#largest;
  }

  /**
   * First fit: the start of the lowest run of at least k blocks at or after `from`, -1 if none.
   * The caller guarantees that no free block lies below `from`.
   */
  firstFit(k: number, from: number): number {
    if (this.#largest < k) return -1;
    const layout = this.#layout;
    let p = layout.nextFree(from);
    while (p >= 0) {
      // p follows an allocated block or a slab start, so it starts a run.
      const length = layout.runLength(p);
      if (length >= k) return p;
      p = layout.nextFree(p + Math.max(length, 1)); // a broken layout cannot loop forever
    }
    return -1;
  }

  /** Null if the index matches `runs` (every maximal free run present, in any order), else the first disagreement. */
  check(runs: readonly Run[]): string | null {
    const expected = new Map<number, number>();
    let largest = 0;
    for (const run of runs) {
      if (!(run.length >= 1 && run.length < this.#count.length)) return `free run at ${run.start} has length ${run.length}`;
      expected.set(run.length, (expected.get(run.length) ?? 0) + 1);
      largest = Math.max(largest, run.length);
    }
    if (largest !== this.#largest) return `run index records largest free run ${this.#largest}, the slabs ${largest}`;
    for (let length = 1; length < this.#count.length; length++) {
      const runsOf = expected.get(length) ?? 0;
      if (this.#count[length] !== runsOf) return `run index counts ${this.#count[length]} free runs of ${length}, the slabs ${runsOf}`;
      const bit = (this.#lengthBits[length >>> 5]! >>> (length & 31)) & 1;
      if (bit !== (runsOf > 0 ? 1 : 0)) return `run-length bit ${length} is ${bit} with ${runsOf} runs`;
    }
    return null;
  }

  /** Forgets every run. */
  clear(): void {
    this.#count.fill(0);
    this.#lengthBits.fill(0);
    this.#largest = 0;
  }

  /** Largest length present that is < length (whose own bit is already clear), or 0. */
  #highestLengthBelow(length: number): number {
    let w = length >>> 5;
    let word = this.#lengthBits[w]! & ((1 << (length & 31)) - 1);
    while (word === 0 && w > 0) word = this.#lengthBits[--w]!;
    return word === 0 ? 0 : (w << 5) + 31 - Math.clz32(word);
  }
}
