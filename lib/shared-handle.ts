import { invalidRange, invalidType, outOfMemory } from './errors.js';
import { sharedAddon } from './loader.js';
import { attachBlocks, makeBlocks, type BlockMemory } from './shared-memory.js';
import { Depot } from './shared-depot.js';
import {
  H_ALIGNMENT, H_BLOCK_LENGTH, H_CAPACITY, H_MAGAZINE, H_MAGIC, H_SERIAL, H_SLOTS, H_STRIDE, H_TYPE, H_VERSION,
  MAGIC, RUN_BODY, SLOT_ENDED, SLOT_FREE, SLOT_LIVE, S_SERIAL, S_STATE, S_THREAD, VERSION, genOf, slotKind, slotWord,
  kindOf, magazineSize, recordOf, regions, slotOf,
} from './shared-layout.js';
import { lock, unlock } from './shared-lock.js';
import { POOL_TYPES, requireInteger, validateOptions } from './validate.js';
import { threadId as currentThreadId } from 'node:worker_threads';

/*
 * Making a shared pool's memory, describing it in a handle, and attaching a thread to it.
 *
 * The handle is plain data that the structured clone algorithm copies (postMessage, workerData):
 * the metadata's SharedArrayBuffer (cloned as a new reference to the same memory, never copied),
 * the blocks (js: their SharedArrayBuffer; native: the token of the addon's shared region,
 * shared-memory.ts) and the facts attach() cannot read from the metadata (the block shape).
 * Every size is read back from the metadata header, which is the authority; the handle's copies
 * are checked against it.
 *
 * The two engines differ only in where the blocks live (shared-memory.ts): the block states, the
 * depot and its lock are the same JavaScript over the same SharedArrayBuffer of metadata, so
 * that the hot path (a magazine pop or push and one compareExchange) never crosses N-API. The
 * native engine's gain is the memory: aligned as an address, with an address native code can be
 * given (addressOf), from slabpool's OS layer rather than V8's heap.
 */

/** The structured-cloneable descriptor of a shared pool: `pool.handle`, for `SharedPool.attach(handle)`. */
export interface SharedPoolHandle {
  readonly kind: 'slabpool.SharedPool';
  /** The metadata layout's version (shared-layout.ts); attach() refuses another. */
  readonly version: number;
  /** Where the blocks live: 'js', a SharedArrayBuffer; 'native', a shared region of the addon (shared-memory.ts). */
  readonly backend: 'js' | 'native';
  /** 'js': the blocks, capacity * stride bytes, block i at byte i * stride. Absent for 'native'. */
  readonly blocks?: SharedArrayBuffer;
  /** 'native': the token of the addon's shared region that holds the blocks. Absent for 'js'. */
  readonly region?: bigint;
  /** The metadata: shared-layout.ts. */
  readonly meta: SharedArrayBuffer;
  /** The block type's name: 'Float64Array', ... */
  readonly type: string;
  readonly blockShape: readonly number[];
}

export const SHARED_OPTIONS: readonly string[] = ['blockSize', 'type', 'numBlocks', 'alignment', 'grow', 'maxBlocks', 'backend', 'maxThreads'];
/** 16 bytes of metadata per block: 256 MiB at this many blocks. */
export const MAX_SHARED_BLOCKS = 2 ** 24;
const MAX_THREADS = 1024;
const DEFAULT_THREADS = 64;

