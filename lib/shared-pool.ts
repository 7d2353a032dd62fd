import { threadId as currentThreadId } from 'node:worker_threads';
import { checkFailed, closedAttachment, foreignBlock, invalidRange, invalidType, notHeldHere, notInUse } from './errors.js';
import type { PoolArray, PoolArrayConstructor } from './options.js';
import { Depot, describeState, refusal } from './shared-depot.js';
import { attachMemory, claimSlot, createHandle, validateHandle, type SharedPoolHandle } from './shared-handle.js';
import type { BlockMemory } from './shared-memory.js';
import {
  CACHED, C_ACQUIRES, C_CLAIMS, C_FAILURES, C_HANDOFFS, C_RETURNS, F_RECLAIMED, HELD, H_ALIGNMENT, H_BLOCK_LENGTH, H_CAPACITY, H_MAGAZINE, H_STRIDE, H_TYPE,
  RUN, RUN_BODY, RUN_TRANSIT, SLOT_ENDED, SLOT_LIVE, S_STATE, S_THREAD, TRANSIT, batchOf, counterOf, genOfSlot, kindOf, recordOf, slotKind, slotOf, state,
} from './shared-layout.js';
import { holder, lock, unlock } from './shared-lock.js';
import { scan, type SharedPoolStats } from './shared-stats.js';
import { POOL_TYPES, requireInteger } from './validate.js';

/*
 * A pool shared by worker_threads (issue 16): blocks in one SharedArrayBuffer, metadata (block
 * states, the depot, counters) in another, both made once by the creating thread; every other
 * thread attaches with SharedPool.attach(pool.handle). Each attachment keeps a magazine of free
 * block indices (Bonwick, "Magazines and Vmem", USENIX 2001) refilled from and flushed to the
 * shared depot (shared-depot.ts) in batches under the depot lock (shared-lock.ts); getBlock and
 * returnBlock of a block view take no lock: one compareExchange of the block's state word, which
 * is also what makes a race between threads for one block come out with exactly one winner.
 * Memory layout and state encoding: shared-layout.ts. The handle: shared-handle.ts.
 *
 * What is atomic (linearizable) and what is not:
 *   - every change of a block's state: getBlock, returnBlock, handOff, blockAt, getRun, reclaim,
 *     threadExited. Two threads giving back or claiming the same block: one succeeds, the other
 *     is refused (ERR_SLABPOOL_DOUBLE_RETURN, or ERR_SLABPOOL_INVALID_ARG for a claim).
 *   - the depot (refill, flush, getRun, run returns, check()) under one lock.
 *   - not atomic: the block's contents, a typed array over shared memory read and written with
 *     plain loads and stores. Ownership orders them: what a thread wrote before handOff() (or
 *     returnBlock()) is visible to the thread whose blockAt() (or getBlock()) then takes the block,
 *     since both are sequentially consistent operations on the block's state word (or pass
 *     through the depot lock). Two threads writing a block at once, one of them not its holder,
 *     is a data race the pool cannot see. Also not atomic: the counters in stats() (each
 *     thread's own, read without a lock), and stats() as a whole (one pass over the states while
 *     others run).
 *
 * Invariants at quiescence (check() verifies those the lock guarantees at any moment):
 *   capacity = depot + cached (all magazines) + held + in transit + run blocks
 *   acquires - returns - reclaimed = held + in transit (single blocks) + live runs (held or in transit)
 *     (blockAt moves a block between threads without counting; a thread terminated inside a
 *     call may have counted it or not)
 *   this attachment's magazine: distinct indices, each CACHED for its slot, at most M of them
 *   no block CACHED or HELD for an ended attachment's generation (Depot.end; #cacheFrom and blockAt undo a race with it)
 */

/** Options of `new SharedPool(options)`: the MemoryPool options that apply (options.ts explains them), and maxThreads. */
export interface SharedPoolOptions<T extends PoolArray = Float64Array> {
  /** Elements per block, or a shape whose product is the block length (PoolOptions.blockSize). */
  readonly blockSize: number | readonly number[];
  /** @default Float64Array */
  readonly type?: PoolArrayConstructor<T>;
  /** Blocks in the pool, from 1 to 2^24 (the metadata takes 16 bytes per block). */
  readonly numBlocks: number;
  /** Byte alignment of every block within the blocks' SharedArrayBuffer: a power of two from 8 to 4096. @default 64 */
  readonly alignment?: number;
  /** Must be false: a shared pool's capacity is fixed (growth is a later slice of issue 16). @default false */
  readonly grow?: boolean;
  /** numBlocks when given (grow is false). */
  readonly maxBlocks?: number;
  /**
   * Where the blocks live: 'native', a shared region of the addon (aligned as addresses; addressOf
   * gives them); 'js', a SharedArrayBuffer; 'auto', native when the addon loads, as MemoryPool's
   * (SLABPOOL_BACKEND=js or native decides). Block states, depot and magazines are the same
   * JavaScript on both (shared-memory.ts). @default 'auto'
   */
  readonly backend?: 'auto' | 'js' | 'native';
  /**
   * Attachments open at once (the creating one included), from 1 to 1024: each takes a 64-byte
   * slot of the metadata, freed by close() or threadExited() (and reused once it holds nothing).
   * @default 64
   */
  readonly maxThreads?: number;
}


