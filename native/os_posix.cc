// os.h on POSIX systems: calloc and posix_memalign below the thresholds, anonymous mmap at and
// above them. Huge pages (MADV_HUGEPAGE), populating (MADV_POPULATE_WRITE) and reading back
// (PAGEMAP_SCAN, /proc/self/smaps) are Linux's; elsewhere huge pages are reported unavailable and
// pre-faulting touches every page.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef __linux__
#include <fcntl.h>
#include <sys/ioctl.h>
#endif

#include "os.h"

#ifdef __linux__
// Linux 5.14; C library headers older than that lack it.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
// The PAGEMAP_SCAN ioctl of Linux 6.7 (include/uapi/linux/fs.h), which C library headers of
// older kernels lack; a kernel without it answers ENOTTY (or EINVAL).
namespace {
struct PageRegion {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};
struct PmScanArg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsHuge = uint64_t{1} << 6;
}  // namespace
#endif

namespace slabpool::os {

namespace {

size_t page_size() {
  static const size_t page = [] {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : size_t{4096};
  }();
  return page;
}

uintptr_t round_down(uintptr_t x, size_t to) { return x & ~static_cast<uintptr_t>(to - 1); }
uintptr_t round_up(uintptr_t x, size_t to) { return round_down(x + to - 1, to); }

void* map_zeroed(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

#ifdef __linux__
constexpr const char* kThpDir = "/sys/kernel/mm/transparent_hugepage/";

// The first line of a small sysfs file into buf; false when it cannot be read.
bool read_line(const char* path, char* buf, size_t size) {
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return false;
  bool ok = std::fgets(buf, static_cast<int>(size), f) != nullptr;
  std::fclose(f);
  return ok;
}

// A huge page-aligned mapping of bytes, advised; nullptr (and *m says why) when the over-sized
// reservation it is cut from cannot be had, so that the caller maps the slab plainly.
void* map_huge(size_t bytes, size_t huge, SlabMapping* m) {
  const size_t length = round_up(bytes, page_size());
  const size_t span = length + huge;
  if (span < length) {  // cannot happen with slabs of at most 4 GiB on 64 bits; never trust it
    m->huge = Huge::kRefused;
    m->error = EOVERFLOW;
    return nullptr;
  }
  // Reserve a huge page more than needed and cut the aligned part out: the kernel backs a range
  // with huge pages only where a whole aligned huge page lies inside it.
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    m->huge = Huge::kRefused;
    m->error = errno;
    return nullptr;
  }
  const uintptr_t start = round_up(reinterpret_cast<uintptr_t>(raw), huge);
  const size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head != 0) munmap(raw, head);
  if (span - head - length != 0) munmap(reinterpret_cast<void*>(start + length), span - head - length);
  void* p = reinterpret_cast<void*>(start);
  if (madvise(p, length, MADV_HUGEPAGE) != 0) {
    m->huge = Huge::kRefused;  // a kernel built without THP: EINVAL. The mapping serves as a plain one.
    m->error = errno;
    return p;
  }
  m->huge = Huge::kAdvised;
  m->huge_page_bytes = huge;
  return p;
}

// PAGEMAP_SCAN: the huge page runs inside each range; -1 when the kernel has no such ioctl.
int64_t scan_pagemap(const Range* ranges, size_t count) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int64_t total = 0;
  PageRegion vec[32] = {};  // zeroed: a checker that does not know the ioctl sees defined memory
  for (size_t r = 0; r < count && total >= 0; r++) {
    const uintptr_t lo = round_down(reinterpret_cast<uintptr_t>(ranges[r].p), page_size());
    const uintptr_t hi = round_up(reinterpret_cast<uintptr_t>(ranges[r].p) + ranges[r].bytes, page_size());
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = lo;
    arg.end = hi;
    arg.vec = reinterpret_cast<uintptr_t>(vec);
    arg.vec_len = sizeof vec / sizeof vec[0];
    arg.category_mask = kPageIsHuge;  // only pages that are huge
    arg.return_mask = kPageIsHuge;
    while (arg.start < hi) {
      long n = ioctl(fd, kPagemapScan, &arg);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        total = -1;
        break;
      }
      for (long i = 0; i < n; i++) total += static_cast<int64_t>(std::min<uint64_t>(vec[i].end, hi) - std::max<uint64_t>(vec[i].start, lo));
      if (arg.walk_end <= arg.start) break;  // no progress: never loop
      arg.start = arg.walk_end;                // the vector was full: go on where the kernel stopped
    }
  }
  close(fd);
  return total;
}

