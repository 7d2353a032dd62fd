/** Which implementation of the allocator core runs a pool. */
export type Backend = 'native' | 'js';

/** The typed arrays a pool can hand out. */
export type PoolArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Uint8ClampedArray
  | BigInt64Array
  | BigUint64Array;

/** The constructor of a PoolArray type: Float64Array, Int32Array, BigInt64Array, ... */
export interface PoolArrayConstructor<T extends PoolArray = PoolArray> {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

/**
 * Options of `new MemoryPool(options)`. This type is the one place where each option is explained;
 * every option is validated before anything is allocated, and an invalid one throws a `TypeError`
 * or `RangeError` with code `ERR_SLABPOOL_INVALID_ARG`. Unknown keys are rejected too, so a typo
 * never silently falls back to a default.
 */
export interface PoolOptions<T extends PoolArray = Float64Array> {
  /**
   * Elements per block: a positive integer, or a shape such as `[10, 10]` whose product is the
   * block length. Every block is a typed array of `type` with exactly that many elements.
   */
  readonly blockSize: number | readonly number[];

  /**
   * The typed array of the blocks: Float64Array, Float32Array, Int8Array, Int16Array, Int32Array,
   * Uint8Array, Uint16Array, Uint32Array, Uint8ClampedArray, BigInt64Array or BigUint64Array.
   * `blockSize` counts its elements; alignment and stride stay in bytes.
   * @default Float64Array
   */
  readonly type?: PoolArrayConstructor<T>;

  /**
   * Blocks in the first slab (the initial capacity), and in every slab added by `grow`.
   * An integer >= 1.
   */
  readonly numBlocks: number;

  /**
   * Byte alignment of every block: a power of two from 8 to 4096. Blocks are laid out with a
   * stride of the block's bytes rounded up to this alignment, so padding costs
   * `stride - blockBytes` bytes per block. The native backend aligns absolute addresses; the
   * JavaScript fallback can only align offsets within its ArrayBuffers (see `stats().alignmentScope`).
   * @default 64
   */
  readonly alignment?: number;

  /**
   * When the pool is exhausted, add a slab of `numBlocks` blocks instead of returning `null`.
   * Growth costs one slab allocation; `trim()` gives empty slabs back.
   * @default false
   */
  readonly grow?: boolean;

  /**
   * Hard cap on the total capacity in blocks when `grow` is on. Past it, `getBlock` and `getRun`
   * return `null` and count a failure. The last slab is made smaller if needed so that capacity
   * reaches exactly `maxBlocks`. An integer from `numBlocks` to 2^30.
   * @default numBlocks when grow is false, 2^30 when grow is true
   */
  readonly maxBlocks?: number;

  /**
   * Coalesce automatically when a `returnBlock` takes fragmentation above this percentage
   * (0 to 100; 100 turns it off), once per crossing. The rule, exactly (lib/auto-coalesce.ts):
   * a return that leaves fragmentation above the threshold coalesces if the rule is armed, and
   * disarms it; the rule is re-armed by the next get (getBlock, getRun, lease) or change to the
   * allocator core (a magazine refill or flush, a run given back, growth, trim) after which
   * fragmentation is within the threshold, or by a change to the allocator core after which four times the magazine's capacity in blocks (at most 256) have
   * passed through the allocator core since that coalesce. Coalescing never moves a live block, so a pool that stays
   * fragmented would gain nothing from coalescing on every return: it coalesces once, and again
   * only when there is something new to pack low. Fragmentation is judged here without counting
   * the magazine's cached blocks in any run (O(1), no call into C++), so the pool may coalesce
   * slightly before `stats().fragmentation` shows the crossing, never after. Cost: O(1)
   * amortized per operation, a compare on the hot path.
   * @default 20
   */
  readonly autoCoalesceThreshold?: number;

