// A slabpool::Allocator driven beside a brute-force model of it (the set of free blocks, blocks
// held by a "user", blocks cached as a pool's magazine would). Every operation predicts its
// outcome from the model and reports the first disagreement (acquire must take the lowest free
// blocks, acquire_run the lowest free run long enough: first fit); verify() then runs the
// allocator's check(), which holds the run index to the bitmap, and compares its counters.
// Choices come in as numbers, so that a seeded random walk (slab_test.cc) and libFuzzer's bytes
// (slab_fuzz.cc) can both drive it.
//
// Views stand for JavaScript ArrayBuffers over a slab: each holds a reference to its SlabMemory
// and writes through it, and the model keeps the bytes every referenced memory must read. A slab
// given up while viewed must stay mapped and writable, read zeros at once (decommitted), be
// overlapped by no later slab and be freed with its last view; destroying the allocator without
// decommit_all() must leave viewed memory as it was. The process-wide byte counters are compared
// with the model after every operation, as the shadow is the only allocator in these programs.
#ifndef SLABPOOL_TEST_SHADOW_H_
#define SLABPOOL_TEST_SHADOW_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../../native/os.h"
#include "../../native/slab.h"

namespace slabpool_test {

class Shadow {
 public:
  static constexpr uint32_t kMaxSlots = 4;
  static constexpr size_t kMaxViews = 16;  // bounds the memory a long input can keep alive

  // How often the walk reached each release path with views held (coverage, for the test's report).
  struct Reached {
    uint32_t heap_retired = 0;    // free_slab of a viewed slab below os::kSlabMapThreshold
    uint32_t mapped_retired = 0;  // ... at or above it
    uint32_t decommit_destroyed = 0;  // restart(true) with views over the allocator's slabs
    uint32_t plain_destroyed = 0;     // restart(false) with views over the allocator's slabs
    uint32_t last_view_freed = 0;     // the last view of a given-up slab dropped
  };

  Shadow(uint32_t slab_blocks, size_t alignment, size_t stride_units)
      : slab_blocks_(slab_blocks), alignment_(alignment), stride_(alignment * stride_units),
        a_(std::make_unique<slabpool::Allocator>(stride_, alignment, slab_blocks)), slots_(kMaxSlots, 0),
        state_(static_cast<size_t>(slab_blocks) * kMaxSlots, 0),
        live_base_(slabpool::slab_memory_live_bytes()), committed_base_(slabpool::slab_memory_committed_bytes()) {}

  ~Shadow() {
    for (slabpool::SlabMemory* m : views_) slabpool::slab_memory_release(m);
  }
  Shadow(const Shadow&) = delete;
  Shadow& operator=(const Shadow&) = delete;

  bool valid() const { return a_ != nullptr && a_->valid(); }
  const std::string& problem() const { return problem_; }
  const Reached& reached() const { return reached_; }

  // Each returns false, with problem() saying why, when the allocator disagrees with the model.

  bool add_slab(uint32_t slot, uint32_t blocks) {
    slot %= kMaxSlots;
    blocks = 1 + blocks % slab_blocks_;
    bool expected = slots_[slot] == 0 && (slot == 0 || slot <= a_->slot_count());
    bool ok = a_->add_slab(slot, blocks) == slabpool::Allocator::Result::kOk;
    if (ok != expected) return fail("add_slab(" + std::to_string(slot) + ") gave " + std::to_string(ok));
    if (!ok) return true;
    const uint8_t* base = a_->slab_base(slot);
    const size_t bytes = blocks * stride_;
    const uintptr_t at = reinterpret_cast<uintptr_t>(base);
    for (const auto& [memory, m] : memories_) {
      const uintptr_t from = reinterpret_cast<uintptr_t>(m.base);
      if (at < from + m.bytes && from < at + bytes) {
        return fail("add_slab(" + std::to_string(slot) + ") was given memory that a view still reaches");
      }
    }
    if (first_nonzero(base, bytes) < bytes) return fail("add_slab(" + std::to_string(slot) + ") gave memory that is not zeroed");
    slots_[slot] = blocks;
    for (uint32_t i = 0; i < blocks; i++) free_.insert(static_cast<int32_t>(slot * slab_blocks_ + i));
    return true;
  }

