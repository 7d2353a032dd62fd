// os.h on Windows: calloc and _aligned_malloc below the thresholds, VirtualAlloc at and above
// them. A mapped range is reserved and committed in one call, so it is 64 KiB-aligned (the
// allocation granularity) and zeroed; its pages become resident only when touched. Huge pages are
// reported unavailable (Windows' large pages need a privilege and are never paged, below);
// pre-faulting touches every page.
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

size_t page_size() {
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize > 0 ? info.dwPageSize : 4096;
}

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

void* alloc_slab(size_t bytes, size_t alignment, const SlabRequest& request, SlabMapping* mapping) {
  SlabMapping& m = *mapping;
  m = SlabMapping{};
  m.mapped = bytes >= kSlabMapThreshold;
  if (request.huge_pages) m.huge = m.mapped ? Huge::kUnavailable : Huge::kTooSmall;
  void* p = nullptr;
  if (m.mapped) {
    p = map_zeroed(bytes);
    if (p != nullptr && request.prefault) m.prefault = prefault(p, bytes);
  } else {
    p = _aligned_malloc(bytes, alignment);
    if (p != nullptr) std::memset(p, 0, bytes);
    if (p != nullptr && request.prefault) m.prefault = Prefault::kTouched;  // the memset wrote every byte
  }
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

void touch_pages(void* p, size_t bytes) {
  if (bytes == 0) return;
  volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
  const size_t page = page_size();
  const size_t first = (page - reinterpret_cast<uintptr_t>(p) % page) % page;
  b[0] = 0;
  for (size_t i = first; i < bytes; i += page) b[i] = 0;
}

// Committed memory cannot be refused a page later (the commit charge was taken at VirtualAlloc),
// so touching cannot fail here.
Prefault prefault(void* p, size_t bytes) {
  touch_pages(p, bytes);
  return Prefault::kTouched;
}

HugePageSupport huge_page_support() {
  return {0, nullptr,
          "Windows gives large pages only to a process holding SeLockMemoryPrivilege, and never pages them out; slabpool does not ask for them"};
}

int64_t huge_page_bytes(const Range* ranges, size_t count, ReadBack* how, ReadBack only) {
  (void)ranges;
  (void)count;
  (void)only;
  *how = ReadBack::kNone;
  return -1;
}

}  // namespace slabpool::os
