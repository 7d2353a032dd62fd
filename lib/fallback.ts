import {
  BLOCK_FREE,
  ES_CAPACITY,
  ES_FREE,
  ES_LARGEST,
  ES_LENGTH,
  ES_RESERVED_BYTES,
  ES_SLABS,
  type Engine,
  type EngineConfig,
} from './engine.js';

/*
 * The allocator core in TypeScript: the executable specification that native/slab.cc follows
 * line for line, and the backend used when no native build loads.
 *
 * Per slab of n blocks:
 *   used: bitmap, bit i = 1 iff block i is allocated; bits n..32*ceil(n/32)-1 are set (never free).
 *   tags: for every maximal run of free blocks [a, b]: tags[a] = tags[b] = b - a + 1.
 *         Other entries are stale. Runs never cross a slab.
 * Whole engine:
 *   runCount[len] = number of free runs of length len;  lenBits bit len = (runCount[len] > 0)
 *   LARGEST = max { len : runCount[len] > 0 }, 0 if none
 *   FREE = sum over runs of len = sum over slabs of slab.free
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

function detach(buffer: ArrayBuffer): void {
  // Node 20 has no ArrayBuffer.prototype.transfer; a transferring structuredClone moves the
  // backing store away, leaving `buffer` (and every view on it) with length 0.
  structuredClone(buffer, { transfer: [buffer] });
}

export class JsEngine implements Engine {
  readonly kind = 'js' as const;
  readonly alignmentScope = 'buffer' as const;
  readonly memory = 'v8' as const;
  readonly state = new Float64Array(ES_LENGTH);

  readonly #stride: number;
  readonly #slabBlocks: number;
  readonly #slabs: (Slab | undefined)[] = [];
  readonly #runCount: Int32Array;
  readonly #lenBits: Uint32Array;
  #cursor = 0;
  #sorted = new Int32Array(64);

  constructor(config: EngineConfig) {
    this.#stride = config.stride;
    this.#slabBlocks = config.slabBlocks;
    this.#runCount = new Int32Array(config.slabBlocks + 1);
    this.#lenBits = new Uint32Array((config.slabBlocks >>> 5) + 1);
  }

  // ---- slabs ---------------------------------------------------------------------------------

  addSlab(slot: number, blocks: number): boolean {
    this.#requireSlot(slot, false);
    if (!Number.isInteger(blocks) || blocks < 1 || blocks > this.#slabBlocks) {
      throw new Error(`slabpool internal: slab of ${blocks} blocks`);
    }
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
    this.#bump(ES_FREE, blocks);
    this.#bump(ES_CAPACITY, blocks);
    this.#bump(ES_SLABS, 1);
    this.#bump(ES_RESERVED_BYTES, bytes);
    if (slab.start < this.#cursor) this.#cursor = slab.start;
    return true;
  }

  freeSlab(slot: number): number {
    const slab = this.#requireSlot(slot, true);
    if (slab.free !== slab.blocks) throw new Error(`slabpool internal: slab ${slot} is not empty`);
    this.#removeRun(slab.blocks);
    this.#bump(ES_FREE, -slab.blocks);
    this.#bump(ES_CAPACITY, -slab.blocks);
    this.#bump(ES_SLABS, -1);
    this.#bump(ES_RESERVED_BYTES, -slab.bytes);
    this.#slabs[slot] = undefined;
    detach(slab.buffer);
    return slab.bytes;
  }

  slabFree(slot: number): number {
    return this.#requireSlot(slot, true).free;
  }

  slabBuffer(slot: number): ArrayBuffer {
    return this.#requireSlot(slot, true).buffer;
  }

  slabBase(slot: number): number {
    this.#requireSlot(slot, true);
    return 0;
  }

  slabAddress(slot: number): null {
    this.#requireSlot(slot, true);
    return null;
  }

  destroy(): void {
    for (const slab of this.#slabs) if (slab) detach(slab.buffer);
    this.#slabs.length = 0;
    this.#runCount.fill(0);
    this.#lenBits.fill(0);
    this.state.fill(0);
    this.#cursor = 0;
  }

  // ---- blocks and runs -----------------------------------------------------------------------

  acquire(out: Int32Array, max: number): number {
    if (!(max >= 0 && max <= out.length)) throw new Error(`slabpool internal: acquire ${max}`);
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
    for (let i = 0, j = n - 1; i < j; i++, j--) {
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return n;
  }

  release(list: Int32Array, count: number): void {
    if (!(count >= 0 && count <= list.length)) throw new Error(`slabpool internal: release ${count}`);
    for (let j = 0; j < count; j++) this.#releaseRange(list[j]!, 1);
  }

  acquireRun(k: number): number {
    if (!(Number.isInteger(k) && k >= 1)) throw new Error(`slabpool internal: acquireRun ${k}`);
    if (this.state[ES_LARGEST]! < k) return -1;
    let lowest = true;
    let p = this.#findFree(this.#cursor);
    while (p >= 0) {
      // p follows an allocated block or a slab start, so it starts a run.
      const slab = this.#slabs[Math.floor(p / this.#slabBlocks)]!;
      const a = p - slab.start;
      const len = slab.tags[a]!;
      if (len >= k) {
        this.#takeFromRun(slab, a, len, k);
        if (lowest) this.#cursor = p + k;
        return p;
      }
      lowest = false;
      p = this.#findFree(p + len);
    }
    return -1;
  }

  releaseRun(start: number, k: number): void {
    this.#releaseRange(start, k);
  }

  largestRunWith(mag: Int32Array, count: number): number {
    let best = this.state[ES_LARGEST]!;
    if (count === 0) return best;
    if (this.#sorted.length < count) this.#sorted = new Int32Array(count);
    const sorted = this.#sorted;
    // Insertion sort in place: count is at most the magazine's 64, and nothing is allocated.
    for (let i = 0; i < count; i++) {
      const v = mag[i]!;
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

  coalesce(): void {
    const lowest = this.#findFree(0);
    this.#cursor = lowest >= 0 ? lowest : this.#slabs.length * this.#slabBlocks;
  }

  // ---- check ---------------------------------------------------------------------------------

  check(blockState: Uint8Array, mag: Int32Array, count: number): string | null {
    const cached = new Set<number>();
    for (let j = 0; j < count; j++) {
      const idx = mag[j]!;
      const slab = this.#slabs[Math.floor(idx / this.#slabBlocks)];
      if (!(idx >= 0) || !slab || idx - slab.start >= slab.blocks) return `cached block ${idx} does not exist`;
      if (cached.has(idx)) return `block ${idx} is cached twice`;
      if (!this.#isUsed(slab, idx - slab.start)) return `cached block ${idx} is also free in the engine`;
      cached.add(idx);
    }
    const runs = new Map<number, number>();
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
        const poolFree = blockState[idx] === BLOCK_FREE && !cached.has(idx);
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
          const state = blockState[slab.start + j];
          if (state !== BLOCK_FREE) return `block ${slab.start + j} is free in the engine but the pool has it in state ${state}`;
        }
        runs.set(len, (runs.get(len) ?? 0) + 1);
        if (lowest < 0) lowest = idx;
        largest = Math.max(largest, len);
        slabFree += len;
        a = b + 1;
      }
      if (slabFree !== slab.free) return `slab ${slot} counts ${slab.free} free blocks, its bitmap ${slabFree}`;
      free += slabFree;
    }
    if (free !== this.state[ES_FREE]) return `engine counts ${this.state[ES_FREE]} free blocks, its slabs ${free}`;
    if (capacity !== this.state[ES_CAPACITY]) return `engine counts capacity ${this.state[ES_CAPACITY]}, its slabs ${capacity}`;
    if (slabs !== this.state[ES_SLABS]) return `engine counts ${this.state[ES_SLABS]} slabs, found ${slabs}`;
    if (reserved !== this.state[ES_RESERVED_BYTES]) return `engine counts ${this.state[ES_RESERVED_BYTES]} reserved bytes, its slabs ${reserved}`;
    if (largest !== this.state[ES_LARGEST]) return `engine records largest free run ${this.state[ES_LARGEST]}, its slabs ${largest}`;
    for (let len = 1; len < this.#runCount.length; len++) {
      const expected = runs.get(len) ?? 0;
      if (this.#runCount[len] !== expected) return `engine counts ${this.#runCount[len]} free runs of ${len}, its slabs ${expected}`;
      const bit = (this.#lenBits[len >>> 5]! >>> (len & 31)) & 1;
      if (bit !== (expected > 0 ? 1 : 0)) return `run-length bit ${len} is ${bit} with ${expected} runs`;
    }
    if (lowest >= 0 && this.#cursor > lowest) return `search cursor ${this.#cursor} is past the lowest free block ${lowest}`;
    return null;
  }

  // ---- internals -----------------------------------------------------------------------------

  #requireSlot(slot: number, exists: boolean): Slab {
    if (!Number.isInteger(slot) || slot < 0 || slot > this.#slabs.length || (slot === this.#slabs.length && exists)) {
      throw new Error(`slabpool internal: slot ${slot}`);
    }
    const slab = this.#slabs[slot];
    if (exists !== (slab !== undefined)) throw new Error(`slabpool internal: slot ${slot} ${exists ? 'is empty' : 'is taken'}`);
    return slab!;
  }

  #slabAt(idx: number): Slab {
    const slab = Number.isInteger(idx) && idx >= 0 ? this.#slabs[Math.floor(idx / this.#slabBlocks)] : undefined;
    if (!slab || idx - slab.start >= slab.blocks) throw new Error(`slabpool internal: no block ${idx}`);
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
    this.#removeRun(len);
    for (let j = a; j < a + take; j++) slab.used[j >>> 5]! |= 1 << (j & 31);
    slab.free -= take;
    this.#bump(ES_FREE, -take);
  }

  /** Frees [idx, idx+k), which must be allocated and inside one slab, merging with neighbours. */
  #releaseRange(idx: number, k: number): void {
    const slab = this.#slabAt(idx);
    const a = idx - slab.start;
    if (!(Number.isInteger(k) && k >= 1 && a + k <= slab.blocks)) throw new Error(`slabpool internal: release ${idx}+${k}`);
    for (let j = a; j < a + k; j++) {
      if (!this.#isUsed(slab, j)) throw new Error(`slabpool internal: block ${slab.start + j} is already free`);
    }
    for (let j = a; j < a + k; j++) slab.used[j >>> 5]! &= ~(1 << (j & 31));
    const left = a > 0 && !this.#isUsed(slab, a - 1) ? slab.tags[a - 1]! : 0;
    const right = a + k < slab.blocks && !this.#isUsed(slab, a + k) ? slab.tags[a + k]! : 0;
    // Add the merged run before removing its parts, so LARGEST never has to search downwards here.
    this.#setRun(slab, a - left, left + k + right);
    if (left) this.#removeRun(left);
    if (right) this.#removeRun(right);
    slab.free += k;
    this.#bump(ES_FREE, k);
    if (idx < this.#cursor) this.#cursor = idx;
  }

  #bump(field: number, delta: number): void {
    this.state[field] = this.state[field]! + delta;
  }

  #setRun(slab: Slab, a: number, len: number): void {
    slab.tags[a] = len;
    slab.tags[a + len - 1] = len;
    if (this.#runCount[len]!++ === 0) this.#lenBits[len >>> 5]! |= 1 << (len & 31);
    if (len > this.state[ES_LARGEST]!) this.state[ES_LARGEST] = len;
  }

  #removeRun(len: number): void {
    if (--this.#runCount[len]! !== 0) return;
    this.#lenBits[len >>> 5]! &= ~(1 << (len & 31));
    if (len === this.state[ES_LARGEST]) this.state[ES_LARGEST] = this.#highestLengthBelow(len);
  }

  /** Largest run length present that is < len (its own bit is already clear), or 0. */
  #highestLengthBelow(len: number): number {
    let w = len >>> 5;
    let word = this.#lenBits[w]! & ((1 << (len & 31)) - 1);
    while (word === 0 && w > 0) word = this.#lenBits[--w]!;
    return word === 0 ? 0 : (w << 5) + 31 - Math.clz32(word);
  }
}

export const createJsEngine = (config: EngineConfig): Engine => new JsEngine(config);
