// os.h on Windows: calloc and _aligned_malloc below the thresholds, VirtualAlloc at and above
// them. A mapped range is reserved and committed in one call, so it is 64 KiB-aligned (the
// allocation granularity) and zeroed; its pages become resident only when touched.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "os.h"

namespace slabpool::os {

namespace {

void* map_zeroed(size_t bytes) { return VirtualAlloc(nullptr, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE); }

void unmap(void* p) { VirtualFree(p, 0, MEM_RELEASE); }

}  // namespace

void* zeroed_alloc(size_t bytes) {
  if (bytes < kMapThreshold) return std::calloc(1, bytes);
  return map_zeroed(bytes);
}

void zeroed_free(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kMapThreshold) std::free(p);
  else unmap(p);
}

void* alloc_slab(size_t bytes, size_t alignment, bool* mapped) {
  *mapped = bytes >= kSlabMapThreshold;
  if (*mapped) return map_zeroed(bytes);
  void* p = _aligned_malloc(bytes, alignment);
  if (p != nullptr) std::memset(p, 0, bytes);
  return p;
}

void free_slab(void* p, size_t bytes, bool mapped) {
  (void)bytes;
  if (p == nullptr) return;
  if (mapped) unmap(p);
  else _aligned_free(p);  // not free(): _aligned_malloc's block starts before p
}

bool decommit_slab(void* p, size_t bytes, bool mapped) {
  if (p == nullptr) return false;
  if (mapped) {
    // Decommitting drops the pages and their commit charge; committing again makes the range
    // demand-zero, as it was at VirtualAlloc. Without the second call the range would fault,
    // and JavaScript views may still reach it.
    if (VirtualFree(p, bytes, MEM_DECOMMIT)) {
      // The commit charge just freed is asked for again at once; only a commit limit reached in
      // between by another thread can refuse it, so try a few times before giving up.
      for (int attempt = 0; attempt < 3; attempt++) {
        if (VirtualAlloc(p, bytes, MEM_COMMIT, PAGE_READWRITE) == p) return true;
        Sleep(1);
      }
      // The range cannot be made readable again: any view would fault at an arbitrary later
      // point, so stop here, saying why.
      std::fprintf(stderr, "slabpool: could not recommit %zu bytes at %p after decommitting them (error %lu)\n", bytes, p,
                   static_cast<unsigned long>(GetLastError()));
      std::abort();
    }
  }
  std::memset(p, 0, bytes);  // a heap slab, or the decommit failed: at least nothing stale is left
  return false;
}

}  // namespace slabpool::os
