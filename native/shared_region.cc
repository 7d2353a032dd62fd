#include "shared_region.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <random>

#include "os.h"

// The registry is two levels of singly linked lists (regions, each with its references), whose
// nodes are allocated per region and per reference: a process holds a few regions per pool and
// a few references per thread, so a scan costs less than a hash table would, and nothing is left
// allocated once every region is freed. The globals have trivial destructors (nothing runs at
// exit that a late finalizer on another thread could find destroyed).

namespace slabpool::shared_region {

namespace {

struct Ref {
  uint64_t id;
  uint64_t owner;
  Ref* next;
};

struct Region {
  uint64_t token;
  uint8_t* base;
  size_t bytes;
  size_t alignment;
  bool mapped;  // how os::alloc_slab obtained it, for os::free_slab
  uint32_t count;  // references listed in refs
  Ref* refs;
  Region* next;
};

std::mutex mutex;
// Guarded by mutex.
Region* regions = nullptr;
uint64_t next_token_counter = 1;
uint64_t next_ref_id = 1;
uint64_t references = 0;
uint64_t keys[4];
bool keyed = false;
// Added to under the mutex, taken from after a free, outside it.
std::atomic<uint64_t> created{0};
std::atomic<uint64_t> freed{0};
std::atomic<uint64_t> live_bytes{0};

// Tokens: a 4-round Feistel network over the counter's two 32-bit halves, keyed per process.
// A permutation of 64-bit numbers, so distinct counters give distinct tokens, and invertible, so
// a token not in the registry can be told ended (its counter was given) from unknown.
uint32_t round_function(uint32_t half, uint64_t key) {
  uint64_t z = half ^ key;  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);
}

uint64_t permute(uint64_t counter) {
  uint32_t l = static_cast<uint32_t>(counter >> 32), r = static_cast<uint32_t>(counter);
  for (uint64_t key : keys) {
    const uint32_t next = l ^ round_function(r, key);
    l = r;
    r = next;
  }
  return uint64_t{l} << 32 | r;
}

uint64_t unpermute(uint64_t token) {
  uint32_t l = static_cast<uint32_t>(token >> 32), r = static_cast<uint32_t>(token);
  for (int i = 3; i >= 0; i--) {
    const uint32_t previous = r ^ round_function(l, keys[i]);
    r = l;
    l = previous;
  }
  return uint64_t{l} << 32 | r;
}

void make_keys() {  // under mutex, once
  std::random_device device;
  const uint64_t clock = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (uint64_t& key : keys) key = uint64_t{device()} << 32 | device();
  // Where random_device is weak, the time and the address layout (ASLR) still vary per process.
  keys[0] ^= clock;
  keys[1] ^= reinterpret_cast<uintptr_t>(&keys);
  keyed = true;
}

// Under mutex: ended (given, then freed) or unknown (never given).
Status ended_or_unknown_token(uint64_t token) {
  if (token == 0 || !keyed) return Status::kUnknown;
  const uint64_t counter = unpermute(token);
  return counter != 0 && counter < next_token_counter ? Status::kEnded : Status::kUnknown;
}

Region* find(uint64_t token) {  // under mutex
  for (Region* r = regions; r != nullptr; r = r->next) {
    if (r->token == token) return r;
  }
  return nullptr;
}

// Under mutex: unlinks reference `id` and returns it (nullptr if none); if it was its region's
// last, unlinks the region too, into *dead: from then on, acquire() finds the token ended.
Ref* unlink_ref(uint64_t id, Region** dead) {
  for (Region** r = &regions; *r != nullptr; r = &(*r)->next) {
    for (Ref** f = &(*r)->refs; *f != nullptr; f = &(*f)->next) {
      if ((*f)->id != id) continue;
      Ref* ref = *f;
      *f = ref->next;
      references--;
      if (--(*r)->count == 0) {
        *dead = *r;
        *r = (*dead)->next;
      }
      return ref;
    }
  }
  return nullptr;
}

Reference reference_to(const Region& r, uint64_t id) { return Reference{r.token, id, r.base, r.bytes}; }

// Outside the mutex: the region is unlinked, and no one else can reach it.
void free_region(Region* r) {
  os::free_slab(r->base, r->bytes, r->mapped);
  live_bytes.fetch_sub(r->bytes, std::memory_order_relaxed);
  freed.fetch_add(1, std::memory_order_release);  // after its creation's count (through the mutex): totals() reads freed first
  delete r;
}

}  // namespace