  bool free_slab(uint32_t slot) {
    slot %= kMaxSlots;
    bool empty = slots_[slot] > 0;
    for (uint32_t i = 0; i < slots_[slot] && empty; i++) empty = free_.count(static_cast<int32_t>(slot * slab_blocks_ + i)) > 0;
    slabpool::SlabMemory* memory = a_->slab_memory(slot);
    size_t bytes = a_->free_slab(slot);
    if ((bytes != 0) != empty) return fail("free_slab(" + std::to_string(slot) + ") gave " + std::to_string(bytes));
    if (!empty) return true;
    if (bytes != slots_[slot] * stride_) return fail("free_slab(" + std::to_string(slot) + ") gave " + std::to_string(bytes) + " bytes");
    for (uint32_t i = 0; i < slots_[slot]; i++) free_.erase(static_cast<int32_t>(slot * slab_blocks_ + i));
    slots_[slot] = 0;
    auto it = memories_.find(memory);
    if (it == memories_.end()) return true;
    Memory& m = it->second;
    if (m.views == 0) {
      memories_.erase(it);
      return true;
    }
    // Viewed: decommitted, not freed. It reads zeros now and takes writes still.
    (mapped(m) ? reached_.mapped_retired : reached_.heap_retired)++;
    m.slot = -1;
    m.decommitted = mapped(m);
    std::fill(m.contents.begin(), m.contents.end(), 0);
    if (!reads_as_expected(m, "after free_slab(" + std::to_string(slot) + ")")) return false;
    return scribble(m, 0, m.bytes, "after free_slab(" + std::to_string(slot) + ")");
  }

  // A view over slot's slab, as an ArrayBuffer over it would hold, and a write through it into one
  // of the blocks the user holds there (`pick`), if any. No-op on an empty slot.
  bool take_view(uint32_t slot, uint32_t pick) {
    slot %= kMaxSlots;
    slabpool::SlabMemory* memory = a_->slab_memory(slot);
    if (slots_[slot] == 0) return memory == nullptr || fail("slab_memory of empty slot " + std::to_string(slot));
    if (memory == nullptr) return fail("slab " + std::to_string(slot) + " has no SlabMemory");
    if (views_.size() >= kMaxViews) return true;
    if (slabpool::slab_memory_retain(memory) != memory) return fail("slab_memory_retain gave another pointer");
    views_.push_back(memory);
    auto [it, fresh] = memories_.try_emplace(memory);
    Memory& m = it->second;
    if (fresh) {
      m.base = a_->slab_base(slot);
      m.bytes = slots_[slot] * stride_;
      m.slot = slot;
      m.contents.assign(m.bytes, 0);
    }
    if (m.base != a_->slab_base(slot) || m.slot != static_cast<int64_t>(slot)) return fail("a SlabMemory moved");
    m.views++;
    std::vector<std::pair<int32_t, uint32_t>> here;
    for (const auto& run : held_) {
      if (static_cast<uint32_t>(run.first) / slab_blocks_ == slot) here.push_back(run);
    }
    if (here.empty()) return true;
    auto [start, len] = here[pick % here.size()];
    size_t offset = (static_cast<uint32_t>(start) - slot * slab_blocks_) * stride_;
    if (!scribble(m, offset, len * stride_, "writing block " + std::to_string(start) + " through a view")) return false;
    // The allocator's own pointer reaches the same bytes.
    if (std::memcmp(a_->slab_base(slot) + offset, m.contents.data() + offset, len * stride_) != 0) {
      return fail("a view and slab_base(" + std::to_string(slot) + ") disagree");
    }
    return true;
  }

  // Drops one view (`pick`) after checking that its memory still reads what was written there.
  bool drop_view(uint32_t pick) {
    if (views_.empty()) return true;
    size_t i = pick % views_.size();
    slabpool::SlabMemory* memory = views_[i];
    Memory& m = memories_.at(memory);
    if (!reads_as_expected(m, "before a view was dropped")) return false;
    views_.erase(views_.begin() + static_cast<long>(i));
    slabpool::slab_memory_release(memory);
    if (--m.views == 0 && m.slot < 0) {
      reached_.last_view_freed++;
      memories_.erase(memory);
    }
    return true;
  }

