#include "run_index.h"

#include <algorithm>
#include <cstring>

#include "os.h"

namespace slabpool {

RunIndex::~RunIndex() { os::zeroed_free(tree_, 2 * size_ * sizeof(uint32_t)); }

bool RunIndex::cover(size_t leaves) {
  if (leaves <= leaf_count_) return true;
  if (leaves > size_) {
    size_t size = size_ == 0 ? 1 : size_;
    while (size < leaves) {
      if (size > (SIZE_MAX / 4) / sizeof(uint32_t)) return false;
      size *= 2;
    }
    uint32_t* tree = static_cast<uint32_t*>(os::zeroed_alloc(2 * size * sizeof(uint32_t)));
    if (tree == nullptr) return false;
    if (tree_ != nullptr) std::memcpy(tree + size, tree_ + size_, leaf_count_ * sizeof(uint32_t));
    // Only the ancestors of the copied leaves, level by level: the rest of the new table is zero,
    // the max of zeros, and stays untouched (rebuilding every node read and wrote the whole table,
    // a page fault per 4 KB, 64 of them for a first slab of 1e6 blocks: ~1.2 ms here).
    for (size_t lo = size >> 1, hi = (size + leaf_count_ + 1) >> 1; lo >= 1 && lo < hi; lo >>= 1, hi = (hi + 1) >> 1) {
      for (size_t i = lo; i < hi; i++) tree[i] = std::max(tree[2 * i], tree[2 * i + 1]);
    }
    os::zeroed_free(tree_, 2 * size_ * sizeof(uint32_t));
    tree_ = tree;
    size_ = size;
  }
  leaf_count_ = leaves;
  return true;
}

void RunIndex::set(size_t leaf, uint32_t value) {
  if (leaf >= leaf_count_) return;
  size_t i = size_ + leaf;
  uint32_t before = tree_[i];
  if (before == value) return;
  tree_[i] = value;
  uint32_t after = value;
  // A parent is the larger of its children, so its value before and after are max(before,
  // sibling) and max(after, sibling): the parent is written, never read, and a page of a fresh
  // table takes one page fault instead of two (lib/run-index.ts says more).
  for (; i > 1; i >>= 1) {
    uint32_t sibling = tree_[i ^ 1];
    uint32_t parent_before = std::max(before, sibling);
    uint32_t parent_after = std::max(after, sibling);
    if (parent_before == parent_after) return;
    tree_[i >> 1] = parent_after;
    before = parent_before;
    after = parent_after;
  }
}

int64_t RunIndex::first_at_least(uint32_t k, size_t from) const {
  if (from >= leaf_count_ || tree_[1] < k) return -1;
  size_t i = size_ + from;
  // Up: from i, to the next subtree on the right until one holds a value of at least k.
  while (tree_[i] < k) {
    while (i & 1) i >>= 1;  // a right child: its parent's range ends where i's does
    if (i == 0) return -1;  // climbed past the root: nothing to the right
    i++;                    // the right sibling: the range just after i's
  }
  // Down: the leftmost leaf of at least k in i's subtree.
  while (i < size_) {
    i *= 2;
    if (tree_[i] < k) i++;
  }
  return static_cast<int64_t>(i - size_);
}

std::string RunIndex::check(const uint32_t* expected) const {
  auto at = [](uint64_t i) { return std::to_string(i); };
  if (leaf_count_ == 0) return std::string();
  if (tree_ == nullptr || size_ < leaf_count_) return "run index of " + at(size_) + " leaves covers " + at(leaf_count_);
  for (size_t leaf = 0; leaf < size_; leaf++) {
    uint32_t want = leaf < leaf_count_ ? expected[leaf] : 0;
    if (tree_[size_ + leaf] != want) return "run index leaf " + at(leaf) + " holds " + at(tree_[size_ + leaf]) + ", the slabs " + at(want);
  }
  for (size_t i = size_ - 1; i >= 1; i--) {
    uint32_t max = std::max(tree_[2 * i], tree_[2 * i + 1]);
    if (tree_[i] != max) return "run index node " + at(i) + " holds " + at(tree_[i]) + ", its children " + at(max);
  }
  return std::string();
}

void RunIndex::clear() {
  if (tree_ != nullptr) std::memset(tree_, 0, 2 * size_ * sizeof(uint32_t));
}

}  // namespace slabpool
