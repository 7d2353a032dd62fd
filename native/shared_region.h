// Shared regions: block memory that several threads of one process use at once (SharedPool's
// native engine, issue 16). A process-wide registry, thread-safe, with no N-API in it: each
// attached thread takes its own reference to a region by the region's token and wraps the same
// address in its own external ArrayBuffer; the memory is freed with the last reference. Memory
// comes from os.h (os::alloc_slab: zeroed, aligned; mapped on its own from 4 KiB on).
//
// Tokens name regions, reference ids name references. A token is a keyed permutation of a
// counter: never 0, never given twice in a process, and not to be guessed from other tokens
// (the key is random per process; it is not a cryptographic secret). A reference id is a
// counter, never 0 nor given twice; 64 bits, so it fits the void* finalize hint of N-API on the
// 64-bit targets slabpool builds for.
//
// Concurrency: every call may run on any thread, concurrently with any other, one mutex
// serializing the registry. A region's memory is freed outside the mutex by the one call that
// dropped its last reference, after unlinking it under the mutex, so an acquire() either took
// its reference before (and the region lives on) or finds the token ended: no use after free,
// no double free. Releasing one reference twice (a finalizer and a cleanup hook, on two threads)
// drops it once; the other call gets kEnded and changes nothing.
//
// Invariants, under the mutex: a region is listed iff its reference count > 0 and its memory
// is allocated; its count = its listed references; totals().references = the sum of counts;
// totals().regions = created - freed = listed regions + those being freed at this moment.
#ifndef SLABPOOL_SHARED_REGION_H_
#define SLABPOOL_SHARED_REGION_H_

#include <cstddef>
#include <cstdint>

namespace slabpool::shared_region {

enum class Status : uint8_t {
  kOk,
  kFreed,         // release: this call dropped the last reference and freed the memory
  kInvalid,       // an argument outside its contract (nothing done)
  kNoMemory,      // no memory from the OS, or none for the registry's record (nothing done)
  kUnknown,       // no region (reference) ever had this token (id) in this process
  kEnded,         // the region was freed (the reference released) before this call
  kSizeMismatch,  // acquire: the region lives, but its size is not the size expected
};
const char* status_name(Status status);  // "ok", "freed", ..., "size mismatch"

// One region is wrapped whole in one ArrayBuffer per thread, which Node 20 caps at 4 GiB.
constexpr uint64_t kMaxRegionBytes = uint64_t{1} << 32;

// A reference to a region, as create() and acquire() fill it in.
struct Reference {
  uint64_t token;  // the region's
  uint64_t id;     // this reference's, for release()
  uint8_t* base;   // the region's first byte: base % alignment == 0; valid until this reference is released
  size_t bytes;    // the region's size
};

// A new zeroed region of `bytes` (1..kMaxRegionBytes) at `alignment` (a power of two, 8..4096;
// a region of 4 KiB or more starts on a page), with one reference, taken for `owner`. kOk,
// kInvalid (also for out == nullptr), kNoMemory. O(1) plus the OS's allocation.
Status create(size_t bytes, size_t alignment, uint64_t owner, Reference* out);

// One more reference to the region `token`, for `owner`, if the region lives and its size is
// `expected_bytes`. kOk, kUnknown (0 included), kEnded, kSizeMismatch (no reference taken),
// kNoMemory, kInvalid (out == nullptr). O(live regions).
Status acquire(uint64_t token, size_t expected_bytes, uint64_t owner, Reference* out);

// Drops reference `id`; the last one of its region frees the memory (outside the mutex). kOk,
// kFreed, kEnded (released before: nothing done), kUnknown. O(live references).
Status release(uint64_t id);

// Drops every reference taken for `owner` (an env cleanup hook: its thread's references at
// teardown), freeing the regions that reach 0 as release() does. Owners are the caller's opaque
// numbers, 0 as good as any. O(live references).
struct Dropped {
  size_t references;
  size_t regions;  // of their regions, those this call freed
};
Dropped release_owner(uint64_t owner);

// A living region, for stats: its size, its alignment (as asked of create()) and references.
struct Info {
  size_t bytes;
  size_t alignment;
  uint32_t references;
};
Status query(uint64_t token, Info* out);  // kOk, kUnknown, kEnded, kInvalid (out == nullptr)

// Process-wide figures, for stats and leak checks: regions and bytes not yet freed, references
// held, and regions created and freed since the process started.
struct Totals {
  uint64_t regions;
  uint64_t bytes;
  uint64_t references;
  uint64_t created;
  uint64_t freed;
};
Totals totals();

}  // namespace slabpool::shared_region

#endif  // SLABPOOL_SHARED_REGION_H_
