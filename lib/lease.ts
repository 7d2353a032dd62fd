import type { PoolArray } from './options.js';

/*
 * A lease (`using lease = pool.lease()`): a block handed out with the promise to give it back
 * when the lease is disposed. MemoryPool keeps the table of live leases and does the giving back
 * (pool.ts #endLease), which this file reaches through the hook pool.ts sets when it loads.
 */

/** What disposing a lease calls: MemoryPool's #endLease (set by pool.ts). */
let endLease: (pool: unknown, lease: Lease<PoolArray>) => void = () => {
  throw new Error('slabpool: pool.ts did not set the lease hook');
};

/** @internal */
export function setLeaseEnd(end: (pool: unknown, lease: Lease<PoolArray>) => void): void {
  endLease = end;
}

/** A leased block, returned to its pool when disposed: `using lease = pool.lease()`. */
export class Lease<T extends PoolArray = Float64Array> implements Disposable {
  readonly #pool: unknown;
  readonly #block: T;
  #disposed = false;

  /** @internal */
  constructor(pool: unknown, block: T) {
    this.#pool = pool;
    this.#block = block;
  }

  get block(): T {
    return this.#block;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Returns the block. Idempotent; after the pool is destroyed it does nothing. Throws
   * ERR_SLABPOOL_PINNED, the lease still live, while the block is pinned (pin.ts).
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    endLease(this.#pool, this as unknown as Lease<PoolArray>);
    this.#disposed = true;
  }
}
