// os.h on POSIX systems: calloc and posix_memalign below the thresholds, anonymous mmap at and
// above them.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "os.h"

namespace slabpool::os {

namespace {

void* map_zeroed(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

void* zeroed_alloc(size_t bytes) {
  if (bytes < kMapThreshold) return std::calloc(1, bytes);
  return map_zeroed(bytes);
}

void zeroed_free(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kMapThreshold) std::free(p);
  else munmap(p, bytes);
}

void* alloc_slab(size_t bytes, size_t alignment, bool* mapped) {
  *mapped = bytes >= kSlabMapThreshold;
  if (*mapped) return map_zeroed(bytes);
  void* p = nullptr;
  if (posix_memalign(&p, alignment, bytes) != 0 || p == nullptr) return nullptr;
  std::memset(p, 0, bytes);
  return p;
}

void free_slab(void* p, size_t bytes, bool mapped) {
  if (p == nullptr) return;
  if (mapped) munmap(p, bytes);
  else std::free(p);
}

bool decommit_slab(void* p, size_t bytes, bool mapped) {
  if (p == nullptr) return false;
  if (mapped) {
#ifdef __linux__
    // Private anonymous pages: dropped now, zero-filled on the next touch (madvise(2)).
    if (madvise(p, bytes, MADV_DONTNEED) == 0) return true;
#else
    // Elsewhere MADV_DONTNEED may keep the contents; a fixed anonymous mapping over the range
    // replaces its pages with fresh zero pages in one call.
    if (mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) return true;
#endif
  }
  std::memset(p, 0, bytes);  // a heap slab, or the call above failed: at least nothing stale is left
  return false;
}

}  // namespace slabpool::os
