#include "slab.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <unordered_set>

#include "bits.h"
#include "os.h"

// The free structure and its invariants are in slab.h. Acquisition takes the lowest free block,
// the start of its run, so a split shortens a run from the left; release merges with both
// neighbours through the tags. Either changes the run starts of at most two bitmap words, whose
// run index leaves (run_index.h) are then recomputed: O(log words) each.

namespace slabpool {

#if defined(__GLIBCXX__) && defined(__ELF__)
// GCC 11+ headers make std::allocator call std::__throw_bad_array_new_length(), which libstdc++
// exports only from GLIBCXX_3.4.29 (GCC 11), newer than the libstdc++ that Node 20 itself needs
// (GLIBCXX_3.4.21): the one reason a prebuild would not load where Node runs. A hidden local
// definition, bound by its assembler name (namespace std declares it with default visibility, so
// it cannot be redeclared hidden), keeps that version out of the addon for every container in
// it, whatever the optimizer proves; rewriting the containers to avoid the call would hold only
// until the next container or compiler. Its behaviour is libstdc++'s in this addon, which is built
// without exceptions: the throw had no handler, so it ended the process. It would clash with a
// static libstdc++'s own definition; static linking raises the glibc floor anyway, so we don't.
[[noreturn]] __attribute__((visibility("hidden"))) void throw_bad_array_new_length() __asm__("_ZSt28__throw_bad_array_new_lengthv");
void throw_bad_array_new_length() {
  std::fputs("slabpool: an array allocation larger than the address space\n", stderr);
  std::abort();
}
#endif

struct SlabMemory {
  uint8_t* base;
  size_t bytes;
  os::SlabMapping mapping;  // how os::alloc_slab obtained it
  std::atomic<uint32_t> refs;
  std::atomic<bool> decommitted;  // its pages went back to the OS (at most once)
  std::atomic<uint32_t> pins;     // of refs, those held by pins: no decommit while > 0
  std::atomic<bool> retired;      // the allocator gave it up (slab_memory_retire)
};

namespace {

std::atomic<size_t> live_bytes{0};
std::atomic<size_t> committed_bytes{0};

void decommit(SlabMemory* memory) {
  if (memory->decommitted.load(std::memory_order_relaxed)) return;
  if (os::decommit_slab(memory->base, memory->bytes, memory->mapping.mapped)) {
    memory->decommitted.store(true, std::memory_order_relaxed);
    committed_bytes.fetch_sub(memory->bytes, std::memory_order_relaxed);
  }
}

SlabMemory* allocate_slab_memory(size_t bytes, size_t alignment, const os::SlabRequest& request) {
  os::SlabMapping mapping;
  void* p = os::alloc_slab(bytes, alignment, request, &mapping);
  if (p == nullptr) return nullptr;
  SlabMemory* m = new (std::nothrow) SlabMemory{static_cast<uint8_t*>(p), bytes, mapping, {1}, {false}, {0}, {false}};
  if (m == nullptr) {
    os::free_slab(p, bytes, mapping.mapped);
    return nullptr;
  }
  live_bytes.fetch_add(bytes, std::memory_order_relaxed);
  committed_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return m;
}

}  // namespace

SlabMemory* slab_memory_retain(SlabMemory* memory) {
  memory->refs.fetch_add(1, std::memory_order_relaxed);
  return memory;
}

void slab_memory_release(SlabMemory* memory) {
  if (memory->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    live_bytes.fetch_sub(memory->bytes, std::memory_order_relaxed);
    if (!memory->decommitted.load(std::memory_order_relaxed)) committed_bytes.fetch_sub(memory->bytes, std::memory_order_relaxed);
    os::free_slab(memory->base, memory->bytes, memory->mapping.mapped);
    delete memory;
  }
}

void slab_memory_retire(SlabMemory* memory) {
  // Decommitting while this reference is still held: the memory cannot be freed under the call.
  // A view that outlives it reads zeros; unmapping instead would make that read a crash. A pinned
  // slab is left as it is: native code is still reading it (the last unpin decommits).
  memory->retired.store(true, std::memory_order_release);
  if (memory->pins.load(std::memory_order_acquire) == 0 && memory->refs.load(std::memory_order_acquire) > 1) decommit(memory);
  slab_memory_release(memory);
}

SlabMemory* slab_memory_pin(SlabMemory* memory) {
  memory->pins.fetch_add(1, std::memory_order_relaxed);
  return slab_memory_retain(memory);
}

void slab_memory_unpin(SlabMemory* memory) {
  if (memory->pins.fetch_sub(1, std::memory_order_acq_rel) == 1 && memory->retired.load(std::memory_order_acquire) &&
      memory->refs.load(std::memory_order_acquire) > 1) {
    decommit(memory);
  }
  slab_memory_release(memory);
}

size_t slab_memory_live_bytes() { return live_bytes.load(std::memory_order_relaxed); }
size_t slab_memory_committed_bytes() { return committed_bytes.load(std::memory_order_relaxed); }

struct Allocator::Slab {
  int64_t start;
  size_t leaf_base;  // the run index leaf of bitmap word 0: slot * words_per_slab
  uint32_t blocks;
  uint32_t free;
  size_t bytes;
  uint8_t* base;
  SlabMemory* memory;  // nullptr when the memory is adopted
  size_t used_words;
  uint32_t* used;  // zeroed: all free
  uint32_t* tags;  // only run ends are ever read, and they are always written first