/** Set by attach() for the constructor to read (a constructor cannot be overloaded privately). */
let attaching: SharedPoolHandle | null = null;

export class SharedPool<T extends PoolArray = Float64Array> implements Disposable {
  readonly #handle: SharedPoolHandle;
  /** This thread's buffer over the blocks (shared-memory.ts): the SharedArrayBuffer (js) or an external ArrayBuffer of this thread's (native). */
  readonly #blocks: ArrayBuffer;
  /** The blocks' absolute address (native); null (js). */
  readonly #address: bigint | null;
  readonly #type: PoolArrayConstructor;
  readonly #typeName: string;
  readonly #blockShape: readonly number[];
  readonly #blockLength: number;
  readonly #stride: number;
  readonly #alignment: number;
  readonly #capacity: number;
  readonly #words: Int32Array;
  readonly #f64: Float64Array;
  readonly #depot: Depot;
  readonly #slot: number;
  /** This thread's view of each block, made on first use. */
  readonly #views: (T | undefined)[] = [];
  /** This thread's view of the run starting at each index (the last length made there). */
  readonly #runs = new Map<number, T>();
  /** The magazine: free block indices, bottom (oldest) first; #magazine[0 .. #cached). */
  readonly #magazine: Int32Array;
  #cached = 0;
  readonly #batch: number;
  /** A batch in flight to or from the depot. */
  readonly #scratch: Int32Array;
  /** This attachment's owner bits (its slot and generation: state(slot, 0, gen)), its state words and counter indices, precomputed for the hot path. */
  readonly #owner: number;
  readonly #cachedState: number;
  readonly #heldState: number;
  readonly #transitState: number;
  readonly #runState: number;
  readonly #runTransitState: number;
  readonly #acquiresAt: number;
  readonly #returnsAt: number;
  /** This attachment's slot state word: #liveWord until close() or threadExited() ends it (or the slot is another attachment's since). */
  readonly #slotStateAt: number;
  readonly #liveWord: number;
  #closed: string | null = null;

