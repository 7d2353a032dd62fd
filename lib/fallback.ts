import { BlockState, Counter, type Engine, type EngineConfig } from './engine.js';
import { internalError } from './errors.js';
import { RunIndex, type FreeLayout, type Run } from './run-index.js';
import { MAX_BLOCKS, MAX_SLAB_BYTES } from './validate.js';

/*
 * The allocator core in TypeScript: the executable specification that native/slab.cc follows
 * line for line, and the backend used when no native build loads.
 *
 * Per slab of n blocks:
 *   used: bitmap, bit i = 1 iff block i is allocated; bits n..32*ceil(n/32)-1 are set (never free).
 *   tags: for every maximal run of free blocks [a, b]: tags[a] = tags[b] = b - a + 1.
 *         Other entries are stale. Runs never cross a slab.
 * Whole engine:
 *   the run index (run-index.ts) holds exactly the maximal free runs; counters[Largest] = its largest()
 *   counters[Free] = sum over runs of their length = sum over slabs of slab.free
 *   cursor <= index of the lowest free block (every free block is at or after the cursor)
 * Acquisition always takes the lowest free block (the start of its run), so a split only shortens
 * a run from the left: O(1). Release merges with both neighbours through the tags: O(1).
 */

interface Slab {
  readonly start: number;
  readonly blocks: number;
  readonly bytes: number;
  readonly buffer: ArrayBuffer;
  readonly used: Uint32Array;
  readonly tags: Int32Array;
  free: number;
}

