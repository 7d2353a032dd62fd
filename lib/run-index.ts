/**
 * The free-run index: a max segment tree (a tournament tree) over the engine's bitmap words, so
 * that the largest free run is known in O(1) and the lowest free run of at least k blocks is found
 * in O(log words), whatever the layout. Its own unit (native/run_index.h is the same in C++).
 *
 * Leaves: one per bitmap word of every slab slot, in address order (leaf = slot * wordsPerSlab +
 * word). A leaf holds the length of the longest free run that *starts* in its word, 0 if none; the
 * engine computes it from its bitmap and boundary tags (at most 16 run starts in a word) and sets
 * it whenever a run starting there appears, changes or goes. An inner node holds the larger of its
 * two children, so the root is the largest free run, and firstAtLeast(k, from) walks up from
 * `from` to the first subtree whose maximum is at least k and down to its leftmost such leaf:
 * that leaf's word holds the lowest run of at least k blocks (every run starting further left is
 * shorter), which keeps the engine's placement exactly address-ordered first fit.
 *
 * Why this structure (issue 12): TLSF (Masmano et al., "TLSF: a new dynamic memory allocator for
 * real-time systems", ECRTS 2004) finds *a* run of at least k in O(1) from segregated free lists,
 * but a good fit, not the lowest one, so the placement (and the fragmentation it leaves, which
 * address-ordered first fit keeps among the lowest: Johnstone and Wilson, "The memory
 * fragmentation problem: solved?", ISMM 1998) would change; a summary bitmap over the block bitmap
 * finds free blocks fast but not runs of a length. The tree keeps first fit and bounds every
 * operation at O(log words): about 15 levels for a million blocks, 4 bytes per 16 blocks.
 *
 * Invariants: tree[size + leaf] = leaf's value (leaves at or past leafCount are 0);
 * tree[i] = max(tree[2i], tree[2i + 1]) for 1 <= i < size; size is a power of two >= leafCount.
 */
export class RunIndex {
  #size = 1;
  #leafCount = 0;
  #tree: Int32Array = new Int32Array(2);

  /** Leaves the index covers (at least the number passed to cover()). */
  get leafCount(): number {
    return this.#leafCount;
  }

  /**
   * Makes the index cover `leaves` leaves (the new ones hold 0), growing its table by doubling:
   * O(leaves covered before + log size) when it grows, touching no page of the new table but
   * theirs; O(1) otherwise. False, the index unchanged, if the memory cannot be had.
   */
  cover(leaves: number): boolean {
    if (leaves <= this.#leafCount) return true;
    if (leaves > this.#size) {
      let size = this.#size;
      while (size < leaves) size *= 2;
      let tree: Int32Array;
      try {
        tree = new Int32Array(2 * size);
      } catch {
        return false;
      }
      // Nothing to copy into the first table (a pool's construction): no view made for it.
      if (this.#leafCount > 0) tree.set(this.#tree.subarray(this.#size, this.#size + this.#leafCount), size);
      // Only the ancestors of the copied leaves, level by level (the rest is zero, the max of zeros,
      // and stays untouched: native/run_index.cc says what rebuilding every node cost).
      for (let lo = size >>> 1, hi = (size + this.#leafCount + 1) >>> 1; lo >= 1 && lo < hi; lo >>>= 1, hi = (hi + 1) >>> 1) {
        for (let i = lo; i < hi; i++) tree[i] = Math.max(tree[2 * i]!, tree[2 * i + 1]!);
      }
      this.#size = size;
      this.#tree = tree;
    }
    this.#leafCount = leaves;
    return true;
  }

  /** Sets a leaf (0 <= leaf < leafCount; others are ignored) and updates its ancestors, stopping where a node does not change: O(log size). */
  set(leaf: number, value: number): void {
    if (!(leaf >= 0 && leaf < this.#leafCount)) return;
    const tree = this.#tree;
    let i = this.#size + leaf;
    let before = tree[i]!;
    if (before === value) return;
    tree[i] = value;
    let after = value;
    // A parent is the larger of its children (the invariant), so its value before and after are
    // max(before, sibling) and max(after, sibling): read from the child's side (siblings are
    // adjacent) and never from the parent's, so a page of a table fresh from the OS is written
    // without a read first, one page fault instead of two (a read maps the shared zero page, the
    // write then copies it). A first slab of 1e6 blocks sets a leaf whose 15 ancestors lie on 7
    // pages: 40 -> 22 us here, 150 -> 45 us while V8 marks concurrently (issue 12, measured).
    for (; i > 1; i >>= 1) {
      const sibling = tree[i ^ 1]!;
      const parentBefore = before > sibling ? before : sibling;
      const parentAfter = after > sibling ? after : sibling;
      if (parentBefore === parentAfter) return;
      tree[i >> 1] = parentAfter;
      before = parentBefore;
      after = parentAfter;
    }
  }

  /** A leaf's value (0 past leafCount). */
  get(leaf: number): number {
    return leaf >= 0 && leaf < this.#leafCount ? this.#tree[this.#size + leaf]! : 0;
  }

  /** The longest free run, 0 if none: O(1). */
  largest(): number {
    return this.#tree[1]!;
  }

  /** The lowest leaf at or after `from` whose value is at least k (k >= 1), or -1: O(log size). */
  firstAtLeast(k: number, from: number): number {
    const tree = this.#tree;
    const size = this.#size;
    if (from >= this.#leafCount || tree[1]! < k) return -1;
    let i = size + from;
    // Up: from i, to the next subtree on the right until one holds a value of at least k.
    while (tree[i]! < k) {
      while (i & 1) i >>= 1; // a right child: its parent's range ends where i's does
      if (i === 0) return -1; // climbed past the root: nothing to the right
      i++; // the right sibling: the range just after i's
    }
    // Down: the leftmost leaf of at least k in i's subtree. Branch-free (the right child when the
    // left one is short: the sign of tree[2i] - k, which cannot overflow, both being below 2^31):
    // on a random layout that branch goes either way, and was mispredicted at many levels.
    while (i < size) i = 2 * i + ((tree[2 * i]! - k) >>> 31);
    return i - size;
  }

  /**
   * Null if the leaves equal `expected` (expected[leaf] for leaf < leafCount, as the engine reads
   * its bitmap) and every inner node is the larger of its children, else the first disagreement.
   */
  check(expected: Int32Array): string | null {
    const tree = this.#tree;
    const size = this.#size;
    if (size < this.#leafCount || tree.length !== 2 * size) return `run index of ${size} leaves covers ${this.#leafCount}`;
    for (let leaf = 0; leaf < size; leaf++) {
      const want = leaf < this.#leafCount ? (expected[leaf] ?? 0) : 0;
      if (tree[size + leaf] !== want) return `run index leaf ${leaf} holds ${tree[size + leaf]}, the slabs ${want}`;
    }
    for (let i = size - 1; i >= 1; i--) {
      const max = Math.max(tree[2 * i]!, tree[2 * i + 1]!);
      if (tree[i] !== max) return `run index node ${i} holds ${tree[i]}, its children ${max}`;
    }
    return null;
  }

  /** Sets every leaf to 0. */
  clear(): void {
    this.#tree.fill(0);
  }
}
