// slabpool's allocator core: slabs of fixed-size aligned blocks, a free structure with immediate
// coalescing, exact counters and a full check(). Algorithm only: memory comes from os.h, free runs
// are summarised by run_index.h, and binding.cc is the only bridge to N-API. lib/fallback.ts is
// the same algorithm in TypeScript (the differential test holds the two together).
//
// Threads: an Allocator is not thread-safe; one thread owns it. The only state shared across
// threads is SlabMemory's atomic reference count and the process-wide live-bytes counter.
//
// Invariants. Per slab of n blocks: used bit i = 1 iff block i is allocated (bits n..32*ceil(n/32)-1
// set); for every maximal free run [a, b], tags[a] = b - a + 1, and tags[b] too unless b is the
// slab's last block (a right-end tag is read only through the block after it: a new slab, split
// from the left, never touches the far end of its tags); runs never cross slabs.
// Run index leaf slot * words_per_slab + w = the longest run starting in word w of that slot's
// slab (0 if none or no slab). counters[kFree] = sum of run lengths = sum of slab free counts;
// counters[kLargest] = index.largest() = the longest run; cursor <= the lowest free block;
// counters[kLowest] = the lowest free block (infinity if none), the cursor there, after every call
// that changes the free set (publish_lowest).
#ifndef SLABPOOL_SLAB_H_
#define SLABPOOL_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "os.h"
#include "run_index.h"

namespace slabpool {

// Block memory of one slab, reference-counted: the allocator holds one reference and every
// JavaScript ArrayBuffer over it another, so memory outlives a pool whose blocks are still held.
// The address range is freed with the last reference and never before: while any ArrayBuffer can
// reach it, no other slab (or anything else) can be given the same memory.
struct SlabMemory;
SlabMemory* slab_memory_retain(SlabMemory* memory);
void slab_memory_release(SlabMemory* memory);  // frees the memory with the last reference
// The allocator's release of a slab it gives up (free_slab, decommit_all): if another reference
// is left, the memory is decommitted first (os.h decommit_slab: it reads zeros from now on, and a
// mapped slab's pages go back to the OS at once); then as slab_memory_release.
void slab_memory_retire(SlabMemory* memory);
// A pin (lib/pin.ts): a reference that also keeps the memory as it is, for native code reading it
// outside any JavaScript call. While a slab has pins, slab_memory_retire and decommit_all leave
// its memory committed; the last unpin of a retired slab decommits it if references remain, then
// drops its own reference as slab_memory_release does.
SlabMemory* slab_memory_pin(SlabMemory* memory);
void slab_memory_unpin(SlabMemory* memory);
size_t slab_memory_live_bytes();       // bytes of slab memory not yet freed, process-wide
size_t slab_memory_committed_bytes();  // of those, bytes not given back to the OS by a decommit

// Figures kept exact at every call (indices into Allocator::counters()).
// kLowest: the lowest free block's index, infinity if none (where first fit places the next block).
enum Counter { kFree, kLargest, kCapacity, kSlabs, kReservedBytes, kLowest, kCounterCount };

// One slab is one ArrayBuffer, which Node 20 caps at 4 GiB (lib/validate.ts MAX_SLAB_BYTES).
constexpr uint64_t kMaxSlabBytes = uint64_t{1} << 32;

// Returned by acquire_run and largest_run_with when the arguments break the contract.
constexpr int64_t kRefused = -2;

class Allocator final {
 public:
  // stride: bytes per block, a multiple of alignment; alignment: a power of two, 8..4096;
  // slab_blocks: 1..2^30; stride * slab_blocks <= kMaxSlabBytes. Invalid arguments (or no memory
  // for the run index) leave valid() false, and every later call is refused. `pages` goes to
  // os::alloc_slab for every slab this allocator allocates (huge pages, pre-faulting).
  Allocator(size_t stride, size_t alignment, uint32_t slab_blocks, os::SlabRequest pages = {});
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;
  bool valid() const { return slab_blocks_ != 0; }

