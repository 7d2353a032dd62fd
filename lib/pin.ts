import type { PoolArray } from './options.js';
import { MARK, type PoolView, type RunRecord } from './views.js';

/**
 * A pin: native code holds a block's or run's memory (`using pin = pool.pin(block)`). While any
 * pin on a view is live:
 *   - returnBlock() of it (by view or index, or disposing its Lease) throws ERR_SLABPOOL_PINNED,
 *     leaving the pool unchanged: its memory cannot be handed to anyone else;
 *   - destroy() leaves its whole slab as it is (not decommitted, not detached even with the
 *     `detach` option: the slab's other views too), so a native call still reading or writing it
 *     sees the block's own data; the memory goes (as destroy() would have let it go) when the
 *     last pin of the slab is released. trim() never frees a slab holding a block in use.
 * Pin for the whole of any native work that outlives the JavaScript call that started it (an
 * AsyncWorker, koffi's `.async()`, a thread of a native library), and release it in the
 * callback or after the awaited promise. A pin keeps its view, its pool and the slab reachable.
 * Pins nest: a view may be pinned many times, and is unpinned when every pin is released.
 *
 * Pinning is a policy of the pool layer over the engine's slab pins (engine.ts Engine.pin): the
 * native engine's slab memory is reference-counted, and a pin is one more reference that also
 * forbids the decommit (native/slab.h slab_memory_pin). Cost: one Map update and, on the native
 * backend, one call into C++, per pin and per release: a pin plus its release measured about
 * 0.3 us native and 0.14 us js (warm, one block pinned 2e5 times); nothing on the hot path.
 */
export class Pin<T extends PoolArray = Float64Array> implements Disposable {
  readonly #view: T;
  readonly #address: bigint | null;
  #unpin: (() => void) | undefined;

  /** @internal Made by MemoryPool.pin(). */
  constructor(view: T, address: bigint | null, unpin: () => void) {
    this.#view = view;
    this.#address = address;
    this.#unpin = unpin;
  }

  /** The pinned view (the block or the run). */
  get block(): T {
    return this.#view;
  }

  /**
   * Absolute address of the view's first byte, as a bigint, for native code that takes pointers
   * (computed once, at pin time); null on the js backend, which cannot know it (check
   * `pool.backend`, or construct with `alignmentScope: 'address'`).
   */
  get address(): bigint | null {
    return this.#address;
  }

  /** Bytes the pin covers: the view's byteLength. */
  get byteLength(): number {
    return this.#view.byteLength;
  }

  /** True once release() (or disposal) has run. */
  get released(): boolean {
    return this.#unpin === undefined;
  }

  /** Releases the pin; idempotent, and allowed after the pool is destroyed. */
  release(): void {
    const unpin = this.#unpin;
    if (unpin === undefined) return;
    this.#unpin = undefined;
    unpin();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * A pool's record of its pins, the policy half of pinning: how many pins each block view has
 * (a pinned block view carries a Pinned* mark, so that returnBlock's fast path misses it), and how
 * many live runs are pinned (a run's own count is its record's `pins`). check() compares them.
 */
export class PinTable {
  readonly #blocks = new Map<PoolView, number>();
  #runs = 0;

  /** Block views with live pins. */
  get blocks(): number {
    return this.#blocks.size;
  }

  /** Runs with live pins. */
  get runs(): number {
    return this.#runs;
  }

  /** Live pins on a block view (0 for any other). */
  pinsOf(view: PoolView): number {
    return this.#blocks.get(view) ?? 0;
  }

  /** One more pin on a block view; the first gives it `pinnedMark`. */
  pinBlock(view: PoolView, pinnedMark: number): void {
    const pins = this.#blocks.get(view) ?? 0;
    if (pins === 0) view[MARK] = pinnedMark;
    this.#blocks.set(view, pins + 1);
  }

  /** One pin less on a block view; the last gives it `unpinnedMark` back. */
  unpinBlock(view: PoolView, unpinnedMark: number): void {
    const pins = this.#blocks.get(view)! - 1;
    if (pins > 0) {
      this.#blocks.set(view, pins);
      return;
    }
    this.#blocks.delete(view);
    view[MARK] = unpinnedMark;
  }

  pinRun(run: RunRecord): void {
    if (run.pins++ === 0) this.#runs++;
  }

  unpinRun(run: RunRecord): void {
    if (--run.pins === 0) this.#runs--;
  }

  /** Forgets every pin (the pool is destroyed; the engine keeps its slab pins until each Pin is released). */
  clear(): void {
    this.#blocks.clear();
    this.#runs = 0;
  }
}
