import { detachedSlabProblem } from './errors.js';

/**
 * The pool's record of each slab slot: how many blocks the slab there has, the ArrayBuffer its
 * blocks are views of, and the byte offset of its block 0 in that buffer. One record per slot
 * (the C++ twin: `Slot` in native/binding.cc); per-slab state that a feature needs (pins, say)
 * belongs here. Slot s holds blocks [s * slabBlocks, s * slabBlocks + blocks); an empty slot
 * (its slab trimmed) has blocks 0 and no buffer, and is the first to be filled again.
 */
export interface Slot {
  /** Blocks in the slab, 0 for an empty slot. */
  blocks: number;
  /** The engine's ArrayBuffer for the slab (engine.slabBuffer), undefined for an empty slot. */
  buffer: ArrayBuffer | undefined;
  /** Byte offset of block 0 within buffer (engine.slabBase). */
  base: number;
}

export class SlotTable {
  readonly #slots: Slot[] = [];
  /** Empty slots below length: while 0 (a pool that only grew), nextFree() is O(1). */
  #empties = 0;
  readonly #slabBlocks: number;
  readonly #stride: number;

  constructor(slabBlocks: number, stride: number) {
    this.#slabBlocks = slabBlocks;
    this.#stride = stride;
  }

  /** Slots, empty ones included: blocks below length * slabBlocks may exist. */
  get length(): number {
    return this.#slots.length;
  }

  /** The record of slot s (s < length). */
  at(s: number): Slot {
    return this.#slots[s]!;
  }

  /**
   * Where the next slab goes: the lowest empty slot, else a new one at the end. O(1) while no
   * slot is empty (growth alone: a pool grown to 50,000 slabs spent 200 us a growth on a linear
   * scan); after a trim, O(slots) until the empty slots are filled again, as the trim was.
   */
  nextFree(): number {
    if (this.#empties === 0) return this.#slots.length;
    const s = this.#slots.findIndex((slot) => slot.blocks === 0);
    return s < 0 ? this.#slots.length : s;
  }

  fill(s: number, blocks: number, buffer: ArrayBuffer, base: number): void {
    if (s < this.#slots.length && this.#slots[s]!.blocks === 0) this.#empties--;
    this.#slots[s] = { blocks, buffer, base };
  }

  /** Empties slot s, and drops empty slots from the end (slot 0 always stays). */
  empty(s: number): void {
    if (this.#slots[s]!.blocks !== 0) this.#empties++;
    this.#slots[s] = { blocks: 0, buffer: undefined, base: 0 };
    while (this.#slots.length > 1 && this.#slots.at(-1)!.blocks === 0) {
      this.#slots.pop();
      this.#empties--;
    }
  }

  clear(): void {
    this.#slots.length = 0;
    this.#empties = 0;
  }

  /** Null when the count of empty slots is right, else what is wrong (check()). */
  problem(): string | null {
    const empties = this.#slots.filter((slot) => slot.blocks === 0).length;
    return empties === this.#empties ? null : `the slot table counts ${this.#empties} empty slots, it holds ${empties}`;
  }

  /** The slot of block idx. */
  slotOf(idx: number): number {
    // No division for slot 0 (every block of a one-slab pool): a getRun asks for its slot several times.
    return idx < this.#slabBlocks ? 0 : Math.floor(idx / this.#slabBlocks);
  }

  /** True when idx names a block of an existing slab. */
  exists(idx: number): boolean {
    const s = this.slotOf(idx);
    return s < this.#slots.length && idx - s * this.#slabBlocks < this.#slots[s]!.blocks;
  }

  /** Byte offset of block idx within its slab's buffer. */
  byteOffset(idx: number): number {
    const s = this.slotOf(idx);
    return this.#slots[s]!.base + (idx - s * this.#slabBlocks) * this.#stride;
  }

  /** What is wrong with the first slab whose ArrayBuffer was detached outside the pool, or null. */
  detachedSlot(): string | null {
    const s = this.#slots.findIndex((slot) => slot.buffer !== undefined && slot.buffer.byteLength === 0);
    return s < 0 ? null : detachedSlabProblem(s);
  }

  /** True when `buffer` is one of the pool's slab buffers. */
  holds(buffer: ArrayBufferLike): boolean {
    return this.#slots.some((slot) => slot.buffer === buffer);
  }
}
