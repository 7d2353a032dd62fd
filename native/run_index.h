// The free-run index: what the allocator knows about its free runs beyond the bitmap, so that it
// can tell the largest run in O(1) and find a run for acquire_run(k). Its own unit (lib/run-index.ts
// is the same in TypeScript) so that a better index (TLSF, or a segment tree of per-range largest
// runs) replaces this one unit per language. The allocator tells it of every maximal free run that
// appears or disappears, by position; an index may read the free structure through FreeLayout.
//
// This index: a histogram of run lengths and a bitmap over lengths. add/remove O(1); largest()
// O(1); when the largest run goes, the next length down is found a bitmap word at a time
// (O(max_length / 32) worst case). first_fit walks the runs from the lowest free block, one run at
// a time: O(runs below the first fit). Not thread-safe, like the Allocator that owns it.
#ifndef SLABPOOL_RUN_INDEX_H_
#define SLABPOOL_RUN_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

namespace slabpool {

// How an index may read the free structure it summarises (implemented by Allocator).
class FreeLayout {
 public:
  virtual int64_t next_free(int64_t from) const = 0;    // lowest free block >= from, or -1
  virtual uint32_t run_length(int64_t start) const = 0;  // length of the free run starting at start

 protected:
  ~FreeLayout() = default;
};

// A maximal run of free blocks [start, start + length).
struct Run {
  int64_t start;
  uint32_t length;
};

class RunIndex {
 public:
  // max_length: the longest run there can be (blocks per slab), >= 1. Tables from os::zeroed_alloc.
  RunIndex(uint32_t max_length, const FreeLayout& layout);
  ~RunIndex();
  RunIndex(const RunIndex&) = delete;
  RunIndex& operator=(const RunIndex&) = delete;
  bool valid() const;  // false if max_length was 0 or its tables could not be allocated

  // A length outside 1..max_length, removing a length no run has, or any call on an invalid
  // index changes nothing (check() then shows the disagreement).
  void add(int64_t start, uint32_t length);     // a free run [start, start+length) now exists
  void remove(int64_t start, uint32_t length);  // that run no longer exists (merged, split or taken)
  uint32_t largest() const { return largest_; }  // longest run present, 0 if none: O(1)

  // First fit: start of the lowest run of >= k blocks at or after `from` (the caller guarantees no
  // free block lies below `from`), -1 if none: -1 at once if largest() < k, else a walk of the runs
  // from next_free(from) via run_length.
  int64_t first_fit(uint32_t k, int64_t from) const;

  // Empty if the index matches the runs actually present (every maximal free run, any order),
  // else the first disagreement.
  std::string check(const std::vector<Run>& runs) const;
  void clear();  // forgets every run

 private:
  uint32_t highest_length_below(uint32_t length) const;

  // Invariants: count_[len] = number of runs of length len; bit len of length_bits_ = (count_[len] > 0);
  // largest_ = max { len : count_[len] > 0 }, 0 if none.
  uint32_t max_length_;
  const FreeLayout& layout_;
  uint32_t* count_ = nullptr;        // [max_length + 1]
  uint32_t* length_bits_ = nullptr;  // [max_length / 32 + 1]
  uint32_t largest_ = 0;
};

}  // namespace slabpool

#endif  // SLABPOOL_RUN_INDEX_H_
