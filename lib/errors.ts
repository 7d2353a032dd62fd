import { types } from 'node:util';

/**
 * Every error slabpool throws carries a stable `code`. Messages that reject an argument are built
 * by one function so they all read the same way:
 * `Expected positive integer for numBlocks but received -1 of type number`.
 */

export type SlabpoolErrorCode =
  | 'ERR_SLABPOOL_INVALID_ARG'
  | 'ERR_SLABPOOL_OUT_OF_MEMORY'
  | 'ERR_SLABPOOL_DOUBLE_RETURN'
  | 'ERR_SLABPOOL_FOREIGN_BLOCK'
  | 'ERR_SLABPOOL_PINNED'
  | 'ERR_SLABPOOL_DESTROYED'
  | 'ERR_SLABPOOL_NATIVE_UNAVAILABLE'
  | 'ERR_SLABPOOL_CHECK_FAILED'
  | 'ERR_SLABPOOL_DETACHED'
  | 'ERR_SLABPOOL_LOCK_TIMEOUT'
  | 'ERR_SLABPOOL_INTERNAL';

export interface SlabpoolError extends Error {
  readonly code: SlabpoolErrorCode;
}

type ErrorClass = TypeErrorConstructor | RangeErrorConstructor | ErrorConstructor;

function withCode<E extends ErrorClass>(Kind: E, code: SlabpoolErrorCode, message: string): SlabpoolError {
  const err = new Kind(message) as Error & { code: SlabpoolErrorCode };
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: false, configurable: true });
  return err;
}

/** A short, readable rendering of any value for an error message. Never throws. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'number':
      return `${Object.is(value, -0) ? '-0' : String(value)} of type number`;
    case 'bigint':
      return `${value}n of type bigint`;
    case 'boolean':
      return `${value} of type boolean`;
    case 'string': {
      const text = value.length > 40 ? `${value.slice(0, 37)}...` : value;
      return `'${text}' of type string`;
    }
    case 'symbol':
      return `${value.toString()} of type symbol`;
    case 'function':
      return `function ${value.name || '(anonymous)'}`;
    default:
      break;
  }
  if (value === null) return 'null';
  // A Proxy forwards every read to its target, so it would describe itself as the very typed array it wraps.
  if (types.isProxy(value)) return 'a Proxy (pass the typed array itself)';
  try {
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    if (ArrayBuffer.isView(value)) {
      const name = Object.getPrototypeOf(value)?.constructor?.name ?? 'typed array';
      const length = (value as unknown as { length?: number }).length;
      return typeof length === 'number' ? `an instance of ${name} of length ${length}` : `an instance of ${name}`;
    }
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name ? `an instance of ${name}` : 'an object with a null prototype';
  } catch {
    return 'an object';
  }
}

/** Wrong type of argument: TypeError. */
export function invalidType(name: string, expected: string, actual: unknown): SlabpoolError {
  return withCode(TypeError, 'ERR_SLABPOOL_INVALID_ARG', `Expected ${expected} for ${name} but received ${describe(actual)}`);
}

/** Right type, value out of range: RangeError. `detail` explains a value that looks fine on its own. */
export function invalidRange(name: string, expected: string, actual: unknown, detail?: string): SlabpoolError {
  const tail = detail ? ` (${detail})` : '';
  return withCode(RangeError, 'ERR_SLABPOOL_INVALID_ARG', `Expected ${expected} for ${name} but received ${describe(actual)}${tail}`);
}

export function outOfMemory(what: string, bytes: number): SlabpoolError {
  return withCode(
    RangeError,
    'ERR_SLABPOOL_OUT_OF_MEMORY',
    `Could not allocate ${bytes} bytes for ${what}: the machine cannot back this request`,
  );
}

export function doubleReturn(name: string, index: number, kind: 'block' | 'run' = 'block'): SlabpoolError {
  return withCode(
    RangeError,
    'ERR_SLABPOOL_DOUBLE_RETURN',
    kind === 'run'
      ? `Expected a block in use for ${name} but received the run view at block ${index}, whose run was already returned (returned twice?)`
      : `Expected a block in use for ${name} but received block ${index}, which is free (returned twice?)`,
  );
}

/** A pinned block or run given back (pin.ts): `what` names it ("block 5", "the run at block 8"). */
export function pinned(name: string, what: string, pins: number): SlabpoolError {
  return withCode(
    RangeError,
    'ERR_SLABPOOL_PINNED',
    `Expected a block that is not pinned for ${name} but received ${what}, pinned by ${pins} live ${pins === 1 ? 'pin' : 'pins'} (release ${pins === 1 ? 'it' : 'them'} first: native code may still be using its memory)`,
  );
}

/** A view given to pin() that is not in use: free, or a run already returned. */
export function notInUse(name: string, what: string): SlabpoolError {
  return withCode(RangeError, 'ERR_SLABPOOL_INVALID_ARG', `Expected a block or run in use for ${name} but received ${what}, which is free`);
}