/** Validates the options and makes the blocks and the metadata of a new pool: its handle, and this thread's access to the blocks. */
export function createHandle(options: unknown): { handle: SharedPoolHandle; memory: BlockMemory } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidType('options', 'object with blockSize and numBlocks', options);
  }
  const opts = options as Record<string, unknown>;
  for (const key of Object.keys(opts)) {
    if (!SHARED_OPTIONS.includes(key)) throw invalidType(`options.${key}`, `no such option of a shared pool (known: ${SHARED_OPTIONS.join(', ')})`, opts[key]);
  }
  const { maxThreads: threadsOption, backend, ...rest } = opts;
  const maxThreads = threadsOption === undefined ? DEFAULT_THREADS : requireInteger('maxThreads', threadsOption, 1, MAX_THREADS);
  if (backend !== undefined && backend !== 'auto' && backend !== 'js' && backend !== 'native') {
    const expected = "one of 'auto', 'native', 'js'";
    if (typeof backend !== 'string') throw invalidType('backend', expected, backend);
    throw invalidRange('backend', expected, backend);
  }
  // The MemoryPool options' own validation; the options a shared pool does not have are pinned off.
  const cfg = validateOptions({ ...rest, backend: 'js', detach: false, hugePages: false, prefault: false });
  if (cfg.grow) throw invalidRange('grow', 'false', true, "a shared pool's capacity is fixed: set numBlocks to what it may need");
  if (cfg.slabBlocks > MAX_SHARED_BLOCKS) {
    throw invalidRange('numBlocks', `integer from 1 to ${MAX_SHARED_BLOCKS}`, cfg.slabBlocks, 'a shared pool keeps 16 bytes of metadata per block');
  }
  const capacity = cfg.slabBlocks;
  const m = magazineSize(capacity);
  const layout = regions(capacity, maxThreads);
  // 'auto' follows SLABPOOL_BACKEND, as MemoryPool's does (loader.ts sharedAddon): the addon when it loads.
  const addon = sharedAddon((backend ?? 'auto') as 'auto' | 'native' | 'js');
  let meta: SharedArrayBuffer;
  try {
    meta = new SharedArrayBuffer(layout.words * 4);
  } catch {
    throw outOfMemory(`the metadata of a shared pool of ${capacity} blocks`, layout.words * 4);
  }
  const w = new Int32Array(meta);
  w[H_VERSION] = VERSION;
  w[H_CAPACITY] = capacity;
  w[H_SLOTS] = maxThreads;
  w[H_STRIDE] = cfg.stride;
  w[H_BLOCK_LENGTH] = cfg.blockLength;
  w[H_TYPE] = POOL_TYPES.indexOf(cfg.type);
  w[H_ALIGNMENT] = cfg.alignment;
  w[H_MAGAZINE] = m;
  new Depot(w).init();
  const memory = makeBlocks(addon, capacity * cfg.stride, cfg.alignment, `the blocks of a shared pool of ${capacity} blocks`);
  Atomics.store(w, H_MAGIC, MAGIC); // last: a handle is valid only once everything above is written
  const common = { kind: 'slabpool.SharedPool', version: VERSION, meta, type: cfg.type.name, blockShape: Object.freeze(cfg.blockShape.slice()) } as const;
  const handle: SharedPoolHandle =
    memory.token === null ? Object.freeze({ ...common, backend: 'js', blocks: memory.buffer as SharedArrayBuffer }) : Object.freeze({ ...common, backend: 'native', region: memory.token });
  return { handle, memory };
}

/**
 * A thread slot for a new attachment: a never-used one first, else an ended one that holds no
 * block in any state (its counters are kept: stats() sums every slot). Under the depot lock.
 * Returns the slot and its S_STATE word while this attachment is live (slotWord). Throws a
 * RangeError naming `handle` when every slot is taken.
 */
export function claimSlot(w: Int32Array, depot: Depot, handle: SharedPoolHandle): [slot: number, live: number] {
  const slots = depot.slots;
  // The lock word names its holder's slot; until this attachment has one, it holds the lock as
  // `slots`, one past the last, which threadExited() never mistakes for a thread's.
  lock(w, slots);
  try {
    let chosen = -1;
    for (let slot = 0; slot < slots && chosen < 0; slot++) if (slotKind(Atomics.load(w, recordOf(slot) + S_STATE)) === SLOT_FREE) chosen = slot;
    if (chosen < 0) {
      const busy = new Uint8Array(slots);
      for (let i = 0; i < depot.capacity; i++) {
        const s = depot.stateOf(i);
        if (s !== 0 && kindOf(s) !== RUN_BODY) busy[slotOf(s)] = 1;
      }
      for (let slot = 0; slot < slots && chosen < 0; slot++) if (busy[slot] === 0 && slotKind(Atomics.load(w, recordOf(slot) + S_STATE)) === SLOT_ENDED) chosen = slot;
    }
    if (chosen < 0) {
      throw invalidRange('handle', `a pool with a free thread slot (maxThreads is ${slots})`, handle, 'every slot is attached or holds blocks: close() attachments, or threadExited() and reclaim() for threads that ended');
    }
    const at = recordOf(chosen);
    const gen = genOf(Atomics.add(w, H_SERIAL, 1));
    const live = slotWord(gen, SLOT_LIVE);
    Atomics.store(w, at + S_THREAD, currentThreadId);
    Atomics.store(w, at + S_SERIAL, gen);
    Atomics.store(w, at + S_STATE, live);
    return [chosen, live];
  } finally {
    unlock(w, slots);
  }
}


