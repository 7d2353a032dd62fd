#include "slab.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_set>

// The free structure, per slab of n blocks (the same as lib/fallback.ts):
//   used:  bitmap, bit i = 1 iff block i is allocated; bits n..32*ceil(n/32)-1 are set.
//   tags:  for every maximal run of free blocks [a, b]: tags[a] = tags[b] = b - a + 1.
// Whole allocator:
//   run_count_[len] = number of free runs of length len;  len_bits_ bit len = (run_count_[len] > 0)
//   counters_[kLargest] = max { len : run_count_[len] > 0 }, 0 if none
//   counters_[kFree] = sum of run lengths = sum of slab.free
//   cursor_ <= index of the lowest free block
// Acquisition takes the lowest free block, the start of its run, so a split shortens a run from
// the left: O(1). Release merges with both neighbours through the tags: O(1). Runs never cross
// slabs. The largest run is known at all times; finding the next length down after the largest
// run disappears scans len_bits_ a word at a time.

namespace slabpool {

struct SlabMemory {
  uint8_t* base;
  size_t bytes;
  bool mapped;  // from mmap (large slabs: zero pages arrive lazily), else posix_memalign
  std::atomic<uint32_t> refs;
};

namespace {

// Zeroed memory from this size on comes from mmap: page-aligned (>= every alignment we accept)
// and zeroed by the kernel page by page as it is first touched, so a large pool or its metadata
// costs nothing until used. Below it, a memset is cheaper than a system call; above it, a memset
// would fault in every page at construction.
constexpr size_t kMapThreshold = size_t{64} << 10;

std::atomic<size_t> live_bytes{0};

void* zeroed_alloc(size_t bytes) {
  if (bytes < kMapThreshold) return std::calloc(1, bytes);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void zeroed_free(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kMapThreshold) std::free(p);
  else munmap(p, bytes);
}

SlabMemory* allocate_slab_memory(size_t bytes, size_t alignment) {
  void* p = nullptr;
  bool mapped = bytes >= kMapThreshold;
  if (mapped) {
    p = zeroed_alloc(bytes);
    if (p == nullptr) return nullptr;
  } else {
    // Zeroed, so a fresh block never shows what the process freed before.
    if (posix_memalign(&p, alignment, bytes) != 0 || p == nullptr) return nullptr;
    std::memset(p, 0, bytes);
  }
  SlabMemory* m = new (std::nothrow) SlabMemory{static_cast<uint8_t*>(p), bytes, mapped, {1}};
  if (m == nullptr) {
    if (mapped) munmap(p, bytes);
    else std::free(p);
    return nullptr;
  }
  live_bytes.fetch_add(bytes, std::memory_order_relaxed);
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
    if (memory->mapped) munmap(memory->base, memory->bytes);
    else std::free(memory->base);
    delete memory;
  }
}

size_t slab_memory_live_bytes() { return live_bytes.load(std::memory_order_relaxed); }

struct Allocator::Slab {
  int64_t start;
  uint32_t blocks;
  uint32_t free;
  size_t bytes;
  uint8_t* base;
  SlabMemory* memory;  // nullptr when the memory is adopted
  size_t used_words;
  uint32_t* used;  // zeroed: all free
  uint32_t* tags;  // only run ends are ever read, and they are always written first