/** A view or buffer given back twice, where there is no block index to name (slabpool/compat). */
export function alreadyFreed(name: string, actual: unknown): SlabpoolError {
  return withCode(
    RangeError,
    'ERR_SLABPOOL_DOUBLE_RETURN',
    `Expected an array in use for ${name} but received ${describe(actual)}, which was already freed (freed twice?)`,
  );
}

export function foreignBlock(name: string, actual: unknown, detail: string): SlabpoolError {
  return withCode(
    TypeError,
    'ERR_SLABPOOL_FOREIGN_BLOCK',
    `Expected a block handed out by this pool for ${name} but received ${describe(actual)} (${detail})`,
  );
}

export function destroyed(method: string): SlabpoolError {
  return withCode(TypeError, 'ERR_SLABPOOL_DESTROYED', `Cannot call ${method}(): the pool has been destroyed`);
}

/** `requiredBy`: the option that needs the addon, as the message names it ("backend 'native'"). */
export function nativeUnavailable(reasons: readonly string[], requiredBy: string): SlabpoolError {
  const list = reasons.map((r) => `\n  - ${r}`).join('');
  return withCode(
    Error,
    'ERR_SLABPOOL_NATIVE_UNAVAILABLE',
    `Expected a loadable native addon for ${requiredBy} but none loaded; attempts:${list}`,
  );
}

/**
 * What detached slab `slot`'s ArrayBuffer, in a sentence (check() and slabDetached share it).
 * A pool never detaches a slab it still uses; something outside it did.
 */
export function detachedSlabProblem(slot: number): string {
  return (
    `slab ${slot}'s ArrayBuffer was detached outside the pool: a web stream (a BYOB read into a view of it, ` +
    `or controller.enqueue) or a transfer took the whole buffer, with every block in it`
  );
}

/**
 * A block or run whose slab's ArrayBuffer something outside the pool detached: it cannot be
 * handed out (its view would have length 0). Thrown by getBlock, getRun and lease, leaving the
 * pool unchanged.
 */
export function slabDetached(method: string, slot: number): SlabpoolError {
  return withCode(
    Error,
    'ERR_SLABPOOL_DETACHED',
    `Cannot call ${method}(): ${detachedSlabProblem(slot)}. Hand streams and transfer lists a copy (block.slice()), never a pool block or its buffer. The pool may refuse every later request for this slab's blocks: destroy it and make a new one`,
  );
}

export function checkFailed(invariant: string): SlabpoolError {
  return withCode(Error, 'ERR_SLABPOOL_CHECK_FAILED', `Pool invariant broken: ${invariant}`);
}

/**
 * An engine refused an input (engine.ts): a bug in slabpool's pool layer, never a user's mistake.
 * native/binding.cc builds the same error (same message prefix, same code) for the C++ engine.
 */
export function internalError(what: string): SlabpoolError {
  return withCode(Error, 'ERR_SLABPOOL_INTERNAL', `slabpool internal error: ${what}`);
}

/** A call on a SharedPool attachment after close(), or after threadExited() ended it (`why`, a clause). */
/**
 * A shared pool's depot lock held by one attachment for `ms` with no progress: its thread was
 * almost surely terminated inside a pool call (shared-lock.ts). The call that waited changed nothing.
 */
export function depotLockTimeout(slot: number, threadId: number, ms: number): SlabpoolError {
  return withCode(
    Error,
    'ERR_SLABPOOL_LOCK_TIMEOUT',
    `The shared pool's depot lock has been held by the attachment in slot ${slot} (thread ${threadId}) for ${ms / 1000} s with no progress: its thread was probably terminated inside a pool call. Call pool.threadExited(${threadId}) (from the worker's 'exit' event), then try again; this call changed nothing`,
  );
}

/** SharedPool.attach() of a native pool whose memory was freed (every attachment closed, every view collected). */
export function sharedMemoryFreed(): SlabpoolError {
  return withCode(
    TypeError,
    'ERR_SLABPOOL_DESTROYED',
    "Cannot call attach(): the shared pool's memory was freed, every attachment having closed and every view of its blocks having been collected (a handle alone does not keep a native pool's memory: keep one attachment open until the others have attached)",
  );
}

export function closedAttachment(method: string, why = 'closed'): SlabpoolError {
  return withCode(TypeError, 'ERR_SLABPOOL_DESTROYED', `Cannot call ${method}(): this thread's attachment to the shared pool was ${why}`);
}

/**
 * A shared-pool block given back (or handed off) by a thread that does not hold it: it returned
 * or handed it off before, and it is free or another thread's now. The same code as a return of
 * a free block: from this thread's side, both are a second return. `what`: "block 5", "the run
 * at block 8"; `now`: what the block is now ("held by another thread").
 */
export function notHeldHere(name: string, what: string, now: string): SlabpoolError {
  return withCode(
    RangeError,
    'ERR_SLABPOOL_DOUBLE_RETURN',
    `Expected a block this thread holds for ${name} but received ${what}, which is ${now} (returned or handed off already?)`,
  );
}
