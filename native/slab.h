// slabpool's allocator core: slabs of fixed-size aligned blocks, a free structure with immediate
// coalescing, exact counters and a full check(). No N-API here: binding.cc is the only bridge,
// and test/native/slab_test.cc exercises this file alone. lib/fallback.ts is the same algorithm
// in TypeScript; the two must stay in step (the differential test compares them).
#ifndef SLABPOOL_SLAB_H_
#define SLABPOOL_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace slabpool {

// Block memory of one slab, reference-counted: the allocator holds one reference and every
// JavaScript ArrayBuffer over it another, so memory outlives a pool whose blocks are still held.
struct SlabMemory;
SlabMemory* slab_memory_retain(SlabMemory* memory);
void slab_memory_release(SlabMemory* memory);  // frees the memory with the last reference
size_t slab_memory_live_bytes();                 // bytes of slab memory not yet freed, process-wide

// Figures kept exact at every call (indices into Allocator::counters()).
enum Counter { kFree, kLargest, kCapacity, kSlabs, kReservedBytes, kCounterCount };

class Allocator {
 public:
  // stride: bytes per block, a multiple of alignment; alignment: a power of two, 8..4096.
  // Invalid arguments (or no memory for the run-length table) leave valid() false, and every
  // later call is refused.
  Allocator(size_t stride, size_t alignment, uint32_t slab_blocks);
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;
  bool valid() const { return slab_blocks_ != 0; }

  // ---- slabs (slot s holds global indices [s * slab_blocks, s * slab_blocks + blocks)) ----
  enum class Result { kOk, kInvalid, kNoMemory };
  // Allocates block memory at the alignment, or adopts `memory` (already aligned, not owned).
  Result add_slab(uint32_t slot, uint32_t blocks, uint8_t* memory = nullptr);
  // Drops a wholly free slab; returns its bytes, 0 if refused.
  size_t free_slab(uint32_t slot);
  bool has_slab(uint32_t slot) const;
  uint32_t slab_blocks(uint32_t slot) const;  // 0 for an empty slot
  uint32_t slab_free(uint32_t slot) const;
  uint8_t* slab_base(uint32_t slot) const;
  SlabMemory* slab_memory(uint32_t slot) const;  // nullptr for adopted memory
  size_t slot_count() const { return slabs_.size(); }

  // ---- blocks and runs ----
  // Up to max lowest free blocks; writes out[0..n) highest first; returns n.
  uint32_t acquire(int32_t* out, uint32_t max);
  // Frees list[0..count) in order; stops at the first index that is not an allocated block.
  bool release(const int32_t* list, uint32_t count);
  // First fit: start of the lowest free run of >= k blocks, taking its first k; -1 if none.
  int64_t acquire_run(uint32_t k);
  bool release_run(int64_t start, uint32_t k);
  // Largest free run if the blocks cached[0..count) (allocated here) were free as well.
  uint32_t largest_run_with(const int32_t* cached, uint32_t count);
  void coalesce();  // the structure is always address-ordered: re-anchors the search cursor

  const double* counters() const { return counters_; }
  // Empty when every invariant holds, else the first broken one. state[i] == 0 means the pool
  // considers block i free: it must be free here unless it is in cached[0..count).
  std::string check(const uint8_t* state, size_t state_len, const int32_t* cached, uint32_t count) const;

 private:
  struct Slab;
  Slab* slab_at(int64_t index) const;
  int64_t find_free(int64_t from) const;
  void take_from_run(Slab& s, uint32_t a, uint32_t len, uint32_t take);
  bool release_range(int64_t index, uint32_t k);
  void set_run(Slab& s, uint32_t a, uint32_t len);
  void remove_run(uint32_t len);
  uint32_t highest_length_below(uint32_t len) const;

  size_t stride_;
  size_t alignment_;
  uint32_t slab_blocks_;
  std::vector<Slab*> slabs_;
  uint32_t* run_count_ = nullptr;  // [slab_blocks + 1], calloc: run_count_[len] = free runs of length len
  uint32_t* len_bits_ = nullptr;   // [slab_blocks / 32 + 1], calloc: bit len set iff run_count_[len] > 0
  std::vector<int32_t> sorted_;      // scratch for largest_run_with
  uint32_t pending_blocks_ = 0;      // slab_blocks asked for when the tables could not be had
  int64_t cursor_ = 0;               // <= the lowest free index
  double counters_[kCounterCount] = {};
};

}  // namespace slabpool

#endif  // SLABPOOL_SLAB_H_
