// A slabpool::Allocator driven beside a brute-force model of it (the set of free blocks, blocks
// held by a "user", blocks cached as a pool's magazine would). Every operation predicts its
// outcome from the model and reports the first disagreement; verify() then runs the allocator's
// check() and compares its counters. Choices come in as numbers, so that a seeded random walk
// (slab_test.cc) and libFuzzer's bytes (slab_fuzz.cc) can both drive it.
#ifndef SLABPOOL_TEST_SHADOW_H_
#define SLABPOOL_TEST_SHADOW_H_

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../../native/slab.h"

namespace slabpool_test {

class Shadow {
 public:
  static constexpr uint32_t kMaxSlots = 4;

  Shadow(uint32_t slab_blocks, size_t alignment, size_t stride_units)
      : slab_blocks_(slab_blocks), a_(alignment * stride_units, alignment, slab_blocks), slots_(kMaxSlots, 0),
        state_(static_cast<size_t>(slab_blocks) * kMaxSlots, 0) {}

  bool valid() const { return a_.valid(); }
  const std::string& problem() const { return problem_; }

  // Each returns false, with problem() saying why, when the allocator disagrees with the model.

  bool add_slab(uint32_t slot, uint32_t blocks) {
    slot %= kMaxSlots;
    blocks = 1 + blocks % slab_blocks_;
    bool expected = slots_[slot] == 0 && (slot == 0 || slot <= a_.slot_count());
    bool ok = a_.add_slab(slot, blocks) == slabpool::Allocator::Result::kOk;
    if (ok != expected) return fail("add_slab(" + std::to_string(slot) + ") gave " + std::to_string(ok));
    if (!ok) return true;
    slots_[slot] = blocks;
    for (uint32_t i = 0; i < blocks; i++) free_.insert(static_cast<int32_t>(slot * slab_blocks_ + i));
    return true;
  }

  bool free_slab(uint32_t slot) {
    slot %= kMaxSlots;
    bool empty = slots_[slot] > 0;
    for (uint32_t i = 0; i < slots_[slot] && empty; i++) empty = free_.count(static_cast<int32_t>(slot * slab_blocks_ + i)) > 0;
    size_t bytes = a_.free_slab(slot);
    if ((bytes != 0) != empty) return fail("free_slab(" + std::to_string(slot) + ") gave " + std::to_string(bytes));
    if (!empty) return true;
    for (uint32_t i = 0; i < slots_[slot]; i++) free_.erase(static_cast<int32_t>(slot * slab_blocks_ + i));
    slots_[slot] = 0;
    return true;
  }

  // Takes up to `want` blocks; bit j of `to_user` sends the j-th to the user, else to the cache.
  bool acquire(uint32_t want, uint32_t to_user) {
    int32_t out[16];
    want = 1 + want % 16;
    uint32_t n = a_.acquire(out, want);
    if (n != std::min<size_t>(want, free_.size())) return fail("acquire(" + std::to_string(want) + ") gave " + std::to_string(n));
    for (uint32_t j = 0; j < n; j++) {
      if (j > 0 && out[j] >= out[j - 1]) return fail("acquire did not give the highest first");
      if (out[n - 1 - j] != *free_.begin()) return fail("acquire did not take the lowest free block");
      free_.erase(out[n - 1 - j]);
    }
    for (uint32_t j = 0; j < n; j++) {
      if ((to_user >> j) & 1u) {
        held_.push_back({out[j], 1});
        state_[out[j]] = 1;
      } else {
        cached_.push_back(out[j]);
      }
    }
    return true;
  }

  // Gives back a held block or run (`pick`), or the oldest `pick` cached blocks.
  bool release(uint32_t pick, bool from_cache) {
    if (!from_cache && !held_.empty()) {
      size_t i = pick % held_.size();
      auto [start, len] = held_[i];
      bool ok = len == 1 ? a_.release(&start, 1) : a_.release_run(start, len);
      if (!ok) return fail("release of a held block refused");
      for (uint32_t j = 0; j < len; j++) {
        state_[start + j] = 0;
        free_.insert(start + static_cast<int32_t>(j));
      }
      held_.erase(held_.begin() + static_cast<long>(i));
    } else if (!cached_.empty()) {
      uint32_t n = 1 + pick % static_cast<uint32_t>(cached_.size());
      if (!a_.release(cached_.data(), n)) return fail("release of cached blocks refused");
      for (uint32_t j = 0; j < n; j++) free_.insert(cached_[j]);
      cached_.erase(cached_.begin(), cached_.begin() + n);
    }
    return true;
  }