  // The pool destroyed (decommit: by destroy(), else by the garbage collector) and a new one made
  // with the same geometry, its first slab of `blocks`. Views outlive the old allocator: after
  // decommit_all() they read zeros, after the destructor alone the bytes they had.
  bool restart(bool decommit, uint32_t blocks) {
    bool viewed = false;
    for (auto& [memory, m] : memories_) {
      if (m.slot < 0 || m.views == 0) continue;
      viewed = true;
      if (!decommit) continue;
      m.decommitted = mapped(m);
      std::fill(m.contents.begin(), m.contents.end(), 0);
    }
    if (decommit) {
      a_->decommit_all();
      for (auto& [memory, m] : memories_) {
        if (m.slot >= 0 && m.views > 0 && !reads_as_expected(m, "after decommit_all()")) return false;
      }
      if (!counters_match("after decommit_all()")) return false;
    }
    if (viewed) (decommit ? reached_.decommit_destroyed : reached_.plain_destroyed)++;
    a_.reset();
    std::fill(slots_.begin(), slots_.end(), 0);
    std::fill(state_.begin(), state_.end(), 0);
    free_.clear();
    held_.clear();
    cached_.clear();
    for (auto it = memories_.begin(); it != memories_.end();) {
      Memory& m = it->second;
      if (m.views == 0) {
        it = memories_.erase(it);
        continue;
      }
      bool was_live = m.slot >= 0;
      m.slot = -1;
      const char* when = decommit ? "after decommit_all() and the destructor" : "after the destructor alone";
      if (!reads_as_expected(m, when)) return false;
      if (was_live && !scribble(m, 0, m.bytes, when)) return false;
      ++it;
    }
    if (!counters_match(decommit ? "after decommit_all() and the destructor" : "after the destructor alone")) return false;
    a_ = std::make_unique<slabpool::Allocator>(stride_, alignment_, slab_blocks_);
    return add_slab(0, blocks);
  }

  // Drops every view and the allocator; then every byte of slab memory is freed. The last call.
  bool close() {
    while (!views_.empty()) {
      if (!drop_view(0)) return false;
    }
    a_.reset();
    std::fill(slots_.begin(), slots_.end(), 0);
    memories_.clear();
    return counters_match("at the end");
  }

  // Takes up to `want` blocks; bit j of `to_user` sends the j-th to the user, else to the cache.
  bool acquire(uint32_t want, uint32_t to_user) {
    int32_t out[16];
    want = 1 + want % 16;
    uint32_t n = a_->acquire(out, want);
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
      bool ok = len == 1 ? a_->release(&start, 1) : a_->release_run(start, len);
      if (!ok) return fail("release of a held block refused");
      for (uint32_t j = 0; j < len; j++) {
        state_[start + j] = 0;
        free_.insert(start + static_cast<int32_t>(j));
      }
      held_.erase(held_.begin() + static_cast<long>(i));
    } else if (!cached_.empty()) {
      uint32_t n = 1 + pick % static_cast<uint32_t>(cached_.size());
      if (!a_->release(cached_.data(), n)) return fail("release of cached blocks refused");
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
    if (a_->release(&idx, 1)) return fail("release of " + std::to_string(idx) + " was accepted");
    if (!held_.empty() && a_->release_run(held_[pick % held_.size()].first, slab_blocks_ + 1)) return fail("a run past its slab was released");
    if (a_->acquire_run(0) != slabpool::kRefused) return fail("acquire_run(0) was not refused");
    std::vector<int32_t> with(cached_);
    with.push_back(idx);
    if (a_->largest_run_with(with.data(), static_cast<uint32_t>(with.size())) != slabpool::kRefused) {
      return fail("largest_run_with accepted " + std::to_string(idx));
    }
    return true;
  }

  // A run of 1..min(slab_blocks, most) blocks: the lowest free run long enough (first fit), or -1
  // when there is none.
  bool acquire_run(uint32_t k, uint32_t most = 16) {
    k = 1 + k % std::min(slab_blocks_, most);
    int64_t start = a_->acquire_run(k);
    int64_t fit = first_fit(k);
    if (start != fit) return fail("acquire_run(" + std::to_string(k) + ") gave " + std::to_string(start) + ", first fit is " + std::to_string(fit));
    if (start < 0) return true;
    if (start / slab_blocks_ != (start + k - 1) / slab_blocks_) return fail("a run crosses a slab");
    for (uint32_t j = 0; j < k; j++) {
      if (free_.erase(static_cast<int32_t>(start + j)) != 1) return fail("acquire_run took a block that was not free");
      state_[start + j] = 1;
    }
    held_.push_back({static_cast<int32_t>(start), k});
    return true;
  }

  bool largest_with_cache() {
    std::set<int32_t> with(free_);
    with.insert(cached_.begin(), cached_.end());
    int64_t got = a_->largest_run_with(cached_.data(), static_cast<uint32_t>(cached_.size()));
    if (got != largest(with)) return fail("largest_run_with gave " + std::to_string(got) + ", expected " + std::to_string(largest(with)));
    return true;
  }