  /**
   * `'nan'` fills every returned block with NaN, so code that keeps using a block after returning
   * it reads NaN instead of plausible numbers. Costs one fill per return. Float types only (an
   * integer array cannot hold NaN).
   * @default 'none'
   */
  readonly poison?: 'none' | 'nan';

  /**
   * `'auto'` uses the native addon when it loads and the JavaScript fallback otherwise
   * (`backendInfo()` says which and why). `'native'` throws `ERR_SLABPOOL_NATIVE_UNAVAILABLE`,
   * listing every load attempt, when the addon does not load. The `SLABPOOL_BACKEND` environment
   * variable (`js` or `native`) overrides `'auto'`.
   * @default 'auto'
   */
  readonly backend?: 'auto' | Backend;

  /**
   * The alignment the pool must guarantee. `'address'`: every block's absolute address is a
   * multiple of `alignment`, as native code loading it with aligned instructions (`vmovapd`,
   * `_mm256_load_pd`) needs; only the native backend can give it, so with `backend: 'auto'` a
   * pool that would fall back to JavaScript (no loadable addon, or `SLABPOOL_BACKEND=js`) throws
   * `ERR_SLABPOOL_NATIVE_UNAVAILABLE` listing every load attempt, instead of handing out blocks
   * that are aligned only within their ArrayBuffer; with `backend: 'js'` it is rejected as
   * invalid. `'buffer'`: whatever the backend gives (`stats().alignmentScope` says which); on
   * the fallback `addressOf()` is `null`.
   * @default 'buffer'
   */
  readonly alignmentScope?: 'buffer' | 'address';

  /**
   * For debugging use after release: `trim()` and `destroy()` detach the ArrayBuffers of the slabs
   * they release, so every view still held on them has length 0 at once (reads give `undefined`,
   * `fill`/`set` throw). Off, nothing is detached: a stale view keeps its length, and reads zeros
   * (native) or what was last written (js), never another allocation's data.
   *
   * Cost: detaching any ArrayBuffer turns off, for the rest of the process, a V8 fast path for
   * every typed array (V8's ArrayBufferDetaching protector), so every numeric kernel in the
   * process, even ones that never touch a pool, may run up to ~1.9x slower afterwards. Never turn
   * it on in production. `SLABPOOL_DETACH=1` in the environment turns it on for every pool that
   * does not set it (slabpool/compat's too), with one warning per thread.
   *
   * Transfers: every slab is untransferable (marked by the pool, or, for the native backend's
   * external memory, by Node itself), so that `postMessage(block, [block.buffer])` copies (Node
   * 20) or throws a DataCloneError (Node >= 21) and leaves the pool intact. On the js backend the
   * mark would also stop this option's detaching (a transfer, on Node 20), so with `detach` its
   * slabs are left unmarked: such a transfer then detaches the block's whole slab, every block on
   * it. On Node >= 24 a marked buffer cannot be detached at all: there this option leaves the
   * native backend's slabs in V8-owned memory attached, as without it, with one warning (code
   * SLABPOOL_DETACH); on Node >= 22 the first native pool with it transfers a new 8-byte buffer
   * to find that out, which, where it succeeds, is this option's first detach.
   * @default true when the SLABPOOL_DETACH environment variable is '1' or 'true'
   */
  readonly detach?: boolean;

