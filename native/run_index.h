// The free-run index: a max segment tree (a tournament tree) over the allocator's bitmap words, so
// that the largest free run is known in O(1) and the lowest free run of at least k blocks is found
// in O(log words), whatever the layout. lib/run-index.ts is the same in TypeScript, and says why
// this structure rather than TLSF or a summary bitmap: it keeps address-ordered first fit.
//
// Leaves: one per bitmap word of every slab slot, in address order (leaf = slot * words_per_slab +
// word), holding the longest free run that *starts* in that word (0 if none); the allocator
// computes it from its bitmap and tags and sets it whenever a run start there changes. An inner
// node holds the larger of its children. Not thread-safe, like the Allocator that owns it.
//
// Invariants: tree[size + leaf] = leaf's value (0 at or past leaf_count); tree[i] =
// max(tree[2i], tree[2i+1]) for 1 <= i < size; size is a power of two >= leaf_count.
#ifndef SLABPOOL_RUN_INDEX_H_
#define SLABPOOL_RUN_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace slabpool {

class RunIndex {
 public:
  RunIndex() = default;
  ~RunIndex();
  RunIndex(const RunIndex&) = delete;
  RunIndex& operator=(const RunIndex&) = delete;

  // Covers `leaves` leaves (the new ones hold 0), growing the table by doubling (tables from
  // os::zeroed_alloc): O(leaves covered before + log size) when it grows, touching no page of the
  // new table but theirs. False, the index unchanged, without memory.
  bool cover(size_t leaves);
  size_t leaf_count() const { return leaf_count_; }

  // Sets a leaf (< leaf_count; others are ignored) and its ancestors, stopping where a node does
  // not change: O(log size).
  void set(size_t leaf, uint32_t value);
  uint32_t get(size_t leaf) const { return leaf < leaf_count_ ? tree_[size_ + leaf] : 0; }
  uint32_t largest() const { return tree_ == nullptr ? 0 : tree_[1]; }  // O(1)

  // The lowest leaf >= from whose value is >= k (k >= 1), or -1: O(log size).
  int64_t first_at_least(uint32_t k, size_t from) const;

  // Empty if the leaves equal expected[0..leaf_count) and every inner node is the larger of its
  // children, else the first disagreement.
  std::string check(const uint32_t* expected) const;
  void clear();  // every leaf 0

 private:
  size_t size_ = 0;  // leaves the table holds, a power of two (0: no table yet)
  size_t leaf_count_ = 0;
  uint32_t* tree_ = nullptr;  // [2 * size_]
};

}  // namespace slabpool

#endif  // SLABPOOL_RUN_INDEX_H_
