// The churn case's reference allocator: textbook address-ordered first fit over a bitmap of n
// blocks, with no cache of any kind (no magazine, no cursor, no index). getRun(k) takes the lowest
// k blocks of the lowest free run of at least k blocks; getBlock() is getRun(1). It hands out
// block indices, not memory: it is there to say what fragmentation and failures plain first fit
// has on a trace, not how fast it is.

function ctz32(word) {
  return 31 - Math.clz32(word & -word);
}

export class FirstFit {
  /** bit i of used = 1 iff block i is allocated; bits n..32*ceil(n/32)-1 are set (never free). */
  #used;
  #n;
  #free;

  constructor(n) {
    this.#n = n;
    this.#free = n;
    this.#used = new Uint32Array((n + 31) >>> 5);
    if (n & 31) this.#used[this.#used.length - 1] = ~((1 << (n & 31)) - 1);
  }

  get freeBlocks() {
    return this.#free;
  }

  /** The lowest free block, or -1. */
  getBlock() {
    return this.getRun(1);
  }

  /** The start of k blocks taken from the lowest free run of at least k, or -1. */
  getRun(k) {
    for (let p = this.#next(0, 0); p < this.#n; ) {
      const end = this.#next(p, 1);
      if (end - p >= k) {
        for (let j = p; j < p + k; j++) this.#used[j >>> 5] |= 1 << (j & 31);
        this.#free -= k;
        return p;
      }
      p = this.#next(end, 0);
    }
    return -1;
  }

  /** Frees the k blocks from start (allocated by getBlock or getRun). */
  release(start, k) {
    for (let j = start; j < start + k; j++) {
      if (((this.#used[j >>> 5] >>> (j & 31)) & 1) === 0) throw new Error(`first fit: block ${j} is already free`);
      this.#used[j >>> 5] &= ~(1 << (j & 31));
    }
    this.#free += k;
  }

  /** The longest run of free blocks (a full scan: for sampling, outside timed code). */
  largestFreeRun() {
    let best = 0;
    for (let p = this.#next(0, 0); p < this.#n; ) {
      const end = this.#next(p, 1);
      if (end - p > best) best = end - p;
      p = this.#next(end, 0);
    }
    return best;
  }

  /** 100 * (1 - largest free run / free blocks), 0 when nothing is free: the pool's definition. */
  fragmentation() {
    return this.#free === 0 ? 0 : 100 * (1 - this.largestFreeRun() / this.#free);
  }

  /** The lowest block at or after `from` whose used bit is `bit` (0 free, 1 used), or n if none. */
  #next(from, bit) {
    const used = this.#used;
    let w = from >>> 5;
    if (w >= used.length) return this.#n;
    const flip = bit ? 0 : -1; // look for set bits in (used ^ flip)
    let word = (used[w] ^ flip) & (-1 << (from & 31));
    while (word === 0 && ++w < used.length) word = used[w] ^ flip;
    return word === 0 ? this.#n : Math.min(this.#n, (w << 5) + ctz32(word));
  }
}