  /**
   * Back each slab of one huge page or more (2 MiB on x86-64 Linux: numBlocks * stride >= 2 MiB)
   * with transparent huge pages: the native backend maps such a slab at the huge page size's
   * alignment and advises the kernel (`madvise(MADV_HUGEPAGE)`), which then backs it with huge
   * pages where it can. For large pools touched at random (particle state, sparse updates, BLAS on
   * `addressOf()` pointers): fewer TLB misses, a faster first touch and a faster `destroy()`
   * (measured on 1 GiB: random gathers in JavaScript 1.15 to 1.3x as fast, dot products of random
   * block pairs 1.1 to 1.2x, destroy() 10x; issue 18: random gathers in C++ 1.7x, a first memset
   * 2.7x; README "Large pools"). Slabs under one huge page gain nothing and are left as they are.
   *
   * Cost: resident memory grows by whole huge pages. A write into an untouched 2 MiB region makes
   * all of it resident: writing a random 10 % of a pre-sized 1 GiB pool's blocks (1024 doubles)
   * took 1024 MiB instead of 102 MiB. A first write to a fresh huge page waits while the kernel
   * zeroes (and may compact) 2 MiB: ~250 us at p99.9 instead of ~11 us. Pools used through
   * getBlock() keep live blocks packed low and showed no such bloat. A write through a stale view
   * of a released slab brings back a huge page, not 4 KiB.
   *
   * Never an error: where the kernel refuses or has none (THP mode `never`, a kernel without THP,
   * macOS, Windows), on the JavaScript fallback and for slabs in V8-owned memory, the pool works as
   * without it. `stats().hugePages` says whether it is in effect and why, and how many bytes huge
   * pages back at that moment, read back from the kernel (a system call per slab, only for pools
   * with the option on). `SLABPOOL_HUGE_PAGES=1` in the environment turns it on for every pool that
   * does not set it (slabpool/compat's too).
   * @default true when the SLABPOOL_HUGE_PAGES environment variable is '1' or 'true'
   */
  readonly hugePages?: boolean;

  /**
   * Pre-fault every slab as it is added (at construction and at each growth): the kernel
   * populates all its pages at once (Linux 5.14+: `madvise(MADV_POPULATE_WRITE)`; an older
   * kernel or another system: one write per page), so that no first write in a hot loop takes a
   * page fault (first writes to a 256 MiB pool, p50 / p99.9: 1.84 / 10.7 us without, 0.45 / 3.9 us
   * with, where writes that cannot fault took 0.29 / 3.3 us; README "Large pools"). For
   * latency-sensitive loops (audio DSP, control).
   *
   * Cost: every slab is resident from the start (RSS includes all of reservedBytes), and adding
   * one takes as long as touching all of it (README "Large pools": 0.3 s per GiB on the native
   * backend, 0.4 s on the fallback). A slab
   * the kernel cannot back throws ERR_SLABPOOL_OUT_OF_MEMORY from the call that adds it, instead
   * of a fault later. On the JavaScript fallback, each slab's ArrayBuffer gets one write per 4 KiB
   * page (JavaScript cannot ask the kernel), and running out of memory there ends the process as
   * any write would; the native backend's V8-owned slabs (`SLABPOOL_NATIVE_MEMORY=v8`) are
   * populated as its own are. A slab released by trim() or destroy() gives its pages back as
   * always. Memory is not locked (no mlock: it is capped by RLIMIT_MEMLOCK and gains nothing on a
   * machine without swap). `SLABPOOL_PREFAULT=1` in the environment turns it on for every pool
   * that does not set it (slabpool/compat's too).
   * @default true when the SLABPOOL_PREFAULT environment variable is '1' or 'true'
   */
  readonly prefault?: boolean;
}

/** Options after validation, with every default filled in and every size derived. */
export interface PoolConfig {
  readonly type: PoolArrayConstructor;
  readonly blockShape: readonly number[];
  readonly blockLength: number;
  /** blockLength * type.BYTES_PER_ELEMENT */
  readonly blockBytes: number;
  /** blockBytes rounded up to alignment */
  readonly stride: number;
  readonly alignment: number;
  /** blocks per slab (the numBlocks option) */
  readonly slabBlocks: number;
  readonly grow: boolean;
  readonly maxBlocks: number;
  readonly autoCoalesceThreshold: number;
  readonly poison: 'none' | 'nan';
  readonly backend: 'auto' | Backend;
  readonly detach: boolean;
  readonly alignmentScope: 'buffer' | 'address';
  readonly hugePages: boolean;
  readonly prefault: boolean;
}
