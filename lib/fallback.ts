import { markAsUntransferable } from 'node:worker_threads';
import { BlockState, Counter, SCRATCH_LENGTH, type Engine, type EngineConfig, type EnginePages } from './engine.js';
import { internalError } from './errors.js';
import { touchPages } from './pages.js';
import { RunIndex } from './run-index.js';
import { MAX_BLOCKS, MAX_SLAB_BYTES } from './validate.js';

/*
 * The allocator core in TypeScript: the executable specification that native/slab.cc follows
 * line for line, and the backend used when no native build loads.
 *
 * Per slab of n blocks:
 *   used: bitmap, bit i = 1 iff block i is allocated; bits n..32*ceil(n/32)-1 are set (never free).
 *   tags: for every maximal run of free blocks [a, b]: tags[a] = b - a + 1, and tags[b] too
 *         unless b = n - 1 (a right-end tag is read only through the block after it, and the
 *         last block has none: a new slab, split from the left, never writes the far end of its
 *         tags, a page not touched). Other entries are stale. Runs never cross a slab.
 * Whole engine:
 *   the run index (run-index.ts) has one leaf per bitmap word of every slot, leaf
 *   slot * wordsPerSlab + w holding the longest free run that starts in word w of that slot's
 *   slab (0 if none, or if the slot is empty); counters[Largest] = its largest()
 *   counters[Free] = sum over runs of their length = sum over slabs of slab.free
 *   cursor <= index of the lowest free block (every free block is at or after the cursor)
 *   counters[Lowest] = index of the lowest free block (Infinity if none), and the cursor is there
 *   after every call that changes the free set
 * Acquisition always takes the lowest free block (the start of its run), so a split only shortens
 * a run from the left; release merges with both neighbours through the tags. Either changes the
 * run starts of at most two words, whose leaves are then recomputed: O(log words) each.
 */

/**
 * A class, not an object literal: V8 makes a literal's boilerplate the second time it runs, a
 * program's second pool, at a cost of microseconds (validate.ts Config). `declare` fields: each
 * assigned once, in the constructor, with its final type (no undefined first).
 */
class Slab {
  declare readonly start: number;
  /** The run index leaf of the slab's bitmap word 0: slot * wordsPerSlab. */
  declare readonly leafBase: number;
  declare readonly blocks: number;
  declare readonly bytes: number;
  declare readonly buffer: ArrayBuffer;
  declare readonly used: Uint32Array;
  declare readonly tags: Int32Array;
  declare free: number;

  constructor(start: number, leafBase: number, blocks: number, bytes: number, buffer: ArrayBuffer, used: Uint32Array, tags: Int32Array) {
    this.start = start;
    this.leafBase = leafBase;
    this.blocks = blocks;
    this.bytes = bytes;
    this.buffer = buffer;
    this.used = used;
    this.tags = tags;
    this.free = blocks;
  }
}