  // Calls that must be refused, changing nothing: releasing a free block, a block past the end or
  // a run past its slab; acquire_run(0); largest_run_with given a non-block or a free block.
  bool release_wrong(uint32_t pick) {
    int32_t bogus[] = {free_.empty() ? -1 : *std::next(free_.begin(), static_cast<long>(pick % free_.size())), -1,
                       static_cast<int32_t>(kMaxSlots * slab_blocks_)};
    int32_t idx = bogus[pick % 3];
    if (a_.release(&idx, 1)) return fail("release of " + std::to_string(idx) + " was accepted");
    if (!held_.empty() && a_.release_run(held_[pick % held_.size()].first, slab_blocks_ + 1)) return fail("a run past its slab was released");
    if (a_.acquire_run(0) != slabpool::kRefused) return fail("acquire_run(0) was not refused");
    std::vector<int32_t> with(cached_);
    with.push_back(idx);
    if (a_.largest_run_with(with.data(), static_cast<uint32_t>(with.size())) != slabpool::kRefused) {
      return fail("largest_run_with accepted " + std::to_string(idx));
    }
    return true;
  }

  bool acquire_run(uint32_t k) {
    k = 1 + k % std::min<uint32_t>(slab_blocks_, 16);
    int64_t start = a_.acquire_run(k);
    if ((start >= 0) != (largest(free_) >= k)) return fail("acquire_run(" + std::to_string(k) + ") gave " + std::to_string(start));
    if (start < 0) return true;
    if (start / slab_blocks_ != (start + k - 1) / slab_blocks_) return fail("a run crosses a slab");
    for (uint32_t j = 0; j < k; j++) {
      if (free_.erase(static_cast<int32_t>(start + j)) != 1) return fail("acquire_run took a block that was not free");
      state_[start + j] = 1;
    }
    held_.push_back({static_cast<int32_t>(start), k});
    return true;
  }

  bool reset_search_cursor() {
    a_.reset_search_cursor();
    return true;
  }

  bool largest_with_cache() {
    std::set<int32_t> with(free_);
    with.insert(cached_.begin(), cached_.end());
    int64_t got = a_.largest_run_with(cached_.data(), static_cast<uint32_t>(cached_.size()));
    if (got != largest(with)) return fail("largest_run_with gave " + std::to_string(got) + ", expected " + std::to_string(largest(with)));
    return true;
  }

  bool verify() {
    std::string why = a_.check(state_.data(), state_.size(), cached_.data(), static_cast<uint32_t>(cached_.size()));
    if (!why.empty()) return fail("check(): " + why);
    const double* c = a_.counters();
    if (c[slabpool::kFree] != static_cast<double>(free_.size())) return fail("free counter " + std::to_string(c[slabpool::kFree]));
    if (c[slabpool::kLargest] != static_cast<double>(largest(free_))) return fail("largest counter " + std::to_string(c[slabpool::kLargest]));
    return true;
  }

 private:
  bool fail(std::string why) {
    problem_ = std::move(why);
    return false;
  }

  uint32_t largest(const std::set<int32_t>& s) const {
    uint32_t best = 0, run = 0;
    int32_t prev = -2;
    const int32_t sb = static_cast<int32_t>(slab_blocks_);
    for (int32_t i : s) {
      run = (i == prev + 1 && i / sb == prev / sb) ? run + 1 : 1;
      best = std::max(best, run);
      prev = i;
    }
    return best;
  }

  uint32_t slab_blocks_;
  slabpool::Allocator a_;
  std::vector<uint32_t> slots_;
  std::set<int32_t> free_;
  std::vector<std::pair<int32_t, uint32_t>> held_;  // start, length
  std::vector<int32_t> cached_;
  std::vector<uint8_t> state_;
  std::string problem_;
};

}  // namespace slabpool_test

#endif  // SLABPOOL_TEST_SHADOW_H_