  /**
   * A new shared pool of `numBlocks` blocks, attached in this thread. Throws a TypeError or
   * RangeError with code ERR_SLABPOOL_INVALID_ARG for a bad option (naming it, what was expected
   * and what was received), ERR_SLABPOOL_OUT_OF_MEMORY when the memory cannot be had,
   * ERR_SLABPOOL_NATIVE_UNAVAILABLE for backend 'native' (or SLABPOOL_BACKEND=native) without a
   * loadable addon.
   */
  constructor(options: SharedPoolOptions<T>) {
    let handle: SharedPoolHandle;
    let memory: BlockMemory;
    if (attaching !== null) {
      handle = attaching;
      attaching = null;
      memory = attachMemory(handle);
    } else {
      ({ handle, memory } = createHandle(options));
    }
    this.#handle = handle;
    this.#blocks = memory.buffer as ArrayBuffer;
    this.#address = memory.address;
    this.#words = new Int32Array(handle.meta);
    this.#f64 = new Float64Array(handle.meta, 0, handle.meta.byteLength >>> 3);
    const w = this.#words;
    this.#type = POOL_TYPES[w[H_TYPE]!]!;
    this.#typeName = this.#type.name;
    this.#blockShape = Object.freeze(handle.blockShape.slice());
    this.#blockLength = w[H_BLOCK_LENGTH]!;
    this.#stride = w[H_STRIDE]!;
    this.#alignment = w[H_ALIGNMENT]!;
    this.#capacity = w[H_CAPACITY]!;
    this.#depot = new Depot(w);
    const m = w[H_MAGAZINE]!;
    this.#magazine = new Int32Array(m);
    this.#batch = batchOf(m);
    this.#scratch = new Int32Array(Math.max(m, 1));
    const [slot, live] = claimSlot(w, this.#depot, handle);
    this.#slot = slot;
    this.#liveWord = live;
    const owner = state(slot, 0, genOfSlot(live));
    this.#owner = owner;
    this.#cachedState = owner | CACHED;
    this.#heldState = owner | HELD;
    this.#transitState = owner | TRANSIT;
    this.#runState = owner | RUN;
    this.#runTransitState = owner | RUN_TRANSIT;
    this.#acquiresAt = counterOf(slot, C_ACQUIRES);
    this.#returnsAt = counterOf(slot, C_RETURNS);
    this.#slotStateAt = recordOf(slot) + S_STATE;
  }

  /**
   * A pool over the memory of `handle` (another thread's `pool.handle`, received through
   * postMessage or workerData), attached in this thread with a magazine and a thread slot of its
   * own. Throws a TypeError or RangeError (ERR_SLABPOOL_INVALID_ARG) naming `handle` for anything
   * that is not such a handle, and a RangeError when every thread slot is taken.
   */
  static attach<T extends PoolArray = Float64Array>(handle: SharedPoolHandle): SharedPool<T> {
    attaching = validateHandle(handle);
    try {
      return new SharedPool<T>(undefined as unknown as SharedPoolOptions<T>);
    } finally {
      attaching = null;
    }
  }

  // ---- properties ----------------------------------------------------------------------------

  /**
   * The structured-cloneable descriptor of this pool's memory: give it to a worker (workerData,
   * postMessage) and call SharedPool.attach(handle) there. Frozen; shared-handle.ts gives its shape.
   */
  get handle(): SharedPoolHandle {
    return this.#handle;
  }

  get blockLength(): number {
    return this.#blockLength;
  }

  get blockShape(): readonly number[] {
    return this.#blockShape;
  }

  /** Blocks in the pool (fixed). */
  get numBlocks(): number {
    return this.#capacity;
  }

  get alignment(): number {
    return this.#alignment;
  }

  /** 'native': the blocks in a shared region of the addon (absolute alignment, addressOf); 'js': in a SharedArrayBuffer. */
  get backend(): 'js' | 'native' {
    return this.#handle.backend;
  }

  /** This attachment's thread slot (0 .. maxThreads - 1): the slot stats and errors name. */
  get slot(): number {
    return this.#slot;
  }

  /** True after close() here, or after threadExited() was called for this thread elsewhere (seen at this attachment's next depot visit). */
  get closed(): boolean {
    return this.#closed !== null;
  }

  // ---- blocks --------------------------------------------------------------------------------

  /**
   * A free block (a typed array of blockLength elements over the shared memory), held by this
   * thread; null when this thread's magazine and the depot are both empty (free blocks in other
   * threads' magazines, stats().cachedBlocks, are theirs to hand out). The hot path: an index
   * from the magazine and one compareExchange of its state word (which fails once close() or
   * threadExited() ended this attachment: Depot.end); every ceil(M / 2) calls, one refill from
   * the depot under its lock. Throws ERR_SLABPOOL_DESTROYED after close().
   */
  getBlock(): T | null {
    if (this.#cached === 0 && !this.#refill()) return null;
    const i = this.#magazine[--this.#cached]!;
    if (Atomics.compareExchange(this.#words, this.#depot.r.states + i, this.#cachedState, this.#heldState) !== this.#cachedState) {
      this.#cached++;
      this.#ended('getBlock');
    }
    this.#f64[this.#acquiresAt]! += 1;
    return this.#views[i] ?? this.#makeView(i);
  }

  /**
   * Gives back a block or run this thread holds: its view (from getBlock, getRun or blockAt in
   * this thread), or its index. By index it also takes a block or run another thread handed off
   * and nobody claimed (handOff). Throws, leaving the pool unchanged:
   * ERR_SLABPOOL_DOUBLE_RETURN (RangeError) for a block that is free, or that this thread
   * returned or handed off before and is another thread's now (of two threads returning one
   * block at once, exactly one is refused); ERR_SLABPOOL_FOREIGN_BLOCK for a typed array this
   * attachment did not make (a view received through postMessage included: send its index);
   * ERR_SLABPOOL_INVALID_ARG for anything else, or an index inside a run.
   */
  returnBlock(block: T | number): void {
    // The hot path: a block view this attachment made (identity with the view it keeps for the
    // index its offset names), taken back with one compareExchange from held to cached (which
    // fails once this attachment ended: Depot.end leaves no block held for it). ArrayBuffer.isView
    // first, so that no getter of an arbitrary object runs.
    if (ArrayBuffer.isView(block) && this.#closed === null) {
      const i = block.byteOffset / this.#stride;
      if (this.#views[i] === block && this.#cacheHeld(i)) return;
    }
    this.#live('returnBlock');
    if (typeof block === 'number') return this.#returnIndex(block);
    const own = this.#ownIndex(block, 'block', `${this.#typeName} from getBlock()/getRun()/blockAt() or a block index`);
    if (own >= 0) {
      const i = own;
      if (!this.#cacheHeld(i)) {
        this.#live('returnBlock'); // ended since the call began: Depot.end orphaned the block
        throw refusal(this.#depot, this.#slot, 'block', i, Atomics.load(this.#words, this.#depot.r.states + i));
      }
      return;
    }
    const start = -own - 1;
    this.#returnRun(start, this.#runState, 'block');
  }

  /**
   * `count` contiguous blocks as one typed array of count * blockLength elements (blocks lie a
   * stride apart), held by this thread; null when no such run is free in the depot after this
   * thread's magazine was flushed to it. First fit, O(capacity) under the depot lock. Throws
   * ERR_SLABPOOL_INVALID_ARG unless 1 <= count <= numBlocks.
   */
  getRun(count: number): T | null {
    this.#live('getRun');
    const k = requireInteger('count', count, 1, this.#capacity, typeof count === 'number' && count > this.#capacity ? `the pool has ${this.#capacity} blocks` : undefined);
    const w = this.#words;
    lock(w, this.#slot);
    let start: number;
    try {
      // Ended by threadExited() since the call began: refused before anything changes.
      if (Atomics.load(w, this.#slotStateAt) !== this.#liveWord) this.#stolen('getRun');
      start = this.#depot.acquireRun(k, this.#owner);
      if (start < 0 && this.#cached > 0) {
        this.#flushLocked(this.#cached); // cannot fail: the slot is live and only threadExited() ends it, under this lock
        start = this.#depot.acquireRun(k, this.#owner);
      }
    } finally {
      unlock(w, this.#slot);
    }
    if (start < 0) {
      this.#f64[counterOf(this.#slot, C_FAILURES)]! += 1;
      return null;
    }
    this.#f64[this.#acquiresAt]! += 1;
    return this.#runView(start, k);
  }

  /**
   * Hands a block or run this thread holds to another thread without copying: marks it in
   * transit and returns its index, a number to send with postMessage; the receiver calls
   * `pool.blockAt(index)` and holds it from then on (or `returnBlock(index)` to free it). From
   * here this thread must not use its view: a returnBlock of it is refused. Throws
   * ERR_SLABPOOL_DOUBLE_RETURN (RangeError) for a block this thread does not hold (free,
   * handed off already, or another thread's), ERR_SLABPOOL_FOREIGN_BLOCK for a view this
   * attachment did not make, ERR_SLABPOOL_DESTROYED once the attachment ended.
   */
  handOff(block: T): number {
    this.#live('handOff');
    const own = this.#ownIndex(block, 'block', `${this.#typeName} from getBlock()/getRun()/blockAt()`);
    const run = own < 0;
    const i = run ? -own - 1 : own;
    const from = run ? this.#runState : this.#heldState;
    if (!this.#depot.cas(i, from, run ? this.#runTransitState : this.#transitState)) {
      this.#live('handOff'); // ended since the call began: Depot.end orphaned the block
      throw refusal(this.#depot, this.#slot, 'block', i, this.#depot.stateOf(i), run);
    }
    this.#f64[counterOf(this.#slot, C_HANDOFFS)]! += 1;
    return i;
  }

  /**
   * This thread's view of block `index` (or of the run starting there), claiming it if another
   * thread handed it off: it is held by this thread from then on. Of two threads claiming one
   * hand-off, exactly one gets it. The view of a block this thread already holds is returned as
   * it is. Zero-copy: the view is over the same shared memory the sender wrote. Throws a
   * RangeError (ERR_SLABPOOL_INVALID_ARG) for an index out of range, a block that is free, held
   * by another thread (claimed already?), or inside a run; a TypeError for a non-number.
   */
  blockAt(index: number): T {
    this.#live('blockAt');
    const i = requireInteger('index', index, 0, this.#capacity - 1);
    for (;;) {
      const s = this.#depot.stateOf(i);
      const kind = kindOf(s);
      if (s === this.#heldState) return this.#views[i] ?? this.#makeView(i);
      if (s === this.#runState) return this.#runView(i, this.#depot.runLength(i));
      if (kind === TRANSIT || kind === RUN_TRANSIT) {
        const to = kind === TRANSIT ? this.#heldState : this.#runState;
        if (!this.#depot.cas(i, s, to)) continue; // changed under us: look again
        // Ended since the check above? Depot.end may have passed block i already, which would
        // leave it held for an ended attachment, not orphaned: back in transit, the call changing
        // nothing. Unless that end orphaned it since: then the claim happened.
        if (Atomics.load(this.#words, this.#slotStateAt) !== this.#liveWord && this.#depot.cas(i, to, s)) this.#ended('blockAt');
        this.#f64[counterOf(this.#slot, C_CLAIMS)]! += 1;
        return kind === TRANSIT ? (this.#views[i] ?? this.#makeView(i)) : this.#runView(i, this.#depot.runLength(i));
      }
      const why = kind === RUN_BODY ? `it is inside the run that starts at ${this.#depot.runStartOf(i)}` : `it is ${describeState(s)}${kind === HELD || kind === RUN ? ': claimed already, or never handed off?' : ''}`;
      throw invalidRange('index', 'index of a block handed off with handOff() or held by this thread', index, why);
    }
  }

  /**
   * The index of a view this attachment made (a block, or the first block of a run), whatever
   * its state; -1 for a typed array of the pool's type it did not make. A query: nothing changes
   * (handOff() is the call that gives a block away). TypeError for anything else.
   */
  indexOf(block: T): number {
    this.#live('indexOf');
    if (!isArrayOf(block, this.#typeName)) throw invalidType('block', this.#typeName, block);
    const i = this.#viewIndex(block);
    return i === null ? -1 : i < 0 ? -i - 1 : i;
  }

  /**
   * The absolute address of a block or run this thread holds (a multiple of `alignment`), for
   * native code: the same in every thread. Null on the JavaScript engine, which cannot know it
   * (stats().alignmentScope is 'buffer'). Throws as MemoryPool.addressOf:
   * ERR_SLABPOOL_FOREIGN_BLOCK for a view this attachment did not make, ERR_SLABPOOL_INVALID_ARG
   * for a free block, ERR_SLABPOOL_DOUBLE_RETURN for one handed off or another thread's.
   */
  addressOf(block: T): bigint | null {
    this.#live('addressOf');
    const own = this.#ownIndex(block, 'block', `${this.#typeName} from getBlock()/getRun()/blockAt()`);
    const run = own < 0;
    const i = run ? -own - 1 : own;
    const s = this.#depot.stateOf(i);
    if (s === (run ? this.#runState : this.#heldState)) return this.#address === null ? null : this.#address + BigInt(i * this.#stride);
    const what = run ? `the run view at block ${i}` : `block ${i}`;
    if (s === 0 || kindOf(s) === CACHED || (run && kindOf(s) !== RUN && kindOf(s) !== RUN_TRANSIT)) throw notInUse('block', what);
    throw notHeldHere('block', what, slotOf(s) === this.#slot ? 'handed off by this thread' : `${describeState(s)}, another attachment`);
  }

  // ---- lifetime ------------------------------------------------------------------------------

  /**
   * Ends this thread's attachment: its magazine goes back to the depot (O(capacity): a pass over
   * the block states) and its thread slot is marked ended. Blocks it still holds stay held (stats().orphanedBlocks) until another thread
   * calls reclaim() for this thread, or a hand-off claims them; its views stay readable. The
   * memory lives while any attachment or view of it does. Idempotent; every other call afterwards
   * throws ERR_SLABPOOL_DESTROYED.
   */
  close(): void {
    if (this.#closed !== null) return;
    const w = this.#words;
    lock(w, this.#slot);
    try {
      // Unless threadExited() ended this attachment already (its slot may be another's since):
      // the slot marked ended, then Depot.end: every block cached for this attachment back to
      // the depot (a pass over the states, not only the magazine's), those it holds orphaned.
      if (Atomics.load(w, this.#slotStateAt) === this.#liveWord) {
        Atomics.store(w, this.#slotStateAt, this.#liveWord - SLOT_LIVE + SLOT_ENDED);
        this.#depot.end(this.#owner);
      }
    } finally {
      unlock(w, this.#slot);
    }
    this.#cached = 0;
    this.#closed = 'closed';
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Tells the pool that thread `threadId` (a Worker's threadId, saved before it exits:
   * `const id = worker.threadId; worker.on('exit', () => pool.threadExited(id))`, since
   * `worker.threadId` is -1 in the 'exit' event) has ended: the magazines of its attachments go
   * back to the depot and their slots are marked ended; blocks they hold are counted in
   * stats().orphanedBlocks until reclaim(threadId). A thread that ended inside a depot operation
   * (worker.terminate() stops JavaScript anywhere) left the depot lock held: this takes it over
   * once it has shown no progress for TAKEOVER_MS (2 s; this call blocks that long) and
   * rebuilds the depot from the block states. Returns the blocks given back. Called for a thread
   * still attached and running, it ends that attachment: every later call there throws
   * ERR_SLABPOOL_DESTROYED, having changed nothing (one racing with this call may still complete).
   * Throws ERR_SLABPOOL_INVALID_ARG for a threadId that is not a non-negative integer, or this
   * thread's own.
   */
  threadExited(threadId: number): number {
    this.#live('threadExited');
    const id = this.#otherThread(threadId);
    const w = this.#words;
    const slots = this.#slotsOf(id, SLOT_LIVE);
    // A thread terminated inside its close() left its slot ended, and may have left the depot lock
    // held with its end pass half done: that lock is taken over too, and the pass finished.
    const ended = this.#slotsOf(id, SLOT_ENDED);
    if (slots.length === 0 && !ended.includes(holder(w))) return 0;
    // A lock one of its slots holds is taken over only once it has shown no progress for
    // TAKEOVER_MS (shared-lock.ts): never from a thread that is in fact still running.
    const tookOver = lock(w, this.#slot, (holderSlot) => slots.includes(holderSlot) || ended.includes(holderSlot));
    let n = 0;
    try {
      if (tookOver) {
        this.#depot.repair();
        // Depot.end again for its ended slots (a no-op where it had finished): a close() cut short.
        for (const slot of this.#slotsOf(id, SLOT_ENDED)) n += this.#depot.end(state(slot, 0, genOfSlot(Atomics.load(w, recordOf(slot) + S_STATE))));
      }
      // Looked up again under the lock: one of them may have closed meanwhile.
      for (const slot of this.#slotsOf(id, SLOT_LIVE)) {
        const at = recordOf(slot) + S_STATE;
        const live = Atomics.load(w, at);
        Atomics.store(w, at, live - SLOT_LIVE + SLOT_ENDED);
        n += this.#depot.end(state(slot, 0, genOfSlot(live)));
      }
    } finally {
      unlock(w, this.#slot);
    }
    return n;
  }

  /**
   * Frees every block and run still held by the ended attachments of thread `threadId` (after
   * its close() or threadExited()), and any block still cached there (by a thread terminated in
   * the middle of a returnBlock), for when nothing will use them again; returns how many
   * blocks. Blocks it handed off stay in transit for their receiver. O(capacity) under the depot
   * lock. Throws ERR_SLABPOOL_INVALID_ARG for a threadId that is not a non-negative integer,
   * this thread's own, or one with an attachment still open.
   */
  reclaim(threadId: number): number {
    this.#live('reclaim');
    const id = this.#otherThread(threadId);
    if (this.#slotsOf(id, SLOT_LIVE).length > 0) {
      throw invalidRange('threadId', 'the threadId of a thread whose attachments ended', threadId, 'it is attached: call threadExited() when it has exited');
    }
    const w = this.#words;
    lock(w, this.#slot);
    let n = 0;
    try {
      // Cached blocks too: a thread terminated inside returnBlock(index), between its
      // compareExchange into the magazine and its look at the slot (#cacheFrom), after
      // threadExited(), left that block cached.
      for (const slot of this.#slotsOf(id, SLOT_ENDED)) n += this.#depot.reclaimSlot(slot);
      this.#f64[F_RECLAIMED]! += n;
    } finally {
      unlock(w, this.#slot);
    }
    return n;
  }

  // ---- metrics -------------------------------------------------------------------------------

  /** A snapshot of the whole pool, the same from every thread (shared-stats.ts says how exact). O(capacity). */
  stats(): SharedPoolStats {
    this.#live('stats');
    return scan(this.#depot, this.#f64, {
      alignment: this.#alignment,
      type: this.#typeName,
      blockLength: this.#blockLength,
      blockBytes: this.#blockLength * this.#type.BYTES_PER_ELEMENT,
      stride: this.#stride,
      backend: this.#handle.backend,
      reservedBytes: this.#blocks.byteLength,
      metadataBytes: this.#handle.meta.byteLength,
      magazineSize: this.#magazine.length,
    });
  }

  /**
   * Walks the depot and every block state under the depot lock (shared-depot.ts Depot.check
   * lists the invariants), then this attachment's magazine; throws ERR_SLABPOOL_CHECK_FAILED with
   * the first broken invariant. Safe while other threads operate: what it checks holds whenever
   * the lock is free. O(capacity).
   */
  check(): void {
    this.#live('check');
    const w = this.#words;
    lock(w, this.#slot);
    let problem: string | null;
    try {
      problem = this.#depot.check() ?? this.#checkMagazine();
    } finally {
      unlock(w, this.#slot);
    }
    if (problem !== null) throw checkFailed(problem);
  }

  // ---- internals -----------------------------------------------------------------------------

  #live(method: string): void {
    if (this.#closed !== null) throw closedAttachment(method, this.#closed);
    if (Atomics.load(this.#words, this.#slotStateAt) !== this.#liveWord) this.#ended(method);
  }

  /** This attachment's slot was ended by threadExited() in another thread: nothing is changed, and from now on every call throws. */
  #ended(method: string): never {
    if (this.#closed !== null) throw closedAttachment(method, this.#closed);
    this.#stolen(method);
  }

  /** Refills the empty magazine from the depot; false (a failure counted) when the depot is empty. */
  #refill(): boolean {
    this.#live('getBlock');
    const w = this.#words;
    lock(w, this.#slot);
    let n: number;
    try {
      if (Atomics.load(w, this.#slotStateAt) !== this.#liveWord) this.#stolen('getBlock');
      n = this.#depot.take(this.#batch, this.#owner, this.#scratch);
    } finally {
      unlock(w, this.#slot);
    }
    // take() hands the lowest index last: push in reverse so it is popped first.
    for (let j = n - 1; j >= 0; j--) this.#magazine[this.#cached++] = this.#scratch[j]!;
    if (n === 0) this.#f64[counterOf(this.#slot, C_FAILURES)]! += 1;
    return n > 0;
  }

  /**
   * Moves block i, held by this attachment, into the magazine, flushing a batch when it is full;
   * false, with nothing changed, if i was not held here (the compareExchange comes first, so
   * that a refused return flushes nothing). No look at the slot: once this attachment ended,
   * no block is held for it (Depot.end), so the compareExchange fails.
   */
  #cacheHeld(i: number): boolean {
    if (Atomics.compareExchange(this.#words, this.#depot.r.states + i, this.#heldState, this.#cachedState) !== this.#heldState) return false;
    return this.#push(i);
  }

  /**
   * As #cacheHeld for block i in state `from`, a hand-off of another attachment's. Then a look
   * at the slot: had this attachment ended between the caller's check and the compareExchange,
   * Depot.end may have passed block i already, leaving it cached for an ended attachment, which
   * nothing would ever free. Then the block goes back to `from` (the call changed nothing),
   * unless that end freed it since (then the return happened).
   */
  #cacheFrom(i: number, from: number): boolean {
    const w = this.#words;
    const at = this.#depot.r.states + i;
    if (Atomics.compareExchange(w, at, from, this.#cachedState) !== from) return false;
    if (Atomics.load(w, this.#slotStateAt) !== this.#liveWord) {
      if (Atomics.compareExchange(w, at, this.#cachedState, from) === this.#cachedState) this.#stolen('returnBlock');
      this.#f64[this.#returnsAt]! += 1;
      this.#cached = 0;
      this.#closed = 'ended by threadExited() in another thread';
      return true;
    }
    return this.#push(i);
  }

  /** Block i, just marked cached here, onto the magazine (after a flush if it is full); counts the return. */
  #push(i: number): boolean {
    this.#f64[this.#returnsAt]! += 1;
    if (this.#cached === this.#magazine.length && !this.#flush(this.#batch)) {
      // threadExited() ended this attachment after the call began: the return happened (the
      // block went to the depot with every other block cached for this slot); the next call throws.
      this.#cached = 0;
      this.#closed = 'ended by threadExited() in another thread';
      return true;
    }
    this.#magazine[this.#cached++] = i;
    return true;
  }

  /** The bottom (oldest) `count` magazine entries back to the depot; false if this attachment was ended (Depot.end then gave back all). */
  #flush(count: number): boolean {
    const w = this.#words;
    lock(w, this.#slot);
    try {
      return this.#flushLocked(count);
    } finally {
      unlock(w, this.#slot);
    }
  }

  #flushLocked(count: number): boolean {
    const mag = this.#magazine;
    if (!this.#depot.give(mag, count, this.#owner)) return false; // threadExited() ended this attachment and emptied its magazine

    mag.copyWithin(0, count, this.#cached);
    this.#cached -= count;
    return true;
  }

  /** threadExited() was called for this thread elsewhere: the magazine is no longer ours. */
  #stolen(method: string): never {
    this.#cached = 0;
    this.#closed = 'ended by threadExited() in another thread';
    throw closedAttachment(method, this.#closed);
  }

  #returnIndex(index: number): void {
    const i = requireInteger('index', index, 0, this.#capacity - 1);
    for (;;) {
      const s = this.#depot.stateOf(i);
      const kind = kindOf(s);
      if (s === this.#heldState || (kind === TRANSIT && slotOf(s) !== this.#slot)) {
        if (s === this.#heldState ? this.#cacheHeld(i) : this.#cacheFrom(i, s)) return;
        continue; // another thread changed it first: decide again on what it is now
      }
      if (s === this.#runState || (kind === RUN_TRANSIT && slotOf(s) !== this.#slot)) {
        if (this.#returnRun(i, s, 'index', false)) return;
        continue;
      }
      if (kind === RUN_BODY) {
        const start = this.#depot.runStartOf(i);
        throw invalidRange('index', 'index of a block or of the first block of a run', index, `it is inside the run that starts at ${start}; return the run or index ${start}`);
      }
      this.#live('returnBlock'); // ended since the call began: Depot.end orphaned the block
      throw refusal(this.#depot, this.#slot, 'index', i, s, kind === RUN || kind === RUN_TRANSIT);
    }
  }

  /**
   * The run at start, in state `expected`, back to the depot. `strict`: refuse if its state is
   * not `expected` (a view's return); else return false so the caller looks again.
   */
  #returnRun(start: number, expected: number, name: string, strict = true): boolean {
    const w = this.#words;
    lock(w, this.#slot);
    let done: boolean;
    try {
      done = this.#depot.releaseRun(start, expected);
    } finally {
      unlock(w, this.#slot);
    }
    if (done) {
      this.#f64[this.#returnsAt]! += 1;
      return true;
    }
    if (!strict) return false;
    this.#live('returnBlock');
    throw refusal(this.#depot, this.#slot, name, start, this.#depot.stateOf(start), true);
  }

  /**
   * The index of one of this attachment's views: i >= 0 for block i's view, -(start + 1) for the
   * run view at start. Throws the TypeError (`expected`) for a non-view, ERR_SLABPOOL_FOREIGN_BLOCK
   * for a view of the right type this attachment did not make.
   */
  #ownIndex(block: unknown, name: string, expected: string): number {
    if (!isArrayOf(block, this.#typeName)) throw invalidType(name, expected, block);
    const i = this.#viewIndex(block as T);
    if (i === null) {
      throw foreignBlock(name, block, "it was not made by this attachment: to give a block to another thread, send handOff(block)'s index and call blockAt(index) there (a view sent with postMessage arrives as a copy on the native engine, as another view on js)");
    }
    return i;
  }

  /** As #ownIndex, null for a view this attachment did not make. */
  #viewIndex(view: T): number | null {
    const i = view.byteOffset / this.#stride;
    if (!(i >= 0 && i < this.#capacity && Number.isInteger(i))) return null;
    if (this.#views[i] === view) return i;
    if (this.#runs.get(i) === view) return -i - 1;
    return null;
  }

  #makeView(i: number): T {
    const view = new this.#type(this.#blocks, i * this.#stride, this.#blockLength) as T;
    this.#views[i] = view;
    return view;
  }

  #runView(start: number, k: number): T {
    const length = k * this.#blockLength;
    const cached = this.#runs.get(start);
    if (cached !== undefined && cached.length === length) return cached;
    const view = new this.#type(this.#blocks, start * this.#stride, length) as T;
    this.#runs.set(start, view);
    return view;
  }

  #checkMagazine(): string | null {
    const seen = new Set<number>();
    if (this.#cached > this.#magazine.length) return `the magazine holds ${this.#cached} blocks, over its capacity ${this.#magazine.length}`;
    for (let j = 0; j < this.#cached; j++) {
      const i = this.#magazine[j]!;
      if (seen.has(i)) return `block ${i} is twice in the magazine of slot ${this.#slot}`;
      seen.add(i);
      const s = this.#depot.stateOf(i);
      if (s !== this.#cachedState) return `block ${i} is in the magazine of slot ${this.#slot} but ${describeState(s)}`;
    }
    return null;
  }

  #otherThread(threadId: unknown): number {
    const id = requireInteger('threadId', threadId, 0, Number.MAX_SAFE_INTEGER);
    if (id === currentThreadId) throw invalidRange('threadId', 'the threadId of another thread', threadId, 'it is this thread, which is running');
    return id;
  }

  /** The slots attached by thread id in slot state st. */
  #slotsOf(id: number, st: number): number[] {
    const w = this.#words;
    const out: number[] = [];
    for (let slot = 0; slot < this.#depot.slots; slot++) {
      const at = recordOf(slot);
      if (slotKind(Atomics.load(w, at + S_STATE)) === st && Atomics.load(w, at + S_THREAD) === id) out.push(slot);
    }
    return out;
  }
}

function isArrayOf(value: unknown, typeName: string): boolean {
  return ArrayBuffer.isView(value) && (value as PoolArray)[Symbol.toStringTag] === typeName;
}

export type { SharedPoolHandle } from './shared-handle.js';
export type { SharedPoolStats } from './shared-stats.js';
