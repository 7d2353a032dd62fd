// The operating-system primitives the allocator needs, and nothing else (after mimalloc's prim/):
// zeroed memory for metadata, zeroed aligned memory for slabs, giving a slab's physical memory
// back while its address range stays usable, and the two opt-in treatments of a slab's pages
// (the hugePages and prefault options: huge pages, pre-faulting, and reading back what the kernel
// gave). One implementation file per OS, chosen in binding.gyp: os_posix.cc (Linux, macOS:
// calloc, posix_memalign, mmap, madvise; huge pages and MADV_POPULATE_WRITE on Linux only) and
// os_windows.cc (calloc; _aligned_malloc, freed by _aligned_free, which is why free_slab is told
// how the memory was obtained; VirtualAlloc, decommitted by VirtualFree(MEM_DECOMMIT) then
// VirtualAlloc(MEM_COMMIT), since a bare decommit leaves a range that faults).
#ifndef SLABPOOL_OS_H_
#define SLABPOOL_OS_H_

#include <cstddef>
#include <cstdint>

namespace slabpool::os {

// Zeroed metadata from this size on comes from the OS's page mapper: zeroed by the kernel page by
// page as it is first touched, so a large pool's metadata costs nothing until used. Below it, a
// memset is cheaper than a system call.
constexpr size_t kMapThreshold = size_t{64} << 10;

// Slabs from this size on (one page) are mapped on their own, so that their physical memory can
// be given back at release (decommit_slab) even while a JavaScript view still reaches them;
// smaller ones come from the C heap (they are smaller than the JavaScript objects of their pool,
// which also wait for the garbage collector).
constexpr size_t kSlabMapThreshold = size_t{4} << 10;

// Zeroed memory for metadata; nullptr if none. zeroed_free takes the same byte count (and
// accepts nullptr).
void* zeroed_alloc(size_t bytes);
void zeroed_free(void* p, size_t bytes);

// What a pool asks of its slabs' pages beyond zeroed and aligned memory.
struct SlabRequest {
  bool huge_pages = false;  // map a slab of a huge page or more at the huge page size's alignment, and advise it
  bool prefault = false;    // every page present and writable before the slab is handed out
};

enum class Huge : uint8_t {
  kNotAsked,
  kAdvised,      // mapped at the huge page size's alignment and advised (Linux: MADV_HUGEPAGE)
  kTooSmall,     // smaller than one huge page, or from the C heap: no huge page fits in it
  kUnavailable,  // the system offers none: huge_page_support().why_not says why
  kRefused,      // the aligned mapping or the advice was refused (SlabMapping::error); mapped plainly
};

enum class Prefault : uint8_t {
  kNotAsked,
  kPopulated,  // by the kernel in one call (Linux 5.14+: madvise(MADV_POPULATE_WRITE))
  kTouched,    // one write per page (older kernels, other systems; heap slabs, zeroed by memset)
  kFailed,     // the kernel could not back it (out of memory): the memory is not handed out
};

// How alloc_slab obtained a slab and what it did to its pages; kept per slab.
struct SlabMapping {
  bool mapped = false;  // from the page mapper (mmap, VirtualAlloc), not the C heap
  Huge huge = Huge::kNotAsked;
  Prefault prefault = Prefault::kNotAsked;
  int error = 0;              // the errno of Huge::kRefused
  size_t huge_page_bytes = 0;  // with Huge::kAdvised: the alignment of the slab's start
};

// Zeroed memory for a slab at `alignment` (a power of two, at most 4096), treated as `request`
// asks; nullptr if none (or if pre-faulting found no memory to back it). Zeroed so a fresh block
// never shows what the process freed before. *mapping says how it was obtained; decommit_slab and
// free_slab take it back with the same bytes and mapping->mapped. A refused huge page request is
// not a failure: the slab is mapped as without it, and *mapping says so.
void* alloc_slab(size_t bytes, size_t alignment, const SlabRequest& request, SlabMapping* mapping);
void free_slab(void* p, size_t bytes, bool mapped);

// Gives a slab's physical memory back without freeing its address range: afterwards the range
// stays readable and writable, reads zeros, and costs no resident memory until written again
// (a mapped slab: its pages go back to the OS at once; a heap slab is zeroed in place). Returns
// true when the pages went back to the OS.
bool decommit_slab(void* p, size_t bytes, bool mapped);

// Makes every page that [p, p + bytes) touches present and writable, contents unchanged, so that
// no first write to it faults: for slabs alloc_slab did not make (the native engine's V8-owned
// ArrayBuffers). kPopulated or kTouched, or kFailed when the kernel could not back them.
Prefault prefault(void* p, size_t bytes);
// The fallback of prefault(): one write of the byte already there (zero) per page. Every system.
void touch_pages(void* p, size_t bytes);

// What this system offers for huge pages, asked afresh at each call (an administrator may change
// the THP mode at run time).
struct HugePageSupport {
  size_t page_bytes;    // the transparent huge page size (2 MiB on x86-64); 0 when none can be had
  const char* mode;     // Linux: the THP mode, "always", "madvise" or "never"; else nullptr
  const char* why_not;  // one sentence when page_bytes is 0, else nullptr
};
HugePageSupport huge_page_support();

// Reading back what the kernel gave: the bytes of the ranges that huge pages back at this moment.
// kPagemap: the PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux 6.7+), exact for each range.
// kSmaps: /proc/self/smaps, AnonHugePages of each mapping that overlaps a range, at most the
// overlap (exact unless the kernel merged a slab's mapping with another's that has huge pages).
// Cost: one system call per 32 huge page runs (pagemap), or the whole smaps file once (a few ms).
enum class ReadBack : uint8_t { kNone, kPagemap, kSmaps };
struct Range {
  const void* p;
  size_t bytes;
};
// -1 when it cannot be read (*how kNone). `only`: kNone tries pagemap, then smaps; else that one.
int64_t huge_page_bytes(const Range* ranges, size_t count, ReadBack* how, ReadBack only = ReadBack::kNone);

}  // namespace slabpool::os

#endif  // SLABPOOL_OS_H_
