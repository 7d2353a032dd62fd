// The few compiler-specific bit routines the allocator needs, one branch per compiler (as tlsf
// does), so that slab.cc and run_index.cc stay portable C++17.
#ifndef SLABPOOL_BITS_H_
#define SLABPOOL_BITS_H_

#include <cstddef>
#include <cstdint>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace slabpool {

#if defined(__GNUC__) || defined(__clang__)

// Index of the lowest set bit; word must not be 0.
inline uint32_t ctz32(uint32_t word) { return static_cast<uint32_t>(__builtin_ctz(word)); }
// Number of zero bits above the highest set bit; word must not be 0.
inline uint32_t clz32(uint32_t word) { return static_cast<uint32_t>(__builtin_clz(word)); }
// *product = a * b; true (and *product unspecified) if that overflows size_t.
inline bool mul_overflow(size_t a, size_t b, size_t* product) { return __builtin_mul_overflow(a, b, product); }

#elif defined(_MSC_VER)

inline uint32_t ctz32(uint32_t word) {
  unsigned long index;
  _BitScanForward(&index, word);
  return static_cast<uint32_t>(index);
}
inline uint32_t clz32(uint32_t word) {
  unsigned long index;
  _BitScanReverse(&index, word);
  return 31u - static_cast<uint32_t>(index);
}
inline bool mul_overflow(size_t a, size_t b, size_t* product) {
  if (a != 0 && b > SIZE_MAX / a) return true;
  *product = a * b;
  return false;
}

#else
#error "slabpool: bits.h needs GCC, Clang or MSVC (add ctz32, clz32 and mul_overflow for this compiler)"
#endif

}  // namespace slabpool

#endif  // SLABPOOL_BITS_H_