function ctz32(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/** The bits of word j >>> 5 that [j, end) covers, and how many: a word at a time over a range of bits. */
function wordMask(j: number, end: number): number {
  const n = Math.min(32 - (j & 31), end - j);
  return n === 32 ? -1 : ((1 << n) - 1) << (j & 31);
}

/** Sets (or clears) bits [a, a + k) of a bitmap, a word at a time. */
function setBits(used: Uint32Array, a: number, k: number, on: boolean): void {
  for (let j = a, end = a + k; j < end; j = (j | 31) + 1) {
    const mask = wordMask(j, end);
    if (on) used[j >>> 5]! |= mask;
    else used[j >>> 5]! &= ~mask;
  }
}

/** The first bit of [a, a + k) that is clear, or -1 when all are set. */
function firstClear(used: Uint32Array, a: number, k: number): number {
  for (let j = a, end = a + k; j < end; j = (j | 31) + 1) {
    const clear = ~used[j >>> 5]! & wordMask(j, end);
    if (clear !== 0) return (j & ~31) + ctz32(clear);
  }
  return -1;
}

/**
 * The `detach` option's release: every view on `buffer` gets length 0. A slab the user already
 * transferred away (postMessage, a web stream's read into a block) has 0 bytes (a slab never
 * does otherwise) and is left as it is: Node >= 21 throws DataCloneError on a transfer of a
 * detached ArrayBuffer, where Node 20 did nothing.
 */
function detach(buffer: ArrayBuffer): void {
  if (buffer.byteLength === 0) return;
  // Node 20 has no ArrayBuffer.prototype.transfer; a transferring structuredClone moves the
  // backing store away, leaving `buffer` (and every view on it) with length 0.
  structuredClone(buffer, { transfer: [buffer] });
}

/** What is wrong with an engine geometry (the contract in engine.ts EngineConfig), or null. */
function geometryProblem(config: EngineConfig): string | null {
  // Read once each, with no closure or destructuring: this runs at every construction, cold.
  const blockBytes = config.blockBytes;
  const stride = config.stride;
  const alignment = config.alignment;
  const slabBlocks = config.slabBlocks;
  if (!Number.isSafeInteger(alignment) || alignment < 8 || alignment > 4096 || (alignment & (alignment - 1)) !== 0) return `alignment ${alignment}`;
  if (!Number.isSafeInteger(stride) || stride <= 0 || stride % alignment !== 0) return `stride ${stride}`;
  if (!Number.isSafeInteger(blockBytes) || blockBytes < 1 || blockBytes > stride) return `block bytes ${blockBytes}`;
  if (!Number.isSafeInteger(slabBlocks) || slabBlocks < 1 || slabBlocks > MAX_BLOCKS) return `slab blocks ${slabBlocks}`;
  if (stride * slabBlocks > MAX_SLAB_BYTES) return `a slab of ${slabBlocks} blocks of ${stride} bytes`;
  return null;
}

export class JsEngine implements Engine {
  readonly kind = 'js' as const;
  readonly alignmentScope = 'buffer' as const;
  readonly memory = 'v8' as const;
  readonly counters = new Float64Array(Counter.Length);
  readonly scratch = new Int32Array(SCRATCH_LENGTH);

  readonly #stride: number;
  readonly #slabBlocks: number;
  /** Bitmap words (index leaves) per slab slot. */
  readonly #wordsPerSlab: number;
  readonly #detach: boolean;
  /** EngineConfig.prefault: touch every page of a new slab (pages.ts). Huge pages: nothing JavaScript can do. */
  readonly #prefault: boolean;
  readonly #slabs: (Slab | undefined)[] = [];
  readonly #runs: RunIndex;
  #cursor = 0;
  readonly #sorted = new Int32Array(SCRATCH_LENGTH);
  #destroyed = false;
  /** Live pins per slot (pin()); they outlive destroy(). */
  readonly #pins: number[] = [];
  /** With `detach`: the buffers of slabs destroy() found pinned, detached at their last unpin. */
  readonly #detachAtUnpin: (ArrayBuffer | undefined)[] = [];

  constructor(config: EngineConfig) {
    const problem = geometryProblem(config);
    if (problem !== null) throw internalError(`invalid pool geometry: ${problem}`);
    this.#stride = config.stride;
    this.#slabBlocks = config.slabBlocks;
    this.#wordsPerSlab = (config.slabBlocks + 31) >>> 5;
    this.#detach = config.detach;
    this.#prefault = config.prefault === true;
    this.#runs = new RunIndex();
    this.counters[Counter.Lowest] = Infinity;
  }

  // ---- slabs ---------------------------------------------------------------------------------

  addSlab(slot: number, blocks: number): boolean {
    this.#requireOpenSlot(slot);
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > this.#slabBlocks) throw internalError(`slab of ${blocks} blocks`);
    const bytes = blocks * this.#stride;
    if (!this.#runs.cover((slot + 1) * this.#wordsPerSlab)) return false;
    let buffer: ArrayBuffer, used: Uint32Array, tags: Int32Array;
    try {
      // The bitmap and the tags share one allocation: from 128 KiB on, calloc maps fresh pages
      // that the kernel zeroes on first touch, where a smaller one (a 1e6-block bitmap) may be
      // zeroed in the C heap, a page fault per page here.
      const words = (blocks + 31) >>> 5;
      const meta = new ArrayBuffer(4 * (words + blocks));
      used = new Uint32Array(meta, 0, words);
      tags = new Int32Array(meta, 4 * words, blocks);
      // The slab last: V8 answers that much new ArrayBuffer memory by starting a GC, after which
      // every ArrayBuffer allocated (the metadata) runs a marking step or a scavenge here, ms each.
      buffer = new ArrayBuffer(bytes);
    } catch {
      return false;
    }
    // Every block is a view on this buffer, so a transfer of any block's buffer would take the
    // slab from all of them. Marked, a transfer copies (Node 20) or throws DataCloneError (Node
    // >= 21). Not with `detach`: the mark would stop detach() below, a transfer on Node 20.
    if (!this.#detach) markAsUntransferable(buffer);
    if (this.#prefault) touchPages(buffer);
    if (blocks & 31) used[used.length - 1] = ~((1 << (blocks & 31)) - 1);
    const slab = new Slab(slot * this.#slabBlocks, slot * this.#wordsPerSlab, blocks, bytes, buffer, used, tags);
    this.#slabs[slot] = slab;
    this.#setRun(slab, 0, blocks);
    this.#grew(slab, 0, blocks);
    // Written out as slab.cc does (no call per counter while this is still cold).
    const c = this.counters;
    c[Counter.Free]! += blocks;
    c[Counter.Capacity]! += blocks;
    c[Counter.Slabs]! += 1;
    c[Counter.ReservedBytes]! += bytes;
    if (slab.start < this.#cursor) this.#cursor = slab.start;
    this.#publish();
    return true;
  }

  freeSlab(slot: number): number {
    const slab = this.#slabIn(slot);
    if (slab.free !== slab.blocks) throw internalError(`slab ${slot} is not empty`);
    if ((this.#pins[slot] ?? 0) !== 0) throw internalError(`slab ${slot} is pinned`);
    this.#runs.set(slot * this.#wordsPerSlab, 0); // its one run, which starts in word 0
    this.#bump(Counter.Free, -slab.blocks);
    this.#bump(Counter.Capacity, -slab.blocks);
    this.#bump(Counter.Slabs, -1);
    this.#bump(Counter.ReservedBytes, -slab.bytes);
    this.#slabs[slot] = undefined; // its memory goes when V8 collects the last view on it
    this.#publish();
    if (this.#detach) detach(slab.buffer);
    return slab.bytes;
  }

  slabFree(slot: number): number {
    return this.#slabIn(slot).free;
  }

  slabBuffer(slot: number): ArrayBuffer {
    return this.#slabIn(slot).buffer;
  }

  slabBase(slot: number): number {
    this.#slabIn(slot);
    return 0;
  }

  slabAddress(slot: number): null {
    this.#slabIn(slot);
    return null;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // A pinned slab's buffer is its memory: detaching it would free it under native code, so it
    // is detached at its last unpin instead.
    if (this.#detach) {
      this.#slabs.forEach((slab, slot) => {
        if (slab === undefined) return;
        if ((this.#pins[slot] ?? 0) === 0) detach(slab.buffer);
        else this.#detachAtUnpin[slot] = slab.buffer;
      });
    }
    this.#slabs.length = 0;
    this.#runs.clear();
    this.counters.fill(0);
    this.counters[Counter.Lowest] = Infinity;
    this.#cursor = 0;
  }

  pin(slot: number): void {
    this.#slabIn(slot);
    this.#pins[slot] = (this.#pins[slot] ?? 0) + 1;
  }

  unpin(slot: number): void {
    const pins = Number.isInteger(slot) && slot >= 0 ? (this.#pins[slot] ?? 0) : 0;
    if (pins === 0) throw internalError(`unpin of slot ${slot}, which is not pinned`);
    this.#pins[slot] = pins - 1;
    const buffer = pins === 1 ? this.#detachAtUnpin[slot] : undefined;
    if (buffer !== undefined) {
      this.#detachAtUnpin[slot] = undefined;
      detach(buffer);
    }
  }

  pages(): EnginePages {
    const touched = this.#prefault ? this.counters[Counter.ReservedBytes]! : 0;
    return {
      pageBytes: 0,
      mode: null,
      whyNot: null,
      advisedSlabs: 0,
      advisedBytes: 0,
      tooSmallSlabs: 0,
      unavailableSlabs: 0,
      refusedSlabs: 0,
      refusedError: null,
      populatedBytes: 0,
      touchedBytes: touched,
      hugeBytes: null,
      readBack: null,
    };
  }

  // ---- blocks and runs -----------------------------------------------------------------------

  acquire(max: number): number {
    this.#live();
    const out = this.scratch;
    if (!(Number.isInteger(max) && max >= 0 && max <= out.length)) throw internalError(`acquire of ${max} into a list of ${out.length}`);
    let n = 0;
    let p = n < max ? this.#lowestFree(this.#cursor) : -1;
    while (p >= 0) {
      // p is the lowest free block, hence the start of its run.
      const slab = this.#slabs[this.#slotOf(p)]!;
      const a = p - slab.start;
      const len = slab.tags[a]!;
      const take = Math.min(len, max - n);
      this.#takeFromRun(slab, a, len, take);
      for (let j = 0; j < take; j++) out[n++] = p + j;
      this.#cursor = p + take;
      p = n < max ? this.#lowestFree(p + take) : -1;
    }
    this.#publish();
    for (let i = 0, j = n - 1; i < j; i++, j--) {
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return n;
  }

  release(count: number): void {
    this.#live();
    const list = this.scratch;
    if (!(Number.isInteger(count) && count >= 0 && count <= list.length)) throw internalError(`release of ${count} from a list of ${list.length}`);
    try {
      for (let j = 0; j < count; j++) this.#releaseOne(list[j]!);
    } finally {
      this.#publish();
    }
  }

  acquireRun(k: number): number {
    this.#live();
    if (!(Number.isInteger(k) && k >= 1)) throw internalError(`acquireRun of ${k} blocks`);
    const runs = this.#runs;
    // The first leaf whose word starts a run of at least k; no run starts below the cursor's word.
    const cursorSlot = this.#slotOf(this.#cursor);
    const leaf = runs.firstAtLeast(k, cursorSlot * this.#wordsPerSlab + ((this.#cursor - cursorSlot * this.#slabBlocks) >>> 5));
    if (leaf < 0) return -1;
    const slot = leaf < this.#wordsPerSlab ? 0 : Math.floor(leaf / this.#wordsPerSlab);
    const slab = this.#slabs[slot];
    const w = leaf - slot * this.#wordsPerSlab;
    if (slab === undefined || w >= slab.used.length) return -1; // a broken index (check() shows it)
    // The lowest run start in that word whose run is long enough.
    let starts = this.#runStarts(slab, w);
    let a = -1;
    while (starts !== 0) {
      const b = (w << 5) + ctz32(starts);
      if (slab.tags[b]! >= k) {
        a = b;
        break;
      }
      starts &= starts - 1;
    }
    if (a < 0) return -1; // a broken index (check() shows it)
    const p = slab.start + a;
    this.#takeFromRun(slab, a, slab.tags[a]!, k);
    if (p === this.#cursor) this.#cursor = p + k;
    this.#publish();
    return p;
  }

  releaseRun(start: number, k: number): void {
    this.#live();
    this.#releaseRange(start, k);
    this.#publish();
  }

  largestRunWith(count: number): number {
    this.#live();
    const mag = this.scratch;
    if (!(Number.isInteger(count) && count >= 0 && count <= mag.length)) throw internalError(`largestRunWith of ${count} from a list of ${mag.length}`);
    let best = this.#runs.largest();
    if (count === 0) return best;
    const sorted = this.#sorted;
    // Insertion sort in place: count is at most the magazine's 64, and nothing is allocated.
    for (let i = 0; i < count; i++) {
      const v = mag[i]!;
      const slab = this.#slabAt(v);
      if (!this.#isUsed(slab, v - slab.start)) throw internalError(`cached block ${v} is free in the engine`);
      let j = i;
      for (; j > 0 && sorted[j - 1]! > v; j--) sorted[j] = sorted[j - 1]!;
      sorted[j] = v;
    }
    let i = 0;
    while (i < count) {
      const first = sorted[i++]!;
      const slab = this.#slabAt(first);
      const a = first - slab.start;
      const runStart = a > 0 && !this.#isUsed(slab, a - 1) ? a - slab.tags[a - 1]! : a;
      let end = a;
      // Extend right through engine-free runs and cached blocks, alternately.
      for (;;) {
        const next = end + 1;
        if (next >= slab.blocks) break;
        if (!this.#isUsed(slab, next)) end = next + slab.tags[next]! - 1;
        else if (i < count && sorted[i] === slab.start + next) {
          end = next;
          i++;
        } else break;
      }
      best = Math.max(best, end - runStart + 1);
    }
    return best;
  }

  // ---- check ---------------------------------------------------------------------------------

  check(blockStates: Uint8Array, count: number): string | null {
    this.#live();
    const mag = this.scratch;
    if (!(blockStates instanceof Uint8Array)) throw internalError("check needs the pool's Uint8Array of block states");
    if (!(Number.isInteger(count) && count >= 0 && count <= mag.length)) throw internalError(`check of ${count} cached blocks from a list of ${mag.length}`);
    const cached = new Set<number>();
    for (let j = 0; j < count; j++) {
      const idx = mag[j]!;
      const slab = this.#slabs[Math.floor(idx / this.#slabBlocks)];
      if (!(idx >= 0) || !slab || idx - slab.start >= slab.blocks) return `cached block ${idx} does not exist`;
      if (cached.has(idx)) return `block ${idx} is cached twice`;
      if (!this.#isUsed(slab, idx - slab.start)) return `cached block ${idx} is also free in the engine`;
      cached.add(idx);
    }
    if (this.#runs.leafCount < this.#slabs.length * this.#wordsPerSlab) return `run index covers ${this.#runs.leafCount} words of ${this.#slabs.length} slots`;
    const leaves = new Int32Array(this.#runs.leafCount);
    let free = 0;
    let capacity = 0;
    let slabs = 0;
    let reserved = 0;
    let largest = 0;
    let lowest = -1;
    for (let slot = 0; slot < this.#slabs.length; slot++) {
      const slab = this.#slabs[slot];
      if (!slab) continue;
      slabs++;
      capacity += slab.blocks;
      reserved += slab.bytes;
      if (slab.start !== slot * this.#slabBlocks) return `slab ${slot} starts at ${slab.start}`;
      if (slab.start + slab.blocks > blockStates.length) return `slab ${slot} lies past the pool's block states`;
      if (slab.bytes !== slab.blocks * this.#stride || slab.buffer.byteLength !== slab.bytes) {
        return `slab ${slot} holds ${slab.buffer.byteLength} bytes, expected ${slab.blocks} * ${this.#stride}`;
      }
      const tail = slab.blocks & 31;
      if (tail && ((slab.used[slab.used.length - 1]! | ((1 << tail) - 1)) >>> 0) !== 0xffffffff) {
        return `slab ${slot} has a free bit past its last block`;
      }
      let slabFree = 0;
      for (let a = 0; a < slab.blocks; ) {
        const idx = slab.start + a;
        const poolFree = blockStates[idx] === BlockState.Free && !cached.has(idx);
        if (this.#isUsed(slab, a)) {
          if (poolFree) return `block ${idx} is allocated in the engine but neither in use nor cached by the pool`;
          a++;
          continue;
        }
        let b = a;
        while (b + 1 < slab.blocks && !this.#isUsed(slab, b + 1)) b++;
        const len = b - a + 1;
        if (slab.tags[a] !== len || (b + 1 < slab.blocks && slab.tags[b] !== len)) {
          return `free run [${idx}, ${slab.start + b}] is tagged ${slab.tags[a]} and ${slab.tags[b]}, expected ${len}`;
        }
        for (let j = a; j <= b; j++) {
          const state = blockStates[slab.start + j];
          if (state !== BlockState.Free) return `block ${slab.start + j} is free in the engine but the pool has it in state ${state}`;
        }
        const leaf = slot * this.#wordsPerSlab + (a >>> 5);
        leaves[leaf] = Math.max(leaves[leaf]!, len);
        if (lowest < 0) lowest = idx;
        largest = Math.max(largest, len);
        slabFree += len;
        a = b + 1;
      }
      if (slabFree !== slab.free) return `slab ${slot} counts ${slab.free} free blocks, its bitmap ${slabFree}`;
      free += slabFree;
    }
    const c = this.counters;
    if (free !== c[Counter.Free]) return `engine counts ${c[Counter.Free]} free blocks, its slabs ${free}`;
    if (capacity !== c[Counter.Capacity]) return `engine counts capacity ${c[Counter.Capacity]}, its slabs ${capacity}`;
    if (slabs !== c[Counter.Slabs]) return `engine counts ${c[Counter.Slabs]} slabs, found ${slabs}`;
    if (reserved !== c[Counter.ReservedBytes]) return `engine counts ${c[Counter.ReservedBytes]} reserved bytes, its slabs ${reserved}`;
    if (largest !== c[Counter.Largest]) return `engine records largest free run ${c[Counter.Largest]}, its slabs ${largest}`;
    if ((lowest >= 0 ? lowest : Infinity) !== c[Counter.Lowest]) {
      return `engine records lowest free block ${c[Counter.Lowest] === Infinity ? 'none' : c[Counter.Lowest]}, its slabs ${lowest >= 0 ? lowest : 'none'}`;
    }
    const indexProblem = this.#runs.check(leaves);
    if (indexProblem !== null) return indexProblem;
    if (lowest >= 0 && this.#cursor > lowest) return `search cursor ${this.#cursor} is past the lowest free block ${lowest}`;
    return null;
  }

  // ---- internals -----------------------------------------------------------------------------

  #live(): void {
    if (this.#destroyed) throw internalError('engine used after destroy');
  }

  /** The slab in slot `slot`; refused unless there is one. */
  #slabIn(slot: number): Slab {
    this.#live();
    const slab = Number.isInteger(slot) && slot >= 0 ? this.#slabs[slot] : undefined;
    if (slab === undefined) throw internalError(`no slab in slot ${slot}`);
    return slab;
  }

  /** Refuses `slot` unless it is empty or the next one: where addSlab may put a slab. */
  #requireOpenSlot(slot: number): void {
    this.#live();
    if (!Number.isInteger(slot) || slot < 0 || slot > this.#slabs.length) throw internalError(`no slot ${slot}`);
    if (this.#slabs[slot] !== undefined) throw internalError(`slot ${slot} is taken`);
  }

  /** The slot of block idx (idx >= 0), with no division for slot 0 (every block of a one-slab pool): engine calls asked for slots several times each. */
  #slotOf(idx: number): number {
    return idx < this.#slabBlocks ? 0 : Math.floor(idx / this.#slabBlocks);
  }

  #slabAt(idx: number): Slab {
    const slab = Number.isInteger(idx) && idx >= 0 ? this.#slabs[this.#slotOf(idx)] : undefined;
    if (!slab || idx - slab.start >= slab.blocks) throw internalError(`no block ${idx}`);
    return slab;
  }

  #isUsed(slab: Slab, a: number): boolean {
    return ((slab.used[a >>> 5]! >>> (a & 31)) & 1) !== 0;
  }

  /**
   * Lowest free block at or after `from`, or -1, where no free block lies below `from` (the
   * cursor's invariant): the rest of from's bitmap word, else the first word after it in which a
   * run starts (a free block there cannot continue a run from further left). O(log words).
   */
  #lowestFree(from: number): number {
    const slot = this.#slotOf(from);
    const a = from - slot * this.#slabBlocks;
    const slab = this.#slabs[slot];
    if (slab !== undefined && a < slab.blocks) {
      const word = ~slab.used[a >>> 5]! & (-1 << (a & 31));
      if (word !== 0) return slab.start + ((a >>> 5) << 5) + ctz32(word);
    }
    const leaf = this.#runs.firstAtLeast(1, slot * this.#wordsPerSlab + (a >>> 5) + 1);
    if (leaf < 0) return -1;
    const s = leaf < this.#wordsPerSlab ? 0 : Math.floor(leaf / this.#wordsPerSlab);
    const w = leaf - s * this.#wordsPerSlab;
    const found = this.#slabs[s];
    const word = found !== undefined && w < found.used.length ? ~found.used[w]! : 0;
    if (word === 0) return -1; // a broken index (check() shows it)
    return found!.start + (w << 5) + ctz32(word);
  }

  /** Bits of word w of the slab's bitmap at which a free run starts: free, after a used block or the slab's start. */
  #runStarts(slab: Slab, w: number): number {
    const used = slab.used;
    const before = w === 0 ? 1 : used[w - 1]! >>> 31;
    return ~used[w]! & ((used[w]! << 1) | before);
  }

  /** A run now starts at a with `length` blocks (new, or longer than before): its word's leaf is at least that. O(log words). */
  #grew(slab: Slab, a: number, length: number): void {
    const leaf = slab.leafBase + (a >>> 5);
    if (length > this.#runs.get(leaf)) this.#runs.set(leaf, length);
  }

  /**
   * The run that started at a with `length` blocks no longer does (taken, shortened from the left,
   * or merged into its left neighbour): its word's leaf changes only if that run was the word's
   * longest, and is then recomputed from the bitmap. The slab's bits and tags must be final.
   */
  #shrank(slab: Slab, a: number, length: number): void {
    if (length >= this.#runs.get(slab.leafBase + (a >>> 5))) this.#touch(slab, a >>> 5);
  }

  /** Recomputes the index leaf of word w of the slab: the longest run starting in it (at most 16 starts). */
  #touch(slab: Slab, w: number): void {
    let starts = this.#runStarts(slab, w);
    let longest = 0;
    while (starts !== 0) {
      const length = slab.tags[(w << 5) + ctz32(starts)]!;
      if (length > longest) longest = length;
      starts &= starts - 1;
    }
    this.#runs.set(slab.leafBase + w, longest);
  }

  /** Allocates the first `take` blocks of the free run [a, a+len): its start moves to a + take (or it goes). */
  #takeFromRun(slab: Slab, a: number, len: number, take: number): void {
    setBits(slab.used, a, take, true);
    if (len > take) this.#setRun(slab, a + take, len - take);
    this.#shrank(slab, a, len);
    if (len > take) this.#grew(slab, a + take, len - take);
    slab.free -= take;
    this.#bump(Counter.Free, -take);
  }

  /** #releaseRange(idx, 1) without its loops over words: a magazine's flush frees blocks one by one. */
  #releaseOne(idx: number): void {
    const slab = this.#slabAt(idx);
    const a = idx - slab.start;
    const used = slab.used;
    const w = a >>> 5;
    const bit = 1 << (a & 31);
    if ((used[w]! & bit) === 0) throw internalError(`block ${idx} is already free`);
    used[w] = used[w]! & ~bit;
    const left = a > 0 && !this.#isUsed(slab, a - 1) ? slab.tags[a - 1]! : 0;
    const right = a + 1 < slab.blocks && !this.#isUsed(slab, a + 1) ? slab.tags[a + 1]! : 0;
    this.#setRun(slab, a - left, left + 1 + right);
    if (right) this.#shrank(slab, a + 1, right);
    this.#grew(slab, a - left, left + 1 + right);
    slab.free += 1;
    this.#bump(Counter.Free, 1);
    if (idx < this.#cursor) this.#cursor = idx;
  }

  /** Frees [idx, idx+k), which must be allocated and inside one slab, merging with neighbours. */
  #releaseRange(idx: number, k: number): void {
    const slab = this.#slabAt(idx);
    const a = idx - slab.start;
    if (!(Number.isInteger(k) && k >= 1 && a + k <= slab.blocks)) throw internalError(`release of ${k} blocks from ${idx}`);
    const free = firstClear(slab.used, a, k);
    if (free >= 0) throw internalError(`block ${slab.start + free} is already free`);
    setBits(slab.used, a, k, false);
    const left = a > 0 && !this.#isUsed(slab, a - 1) ? slab.tags[a - 1]! : 0;
    const right = a + k < slab.blocks && !this.#isUsed(slab, a + k) ? slab.tags[a + k]! : 0;
    // The merged run starts at a - left; the right neighbour's start (if any) is gone.
    this.#setRun(slab, a - left, left + k + right);
    if (right) this.#shrank(slab, a + k, right);
    this.#grew(slab, a - left, left + k + right);
    slab.free += k;
    this.#bump(Counter.Free, k);
    if (idx < this.#cursor) this.#cursor = idx;
  }

  /**
   * Publishes the figures the pool reads without a call, after any change to the free set: the
   * largest free run, and the lowest free block (the cursor moves up to it, which keeps the
   * cursor's invariant and shortens the next search). O(log words).
   */
  #publish(): void {
    this.counters[Counter.Largest] = this.#runs.largest();
    const lowest = this.#lowestFree(this.#cursor);
    if (lowest >= 0) this.#cursor = lowest;
    this.counters[Counter.Lowest] = lowest >= 0 ? lowest : Infinity;
  }

  #bump(field: Counter, delta: number): void {
    this.counters[field] = this.counters[field]! + delta;
  }

  /** Tags the free run [a, a+len) of the slab at both ends (the caller then touches the words whose run starts changed). */
  #setRun(slab: Slab, a: number, len: number): void {
    slab.tags[a] = len;
    if (a + len < slab.blocks) slab.tags[a + len - 1] = len;
  }
}

export const createJsEngine = (config: EngineConfig): Engine => new JsEngine(config);
