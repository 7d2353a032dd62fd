import type { PoolArray, PoolArrayConstructor } from './options.js';
import { slabDetached } from './errors.js';
import { IndexInts, IndexTable } from './index-table.js';
import { ownViewMaker } from './own-map.js';
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
 *   MARK    free: ViewState.Pristine from the view's making until its block is first handed out
 *           through it, ViewState.Free (0) from its first return on (zero-fill.ts); else
 *           mark(serial, state) (below): one load and one compare tell returnBlock that a view
 *           is this pool's and handed out
 * A run view carries instead a RunRecord holding the same for the run, in a private field
 * (runOf() reads it). A view is made for each start and length that comes, so it must be cheap:
 * each Object.defineProperty costs ~130 ns or more (measured up to ~600 ns on a fresh view), and
 * four marks as properties made a run view cost ~700 ns, one record as a property ~250 ns, the
 * record in a private field ~110 ns, of which ~65 ns are the view itself (own-map.ts). A private
 * field is also invisible to every reflection API (util.inspect, deepStrictEqual,
 * Object.getOwnPropertySymbols), and a view of another realm or library never has it.
 */

export const POOL = Symbol('slabpool.pool');
export const INDEX = Symbol('slabpool.index');
export const MARK = Symbol('slabpool.mark');

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
  /** Live pins on the run (pin.ts); a pinned run cannot be returned. */
  pins: number;
  /** Its absolute address once addressOf() asked for it (undefined before; null on the js backend). */
  address: bigint | null | undefined;
}

export type PoolView = PoolArray & { [POOL]?: number; [INDEX]?: number; [MARK]?: number };

/** Returns the object it is given from the constructor, so that a subclass's fields land on it. */
class Stamp {
  constructor(target: object) {
    return target;
  }
}

/**
 * Puts a RunRecord on a run view as a private field: a class field initialised on an object
 * made elsewhere (the base constructor returns it), which V8 adds as a private-symbol property
 * (one map transition, no runtime call, unlike Object.defineProperty).
 */
class RunStamp extends Stamp {
  readonly #run: RunRecord;

  constructor(view: PoolView, run: RunRecord) {
    super(view);
    this.#run = run;
  }

  static of(value: object): RunRecord | undefined {
    return #run in value ? (value as RunStamp).#run : undefined;
  }
}

/**
 * Brands a block view with a private field: `#block in value` is true for a block view a pool
 * made and false for anything else, a Proxy of one included (private fields are not reached
 * through a Proxy), and no code outside this class can add it. returnBlock's and addressOf's
 * fast paths use it as their identity check: ~0 ns a pair, where reading the view back from the
 * view table cost ~2 ns (measured, getBlock+returnBlock 8.9 ns vs 6.7 ns).
 */
class BlockStamp extends Stamp {
  readonly #block = true;

  static is(value: object): boolean {
    return #block in value;
  }
}

/** Whether `value` (an object) is a block view some pool made; never true for a Proxy of one. */
export function isBlockView(value: object): boolean {
  return BlockStamp.is(value);
}

/** The record of a run view a pool made; undefined for anything else (a block view, a foreign array). */
export function runOf(view: object): RunRecord | undefined {
  return RunStamp.of(view);
}

/** What a block view's mark says about it, besides which pool's it is. */
export const enum ViewState {
  Free = 0,
  /** Handed out by getBlock(). */
  Held = 1,
  /** Handed out inside a Lease. */
  Leased = 2,
  /** A run view handed out by getRun(). */
  Run = 3,
  /** Held, and pinned (pin.ts): returnBlock's fast path, which compares with the Held mark, misses it. */
  PinnedHeld = 4,
  /** Leased, and pinned. */
  PinnedLeased = 5,
  /**
   * Free, and never handed out through this view since it was made (zero-fill.ts): the mark a
   * block view is made with. Owned by no pool (serial 0), so it never passes as held; the first
   * return writes Free over it, which is how the hot path tells used memory from fresh at no cost.
   */
  Pristine = 6,
  /** Marks are serial * Kinds + state: room for states to come. */
  Kinds = 8,
}

/** The mark of a view of pool `serial` in `state`; NaN for a destroyed pool (serial NaN), which no view carries. */
export function mark(serial: number, state: ViewState): number {
  return serial * ViewState.Kinds + state;
}

/** The state a mark records (Free or Pristine for a free view). */
export function stateOf(markValue: number): ViewState {
  return markValue % ViewState.Kinds;
}

/** Whether a block view's mark says free: Free, or Pristine (never handed out). */
export function isFreeMark(markValue: number): boolean {
  return markValue === ViewState.Free || markValue === ViewState.Pristine;
}

/** The pool serial a mark records. */
export function ownerOf(markValue: number): number {
  return Math.floor(markValue / ViewState.Kinds);
}