// Parses "start-end perms ..." (a mapping's first line in smaps); false for any other line.
bool mapping_line(const char* line, uintptr_t* start, uintptr_t* end) {
  char* next = nullptr;
  unsigned long long a = std::strtoull(line, &next, 16);
  if (next == line || *next != '-') return false;
  const char* second = next + 1;
  unsigned long long b = std::strtoull(second, &next, 16);
  if (next == second || *next != ' ') return false;
  *start = static_cast<uintptr_t>(a);
  *end = static_cast<uintptr_t>(b);
  return true;
}

// /proc/self/smaps: per mapping overlapping the ranges, its AnonHugePages, at most the overlap.
int64_t scan_smaps(const Range* ranges, size_t count) {
  FILE* f = std::fopen("/proc/self/smaps", "re");
  if (f == nullptr) return -1;
  int64_t total = 0;
  uint64_t overlap = 0;  // of the current mapping with the ranges
  char line[4096];
  bool continued = false;  // the line read is the rest of one longer than the buffer
  while (std::fgets(line, sizeof line, f) != nullptr) {
    const bool whole = std::strchr(line, '\n') != nullptr;
    const bool rest = continued;
    continued = !whole;
    if (rest) continue;
    uintptr_t start, end;
    if (mapping_line(line, &start, &end)) {
      overlap = 0;
      for (size_t r = 0; r < count; r++) {
        const uintptr_t lo = reinterpret_cast<uintptr_t>(ranges[r].p), hi = lo + ranges[r].bytes;
        if (lo < end && start < hi) overlap += std::min(hi, end) - std::max(lo, start);
      }
      continue;
    }
    static constexpr char kField[] = "AnonHugePages:";
    if (overlap == 0 || std::strncmp(line, kField, sizeof kField - 1) != 0) continue;
    const unsigned long long kb = std::strtoull(line + sizeof kField - 1, nullptr, 10);
    total += static_cast<int64_t>(std::min<uint64_t>(kb * 1024, overlap));
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  return failed ? -1 : total;
}
#endif

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

void* alloc_slab(size_t bytes, size_t alignment, const SlabRequest& request, SlabMapping* mapping) {
  SlabMapping& m = *mapping;
  m = SlabMapping{};
  m.mapped = bytes >= kSlabMapThreshold;
  if (!m.mapped) {
    void* p = nullptr;
    if (posix_memalign(&p, alignment, bytes) != 0 || p == nullptr) return nullptr;
    std::memset(p, 0, bytes);
    if (request.huge_pages) m.huge = Huge::kTooSmall;
    if (request.prefault) m.prefault = Prefault::kTouched;  // the memset wrote every byte
    return p;
  }
  void* p = nullptr;
  if (request.huge_pages) {
    const HugePageSupport support = huge_page_support();
    if (support.page_bytes == 0) m.huge = Huge::kUnavailable;
    else if (bytes < support.page_bytes) m.huge = Huge::kTooSmall;
#ifdef __linux__
    else p = map_huge(bytes, support.page_bytes, &m);
#endif
  }
  if (p == nullptr) p = map_zeroed(bytes);
  if (p == nullptr) return nullptr;
  if (request.prefault) {
    m.prefault = prefault(p, bytes);  // after the advice, so that the pages it brings are huge
    if (m.prefault == Prefault::kFailed) {
      munmap(p, bytes);
      return nullptr;
    }
  }
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
    // Private anonymous pages: dropped now, zero-filled on the next touch (madvise(2)). Huge
    // pages too: a stale view's write then brings back a whole huge page.
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

void touch_pages(void* p, size_t bytes) {
  if (bytes == 0) return;
  // A write, not a read: a read would map the shared zero page, and the write after it fault again.
  volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
  const size_t page = page_size();
  const size_t first = (page - reinterpret_cast<uintptr_t>(p) % page) % page;  // offset of the first page start
  b[0] = 0;
  for (size_t i = first; i < bytes; i += page) b[i] = 0;
}

Prefault prefault(void* p, size_t bytes) {
  if (bytes == 0) return Prefault::kTouched;
#ifdef __linux__
  // Whole pages: those at either end hold bytes of the range, so they are mapped and writable.
  const uintptr_t lo = round_down(reinterpret_cast<uintptr_t>(p), page_size());
  const uintptr_t hi = round_up(reinterpret_cast<uintptr_t>(p) + bytes, page_size());
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) == 0) return Prefault::kPopulated;
  // EINVAL: a kernel before 5.14. Anything else (ENOMEM, EFAULT, EHWPOISON): no memory to back it,
  // where touching would bring the OOM killer or a SIGBUS.
  if (errno != EINVAL) return Prefault::kFailed;
#endif
  touch_pages(p, bytes);
  return Prefault::kTouched;
}

