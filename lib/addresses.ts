import type { Engine } from './engine.js';
import { IndexTable } from './index-table.js';
import type { SlotTable } from './slots.js';

/**
 * Absolute addresses of a pool's blocks, for native code (addressOf(), Pin.address). BigInt(number)
 * is a runtime call in V8 11 (~50 ns) and a bigint sum another, so a block's address is made once,
 * when first asked for, and kept by block index (a run keeps its own in its record, views.ts);
 * each slab's base is read from the engine once and kept as a number, exact for every address a
 * 64-bit x64 or arm64 process has (below 2^47), so making an address is one conversion.
 */
export class AddressBook {
  readonly #engine: Engine;
  readonly #slots: SlotTable;
  /** Per slot, the address of its buffer's byte 0; NaN where unknown (js backend, a new slab) or not exact as a number plus an offset. */
  readonly #slabs: number[] = [];
  readonly #blocks = new IndexTable<bigint>();

  constructor(engine: Engine, slots: SlotTable) {
    this.#engine = engine;
    this.#slots = slots;
  }

  /** The address of block idx, whose view starts at byteOffset in its slab's buffer; null on the js backend. */
  block(idx: number, byteOffset: number): bigint | null {
    const known = this.#blocks.get(idx);
    if (known !== undefined) return known;
    const address = this.at(this.#slots.slotOf(idx), byteOffset);
    if (address !== null) this.#blocks.set(idx, address);
    return address;
  }

  /** The address of the byte at byteOffset in the slot's buffer; null on the js backend. */
  at(slot: number, byteOffset: number): bigint | null {
    const base = this.#slabs[slot];
    if (base !== undefined && base === base) return BigInt(base + byteOffset);
    const address = this.#engine.slabAddress(slot);
    if (address === null) return null;
    const buffer = address - BigInt(this.#slots.at(slot).base);
    this.#slabs[slot] = buffer <= BigInt(Number.MAX_SAFE_INTEGER - 2 ** 32) ? Number(buffer) : NaN;
    return buffer + BigInt(byteOffset);
  }

  /** The slot's slab changed (added, or given back with blocks [first, first + count)): forget its addresses. */
  forget(slot: number, first = 0, count = 0): void {
    this.#slabs[slot] = NaN;
    this.#blocks.deleteRange(first, count, () => {});
  }

  clear(): void {
    this.#slabs.length = 0;
    this.#blocks.clear();
  }
}
