import type { BlockRecord, CompatView, SizeClass } from './compat-size-classes.js';
import { checkFailed } from './errors.js';

/** The records of one class slab's blocks that have gone out at least once, by block position. */
interface SlabEntry {
  readonly cls: SizeClass;
  /** Byte offset of the slab's block 0 within its ArrayBuffer. */
  readonly base: number;
  /** log2 of the class's block bytes. */
  readonly shift: number;
  readonly records: (BlockRecord | undefined)[];
}

/**
 * compat's way from a view back to its block's record when the view carries no mark: the slab
 * ArrayBuffer it views, and its byte offset in it. A view made for one malloc only is left
 * unmarked (a property or private field on an object of a built-in typed-array map gives that map
 * a transition, which re-optimizes every function holding a typed array of that type as a constant:
 * own-map.ts), so free() finds its record here, by its `buffer` and `byteOffset` (~25 ns). Cached
 * views, handed out again and again, are marked on maps of their own and never need this.
 *
 * Entries follow the slabs: a class's slab is added when one of its blocks first goes out, and
 * forgotten when trim() or clearCache() gives it back, so a view of a released slab finds nothing.
 */
export class SlabIndex {
  readonly #slabs = new Map<ArrayBuffer, SlabEntry>();

  /** Files the record of a block first handed out: `position` is its block's index within its slab. */
  add(record: BlockRecord, position: number): void {
    let entry = this.#slabs.get(record.buffer);
    if (entry === undefined) {
      const shift = Math.log2(record.cls.pool.blockLength);
      entry = { cls: record.cls, base: record.offset - position * 2 ** shift, shift, records: [] };
      this.#slabs.set(record.buffer, entry);
    }
    entry.records[position] = record;
  }

  /**
   * The record of the block whose first byte `view` starts at, or undefined. A view of a slab
   * something outside the pool detached (a web stream took it) no longer knows where it started
   * (a typed array's byteOffset reads 0, a DataView's throws): its record is found by the view
   * itself instead, as its block's live view or the one freed last.
   */
  recordAt(view: CompatView): BlockRecord | undefined {
    const buffer = view.buffer as ArrayBuffer;
    const entry = this.#slabs.get(buffer);
    if (entry === undefined) return undefined;
    if (buffer.byteLength === 0) return entry.records.find((r) => r !== undefined && (r.live === view || r.lastFreed === view));
    const offset = view.byteOffset;
    const record = entry.records[(offset - entry.base) >>> entry.shift];
    return record !== undefined && record.offset === offset ? record : undefined;
  }

  /** Forgets every slab of `cls` its pool no longer has (after a trim), or all of them (`all`, the class is closed). */
  forget(cls: SizeClass, all: boolean): void {
    for (const [buffer, entry] of this.#slabs) {
      if (entry.cls !== cls) continue;
      const any = entry.records.find((r) => r !== undefined)!;
      if (all || cls.pool.indexOf(any.block) < 0) this.#slabs.delete(buffer);
    }
  }

  /** Throws ERR_SLABPOOL_CHECK_FAILED unless every entry's records sit where the entry says. */
  check(): void {
    for (const [buffer, entry] of this.#slabs) {
      entry.records.forEach((record, i) => {
        if (record === undefined) return;
        if (record.buffer !== buffer || record.cls !== entry.cls || record.offset !== entry.base + i * 2 ** entry.shift) {
          throw checkFailed(`compat's slab index files a record of class ${2 ** entry.shift} at the wrong place`);
        }
      });
    }
  }
}
