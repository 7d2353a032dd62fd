const CHUNK_SHIFT = 10;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;

/**
 * A sparse table from block index to value, in chunks of 1024 slots made on first use: a get is
 * two array loads (a Map of integer keys costs a hash and a probe, ~4x that, measured on the
 * churn trace, where a run view is looked up and replaced on most getRun calls). Memory: 8 bytes
 * per slot of every chunk touched.
 */
export class IndexTable<V> {
  #chunks: (V | undefined)[][] = [];

  get(idx: number): V | undefined {
    return this.#chunks[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK];
  }

  set(idx: number, value: V): void {
    (this.#chunks[idx >>> CHUNK_SHIFT] ??= new Array<V | undefined>(CHUNK_MASK + 1).fill(undefined))[idx & CHUNK_MASK] = value;
  }

  delete(idx: number): void {
    const chunk = this.#chunks[idx >>> CHUNK_SHIFT];
    if (chunk !== undefined) chunk[idx & CHUNK_MASK] = undefined;
  }

  /** Calls fn for every value, in index order. */
  forEach(fn: (value: V, idx: number) => void): void {
    const chunks = this.#chunks;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c];
      if (chunk === undefined) continue;
      for (let j = 0; j <= CHUNK_MASK; j++) {
        const value = chunk[j];
        if (value !== undefined) fn(value, (c << CHUNK_SHIFT) | j);
      }
    }
  }

  /** Deletes the values of indices [first, first + count), calling fn for each first. */
  deleteRange(first: number, count: number, fn: (value: V, idx: number) => void): void {
    for (let idx = first; idx < first + count; idx++) {
      const chunk = this.#chunks[idx >>> CHUNK_SHIFT];
      if (chunk === undefined) {
        idx |= CHUNK_MASK; // skip the rest of the missing chunk
        continue;
      }
      const value = chunk[idx & CHUNK_MASK];
      if (value === undefined) continue;
      fn(value, idx);
      chunk[idx & CHUNK_MASK] = undefined;
    }
  }

  clear(): void {
    this.#chunks = [];
  }
}

/**
 * IndexTable's twin for small non-negative integers, in Int32Array chunks made on first use (0
 * where never set): a dense, warm table read instead of a property of an object that has gone
 * cold. Memory: 4 bytes per slot of every chunk touched.
 */
export class IndexInts {
  #chunks: (Int32Array | undefined)[] = [];

  get(idx: number): number {
    return this.#chunks[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK] ?? 0;
  }

  set(idx: number, value: number): void {
    (this.#chunks[idx >>> CHUNK_SHIFT] ??= new Int32Array(CHUNK_MASK + 1))[idx & CHUNK_MASK] = value;
  }

  /** Sets indices [first, first + count) to 0. */
  clearRange(first: number, count: number): void {
    for (let idx = first; idx < first + count; idx++) {
      const chunk = this.#chunks[idx >>> CHUNK_SHIFT];
      if (chunk === undefined) idx |= CHUNK_MASK; // skip the rest of the missing chunk
      else chunk[idx & CHUNK_MASK] = 0;
    }
  }

  clear(): void {
    this.#chunks = [];
  }
}
