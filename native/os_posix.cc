// os.h on POSIX systems: calloc and posix_memalign below the map threshold, anonymous mmap at and
// above it.
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
  *mapped = bytes >= kMapThreshold;
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

}  // namespace slabpool::os
