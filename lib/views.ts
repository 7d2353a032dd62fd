import type { PoolArray, PoolArrayConstructor } from './options.js';
import { ownView } from './own-map.js';
import type { SlotTable } from './slots.js';

/*
 * The typed arrays a pool hands out, and the marks that say whose they are and what state they
 * are in. A pool makes one view per block, once, and hands out the same view every time the
 * block is taken (creating views costs ~1 us; reusing them is what keeps the hot path at a few
 * ns); a run gets a view per start and length.
 *
 * Marks, as non-enumerable own properties (invisible to JSON, util.inspect and deepStrictEqual).
 * A block view has three:
 *   POOL    the serial number of the pool that made the view
 *   INDEX   its block's index; NaN once the slab is trimmed or the pool destroyed, so that the
 *           view never names a block of a slab grown later in its slot
 *   MARK    0 while free, else mark(serial, state) (below): one load and one compare tell
 *           returnBlock that a view is this pool's and handed out
 * A run view has one, RUN, a RunRecord holding the same for the run (a view is made for each
 * start and length that comes, so it must be cheap: each Object.defineProperty costs ~130 ns,
 * measured, and one record instead of four marks took a run view from ~700 to ~250 ns).
 */

export const POOL = Symbol('slabpool.pool');
export const INDEX = Symbol('slabpool.index');
export const MARK = Symbol('slabpool.mark');
export const RUN = Symbol('slabpool.run');

/** What a run view knows of itself (its RUN mark). */
export interface RunRecord {
  /** The serial number of the pool that made the view. */
  readonly pool: number;
  /** Its first block's index; NaN once the slab is trimmed or the pool destroyed (as INDEX). */
  start: number;
  /** Blocks in the run. */
  readonly length: number;
  /** mark(serial, ViewState.Run) while the run is live, else ViewState.Free. */
  mark: number;
}

export type PoolView = PoolArray & { [POOL]?: number; [INDEX]?: number; [MARK]?: number; [RUN]?: RunRecord };

/** What a block view's mark says about it, besides which pool's it is. */
export const enum ViewState {
  Free = 0,
  /** Handed out by getBlock(). */
  Held = 1,
  /** Handed out inside a Lease. */
  Leased = 2,
  /** A run view handed out by getRun(). */
  Run = 3,
  /** Marks are serial * Kinds + state: room for states to come (a pin, say). */
  Kinds = 8,
}

/** The mark of a view of pool `serial` in `state`; NaN for a destroyed pool (serial NaN), which no view carries. */
export function mark(serial: number, state: ViewState): number {
  return serial * ViewState.Kinds + state;
}

/** The state a mark records (0, free, for a view never handed out). */
export function stateOf(markValue: number): ViewState {
  return markValue % ViewState.Kinds;
}

/** The pool serial a mark records. */
export function ownerOf(markValue: number): number {
  return Math.floor(markValue / ViewState.Kinds);
}

/** A typed array of the named type (by its tag, so that arrays from other realms count too). */
export function isArrayOf(value: unknown, typeName: string): boolean {
  return ArrayBuffer.isView(value) && (value as PoolArray)[Symbol.toStringTag] === typeName;
}

const CHUNK_SHIFT = 10;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;

/**
 * The views one pool has made: one per block (in chunks of 1024, made on first use) and one per
 * live run start. Views are made over the slabs the SlotTable records.
 */
export class ViewTable {
  readonly #id: number;
  readonly #type: PoolArrayConstructor;
  readonly #blockLength: number;
  readonly #slots: SlotTable;
  #blocks: (PoolView | undefined)[][] = [];
  /** The view of the run that starts at each index; the run is live while the pool says so. */
  readonly #runs = new Map<number, PoolView>();

  constructor(id: number, type: PoolArrayConstructor, blockLength: number, slots: SlotTable) {
    this.#id = id;
    this.#type = type;
    this.#blockLength = blockLength;
    this.#slots = slots;
  }

  /** The view made for block idx, if any. */
  block(idx: number): PoolView | undefined {
    return this.#blocks[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK];
  }

  /** The view of block idx, made now if it was never needed before. */
  blockOrNew(idx: number): PoolView {
    return this.block(idx) ?? this.#newBlock(idx);
  }

  /** The view of the run of k blocks at start: the one made before for that start and length, or a new one. */
  run(start: number, k: number): PoolView {
    let view = this.#runs.get(start);
    if (view === undefined || view[RUN]!.length !== k) {
      view = this.#over(start, k * this.#blockLength);
      const record: RunRecord = { pool: this.#id, start, length: k, mark: ViewState.Free };
      Object.defineProperty(view, RUN, { value: record });
      this.#runs.set(start, view);
    }
    return view;
  }

  /** The last view made for a run at start, if any. */
  runAt(start: number): PoolView | undefined {
    return this.#runs.get(start);
  }

  /** Retires every view of blocks [first, first + count): each is marked gone (INDEX NaN) and forgotten. */
  retire(first: number, count: number): void {
    for (let idx = first; idx < first + count; idx++) {
      const chunk = this.#blocks[idx >>> CHUNK_SHIFT];
      const view = chunk?.[idx & CHUNK_MASK];
      if (view === undefined) continue;
      view[INDEX] = NaN;
      chunk![idx & CHUNK_MASK] = undefined;
    }
    for (const [start, view] of this.#runs) {
      if (start < first || start >= first + count) continue;
      view[RUN]!.start = NaN;
      this.#runs.delete(start);
    }
  }

  /** Forgets every view (the pool is destroyed: its serial no longer matches any mark). */
  clear(): void {
    this.#blocks = [];
    this.#runs.clear();
  }

  /** Calls fn for every run view kept (one per start; whether its run is live, its RUN mark says). */
  forEachRun(fn: (start: number, view: PoolView) => void): void {
    for (const [start, view] of this.#runs) fn(start, view);
  }

  /** Calls fn for every block view made. */
  forEachBlock(fn: (view: PoolView) => void): void {
    for (const chunk of this.#blocks) {
      if (chunk === undefined) continue;
      for (const view of chunk) if (view !== undefined) fn(view);
    }
  }

  /** Null if the view of block idx maps its memory (or none was made), else what is wrong. */
  checkBlock(idx: number): string | null {
    const view = this.block(idx);
    if (view === undefined) return null;
    const slot = this.#slots.at(this.#slots.slotOf(idx));
    if (view.buffer !== slot.buffer || view.byteOffset !== this.#slots.byteOffset(idx) || view.length !== this.#blockLength || view[INDEX] !== idx || view[POOL] !== this.#id) {
      return `cached view of block ${idx} does not map its memory`;
    }
    return null;
  }

  #newBlock(idx: number): PoolView {
    const view: PoolView = this.#over(idx, this.#blockLength);
    Object.defineProperty(view, POOL, { value: this.#id });
    Object.defineProperty(view, INDEX, { value: idx, writable: true });
    Object.defineProperty(view, MARK, { value: ViewState.Free, writable: true });
    (this.#blocks[idx >>> CHUNK_SHIFT] ??= new Array<PoolView | undefined>(CHUNK_MASK + 1))[idx & CHUNK_MASK] = view;
    return view;
  }

  /** A new typed array of `length` elements starting at block idx, in its slab's buffer. */
  #over(idx: number, length: number): PoolView {
    const slot = this.#slots.at(this.#slots.slotOf(idx));
    return ownView(this.#type, slot.buffer!, this.#slots.byteOffset(idx), length);
  }
}