HugePageSupport huge_page_support() {
#ifdef __linux__
  char buf[128];
  char path[128];
  std::snprintf(path, sizeof path, "%senabled", kThpDir);
  if (!read_line(path, buf, sizeof buf)) {
    return {0, nullptr, "this kernel has no transparent huge pages (no /sys/kernel/mm/transparent_hugepage/enabled)"};
  }
  // "always [madvise] never": the mode in use is the one in brackets.
  const char* mode = std::strstr(buf, "[always]") ? "always" : std::strstr(buf, "[madvise]") ? "madvise" : std::strstr(buf, "[never]") ? "never" : nullptr;
  if (mode == nullptr) return {0, nullptr, "the transparent huge page mode in /sys/kernel/mm/transparent_hugepage/enabled could not be read"};
  if (std::strcmp(mode, "never") == 0) {
    return {0, mode, "transparent huge pages are off on this system (/sys/kernel/mm/transparent_hugepage/enabled is 'never')"};
  }
  size_t bytes = size_t{2} << 20;  // hpage_pmd_size arrived in Linux 4.14; 2 MiB before on x86-64 and arm64 (4 KiB pages)
  std::snprintf(path, sizeof path, "%shpage_pmd_size", kThpDir);
  if (read_line(path, buf, sizeof buf)) {
    const unsigned long long n = std::strtoull(buf, nullptr, 10);
    if (n >= page_size() && (n & (n - 1)) == 0) bytes = static_cast<size_t>(n);
  }
  return {bytes, mode, nullptr};
#elif defined(__APPLE__)
  return {0, nullptr, "macOS has no transparent huge pages"};
#else
  return {0, nullptr, "huge pages are asked for on Linux only (transparent huge pages), and this system is not Linux"};
#endif
}

int64_t huge_page_bytes(const Range* ranges, size_t count, ReadBack* how, ReadBack only) {
  *how = ReadBack::kNone;
#ifdef __linux__
  if (only != ReadBack::kSmaps) {
    const int64_t bytes = scan_pagemap(ranges, count);
    if (bytes >= 0) {
      *how = ReadBack::kPagemap;
      return bytes;
    }
    if (only == ReadBack::kPagemap) return -1;
  }
  const int64_t bytes = scan_smaps(ranges, count);
  if (bytes >= 0) *how = ReadBack::kSmaps;
  return bytes;
#else
  (void)ranges;
  (void)count;
  (void)only;
  return -1;
#endif
}

}  // namespace slabpool::os