/** A typed array of the named type (by its tag, so that arrays from other realms count too). */
export function isArrayOf(value: unknown, typeName: string): boolean {
  return ArrayBuffer.isView(value) && (value as PoolArray)[Symbol.toStringTag] === typeName;
}

/**
 * The views one pool has made: one per block (made on first use) and one per run start (the
 * last length asked for there), in IndexTables. Views are made over the slabs the SlotTable records.
 */
export class ViewTable {
  readonly #id: number;
  /** ownView for the pool's type (own-map.ts). */
  readonly #makeView: (buffer: ArrayBuffer, byteOffset: number, length: number) => PoolView;
  readonly #blockLength: number;
  readonly #slots: SlotTable;
  readonly #blocks = new IndexTable<PoolView>();
  /** The view of the run that starts at each index; the run is live while its record's mark says so. */
  readonly #runs = new IndexTable<PoolView>();
  /**
   * The length of the run view kept at each start (0 if none): run() compares with it instead of
   * reading the old view's record, an object gone cold by then (on the bench's churn trace most
   * getRun calls ask for another length than the last one at their start).
   */
  readonly #runLengths = new IndexInts();

  constructor(id: number, type: PoolArrayConstructor, blockLength: number, slots: SlotTable) {
    this.#id = id;
    this.#makeView = ownViewMaker(type);
    this.#blockLength = blockLength;
    this.#slots = slots;
  }

  /** The view made for block idx, if any. */
  block(idx: number): PoolView | undefined {
    return this.#blocks.get(idx);
  }

  /**
   * The view of block idx, made now if it was never needed before. A slab detached outside the
   * pool cannot get a new view: ERR_SLABPOOL_DETACHED, naming `method` (the public call).
   */
  blockOrNew(idx: number, method: string): PoolView {
    return this.#blocks.get(idx) ?? this.#newBlock(idx, method);
  }

  /** The view of the run of k blocks at start: the one made before for that start and length, or a new one (`method`: as blockOrNew). */
  run(start: number, k: number, method: string): PoolView {
    if (this.#runLengths.get(start) === k) return this.#runs.get(start)!;
    const view = this.#over(start, k * this.#blockLength, method);
    new RunStamp(view, { pool: this.#id, start, length: k, mark: ViewState.Free, pins: 0, address: undefined });
    this.#runs.set(start, view);
    this.#runLengths.set(start, k);
    return view;
  }

  /**
   * The slot of the run at start when its slab's ArrayBuffer was detached outside the pool (no
   * view of it can be made: run() would throw), else -1.
   */
  detachedSlotAt(start: number): number {
    const slot = this.#slots.slotOf(start);
    return this.#slots.at(slot).buffer!.byteLength === 0 ? slot : -1;
  }

  /** The last view made for a run at start, if any. */
  runAt(start: number): PoolView | undefined {
    return this.#runs.get(start);
  }

  /** The record of the last view made for a run at start, if any. */
  runRecordAt(start: number): RunRecord | undefined {
    const view = this.#runs.get(start);
    return view === undefined ? undefined : runOf(view);
  }

  /** Retires every view of blocks [first, first + count): each is marked gone (INDEX NaN) and forgotten. */
  retire(first: number, count: number): void {
    this.#blocks.deleteRange(first, count, (view) => {
      view[INDEX] = NaN;
    });
    this.#runs.deleteRange(first, count, (view) => {
      runOf(view)!.start = NaN;
    });
    this.#runLengths.clearRange(first, count);
  }

  /** Forgets every view (the pool is destroyed: its serial no longer matches any mark). */
  clear(): void {
    this.#blocks.clear();
    this.#runs.clear();
    this.#runLengths.clear();
  }

  /** Calls fn for every run view kept (one per start; whether its run is live, its record's mark says), in start order. */
  forEachRun(fn: (start: number, view: PoolView) => void): void {
    this.#runs.forEach((view, start) => fn(start, view));
  }

  /** Calls fn for every block view made. */
  forEachBlock(fn: (view: PoolView) => void): void {
    this.#blocks.forEach(fn);
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

  #newBlock(idx: number, method: string): PoolView {
    const view: PoolView = this.#over(idx, this.#blockLength, method);
    Object.defineProperty(view, POOL, { value: this.#id });
    Object.defineProperty(view, INDEX, { value: idx, writable: true });
    Object.defineProperty(view, MARK, { value: ViewState.Pristine, writable: true });
    new BlockStamp(view);
    this.#blocks.set(idx, view);
    return view;
  }

  /** A new typed array of `length` elements starting at block idx, in its slab's buffer. */
  #over(idx: number, length: number, method: string): PoolView {
    const s = this.#slots.slotOf(idx);
    const slot = this.#slots.at(s);
    if (slot.buffer!.byteLength === 0) throw slabDetached(method, s);
    return this.#makeView(slot.buffer!, this.#slots.byteOffset(idx), length);
  }
}