  // ---- slabs (slot s holds global indices [s * slab_blocks, s * slab_blocks + blocks)) ----
  enum class Result { kOk, kInvalid, kNoMemory };
  // Allocates block memory at the alignment, or adopts `memory` (already aligned, not owned).
  Result add_slab(uint32_t slot, uint32_t blocks, uint8_t* memory = nullptr);
  size_t free_slab(uint32_t slot);  // retires a wholly free slab; returns its bytes, 0 if refused
  // Decommits the memory of every slab still held (slab_memory_retire's first step), blocks in
  // use included: for a pool being destroyed. The destructor alone only drops the allocator's
  // references (a garbage-collected pool's blocks stay valid for whoever still holds them).
  void decommit_all();
  bool has_slab(uint32_t slot) const;
  uint32_t slab_blocks(uint32_t slot) const;  // 0 for an empty slot
  uint32_t slab_free(uint32_t slot) const;
  uint8_t* slab_base(uint32_t slot) const;
  SlabMemory* slab_memory(uint32_t slot) const;  // nullptr for adopted memory
  os::SlabMapping slab_mapping(uint32_t slot) const;  // how os::alloc_slab made it; all defaults for adopted memory
  size_t slot_count() const { return slabs_.size(); }

  // ---- blocks and runs ----
  // W below is the number of bitmap words of all slots (about 15 = log W for a million blocks).
  // Up to max lowest free blocks, to out[0..n) highest first; returns n.
  // O(taken + runs taken from * log W).
  uint32_t acquire(int32_t* out, uint32_t max);
  // Frees list[0..count) in order, merging at once: O(count log W). False at the first that is not allocated.
  bool release(const int32_t* list, uint32_t count);
  // First fit: start of the lowest free run of >= k blocks, taking its first k; -1 if none;
  // kRefused for k == 0. O(1) when the largest run is shorter, else O(k + log W) (run_index.h).
  int64_t acquire_run(uint32_t k);
  bool release_run(int64_t start, uint32_t k);  // O(k + log W)
  // Largest free run if the blocks cached[0..count), allocated here, were free as well; kRefused
  // if one is not a block or is free here. O(c log c + runs touched).
  int64_t largest_run_with(const int32_t* cached, uint32_t count);

  const double* counters() const { return counters_; }
  // Empty when every invariant holds, else the first broken one. state[i] == 0 means the pool
  // considers block i free: it must be free here unless it is in cached[0..count).
  std::string check(const uint8_t* state, size_t state_len, const int32_t* cached, uint32_t count) const;

 private:
  struct Slab;
  int64_t lowest_free(int64_t from) const;  // lowest free block >= from, where none lies below from
  void publish_lowest();                    // counters[kLowest] and the cursor to the lowest free block: O(log W)
  size_t leaf_of(int64_t index) const;      // the run index leaf of the word holding global block index
  Slab* slab_at(int64_t index) const;
  void take_from_run(Slab& s, uint32_t a, uint32_t len, uint32_t take);
  bool release_range(int64_t index, uint32_t k);
  void set_run(Slab& s, uint32_t a, uint32_t len);  // tags the free run [a, a+len)
  // The index leaf of the word holding a run start: grew (a run now starts at a with `length`,
  // new or longer), shrank (the run of `length` that started at a no longer does: the leaf is
  // recomputed only if that run was the word's longest), touch (recomputes word w's leaf from the
  // bitmap and tags, which must be final).
  void grew(const Slab& s, uint32_t a, uint32_t length);
  void shrank(const Slab& s, uint32_t a, uint32_t length);
  void touch(const Slab& s, uint32_t w);

  size_t stride_;
  size_t alignment_;
  os::SlabRequest pages_;
  uint32_t slab_blocks_;  // 0 when invalid
  uint32_t words_per_slab_;
  std::vector<Slab*> slabs_;
  RunIndex index_;
  std::vector<int32_t> sorted_;  // scratch for largest_run_with
  int64_t cursor_ = 0;
  double counters_[kCounterCount] = {0, 0, 0, 0, 0, std::numeric_limits<double>::infinity()};
};

}  // namespace slabpool

#endif  // SLABPOOL_SLAB_H_