const HANDLE = 'SharedPool handle (pool.handle from the thread that made the pool)';

/** The handle, if it is one whose metadata is intact; throws ERR_SLABPOOL_INVALID_ARG naming `handle` otherwise. */
export function validateHandle(handle: unknown): SharedPoolHandle {
  if (typeof handle !== 'object' || handle === null || Array.isArray(handle)) throw invalidType('handle', HANDLE, handle);
  const h = handle as Partial<Record<keyof SharedPoolHandle, unknown>>;
  if (h.kind !== 'slabpool.SharedPool') throw invalidType('handle', HANDLE, handle);
  if (h.backend !== 'js' && h.backend !== 'native') throw invalidRange('handle', "a handle of backend 'js' or 'native'", handle, `its backend is ${String(h.backend)}`);
  if (h.version !== VERSION) throw invalidRange('handle', `a handle of layout version ${VERSION}`, handle, `it has version ${String(h.version)}: made by another slabpool version`);
  if (!(h.meta instanceof SharedArrayBuffer)) throw invalidType('handle', `${HANDLE} with a SharedArrayBuffer meta`, handle);
  if (h.backend === 'js' && !(h.blocks instanceof SharedArrayBuffer)) throw invalidType('handle', `${HANDLE} of backend 'js', with a SharedArrayBuffer blocks`, handle);
  if (h.backend === 'native' && typeof h.region !== 'bigint') throw invalidType('handle', `${HANDLE} of backend 'native', with a bigint region`, handle);
  const meta = h.meta;
  const broken = (why: string) => invalidRange('handle', HANDLE, handle, why);
  if (meta.byteLength < 64 || meta.byteLength % 4 !== 0) throw broken('its meta buffer is not a shared pool\'s metadata');
  const w = new Int32Array(meta);
  if (Atomics.load(w, H_MAGIC) !== MAGIC || w[H_VERSION] !== VERSION) throw broken('its meta buffer is not a shared pool\'s metadata');
  const capacity = w[H_CAPACITY]!;
  const type = POOL_TYPES[w[H_TYPE]!];
  if (type === undefined || type.name !== h.type) throw broken(`its type ${String(h.type)} differs from the metadata's`);
  const shape = h.blockShape;
  if (!Array.isArray(shape) || shape.reduce((a: number, b: unknown) => a * (typeof b === 'number' ? b : NaN), 1) !== w[H_BLOCK_LENGTH]) {
    throw broken('its blockShape differs from the metadata\'s block length');
  }
  if (meta.byteLength !== regions(capacity, w[H_SLOTS]!).words * 4 || (h.blocks instanceof SharedArrayBuffer && h.blocks.byteLength !== capacity * w[H_STRIDE]!)) {
    throw broken('its buffers are not the sizes its metadata gives');
  }
  return handle as SharedPoolHandle;
}

/** This thread's access to the blocks of a validated handle (for native, a reference of its own: shared-memory.ts attachBlocks, which throws). */
export function attachMemory(handle: SharedPoolHandle): BlockMemory {
  if (handle.backend === 'js') return { buffer: handle.blocks!, address: null, token: null };
  const w = new Int32Array(handle.meta);
  return attachBlocks(handle, handle.region!, w[H_CAPACITY]! * w[H_STRIDE]!);
}
