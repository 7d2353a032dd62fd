// libFuzzer target for native/slab.cc: the input bytes choose a pool geometry and a sequence of
// operations, run on the allocator beside the shadow model (shadow.h) with check() after each.
// Slabs span both kinds of slab memory: 1..80 blocks of 8..12288 bytes, so from 8 bytes (heap)
// to 960 KiB (mapped, from os::kSlabMapThreshold on).
// Any disagreement, crash or sanitizer report is a finding. Built and run by
// `npm run fuzz:native` (scripts/fuzz-native.js).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "shadow.h"

namespace {

struct Bytes {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool more() const { return at < size; }
  uint32_t next() { return at < size ? data[at++] : 0; }
  uint32_t next32() { return next() | next() << 8 | next() << 16 | next() << 24; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  const uint32_t slab_blocks = 1 + in.next() % 80;
  const size_t alignment = size_t{8} << (in.next() % 10);  // 8 .. 4096
  const size_t stride_units = 1 + in.next() % 3;
  slabpool_test::Shadow shadow(slab_blocks, alignment, stride_units);
  bool ok = shadow.add_slab(0, in.next());
  while (ok && in.more()) {
    switch (in.next() % 12) {
      case 0: ok = shadow.acquire(in.next(), in.next32()); break;
      case 1: ok = shadow.release(in.next(), false); break;
      case 2: ok = shadow.release(in.next(), true); break;
      case 3: ok = shadow.acquire_run(in.next()); break;
      case 4: ok = shadow.acquire_run(in.next(), UINT32_MAX); break;  // up to a whole slab
      case 5: ok = shadow.add_slab(in.next(), in.next()); break;
      case 6: ok = shadow.free_slab(in.next()); break;
      case 7: ok = shadow.release_wrong(in.next()); break;
      case 8: ok = shadow.take_view(in.next(), in.next()); break;
      case 9: ok = shadow.drop_view(in.next()); break;
      case 10: ok = shadow.restart(in.next() & 1, in.next()); break;
      default: ok = shadow.largest_with_cache(); break;
    }
    ok = ok && shadow.verify();
  }
  ok = ok && shadow.close();
  if (!ok) {
    std::fprintf(stderr, "slab_fuzz: %s\n", shadow.problem().c_str());
    std::abort();
  }
  return 0;
}