  ~Slab() {
    os::zeroed_free(used, used_words * sizeof(uint32_t));
    os::zeroed_free(tags, blocks * sizeof(uint32_t));
  }
  bool is_used(uint32_t a) const { return (used[a >> 5] >> (a & 31)) & 1u; }
  // Bits of word w at which a free run starts: free, after a used block or the slab's start.
  uint32_t run_starts(uint32_t w) const {
    uint32_t before = w == 0 ? 1u : used[w - 1] >> 31;
    return ~used[w] & ((used[w] << 1) | before);
  }
};

namespace {

inline bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// The bits of word j >> 5 that [j, end) covers: a word at a time over a range of bits.
inline uint32_t word_mask(uint32_t j, uint32_t end) {
  uint32_t n = std::min(32u - (j & 31), end - j);
  return n == 32 ? ~0u : ((1u << n) - 1) << (j & 31);
}

// Sets (or clears) bits [a, a + k) of a bitmap.
inline void set_bits(uint32_t* used, uint32_t a, uint32_t k, bool on) {
  for (uint32_t j = a, end = a + k; j < end; j = (j | 31) + 1) {
    if (on) used[j >> 5] |= word_mask(j, end);
    else used[j >> 5] &= ~word_mask(j, end);
  }
}

// True if every bit of [a, a + k) is set.
inline bool all_set(const uint32_t* used, uint32_t a, uint32_t k) {
  for (uint32_t j = a, end = a + k; j < end; j = (j | 31) + 1) {
    if ((~used[j >> 5] & word_mask(j, end)) != 0) return false;
  }
  return true;
}

// slab_blocks if the geometry is valid, else 0 (and the run index then gets no tables).
uint32_t ValidSlabBlocks(size_t stride, size_t alignment, uint32_t slab_blocks) {
  if (!is_power_of_two(alignment) || alignment < 8 || alignment > 4096) return 0;
  if (stride == 0 || stride % alignment != 0) return 0;
  if (slab_blocks == 0 || slab_blocks > (1u << 30)) return 0;
  size_t bytes;
  if (mul_overflow(stride, static_cast<size_t>(slab_blocks), &bytes) || bytes > kMaxSlabBytes) return 0;
  return slab_blocks;
}

}  // namespace

// ---- construction ------------------------------------------------------------------------------

Allocator::Allocator(size_t stride, size_t alignment, uint32_t slab_blocks, os::SlabRequest pages)
    : stride_(stride), alignment_(alignment), pages_(pages), slab_blocks_(ValidSlabBlocks(stride, alignment, slab_blocks)) {
  words_per_slab_ = (slab_blocks_ + 31) >> 5;
}

Allocator::~Allocator() {
  for (Slab* s : slabs_) {
    if (s == nullptr) continue;
    if (s->memory != nullptr) slab_memory_release(s->memory);
    delete s;
  }
}

// ---- slabs -------------------------------------------------------------------------------------

Allocator::Result Allocator::add_slab(uint32_t slot, uint32_t blocks, uint8_t* memory) {
  if (!valid() || blocks == 0 || blocks > slab_blocks_) return Result::kInvalid;
  if (slot > slabs_.size() || (slot < slabs_.size() && slabs_[slot] != nullptr)) return Result::kInvalid;
  int64_t start = static_cast<int64_t>(slot) * slab_blocks_;
  if (start + blocks > INT32_MAX) return Result::kInvalid;  // indices are int32 in JavaScript
  size_t bytes;
  if (mul_overflow(stride_, static_cast<size_t>(blocks), &bytes)) return Result::kInvalid;
  if (memory != nullptr && reinterpret_cast<uintptr_t>(memory) % alignment_ != 0) return Result::kInvalid;
  if (!index_.cover((static_cast<size_t>(slot) + 1) * words_per_slab_)) return Result::kNoMemory;

  Slab* s = new (std::nothrow) Slab();
  if (s == nullptr) return Result::kNoMemory;
  s->used_words = (blocks + 31) >> 5;
  s->blocks = blocks;
  s->used = static_cast<uint32_t*>(os::zeroed_alloc(s->used_words * sizeof(uint32_t)));
  s->tags = static_cast<uint32_t*>(os::zeroed_alloc(blocks * sizeof(uint32_t)));
  SlabMemory* owned = nullptr;
  if (memory == nullptr && s->used != nullptr && s->tags != nullptr) {
    owned = allocate_slab_memory(bytes, alignment_, pages_);
    if (owned != nullptr) memory = owned->base;
  }
  if (s->used == nullptr || s->tags == nullptr || memory == nullptr) {
    delete s;
    return Result::kNoMemory;
  }
  if (blocks & 31) s->used[s->used_words - 1] = ~((1u << (blocks & 31)) - 1);
  s->start = start;
  s->leaf_base = static_cast<size_t>(slot) * words_per_slab_;
  s->blocks = blocks;
  s->free = blocks;
  s->bytes = bytes;
  s->base = memory;
  s->memory = owned;
  if (slot == slabs_.size()) slabs_.push_back(nullptr);
  slabs_[slot] = s;
  set_run(*s, 0, blocks);
  grew(*s, 0, blocks);
  counters_[kFree] += blocks;
  counters_[kCapacity] += blocks;
  counters_[kSlabs] += 1;
  counters_[kReservedBytes] += static_cast<double>(bytes);
  if (start < cursor_) cursor_ = start;
  publish_lowest();
  return Result::kOk;
}

size_t Allocator::free_slab(uint32_t slot) {
  if (!has_slab(slot)) return 0;
  Slab* s = slabs_[slot];
  if (s->free != s->blocks) return 0;
  index_.set(static_cast<size_t>(slot) * words_per_slab_, 0);  // its one run, which starts in word 0
  counters_[kLargest] = index_.largest();
  counters_[kFree] -= s->blocks;
  counters_[kCapacity] -= s->blocks;
  counters_[kSlabs] -= 1;
  counters_[kReservedBytes] -= static_cast<double>(s->bytes);
  size_t bytes = s->bytes;
  if (s->memory != nullptr) slab_memory_retire(s->memory);
  delete s;
  slabs_[slot] = nullptr;
  publish_lowest();
  return bytes;
}

void Allocator::decommit_all() {
  for (Slab* s : slabs_) {
    if (s == nullptr || s->memory == nullptr) continue;
    s->memory->retired.store(true, std::memory_order_release);  // the last unpin decommits a pinned one
    if (s->memory->pins.load(std::memory_order_acquire) == 0 && s->memory->refs.load(std::memory_order_acquire) > 1) decommit(s->memory);
  }
}

bool Allocator::has_slab(uint32_t slot) const { return slot < slabs_.size() && slabs_[slot] != nullptr; }
uint32_t Allocator::slab_blocks(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->blocks : 0; }
uint32_t Allocator::slab_free(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->free : 0; }
uint8_t* Allocator::slab_base(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->base : nullptr; }
SlabMemory* Allocator::slab_memory(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->memory : nullptr; }
os::SlabMapping Allocator::slab_mapping(uint32_t slot) const {
  const SlabMemory* m = slab_memory(slot);
  return m != nullptr ? m->mapping : os::SlabMapping{};
}

// ---- blocks and runs ---------------------------------------------------------------------------

uint32_t Allocator::acquire(int32_t* out, uint32_t max) {
  uint32_t n = 0;
  int64_t p = max > 0 ? lowest_free(cursor_) : -1;
  while (p >= 0) {
    // p is the lowest free block, hence the start of its run.
    Slab& s = *slab_at(p);
    uint32_t a = static_cast<uint32_t>(p - s.start);
    uint32_t len = s.tags[a];
    uint32_t take = std::min(len, max - n);
    take_from_run(s, a, len, take);
    for (uint32_t j = 0; j < take; j++) out[n++] = static_cast<int32_t>(p + j);
    cursor_ = p + take;
    p = n < max ? lowest_free(p + take) : -1;
  }
  std::reverse(out, out + n);
  publish_lowest();
  return n;
}

bool Allocator::release(const int32_t* list, uint32_t count) {
  bool ok = true;
  for (uint32_t j = 0; j < count && ok; j++) ok = release_range(list[j], 1);
  publish_lowest();
  return ok;
}

int64_t Allocator::acquire_run(uint32_t k) {
  if (k == 0) return kRefused;
  if (index_.largest() < k) return -1;
  // The first leaf whose word starts a run of at least k; no run starts below the cursor's word.
  int64_t leaf = index_.first_at_least(k, leaf_of(cursor_));
  if (leaf < 0) return -1;
  size_t slot = static_cast<size_t>(leaf) / words_per_slab_;
  Slab* sp = slot < slabs_.size() ? slabs_[slot] : nullptr;
  uint32_t w = static_cast<uint32_t>(static_cast<size_t>(leaf) % words_per_slab_);
  if (sp == nullptr || w >= sp->used_words) return -1;  // a broken index (check() shows it)
  // The lowest run start in that word whose run is long enough.
  for (uint32_t starts = sp->run_starts(w); starts != 0; starts &= starts - 1) {
    uint32_t a = (w << 5) + ctz32(starts);
    if (sp->tags[a] < k) continue;
    int64_t p = sp->start + a;
    take_from_run(*sp, a, sp->tags[a], k);
    if (p == cursor_) cursor_ = p + k;
    publish_lowest();
    return p;
  }
  return -1;  // a broken index (check() shows it)
}

bool Allocator::release_run(int64_t start, uint32_t k) {
  bool ok = release_range(start, k);
  publish_lowest();
  return ok;
}

int64_t Allocator::largest_run_with(const int32_t* cached, uint32_t count) {
  uint32_t best = index_.largest();
  if (count == 0) return best;
  for (uint32_t j = 0; j < count; j++) {
    const Slab* s = slab_at(cached[j]);
    if (s == nullptr || !s->is_used(static_cast<uint32_t>(cached[j] - s->start))) return kRefused;
  }
  sorted_.assign(cached, cached + count);
  std::sort(sorted_.begin(), sorted_.end());
  uint32_t i = 0;
  while (i < count) {
    const Slab& s = *slab_at(sorted_[i++]);
    uint32_t a = static_cast<uint32_t>(sorted_[i - 1] - s.start);
    uint32_t run_start = (a > 0 && !s.is_used(a - 1)) ? a - s.tags[a - 1] : a;
    uint32_t end = a;
    // Extend right through free runs and cached blocks, alternately.
    for (;;) {
      uint32_t next = end + 1;
      if (next >= s.blocks) break;
      if (!s.is_used(next)) {
        end = next + s.tags[next] - 1;
      } else if (i < count && sorted_[i] == s.start + next) {
        end = next;
        i++;
      } else {
        break;
      }
    }
    best = std::max(best, end - run_start + 1);
  }
  return best;
}

// ---- check -------------------------------------------------------------------------------------

std::string Allocator::check(const uint8_t* state, size_t state_len, const int32_t* cached, uint32_t count) const {
  auto at = [](int64_t i) { return std::to_string(i); };
  if (!valid()) return "allocator was constructed with invalid arguments";
  std::unordered_set<int64_t> in_cache;
  for (uint32_t j = 0; j < count; j++) {
    int64_t idx = cached[j];
    const Slab* s = slab_at(idx);
    if (s == nullptr) return "cached block " + at(idx) + " does not exist";
    if (!in_cache.insert(idx).second) return "block " + at(idx) + " is cached twice";
    if (!s->is_used(static_cast<uint32_t>(idx - s->start))) return "cached block " + at(idx) + " is also free in the engine";
  }
  if (index_.leaf_count() < slabs_.size() * words_per_slab_) return "run index covers " + at(index_.leaf_count()) + " words of " + at(slabs_.size()) + " slots";
  std::vector<uint32_t> leaves(index_.leaf_count(), 0);
  double free = 0, capacity = 0, slabs = 0, reserved = 0;
  uint32_t largest = 0;
  int64_t lowest = -1;
  for (size_t slot = 0; slot < slabs_.size(); slot++) {
    const Slab* s = slabs_[slot];
    if (s == nullptr) continue;
    slabs += 1;
    capacity += s->blocks;
    reserved += static_cast<double>(s->bytes);
    if (s->start != static_cast<int64_t>(slot) * slab_blocks_) return "slab " + at(slot) + " starts at " + at(s->start);
    if (s->start + s->blocks > static_cast<int64_t>(state_len)) return "slab " + at(slot) + " lies past the pool's block states";
    if (s->bytes != s->blocks * stride_) return "slab " + at(slot) + " holds " + at(s->bytes) + " bytes, expected " + at(s->blocks) + " * " + at(stride_);
    if (reinterpret_cast<uintptr_t>(s->base) % alignment_ != 0) return "slab " + at(slot) + " is not aligned to " + at(alignment_);
    if (s->memory != nullptr && s->memory->mapping.huge == os::Huge::kAdvised &&
        reinterpret_cast<uintptr_t>(s->base) % s->memory->mapping.huge_page_bytes != 0) {
      return "slab " + at(slot) + " is advised for huge pages but not aligned to " + at(s->memory->mapping.huge_page_bytes);
    }
    uint32_t tail = s->blocks & 31;
    if (tail && (s->used[s->used_words - 1] | ((1u << tail) - 1)) != 0xffffffffu) return "slab " + at(slot) + " has a free bit past its last block";
    uint32_t slab_free = 0;
    for (uint32_t a = 0; a < s->blocks;) {
      int64_t idx = s->start + a;
      bool pool_free = state[idx] == 0 && in_cache.count(idx) == 0;
      if (s->is_used(a)) {
        if (pool_free) return "block " + at(idx) + " is allocated in the engine but neither in use nor cached by the pool";
        a++;
        continue;
      }
      uint32_t b = a;
      while (b + 1 < s->blocks && !s->is_used(b + 1)) b++;
      uint32_t len = b - a + 1;
      if (s->tags[a] != len || (b + 1 < s->blocks && s->tags[b] != len)) {
        return "free run [" + at(idx) + ", " + at(s->start + b) + "] is tagged " + at(s->tags[a]) + " and " + at(s->tags[b]) + ", expected " + at(len);
      }
      for (uint32_t j = a; j <= b; j++) {
        if (state[s->start + j] != 0) {
          return "block " + at(s->start + j) + " is free in the engine but the pool has it in state " + at(state[s->start + j]);
        }
      }
      size_t leaf = slot * words_per_slab_ + (a >> 5);
      leaves[leaf] = std::max(leaves[leaf], len);
      if (lowest < 0) lowest = idx;
      largest = std::max(largest, len);
      slab_free += len;
      a = b + 1;
    }
    if (slab_free != s->free) return "slab " + at(slot) + " counts " + at(s->free) + " free blocks, its bitmap " + at(slab_free);
    free += slab_free;
  }
  auto num = [](double d) { return std::to_string(static_cast<int64_t>(d)); };
  if (free != counters_[kFree]) return "engine counts " + num(counters_[kFree]) + " free blocks, its slabs " + num(free);
  if (capacity != counters_[kCapacity]) return "engine counts capacity " + num(counters_[kCapacity]) + ", its slabs " + num(capacity);
  if (slabs != counters_[kSlabs]) return "engine counts " + num(counters_[kSlabs]) + " slabs, found " + num(slabs);
  if (reserved != counters_[kReservedBytes]) return "engine counts " + num(counters_[kReservedBytes]) + " reserved bytes, its slabs " + num(reserved);
  if (largest != counters_[kLargest]) return "engine records largest free run " + num(counters_[kLargest]) + ", its slabs " + at(largest);
  std::string index_problem = index_.check(leaves.data());
  if (!index_problem.empty()) return index_problem;
  if (lowest >= 0 && cursor_ > lowest) return "search cursor " + at(cursor_) + " is past the lowest free block " + at(lowest);
  if (counters_[kLowest] != (lowest >= 0 ? static_cast<double>(lowest) : std::numeric_limits<double>::infinity())) {
    std::string recorded = std::isinf(counters_[kLowest]) ? std::string("none") : num(counters_[kLowest]);
    return "engine records lowest free block " + recorded + ", its slabs " + (lowest >= 0 ? at(lowest) : std::string("none"));
  }
  return std::string();
}

// ---- internals ---------------------------------------------------------------------------------

Allocator::Slab* Allocator::slab_at(int64_t index) const {
  if (index < 0 || slab_blocks_ == 0) return nullptr;
  uint64_t slot = static_cast<uint64_t>(index) / slab_blocks_;
  if (slot >= slabs_.size()) return nullptr;
  Slab* s = slabs_[slot];
  if (s == nullptr || index - s->start >= s->blocks) return nullptr;
  return s;
}

size_t Allocator::leaf_of(int64_t index) const {
  size_t slot = static_cast<size_t>(index / slab_blocks_);
  return slot * words_per_slab_ + (static_cast<size_t>(index - static_cast<int64_t>(slot) * slab_blocks_) >> 5);
}

// The rest of from's bitmap word, else the first word after it in which a run starts (a free
// block there cannot continue a run from further left, since none lies below from): O(log W).
int64_t Allocator::lowest_free(int64_t from) const {
  if (slab_blocks_ == 0) return -1;  // an invalid allocator has no blocks
  size_t slot = static_cast<size_t>(from / slab_blocks_);
  uint32_t a = static_cast<uint32_t>(from - static_cast<int64_t>(slot) * slab_blocks_);
  if (slot < slabs_.size() && slabs_[slot] != nullptr && a < slabs_[slot]->blocks) {
    const Slab& s = *slabs_[slot];
    uint32_t word = ~s.used[a >> 5] & (~0u << (a & 31));
    if (word != 0) return s.start + static_cast<int64_t>(((a >> 5) << 5) + ctz32(word));
  }
  int64_t leaf = index_.first_at_least(1, slot * words_per_slab_ + (a >> 5) + 1);
  if (leaf < 0) return -1;
  size_t leaf_slot = static_cast<size_t>(leaf) / words_per_slab_;
  const Slab* s = leaf_slot < slabs_.size() ? slabs_[leaf_slot] : nullptr;
  uint32_t w = static_cast<uint32_t>(static_cast<size_t>(leaf) % words_per_slab_);
  if (s == nullptr || w >= s->used_words || ~s->used[w] == 0) return -1;  // a broken index (check() shows it)
  return s->start + static_cast<int64_t>((w << 5) + ctz32(~s->used[w]));
}

void Allocator::publish_lowest() {
  int64_t lowest = lowest_free(cursor_);
  if (lowest >= 0) cursor_ = lowest;
  counters_[kLowest] = lowest >= 0 ? static_cast<double>(lowest) : std::numeric_limits<double>::infinity();
}

void Allocator::take_from_run(Slab& s, uint32_t a, uint32_t len, uint32_t take) {
  set_bits(s.used, a, take, true);
  if (len > take) set_run(s, a + take, len - take);
  shrank(s, a, len);
  if (len > take) grew(s, a + take, len - take);
  s.free -= take;
  counters_[kFree] -= take;
}

bool Allocator::release_range(int64_t index, uint32_t k) {
  Slab* sp = slab_at(index);
  if (sp == nullptr || k == 0) return false;
  Slab& s = *sp;
  uint32_t a = static_cast<uint32_t>(index - s.start);
  if (k > s.blocks - a) return false;
  if (!all_set(s.used, a, k)) return false;
  set_bits(s.used, a, k, false);
  uint32_t left = (a > 0 && !s.is_used(a - 1)) ? s.tags[a - 1] : 0;
  uint32_t right = (a + k < s.blocks && !s.is_used(a + k)) ? s.tags[a + k] : 0;
  // The merged run starts at a - left; the right neighbour's start (if any) is gone.
  set_run(s, a - left, left + k + right);
  if (right) shrank(s, a + k, right);
  grew(s, a - left, left + k + right);
  s.free += k;
  counters_[kFree] += k;
  if (index < cursor_) cursor_ = index;
  return true;
}

void Allocator::set_run(Slab& s, uint32_t a, uint32_t len) {
  s.tags[a] = len;
  if (a + len < s.blocks) s.tags[a + len - 1] = len;  // the last block's tag is never read (slab.h)
}

void Allocator::grew(const Slab& s, uint32_t a, uint32_t length) {
  size_t leaf = s.leaf_base + (a >> 5);
  if (length > index_.get(leaf)) index_.set(leaf, length);
  counters_[kLargest] = index_.largest();
}

void Allocator::shrank(const Slab& s, uint32_t a, uint32_t length) {
  size_t leaf = s.leaf_base + (a >> 5);
  if (length >= index_.get(leaf)) touch(s, a >> 5);
}

void Allocator::touch(const Slab& s, uint32_t w) {
  uint32_t longest = 0;
  for (uint32_t starts = s.run_starts(w); starts != 0; starts &= starts - 1) longest = std::max(longest, s.tags[(w << 5) + ctz32(starts)]);
  index_.set(s.leaf_base + w, longest);
  counters_[kLargest] = index_.largest();
}

}  // namespace slabpool
