// The operating-system primitives the allocator needs, and nothing else (after mimalloc's prim/):
// zeroed memory for metadata, zeroed aligned memory for slabs, and giving a slab's physical
// memory back while its address range stays usable. One implementation file per OS, chosen in
// binding.gyp: os_posix.cc (Linux, macOS: calloc, posix_memalign, mmap, madvise) and
// os_windows.cc (calloc; _aligned_malloc, freed by _aligned_free, which is why free_slab is told
// how the memory was obtained; VirtualAlloc, decommitted by VirtualFree(MEM_DECOMMIT) then
// VirtualAlloc(MEM_COMMIT), since a bare decommit leaves a range that faults).
#ifndef SLABPOOL_OS_H_
#define SLABPOOL_OS_H_

#include <cstddef>

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

// Zeroed memory for a slab at `alignment` (a power of two, at most 4096); nullptr if none. Zeroed
// so a fresh block never shows what the process freed before. *mapped says how it was obtained;
// decommit_slab and free_slab take it back with the same bytes.
void* alloc_slab(size_t bytes, size_t alignment, bool* mapped);
void free_slab(void* p, size_t bytes, bool mapped);

// Gives a slab's physical memory back without freeing its address range: afterwards the range
// stays readable and writable, reads zeros, and costs no resident memory until written again
// (a mapped slab: its pages go back to the OS at once; a heap slab is zeroed in place). Returns
// true when the pages went back to the OS.
bool decommit_slab(void* p, size_t bytes, bool mapped);

}  // namespace slabpool::os

#endif  // SLABPOOL_OS_H_