const char* status_name(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kFreed: return "freed";
    case Status::kInvalid: return "invalid argument";
    case Status::kNoMemory: return "no memory";
    case Status::kUnknown: return "unknown";
    case Status::kEnded: return "ended";
    case Status::kSizeMismatch: return "size mismatch";
  }
  return "?";
}

Status create(size_t bytes, size_t alignment, uint64_t owner, Reference* out) {
  if (out == nullptr || bytes == 0 || bytes > kMaxRegionBytes) return Status::kInvalid;
  if (alignment < 8 || alignment > 4096 || (alignment & (alignment - 1)) != 0) return Status::kInvalid;
  os::SlabMapping mapping;
  void* p = os::alloc_slab(bytes, alignment, os::SlabRequest{}, &mapping);
  if (p == nullptr) return Status::kNoMemory;
  Region* r = new (std::nothrow) Region{0, static_cast<uint8_t*>(p), bytes, alignment, mapping.mapped, 1, nullptr, nullptr};
  Ref* ref = new (std::nothrow) Ref{0, owner, nullptr};
  if (r == nullptr || ref == nullptr) {
    delete r;
    delete ref;
    os::free_slab(p, bytes, mapping.mapped);
    return Status::kNoMemory;
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (!keyed) make_keys();
  do r->token = permute(next_token_counter++);  // the one counter whose token is 0 is skipped
  while (r->token == 0);
  ref->id = next_ref_id++;
  r->refs = ref;
  r->next = regions;
  regions = r;
  references++;
  live_bytes.fetch_add(bytes, std::memory_order_relaxed);
  created.fetch_add(1, std::memory_order_relaxed);
  *out = reference_to(*r, ref->id);
  return Status::kOk;
}

Status acquire(uint64_t token, size_t expected_bytes, uint64_t owner, Reference* out) {
  if (out == nullptr) return Status::kInvalid;
  Ref* ref = new (std::nothrow) Ref{0, owner, nullptr};
  if (ref == nullptr) return Status::kNoMemory;
  std::lock_guard<std::mutex> lock(mutex);
  Region* r = token == 0 ? nullptr : find(token);
  Status status = r == nullptr ? ended_or_unknown_token(token) : r->bytes != expected_bytes ? Status::kSizeMismatch : Status::kOk;
  if (status != Status::kOk) {
    delete ref;
    return status;
  }
  ref->id = next_ref_id++;
  ref->next = r->refs;
  r->refs = ref;
  r->count++;
  references++;
  *out = reference_to(*r, ref->id);
  return Status::kOk;
}

Status release(uint64_t id) {
  Ref* gone;
  Region* dead = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    gone = unlink_ref(id, &dead);
    if (gone == nullptr) return id != 0 && id < next_ref_id ? Status::kEnded : Status::kUnknown;
  }
  delete gone;
  if (dead == nullptr) return Status::kOk;
  free_region(dead);
  return Status::kFreed;
}

Dropped release_owner(uint64_t owner) {
  Ref* gone = nullptr;     // linked through next once unlinked
  Region* dead = nullptr;  // likewise
  Dropped dropped{0, 0};
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (Region** r = &regions; *r != nullptr;) {
      for (Ref** f = &(*r)->refs; *f != nullptr;) {
        if ((*f)->owner != owner) {
          f = &(*f)->next;
          continue;
        }
        Ref* ref = *f;
        *f = ref->next;
        ref->next = gone;
        gone = ref;
        (*r)->count--;
        dropped.references++;
      }
      if ((*r)->count == 0) {
        Region* region = *r;
        *r = region->next;
        region->next = dead;
        dead = region;
        dropped.regions++;
      } else {
        r = &(*r)->next;
      }
    }
    references -= dropped.references;
  }
  while (gone != nullptr) {
    Ref* next = gone->next;
    delete gone;
    gone = next;
  }
  while (dead != nullptr) {
    Region* next = dead->next;
    free_region(dead);
    dead = next;
  }
  return dropped;
}

Status query(uint64_t token, Info* out) {
  if (out == nullptr) return Status::kInvalid;
  std::lock_guard<std::mutex> lock(mutex);
  const Region* r = token == 0 ? nullptr : find(token);
  if (r == nullptr) return ended_or_unknown_token(token);
  *out = Info{r->bytes, r->alignment, r->count};
  return Status::kOk;
}

Totals totals() {
  std::lock_guard<std::mutex> lock(mutex);
  const uint64_t gone = freed.load(std::memory_order_acquire);
  const uint64_t made = created.load(std::memory_order_relaxed);  // >= gone: each free follows its creation
  return Totals{made - gone, live_bytes.load(std::memory_order_relaxed), references, made, gone};
}

}  // namespace slabpool::shared_region