  ~Slab() {
    zeroed_free(used, used_words * sizeof(uint32_t));
    zeroed_free(tags, blocks * sizeof(uint32_t));
  }
  bool is_used(uint32_t a) const { return (used[a >> 5] >> (a & 31)) & 1u; }
};

namespace {

inline uint32_t ctz32(uint32_t word) { return static_cast<uint32_t>(__builtin_ctz(word)); }

inline bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

size_t RunCountBytes(uint32_t slab_blocks) { return (static_cast<size_t>(slab_blocks) + 1) * sizeof(uint32_t); }
size_t LenBitsBytes(uint32_t slab_blocks) { return ((slab_blocks >> 5) + 1) * sizeof(uint32_t); }

}  // namespace

// ---- construction ------------------------------------------------------------------------------

Allocator::Allocator(size_t stride, size_t alignment, uint32_t slab_blocks)
    : stride_(stride), alignment_(alignment), slab_blocks_(0) {
  if (!is_power_of_two(alignment) || alignment < 8 || alignment > 4096) return;
  if (stride == 0 || stride % alignment != 0) return;
  if (slab_blocks == 0 || slab_blocks > (1u << 30)) return;
  size_t bytes;
  if (__builtin_mul_overflow(stride, static_cast<size_t>(slab_blocks), &bytes)) return;
  run_count_ = static_cast<uint32_t*>(zeroed_alloc(RunCountBytes(slab_blocks)));
  len_bits_ = static_cast<uint32_t*>(zeroed_alloc(LenBitsBytes(slab_blocks)));
  if (run_count_ != nullptr && len_bits_ != nullptr) slab_blocks_ = slab_blocks;
  else pending_blocks_ = slab_blocks;
}

Allocator::~Allocator() {
  uint32_t sized = slab_blocks_ != 0 ? slab_blocks_ : pending_blocks_;
  zeroed_free(run_count_, RunCountBytes(sized));
  zeroed_free(len_bits_, LenBitsBytes(sized));
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
  if (__builtin_mul_overflow(stride_, static_cast<size_t>(blocks), &bytes)) return Result::kInvalid;
  if (memory != nullptr && reinterpret_cast<uintptr_t>(memory) % alignment_ != 0) return Result::kInvalid;

  Slab* s = new (std::nothrow) Slab();
  if (s == nullptr) return Result::kNoMemory;
  s->used_words = (blocks + 31) >> 5;
  s->blocks = blocks;
  s->used = static_cast<uint32_t*>(zeroed_alloc(s->used_words * sizeof(uint32_t)));
  s->tags = static_cast<uint32_t*>(zeroed_alloc(blocks * sizeof(uint32_t)));
  SlabMemory* owned = nullptr;
  if (memory == nullptr && s->used != nullptr && s->tags != nullptr) {
    owned = allocate_slab_memory(bytes, alignment_);
    if (owned != nullptr) memory = owned->base;
  }
  if (s->used == nullptr || s->tags == nullptr || memory == nullptr) {
    delete s;
    return Result::kNoMemory;
  }
  if (blocks & 31) s->used[s->used_words - 1] = ~((1u << (blocks & 31)) - 1);
  s->start = start;
  s->blocks = blocks;
  s->free = blocks;
  s->bytes = bytes;
  s->base = memory;
  s->memory = owned;
  if (slot == slabs_.size()) slabs_.push_back(nullptr);
  slabs_[slot] = s;
  set_run(*s, 0, blocks);
  counters_[kFree] += blocks;
  counters_[kCapacity] += blocks;
  counters_[kSlabs] += 1;
  counters_[kReservedBytes] += static_cast<double>(bytes);
  if (start < cursor_) cursor_ = start;
  return Result::kOk;
}

size_t Allocator::free_slab(uint32_t slot) {
  if (!has_slab(slot)) return 0;
  Slab* s = slabs_[slot];
  if (s->free != s->blocks) return 0;
  remove_run(s->blocks);
  counters_[kFree] -= s->blocks;
  counters_[kCapacity] -= s->blocks;
  counters_[kSlabs] -= 1;
  counters_[kReservedBytes] -= static_cast<double>(s->bytes);
  size_t bytes = s->bytes;
  if (s->memory != nullptr) slab_memory_release(s->memory);
  delete s;
  slabs_[slot] = nullptr;
  return bytes;
}

bool Allocator::has_slab(uint32_t slot) const { return slot < slabs_.size() && slabs_[slot] != nullptr; }
uint32_t Allocator::slab_blocks(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->blocks : 0; }
uint32_t Allocator::slab_free(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->free : 0; }
uint8_t* Allocator::slab_base(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->base : nullptr; }
SlabMemory* Allocator::slab_memory(uint32_t slot) const { return has_slab(slot) ? slabs_[slot]->memory : nullptr; }

// ---- blocks and runs ---------------------------------------------------------------------------

uint32_t Allocator::acquire(int32_t* out, uint32_t max) {
  uint32_t n = 0;
  int64_t p = max > 0 ? find_free(cursor_) : -1;
  while (p >= 0) {
    // p is the lowest free block, hence the start of its run.
    Slab& s = *slab_at(p);
    uint32_t a = static_cast<uint32_t>(p - s.start);
    uint32_t len = s.tags[a];
    uint32_t take = std::min(len, max - n);
    take_from_run(s, a, len, take);
    for (uint32_t j = 0; j < take; j++) out[n++] = static_cast<int32_t>(p + j);
    cursor_ = p + take;
    p = n < max ? find_free(p + take) : -1;
  }
  std::reverse(out, out + n);
  return n;
}

bool Allocator::release(const int32_t* list, uint32_t count) {
  for (uint32_t j = 0; j < count; j++) {
    if (!release_range(list[j], 1)) return false;
  }
  return true;
}

int64_t Allocator::acquire_run(uint32_t k) {
  if (k == 0 || counters_[kLargest] < k) return -1;
  bool lowest = true;
  int64_t p = find_free(cursor_);
  while (p >= 0) {
    // p follows an allocated block or a slab start, so it starts a run.
    Slab& s = *slab_at(p);
    uint32_t a = static_cast<uint32_t>(p - s.start);
    uint32_t len = s.tags[a];
    if (len >= k) {
      take_from_run(s, a, len, k);
      if (lowest) cursor_ = p + k;
      return p;
    }
    lowest = false;
    p = find_free(p + len);
  }
  return -1;
}

bool Allocator::release_run(int64_t start, uint32_t k) { return release_range(start, k); }

uint32_t Allocator::largest_run_with(const int32_t* cached, uint32_t count) {
  uint32_t best = static_cast<uint32_t>(counters_[kLargest]);
  if (count == 0) return best;
  sorted_.assign(cached, cached + count);
  std::sort(sorted_.begin(), sorted_.end());
  uint32_t i = 0;
  while (i < count) {
    const Slab* sp = slab_at(sorted_[i++]);
    if (sp == nullptr) continue;  // not a block: counts for nothing (check() reports it)
    const Slab& s = *sp;
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

void Allocator::coalesce() {
  int64_t lowest = find_free(0);
  cursor_ = lowest >= 0 ? lowest : static_cast<int64_t>(slabs_.size()) * slab_blocks_;
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
  std::vector<uint32_t> runs(static_cast<size_t>(slab_blocks_) + 1, 0);
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
      if (s->tags[a] != len || s->tags[b] != len) {
        return "free run [" + at(idx) + ", " + at(s->start + b) + "] is tagged " + at(s->tags[a]) + " and " + at(s->tags[b]) + ", expected " + at(len);
      }
      for (uint32_t j = a; j <= b; j++) {
        if (state[s->start + j] != 0) {
          return "block " + at(s->start + j) + " is free in the engine but the pool has it in state " + at(state[s->start + j]);
        }
      }
      runs[len]++;
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
  for (size_t len = 1; len <= slab_blocks_; len++) {
    if (run_count_[len] != runs[len]) return "engine counts " + at(run_count_[len]) + " free runs of " + at(len) + ", its slabs " + at(runs[len]);
    uint32_t bit = (len_bits_[len >> 5] >> (len & 31)) & 1u;
    if (bit != (runs[len] > 0 ? 1u : 0u)) return "run-length bit " + at(len) + " is " + at(bit) + " with " + at(runs[len]) + " runs";
  }
  if (lowest >= 0 && cursor_ > lowest) return "search cursor " + at(cursor_) + " is past the lowest free block " + at(lowest);
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

int64_t Allocator::find_free(int64_t from) const {
  size_t slot = static_cast<size_t>(from / slab_blocks_);
  uint32_t a = static_cast<uint32_t>(from - static_cast<int64_t>(slot) * slab_blocks_);
  for (; slot < slabs_.size(); slot++, a = 0) {
    const Slab* s = slabs_[slot];
    if (s == nullptr || s->free == 0 || a >= s->blocks) continue;
    size_t w = a >> 5;
    uint32_t word = ~s->used[w] & (~0u << (a & 31));
    while (word == 0 && ++w < s->used_words) word = ~s->used[w];
    if (word != 0) return s->start + static_cast<int64_t>((w << 5) + ctz32(word));
  }
  return -1;
}

void Allocator::take_from_run(Slab& s, uint32_t a, uint32_t len, uint32_t take) {
  if (len > take) set_run(s, a + take, len - take);
  remove_run(len);
  for (uint32_t j = a; j < a + take; j++) s.used[j >> 5] |= 1u << (j & 31);
  s.free -= take;
  counters_[kFree] -= take;
}

bool Allocator::release_range(int64_t index, uint32_t k) {
  Slab* sp = slab_at(index);
  if (sp == nullptr || k == 0) return false;
  Slab& s = *sp;
  uint32_t a = static_cast<uint32_t>(index - s.start);
  if (k > s.blocks - a) return false;
  for (uint32_t j = a; j < a + k; j++) {
    if (!s.is_used(j)) return false;
  }
  for (uint32_t j = a; j < a + k; j++) s.used[j >> 5] &= ~(1u << (j & 31));
  uint32_t left = (a > 0 && !s.is_used(a - 1)) ? s.tags[a - 1] : 0;
  uint32_t right = (a + k < s.blocks && !s.is_used(a + k)) ? s.tags[a + k] : 0;
  // Add the merged run before removing its parts, so the largest never has to search down here.
  set_run(s, a - left, left + k + right);
  if (left) remove_run(left);
  if (right) remove_run(right);
  s.free += k;
  counters_[kFree] += k;
  if (index < cursor_) cursor_ = index;
  return true;
}

void Allocator::set_run(Slab& s, uint32_t a, uint32_t len) {
  s.tags[a] = len;
  s.tags[a + len - 1] = len;
  if (run_count_[len]++ == 0) len_bits_[len >> 5] |= 1u << (len & 31);
  if (len > counters_[kLargest]) counters_[kLargest] = len;
}

void Allocator::remove_run(uint32_t len) {
  if (--run_count_[len] != 0) return;
  len_bits_[len >> 5] &= ~(1u << (len & 31));
  if (len == counters_[kLargest]) counters_[kLargest] = highest_length_below(len);
}

uint32_t Allocator::highest_length_below(uint32_t len) const {
  size_t w = len >> 5;
  uint32_t word = len_bits_[w] & ((1u << (len & 31)) - 1);
  while (word == 0 && w > 0) word = len_bits_[--w];
  return word == 0 ? 0 : static_cast<uint32_t>((w << 5) + 31 - __builtin_clz(word));
}

}  // namespace slabpool