  bool verify() {
    std::string why = a_->check(state_.data(), state_.size(), cached_.data(), static_cast<uint32_t>(cached_.size()));
    if (!why.empty()) return fail("check(): " + why);
    const double* c = a_->counters();
    if (c[slabpool::kFree] != static_cast<double>(free_.size())) return fail("free counter " + std::to_string(c[slabpool::kFree]));
    if (c[slabpool::kLargest] != static_cast<double>(largest(free_))) return fail("largest counter " + std::to_string(c[slabpool::kLargest]));
    return counters_match("");
  }

 private:
  // Memory the test holds views of, or that is still a slab and was viewed before.
  struct Memory {
    uint8_t* base = nullptr;
    size_t bytes = 0;
    int64_t slot = -1;  // -1 once the allocator gave it up
    uint32_t views = 0;
    bool decommitted = false;  // its pages went back to the OS
    std::vector<uint8_t> contents;  // what it must read
  };

  bool fail(std::string why) {
    problem_ = std::move(why);
    return false;
  }

  static bool mapped(const Memory& m) { return m.bytes >= slabpool::os::kSlabMapThreshold; }

  // n if [p, p + n) is all zeros, else the first other byte. By memcmp: a byte loop is one traced
  // comparison per byte in the fuzzer.
  static size_t first_nonzero(const uint8_t* p, size_t n) {
    static const uint8_t zeros[4096] = {};
    for (size_t at = 0; at < n; at += sizeof zeros) {
      if (std::memcmp(p + at, zeros, std::min(n - at, sizeof zeros)) == 0) continue;
      while (p[at] == 0) at++;
      return at;
    }
    return n;
  }

  bool reads_as_expected(const Memory& m, const std::string& when) {
    if (std::memcmp(m.base, m.contents.data(), m.bytes) == 0) return true;
    size_t i = 0;
    while (m.base[i] == m.contents[i]) i++;
    return fail("a view of " + std::to_string(m.bytes) + " bytes reads " + std::to_string(m.base[i]) + " at byte " + std::to_string(i) + " " +
                when + ", expected " + std::to_string(m.contents[i]));
  }

  // Writes a pattern (no zero byte in it) to [offset, offset + n) through the view, and reads it back.
  bool scribble(Memory& m, size_t offset, size_t n, const std::string& when) {
    tag_++;
    for (size_t i = 0; i < n; i++) m.contents[offset + i] = m.base[offset + i] = static_cast<uint8_t>(1 + (tag_ * 31 + i) % 255);
    return reads_as_expected(m, when);
  }

  // slab_memory_live_bytes() counts every slab of the allocator and every given-up viewed memory;
  // slab_memory_committed_bytes() the same less those decommitted (mapped, viewed, given up or
  // passed through decommit_all()).
  bool counters_match(const std::string& when) {
    size_t live = 0;
    for (uint32_t blocks : slots_) live += blocks * stride_;
    for (const auto& [memory, m] : memories_) {
      if (m.slot < 0) live += m.bytes;
    }
    size_t committed = live;
    for (const auto& [memory, m] : memories_) {
      if (m.decommitted) committed -= m.bytes;
    }
    size_t got_live = slabpool::slab_memory_live_bytes() - live_base_;
    size_t got_committed = slabpool::slab_memory_committed_bytes() - committed_base_;
    if (got_live == live && got_committed == committed) return true;
    return fail("slab memory counters " + when + (when.empty() ? "" : " ") + "say " + std::to_string(got_live) + " live, " +
                std::to_string(got_committed) + " committed bytes; expected " + std::to_string(live) + ", " + std::to_string(committed));
  }

  // Start of the lowest run of at least k blocks of free_ inside one slab, or -1.
  int64_t first_fit(uint32_t k) const {
    uint32_t run = 0;
    int32_t prev = -2, start = -1;
    const int32_t sb = static_cast<int32_t>(slab_blocks_);
    for (int32_t i : free_) {
      bool joins = i == prev + 1 && i / sb == prev / sb;
      run = joins ? run + 1 : 1;
      if (!joins) start = i;
      if (run >= k) return start;
      prev = i;
    }
    return -1;
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
  size_t alignment_;
  size_t stride_;
  std::unique_ptr<slabpool::Allocator> a_;
  std::vector<uint32_t> slots_;
  std::set<int32_t> free_;
  std::vector<std::pair<int32_t, uint32_t>> held_;  // start, length
  std::vector<int32_t> cached_;
  std::vector<uint8_t> state_;
  std::map<slabpool::SlabMemory*, Memory> memories_;
  std::vector<slabpool::SlabMemory*> views_;  // one reference each
  size_t live_base_;
  size_t committed_base_;
  uint32_t tag_ = 0;
  Reached reached_;
  std::string problem_;
};

}  // namespace slabpool_test

#endif  // SLABPOOL_TEST_SHADOW_H_