function ctz32(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/** The `detach` option's release: every view on `buffer` gets length 0. */
function detach(buffer: ArrayBuffer): void {
  // Node 20 has no ArrayBuffer.prototype.transfer; a transferring structuredClone moves the
  // backing store away, leaving `buffer` (and every view on it) with length 0.
  structuredClone(buffer, { transfer: [buffer] });
}

/** What is wrong with an engine geometry (the contract in engine.ts EngineConfig), or null. */
function geometryProblem({ blockBytes, stride, alignment, slabBlocks }: EngineConfig): string | null {
  const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
  if (!isInt(alignment) || alignment < 8 || alignment > 4096 || (alignment & (alignment - 1)) !== 0) return `alignment ${alignment}`;
  if (!isInt(stride) || stride <= 0 || stride % alignment !== 0) return `stride ${stride}`;
  if (!isInt(blockBytes) || blockBytes < 1 || blockBytes > stride) return `block bytes ${blockBytes}`;
  if (!isInt(slabBlocks) || slabBlocks < 1 || slabBlocks > MAX_BLOCKS) return `slab blocks ${slabBlocks}`;
  if (stride * slabBlocks > MAX_SLAB_BYTES) return `a slab of ${slabBlocks} blocks of ${stride} bytes`;
  return null;
}

export class JsEngine implements Engine, FreeLayout {
  readonly kind = 'js' as const;
  readonly alignmentScope = 'buffer' as const;
  readonly memory = 'v8' as const;
  readonly counters = new Float64Array(Counter.Length);

  readonly #stride: number;
  readonly #slabBlocks: number;
  readonly #detach: boolean;
  readonly #slabs: (Slab | undefined)[] = [];
  readonly #runs: RunIndex;
  #cursor = 0;
  #sorted = new Int32Array(64);
  #destroyed = false;

  constructor(config: EngineConfig) {
    const problem = geometryProblem(config);
    if (problem !== null) throw internalError(`invalid pool geometry: ${problem}`);
    this.#stride = config.stride;
    this.#slabBlocks = config.slabBlocks;
    this.#detach = config.detach;
    this.#runs = new RunIndex(config.slabBlocks, this);
  }

  // ---- slabs ---------------------------------------------------------------------------------

  addSlab(slot: number, blocks: number): boolean {
    this.#requireOpenSlot(slot);
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > this.#slabBlocks) throw internalError(`slab of ${blocks} blocks`);
    const bytes = blocks * this.#stride;
    let buffer: ArrayBuffer, used: Uint32Array, tags: Int32Array;
    try {
      buffer = new ArrayBuffer(bytes);
      used = new Uint32Array((blocks + 31) >>> 5);
      tags = new Int32Array(blocks);
    } catch {
      return false;
    }
    if (blocks & 31) used[used.length - 1] = ~((1 << (blocks & 31)) - 1);
    const slab: Slab = { start: slot * this.#slabBlocks, blocks, bytes, buffer, used, tags, free: blocks };
    this.#slabs[slot] = slab;
    this.#setRun(slab, 0, blocks);
    this.#bump(Counter.Free, blocks);
    this.#bump(Counter.Capacity, blocks);
    this.#bump(Counter.Slabs, 1);
    this.#bump(Counter.ReservedBytes, bytes);
    this.counters[Counter.Largest] = this.#runs.largest();
    if (slab.start < this.#cursor) this.#cursor = slab.start;
    return true;
  }

  freeSlab(slot: number): number {
    const slab = this.#slabIn(slot);
    if (slab.free !== slab.blocks) throw internalError(`slab ${slot} is not empty`);
    this.#runs.remove(slab.start, slab.blocks);
    this.#bump(Counter.Free, -slab.blocks);
    this.#bump(Counter.Capacity, -slab.blocks);
    this.#bump(Counter.Slabs, -1);
    this.#bump(Counter.ReservedBytes, -slab.bytes);
    this.counters[Counter.Largest] = this.#runs.largest();
    this.#slabs[slot] = undefined; // its memory goes when V8 collects the last view on it
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
    if (this.#detach) for (const slab of this.#slabs) if (slab) detach(slab.buffer);
    this.#slabs.length = 0;
    this.#runs.clear();
    this.counters.fill(0);
    this.#cursor = 0;
  }

  // ---- blocks and runs -----------------------------------------------------------------------

  acquire(out: Int32Array, max: number): number {
    this.#live();
    if (!(out instanceof Int32Array)) throw internalError('acquire needs an Int32Array');
    if (!(Number.isInteger(max) && max >= 0 && max <= out.length)) throw internalError(`acquire of ${max} into a list of ${out.length}`);
    let n = 0;
    let p = n < max ? this.#findFree(this.#cursor) : -1;
    while (p >= 0) {
      // p is the lowest free block, hence the start of its run.
      const slab = this.#slabs[Math.floor(p / this.#slabBlocks)]!;
      const a = p - slab.start;
      const len = slab.tags[a]!;
      const take = Math.min(len, max - n);
      this.#takeFromRun(slab, a, len, take);
      for (let j = 0; j < take; j++) out[n++] = p + j;
      this.#cursor = p + take;
      p = n < max ? this.#findFree(p + take) : -1;
    }
    this.counters[Counter.Largest] = this.#runs.largest();
    for (let i = 0, j = n - 1; i < j; i++, j--) {
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return n;
  }

  release(list: Int32Array, count: number): void {
    this.#live();
    if (!(list instanceof Int32Array)) throw internalError('release needs an Int32Array');
    if (!(Number.isInteger(count) && count >= 0 && count <= list.length)) throw internalError(`release of ${count} from a list of ${list.length}`);
    try {
      for (let j = 0; j < count; j++) this.#releaseRange(list[j]!, 1);
    } finally {
      this.counters[Counter.Largest] = this.#runs.largest();
    }
  }

  acquireRun(k: number): number {
    this.#live();
    if (!(Number.isInteger(k) && k >= 1)) throw internalError(`acquireRun of ${k} blocks`);
    const runs = this.#runs;
    if (runs.largest() < k) return -1;
    // Re-anchor at the lowest free block (there is one: the largest run is at least k long).
    const low = this.#findFree(this.#cursor);
    if (low < 0) return -1;
    this.#cursor = low;
    // The lowest run is the first fit when it is long enough (the common case); else ask the index.
    let slab = this.#slabs[Math.floor(low / this.#slabBlocks)]!;
    const lowLength = slab.tags[low - slab.start]!;
    const p = lowLength >= k ? low : runs.firstFit(k, low + lowLength);
    if (p < 0) return -1;
    if (p !== low) slab = this.#slabs[Math.floor(p / this.#slabBlocks)]!;
    const a = p - slab.start;
    this.#takeFromRun(slab, a, slab.tags[a]!, k);
    if (p === low) this.#cursor = p + k;
    this.counters[Counter.Largest] = runs.largest();
    return p;
  }

  releaseRun(start: number, k: number): void {
    this.#live();
    this.#releaseRange(start, k);
    this.counters[Counter.Largest] = this.#runs.largest();
  }

  largestRunWith(mag: Int32Array, count: number): number {
    this.#live();
    if (!(mag instanceof Int32Array)) throw internalError('largestRunWith needs an Int32Array');
    if (!(Number.isInteger(count) && count >= 0 && count <= mag.length)) throw internalError(`largestRunWith of ${count} from a list of ${mag.length}`);
    let best = this.#runs.largest();
    if (count === 0) return best;
    if (this.#sorted.length < count) this.#sorted = new Int32Array(count);
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

  resetSearchCursor(): void {
    this.#live();
    const lowest = this.#findFree(0);
    this.#cursor = lowest >= 0 ? lowest : this.#slabs.length * this.#slabBlocks;
  }

  // ---- check ---------------------------------------------------------------------------------

  check(blockStates: Uint8Array, mag: Int32Array, count: number): string | null {
    this.#live();
    if (!(blockStates instanceof Uint8Array)) throw internalError("check needs the pool's Uint8Array of block states");
    if (!(mag instanceof Int32Array)) throw internalError('check needs an Int32Array');
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
    const runs: Run[] = [];
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
        if (slab.tags[a] !== len || slab.tags[b] !== len) {
          return `free run [${idx}, ${slab.start + b}] is tagged ${slab.tags[a]} and ${slab.tags[b]}, expected ${len}`;
        }
        for (let j = a; j <= b; j++) {
          const state = blockStates[slab.start + j];
          if (state !== BlockState.Free) return `block ${slab.start + j} is free in the engine but the pool has it in state ${state}`;
        }
        runs.push({ start: idx, length: len });
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
    const indexProblem = this.#runs.check(runs);
    if (indexProblem !== null) return indexProblem;
    if (lowest >= 0 && this.#cursor > lowest) return `search cursor ${this.#cursor} is past the lowest free block ${lowest}`;
    return null;
  }

  // ---- the free layout, as the run index reads it -----------------------------------------------

  nextFree(from: number): number {
    return this.#findFree(from);
  }

  runLength(start: number): number {
    const slab = this.#slabs[Math.floor(start / this.#slabBlocks)]!;
    return slab.tags[start - slab.start]!;
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

  #slabAt(idx: number): Slab {
    const slab = Number.isInteger(idx) && idx >= 0 ? this.#slabs[Math.floor(idx / this.#slabBlocks)] : undefined;
    if (!slab || idx - slab.start >= slab.blocks) throw internalError(`no block ${idx}`);
    return slab;
  }

  #isUsed(slab: Slab, a: number): boolean {
    return ((slab.used[a >>> 5]! >>> (a & 31)) & 1) !== 0;
  }

  /** Lowest free block at or after `from`, or -1. */
  #findFree(from: number): number {
    let slot = Math.floor(from / this.#slabBlocks);
    let a = from - slot * this.#slabBlocks;
    for (; slot < this.#slabs.length; slot++, a = 0) {
      const slab = this.#slabs[slot];
      if (!slab || slab.free === 0) continue;
      const used = slab.used;
      let w = a >>> 5;
      let word = ~used[w]! & (-1 << (a & 31));
      while (word === 0 && ++w < used.length) word = ~used[w]!;
      if (word !== 0) return slab.start + (w << 5) + ctz32(word);
    }
    return -1;
  }

  /** Allocates the first `take` blocks of the free run [a, a+len). */
  #takeFromRun(slab: Slab, a: number, len: number, take: number): void {
    if (len > take) this.#setRun(slab, a + take, len - take);
    this.#runs.remove(slab.start + a, len);
    for (let j = a; j < a + take; j++) slab.used[j >>> 5]! |= 1 << (j & 31);
    slab.free -= take;
    this.#bump(Counter.Free, -take);
  }

  /** Frees [idx, idx+k), which must be allocated and inside one slab, merging with neighbours. */
  #releaseRange(idx: number, k: number): void {
    const slab = this.#slabAt(idx);
    const a = idx - slab.start;
    if (!(Number.isInteger(k) && k >= 1 && a + k <= slab.blocks)) throw internalError(`release of ${k} blocks from ${idx}`);
    for (let j = a; j < a + k; j++) {
      if (!this.#isUsed(slab, j)) throw internalError(`block ${slab.start + j} is already free`);
    }
    for (let j = a; j < a + k; j++) slab.used[j >>> 5]! &= ~(1 << (j & 31));
    const left = a > 0 && !this.#isUsed(slab, a - 1) ? slab.tags[a - 1]! : 0;
    const right = a + k < slab.blocks && !this.#isUsed(slab, a + k) ? slab.tags[a + k]! : 0;
    // Add the merged run before removing its parts, so the largest never has to search downwards here.
    this.#setRun(slab, a - left, left + k + right);
    if (left) this.#runs.remove(idx - left, left);
    if (right) this.#runs.remove(idx + k, right);
    slab.free += k;
    this.#bump(Counter.Free, k);
    if (idx < this.#cursor) this.#cursor = idx;
  }

  #bump(field: Counter, delta: number): void {
    this.counters[field] = this.counters[field]! + delta;
  }

  /** Tags the free run [a, a+len) of the slab and indexes it. */
  #setRun(slab: Slab, a: number, len: number): void {
    slab.tags[a] = len;
    slab.tags[a + len - 1] = len;
    this.#runs.add(slab.start + a, len);
  }
}

export const createJsEngine = (config: EngineConfig): Engine => new JsEngine(config);
