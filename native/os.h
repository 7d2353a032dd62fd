// The operating-system primitives the allocator needs, and nothing else (after mimalloc's prim/):
// zeroed memory for metadata and zeroed aligned memory for slabs. One implementation file per
// OS: os_posix.cc (Linux, macOS) today. A Windows file (os_windows.cc) must provide the same four
// functions with the same guarantees, e.g. calloc/free below kMapThreshold and
// VirtualAlloc(MEM_RESERVE | MEM_COMMIT) / VirtualFree(MEM_RELEASE) at and above it (zeroed,
// 64 KiB-aligned); small slabs from _aligned_malloc + memset, freed by _aligned_free (not free,
// which is why free_slab is told how the memory was obtained).
#ifndef SLABPOOL_OS_H_
#define SLABPOOL_OS_H_

#include <cstddef>

namespace slabpool::os {

// Zeroed memory from this size on comes from the OS's page mapper: page-aligned (>= every
// alignment the allocator accepts) and zeroed by the kernel page by page as it is first touched,
// so a large pool or its metadata costs nothing until used. Below it, a memset is cheaper than a
// system call; above it, a memset would fault in every page at construction.
constexpr size_t kMapThreshold = size_t{64} << 10;

// Zeroed memory for metadata; nullptr if none. zeroed_free takes the same byte count (and
// accepts nullptr).
void* zeroed_alloc(size_t bytes);
void zeroed_free(void* p, size_t bytes);

// Zeroed memory for a slab at `alignment` (a power of two, at most 4096); nullptr if none. Zeroed
// so a fresh block never shows what the process freed before. *mapped says how it was obtained;
// free_slab takes it back with the same bytes.
void* alloc_slab(size_t bytes, size_t alignment, bool* mapped);
void free_slab(void* p, size_t bytes, bool mapped);

}  // namespace slabpool::os

#endif  // SLABPOOL_OS_H_
