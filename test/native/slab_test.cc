// Unit test of the allocator core (native/slab.cc, with run_index.cc and the OS layer) alone,
// without Node: scenarios, then a random walk checked against a brute-force model after every
// operation. Built and run by test/native-core.test.ts (npm test), under sanitizers and valgrind,
// and for Windows with mingw-w64 under wine (.ci/win32).
#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <psapi.h>
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../native/os.h"
#include "../../native/slab.h"
#include "expect.h"
#include "shadow.h"

using slabpool::Allocator;

static std::string check_all(const Allocator& a, const std::vector<uint8_t>& state, const std::vector<int32_t>& cached) {
  return a.check(state.data(), state.size(), cached.data(), static_cast<uint32_t>(cached.size()));
}

static void test_construction() {
  EXPECT(!Allocator(64, 48, 8).valid());      // alignment not a power of two
  EXPECT(!Allocator(64, 4, 8).valid());       // alignment below 8
  EXPECT(!Allocator(64, 8192, 8).valid());    // alignment past 4096
  EXPECT(!Allocator(100, 64, 8).valid());     // stride not a multiple of alignment
  EXPECT(!Allocator(64, 64, 0).valid());      // no blocks
  EXPECT(!Allocator(64, 64, (1u << 30) + 1).valid());
  Allocator huge(SIZE_MAX - 63, 64, 2);       // stride * blocks overflows
  EXPECT(!huge.valid());
  Allocator ok(64, 64, 8);
  EXPECT(ok.valid());
  EXPECT(ok.add_slab(1, 8) == Allocator::Result::kInvalid);  // slots are filled in order
  EXPECT(ok.add_slab(0, 9) == Allocator::Result::kInvalid);  // larger than a slab
  EXPECT(ok.add_slab(0, 0) == Allocator::Result::kInvalid);
  EXPECT(ok.add_slab(0, 8) == Allocator::Result::kOk);
  EXPECT(ok.add_slab(0, 8) == Allocator::Result::kInvalid);  // taken
}

static void test_alignment() {
  for (size_t alignment : {8, 16, 64, 256, 4096}) {
    for (uint32_t blocks : {1u, 3u, 1000u, 20000u}) {  // small slabs from the aligned heap, large mapped
      size_t stride = (24 + alignment - 1) / alignment * alignment;
      Allocator a(stride, alignment, blocks);
      EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.slab_base(0)) % alignment, 0u);
      bool zero = true;
      for (size_t i = 0; i < stride * blocks; i++) zero = zero && a.slab_base(0)[i] == 0;
      EXPECT(zero);
    }
  }
}

static void test_blocks_and_runs() {
  Allocator a(64, 64, 12);
  EXPECT(a.add_slab(0, 12) == Allocator::Result::kOk);
  std::vector<uint8_t> state(24, 0);
  std::vector<int32_t> none;
  int32_t out[16];
  EXPECT_EQ(a.acquire(out, 12), 12u);
  EXPECT_EQ(out[0], 11);  // highest first, so a stack pops the lowest
  EXPECT_EQ(out[11], 0);
  std::fill(state.begin(), state.begin() + 12, 1);
  EXPECT_EQ(a.counters()[slabpool::kFree], 0.0);
  EXPECT_EQ(a.counters()[slabpool::kLargest], 0.0);
  for (int32_t i : {2, 3, 5, 6, 7}) {
    EXPECT(a.release(&i, 1));
    state[i] = 0;
  }
  EXPECT_EQ(a.counters()[slabpool::kLargest], 3.0);
  EXPECT_EQ(a.acquire_run(4), -1);
  int32_t four = 4;
  EXPECT(a.release(&four, 1));  // joins [2,3] and [5,7]
  state[4] = 0;
  EXPECT_EQ(a.counters()[slabpool::kLargest], 6.0);
  EXPECT(check_all(a, state, none).empty());
  EXPECT(!a.release(&four, 1));  // already free: refused
  int32_t bad = 99;
  EXPECT(!a.release(&bad, 1));
  EXPECT(!a.release_run(-1, 1));
  EXPECT(!a.release_run(10, 5));  // past the slab
  EXPECT_EQ(a.acquire_run(6), 2);
  for (int i = 2; i < 8; i++) state[i] = 1;
  EXPECT_EQ(a.counters()[slabpool::kLargest], 0.0);
  EXPECT(check_all(a, state, none).empty());
  // A cached block fills the gap between two free runs.
  int32_t r[] = {8, 10, 11};
  EXPECT(a.release(r, 3));
  state[8] = state[10] = state[11] = 0;
  EXPECT_EQ(a.counters()[slabpool::kLargest], 2.0);
  std::vector<int32_t> cached = {9};
  state[9] = 0;
  EXPECT_EQ(a.largest_run_with(cached.data(), 1), 4);
  EXPECT(check_all(a, state, cached).empty());
  EXPECT(!check_all(a, state, none).empty());  // block 9 allocated but neither used nor cached
}

static void test_slabs() {
  Allocator a(8, 8, 4);
  EXPECT(a.add_slab(0, 4) == Allocator::Result::kOk);
  EXPECT(a.add_slab(1, 4) == Allocator::Result::kOk);
  EXPECT(a.add_slab(2, 2) == Allocator::Result::kOk);
  EXPECT_EQ(a.counters()[slabpool::kCapacity], 10.0);
  EXPECT_EQ(a.counters()[slabpool::kReservedBytes], 80.0);
  int32_t out[4];
  EXPECT_EQ(a.acquire(out, 1), 1u);  // block 0
  EXPECT_EQ(a.acquire_run(4), 4);    // slab 1 whole: runs never cross slabs
  EXPECT_EQ(a.free_slab(1), 0u);     // not empty
  EXPECT(a.release_run(4, 4));
  EXPECT_EQ(a.free_slab(1), 32u);
  EXPECT_EQ(a.counters()[slabpool::kCapacity], 6.0);
  EXPECT(!a.has_slab(1));
  std::vector<uint8_t> state(12, 0);
  state[0] = 1;
  std::vector<int32_t> none;
  EXPECT(check_all(a, state, none).empty());
  EXPECT(a.add_slab(1, 3) == Allocator::Result::kOk);  // the slot is reused
  EXPECT(check_all(a, state, none).empty());
  uint8_t adopted[64] __attribute__((aligned(8)));
  Allocator b(8, 8, 4);
  EXPECT(b.add_slab(0, 4, adopted) == Allocator::Result::kOk);
  EXPECT(b.slab_base(0) == adopted);
  EXPECT(b.slab_memory(0) == nullptr);
}

// The contract's refusals, which the pool never sends (the TS engine throws on each).
static void test_refusals() {
  Allocator a(64, 64, 8);
  EXPECT(a.add_slab(0, 8) == Allocator::Result::kOk);
  std::vector<uint8_t> state(8, 0);
  std::vector<int32_t> none;
  EXPECT_EQ(a.acquire_run(0), slabpool::kRefused);
  EXPECT_EQ(a.counters()[slabpool::kFree], 8.0);
  EXPECT(check_all(a, state, none).empty());
  int32_t out[2];
  EXPECT_EQ(a.acquire(out, 2), 2u);  // blocks 0 and 1
  state[0] = 1;
  std::vector<int32_t> cached = {1};
  EXPECT_EQ(a.largest_run_with(cached.data(), 1), 7);
  for (int32_t bad : {-1, 2, 7, 8, 99, INT32_MAX, INT32_MIN}) {  // not a block, or free here
    std::vector<int32_t> with = {1, bad};
    EXPECT_EQ(a.largest_run_with(with.data(), 2), slabpool::kRefused);
  }
  EXPECT(check_all(a, state, cached).empty());

  // An allocator with invalid arguments refuses every call and crashes on none.
  Allocator invalid(64, 48, 8);
  EXPECT(!invalid.valid());
  EXPECT_EQ(invalid.acquire(out, 2), 0u);
  EXPECT_EQ(invalid.acquire_run(1), -1);
  EXPECT_EQ(invalid.acquire_run(0), slabpool::kRefused);
  int32_t zero = 0;
  EXPECT(!invalid.release(&zero, 1));
  EXPECT(!invalid.release_run(0, 1));
  EXPECT_EQ(invalid.largest_run_with(&zero, 0), 0);
  EXPECT_EQ(invalid.largest_run_with(&zero, 1), slabpool::kRefused);
  EXPECT(invalid.add_slab(0, 1) == Allocator::Result::kInvalid);
  EXPECT(!check_all(invalid, state, none).empty());
}

// acquire_run takes the lowest run that fits, not the lowest run; the search cursor stays at or
// below the lowest free block, so acquire still takes block 0 next.
static void test_first_fit_past_a_short_run() {
  Allocator a(8, 8, 12);
  EXPECT(a.add_slab(0, 12) == Allocator::Result::kOk);
  std::vector<uint8_t> state(12, 1);
  std::vector<int32_t> none;
  int32_t out[12];
  EXPECT_EQ(a.acquire(out, 12), 12u);
  int32_t freed[] = {0, 3, 4, 5, 6, 9, 10};  // runs [0], [3, 6], [9, 10]
  EXPECT(a.release(freed, 7));
  for (int32_t i : freed) state[i] = 0;
  EXPECT_EQ(a.acquire_run(3), 3);
  for (int i = 3; i < 6; i++) state[i] = 1;
  EXPECT(check_all(a, state, none).empty());
  EXPECT_EQ(a.acquire_run(2), 9);
  state[9] = state[10] = 1;
  EXPECT_EQ(a.counters()[slabpool::kLargest], 1.0);
  EXPECT_EQ(a.acquire_run(2), -1);
  EXPECT_EQ(a.acquire(out, 1), 1u);
  EXPECT_EQ(out[0], 0);
  state[0] = 1;
  EXPECT_EQ(a.acquire_run(1), 6);
  state[6] = 1;
  EXPECT_EQ(a.counters()[slabpool::kFree], 0.0);
  EXPECT(check_all(a, state, none).empty());
}

// Start of the lowest run of at least k free blocks in `free` (by global index), inside one slab
// of slab_blocks, or -1: first fit read by brute force.
static int64_t brute_first_fit(const std::vector<bool>& free, uint32_t slab_blocks, uint32_t k) {
  uint32_t run = 0;
  for (size_t i = 0; i < free.size(); i++) {
    run = free[i] ? (i % slab_blocks == 0 ? 1 : run + 1) : 0;
    if (run >= k) return static_cast<int64_t>(i + 1 - k);
  }
  return -1;
}

// First fit across many bitmap words and slots: slabs of 100 blocks (4 words, the last partial),
// short free runs (1, 2, 3 blocks, each after a held block) in every word of the first two slabs
// and the first third of the last, one long run above them. acquire_run(k) must pass every short
// run to the lowest that fits, and acquire take the lowest free blocks, for every k.
static void test_first_fit_across_words_and_slots() {
  const uint32_t n = 100;
  Allocator a(8, 8, n);
  for (uint32_t slot = 0; slot < 3; slot++) EXPECT(a.add_slab(slot, n) == Allocator::Result::kOk);
  std::vector<uint8_t> state(3 * n, 1);
  std::vector<bool> free(3 * n, false);
  std::vector<int32_t> none;
  int32_t out[64];
  uint32_t taken = 0;
  while (taken < 3 * n) taken += a.acquire(out, 64);
  EXPECT_EQ(a.counters()[slabpool::kFree], 0.0);
  const uint32_t long_from = 2 * n + 40;
  std::vector<int32_t> to_free;
  for (uint32_t slot = 0; slot < 3; slot++) {
    uint32_t end = std::min(slot * n + n, long_from);
    uint32_t length = 1;
    for (uint32_t i = slot * n + 1; i + length < end; i += length + 1, length = length % 3 + 1) {
      for (uint32_t j = 0; j < length; j++) to_free.push_back(static_cast<int32_t>(i + j));
    }
  }
  for (uint32_t i = long_from; i < 3 * n; i++) to_free.push_back(static_cast<int32_t>(i));
  std::shuffle(to_free.begin(), to_free.end(), std::mt19937(5));  // merges in any order
  for (size_t i = 0; i < to_free.size(); i += 64) {
    uint32_t count = static_cast<uint32_t>(std::min<size_t>(64, to_free.size() - i));
    EXPECT(a.release(to_free.data() + i, count));
  }
  for (int32_t i : to_free) {
    state[i] = 0;
    free[i] = true;
  }
  EXPECT(check_all(a, state, none).empty());
  EXPECT_EQ(a.counters()[slabpool::kLargest], static_cast<double>(3 * n - long_from));
  EXPECT_EQ(brute_first_fit(free, n, 4), int64_t{long_from});
  // Each k taken and given back, so that every one meets the same layout.
  for (uint32_t k = 1; k <= 3 * n - long_from + 1; k++) {
    int64_t want = brute_first_fit(free, n, k);
    int64_t got = a.acquire_run(k);
    EXPECT_EQ(got, want);
    if (got >= 0) {
      for (uint32_t j = 0; j < k; j++) state[got + j] = 1;
      EXPECT(check_all(a, state, none).empty());
      EXPECT(a.release_run(got, k));
      for (uint32_t j = 0; j < k; j++) state[got + j] = 0;
    }
    EXPECT(check_all(a, state, none).empty());
  }
  // Runs of 3 taken one by one walk up through every word of every slab.
  for (int64_t want = brute_first_fit(free, n, 3); want >= 0 && want < long_from; want = brute_first_fit(free, n, 3)) {
    EXPECT_EQ(a.acquire_run(3), want);
    for (uint32_t j = 0; j < 3; j++) {
      free[want + j] = false;
      state[want + j] = 1;
    }
  }
  EXPECT(check_all(a, state, none).empty());
  // acquire takes the lowest free blocks, word after word, slot after slot.
  std::vector<int32_t> lowest;
  for (size_t i = 0; i < free.size() && lowest.size() < 64; i++) {
    if (free[i]) lowest.push_back(static_cast<int32_t>(i));
  }
  EXPECT_EQ(a.acquire(out, 64), 64u);
  bool highest_first = true;
  for (uint32_t j = 0; j < 64; j++) highest_first = highest_first && out[j] == lowest[63 - j];
  EXPECT(highest_first);
  for (int32_t i : lowest) state[i] = 1;
  EXPECT(check_all(a, state, none).empty());
}

// The lifetime of viewed slab memory (slab.h), on one slab of either kind: 511 blocks of 8 bytes
// come from the heap, 512 (one page, os::kSlabMapThreshold) are mapped.
static size_t live() { return slabpool::slab_memory_live_bytes(); }
static size_t committed() { return slabpool::slab_memory_committed_bytes(); }

static bool all_bytes(const uint8_t* p, size_t n, uint8_t value) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != value) return false;
  }
  return true;
}

// Pages of [p, p + n) in physical memory, to see a decommit give them back.
#ifdef _WIN32
static size_t resident_pages(const uint8_t* p, size_t n) {
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  const size_t page = info.dwPageSize;
  std::vector<PSAPI_WORKING_SET_EX_INFORMATION> pages((n + page - 1) / page);
  for (size_t i = 0; i < pages.size(); i++) pages[i].VirtualAddress = const_cast<uint8_t*>(p) + i * page;
  if (!QueryWorkingSetEx(GetCurrentProcess(), pages.data(), static_cast<DWORD>(pages.size() * sizeof(pages[0])))) return SIZE_MAX;
  size_t resident = 0;
  for (const PSAPI_WORKING_SET_EX_INFORMATION& info_i : pages) resident += info_i.VirtualAttributes.Valid;
  return resident;
}
#else
static size_t resident_pages(const uint8_t* p, size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in(n / page + 1);
  if (mincore(const_cast<uint8_t*>(p), n, in.data()) != 0) return SIZE_MAX;
  size_t resident = 0;
  for (size_t i = 0; i < (n + page - 1) / page; i++) resident += in[i] & 1;
  return resident;
}
#endif

static void test_slab_memory_lifetime(uint32_t blocks) {
  using slabpool::SlabMemory;
  const size_t bytes = blocks * 8;
  const bool mapped = bytes >= slabpool::os::kSlabMapThreshold;
  const size_t live0 = live(), committed0 = committed();
  int32_t out[2];

  {
    // free_slab while two views are held: decommitted (zeros, writable), not freed; no later slab
    // overlaps it; freed with the last view.
    Allocator a(8, 8, blocks);
    EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, bytes);
    EXPECT(a.slab_memory(1) == nullptr);  // an empty slot
    SlabMemory* memory = a.slab_memory(0);
    EXPECT(memory != nullptr);
    EXPECT(slabpool::slab_memory_retain(memory) == memory);
    slabpool::slab_memory_retain(memory);
    uint8_t* view = a.slab_base(0);
    EXPECT_EQ(a.acquire(out, 1), 1u);
    std::memset(view + out[0] * 8, 0xa5, 8);
    std::memset(view, 0x5a, bytes);  // the whole slab, so that every page of it is resident
    EXPECT(a.release(out, 1));
    if (mapped) EXPECT_EQ(resident_pages(view, bytes), bytes / 4096);
    EXPECT_EQ(a.free_slab(0), bytes);
    if (mapped) EXPECT_EQ(resident_pages(view, bytes), 0u);  // before reading: a read maps the zero page
    EXPECT(all_bytes(view, bytes, 0));
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, mapped ? 0 : bytes);
    std::memset(view, 0x3c, bytes);
    EXPECT(all_bytes(view, bytes, 0x3c));
    EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
    const uintptr_t old_at = reinterpret_cast<uintptr_t>(view), new_at = reinterpret_cast<uintptr_t>(a.slab_base(0));
    EXPECT(new_at + bytes <= old_at || old_at + bytes <= new_at);
    EXPECT(all_bytes(a.slab_base(0), bytes, 0));
    EXPECT_EQ(live() - live0, 2 * bytes);
    slabpool::slab_memory_release(memory);
    EXPECT(all_bytes(view, bytes, 0x3c));  // one view left: still there
    EXPECT_EQ(live() - live0, 2 * bytes);
    slabpool::slab_memory_release(memory);
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, bytes);
    EXPECT_EQ(a.free_slab(0), bytes);  // no view: freed at once
    EXPECT_EQ(live() - live0, 0u);
    EXPECT_EQ(committed() - committed0, 0u);
  }

  {
    // The destructor alone (a garbage-collected pool): held blocks keep their bytes.
    SlabMemory* memory;
    uint8_t* view;
    {
      Allocator a(8, 8, blocks);
      EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
      memory = slabpool::slab_memory_retain(a.slab_memory(0));
      view = a.slab_base(0);
      EXPECT_EQ(a.acquire(out, 2), 2u);
      std::memset(view, 0x77, bytes);
    }
    EXPECT(all_bytes(view, bytes, 0x77));
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, bytes);
    slabpool::slab_memory_release(memory);
    EXPECT_EQ(live() - live0, 0u);
    EXPECT_EQ(committed() - committed0, 0u);
  }

  {
    // decommit_all() then the destructor (a destroyed pool): viewed slabs read zeros, blocks in
    // use included; an unviewed slab is left alone and freed by the destructor.
    SlabMemory* memory;
    uint8_t* view;
    {
      Allocator a(8, 8, blocks);
      EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
      EXPECT(a.add_slab(1, blocks) == Allocator::Result::kOk);
      memory = slabpool::slab_memory_retain(a.slab_memory(0));
      view = a.slab_base(0);
      EXPECT_EQ(a.acquire(out, 2), 2u);
      std::memset(view, 0x11, bytes);
      std::memset(a.slab_base(1), 0x22, bytes);
      a.decommit_all();
      EXPECT(all_bytes(view, bytes, 0));
      EXPECT(all_bytes(a.slab_base(1), bytes, 0x22));
      EXPECT_EQ(live() - live0, 2 * bytes);
      EXPECT_EQ(committed() - committed0, mapped ? bytes : 2 * bytes);
      a.decommit_all();  // at most once
      EXPECT_EQ(committed() - committed0, mapped ? bytes : 2 * bytes);
    }
    EXPECT(all_bytes(view, bytes, 0));
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, mapped ? 0 : bytes);
    std::memset(view, 0x33, bytes);
    EXPECT(all_bytes(view, bytes, 0x33));
    slabpool::slab_memory_release(memory);
    EXPECT_EQ(live() - live0, 0u);
    EXPECT_EQ(committed() - committed0, 0u);
  }

  {
    // Pins: decommit_all() and free_slab leave a pinned slab committed and intact, viewed or not;
    // the last unpin of a retired slab decommits it while a view remains, or frees it when none
    // does; an unpin of a slab not retired leaves it alone.
    Allocator a(8, 8, blocks);
    EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
    EXPECT(a.add_slab(1, blocks) == Allocator::Result::kOk);
    EXPECT(a.add_slab(2, blocks) == Allocator::Result::kOk);
    SlabMemory* viewed = a.slab_memory(0);
    SlabMemory* unviewed = a.slab_memory(1);
    SlabMemory* kept = a.slab_memory(2);
    uint8_t* v0 = a.slab_base(0);
    uint8_t* v1 = a.slab_base(1);
    slabpool::slab_memory_retain(viewed);
    EXPECT(slabpool::slab_memory_pin(viewed) == viewed);
    slabpool::slab_memory_pin(viewed);  // pins nest
    slabpool::slab_memory_pin(unviewed);
    slabpool::slab_memory_pin(kept);
    slabpool::slab_memory_unpin(kept);  // never retired: nothing happens to it
    EXPECT_EQ(committed() - committed0, 3 * bytes);
    std::memset(v0, 0x44, bytes);
    std::memset(v1, 0x55, bytes);
    a.decommit_all();
    EXPECT(all_bytes(v0, bytes, 0x44));
    EXPECT(all_bytes(v1, bytes, 0x55));
    EXPECT_EQ(committed() - committed0, 3 * bytes);  // slab 2 has no other reference: nothing to decommit
    EXPECT_EQ(a.free_slab(1), bytes);                // given up while pinned
    EXPECT_EQ(live() - live0, 3 * bytes);            // the pin keeps its range
    EXPECT(all_bytes(v1, bytes, 0x55));
    slabpool::slab_memory_unpin(unviewed);  // no view: freed
    EXPECT_EQ(live() - live0, 2 * bytes);
    EXPECT_EQ(a.free_slab(0), bytes);
    EXPECT(all_bytes(v0, bytes, 0x44));  // still pinned twice
    slabpool::slab_memory_unpin(viewed);
    EXPECT(all_bytes(v0, bytes, 0x44));
    EXPECT_EQ(committed() - committed0, 2 * bytes);
    slabpool::slab_memory_unpin(viewed);  // the last pin: the view left reads zeros
    if (mapped) EXPECT_EQ(resident_pages(v0, bytes), 0u);
    EXPECT(all_bytes(v0, bytes, 0));
    EXPECT_EQ(live() - live0, 2 * bytes);
    EXPECT_EQ(committed() - committed0, mapped ? bytes : 2 * bytes);
    slabpool::slab_memory_release(viewed);
    EXPECT_EQ(live() - live0, bytes);
  }
  EXPECT_EQ(live() - live0, 0u);
  EXPECT_EQ(committed() - committed0, 0u);

  {
    // decommit_all() then free_slab of the same viewed slab: the bytes leave the committed count once.
    Allocator a(8, 8, blocks);
    EXPECT(a.add_slab(0, blocks) == Allocator::Result::kOk);
    SlabMemory* memory = slabpool::slab_memory_retain(a.slab_memory(0));
    a.decommit_all();
    EXPECT_EQ(a.free_slab(0), bytes);
    EXPECT_EQ(live() - live0, bytes);
    EXPECT_EQ(committed() - committed0, mapped ? 0 : bytes);
    slabpool::slab_memory_release(memory);
    EXPECT_EQ(live() - live0, 0u);
    EXPECT_EQ(committed() - committed0, 0u);
  }
}

// Random walk against the shadow model (shadow.h): every operation checked, then check().
static slabpool_test::Shadow::Reached reached;

static void test_random(uint32_t seed) {
  std::mt19937 gen(seed);
  auto below = [&](uint32_t n) { return static_cast<uint32_t>(gen() % n); };
  // Every third seed has slabs of up to 300 blocks (10 bitmap words, run index leaves, each).
  slabpool_test::Shadow shadow(1 + below(seed % 3 == 0 ? 300 : 70), size_t{8} << below(10), 1 + below(3));
  bool ok = shadow.add_slab(0, gen());
  for (int step = 0; ok && step < 4000; step++) {
    switch (below(12)) {
      case 0:
      case 1: ok = shadow.acquire(gen(), gen()); break;
      case 2:
      case 3: ok = shadow.release(gen(), below(2) == 0); break;
      case 4: ok = shadow.acquire_run(gen()); break;
      case 5: ok = shadow.acquire_run(gen(), UINT32_MAX); break;  // up to a whole slab
      case 6: ok = below(2) ? shadow.add_slab(gen(), gen()) : shadow.free_slab(gen()); break;
      case 7: ok = shadow.release_wrong(gen()); break;
      case 8: ok = shadow.take_view(gen(), gen()); break;
      case 9: ok = shadow.drop_view(gen()); break;
      case 10: ok = below(16) == 0 ? shadow.restart(below(2) == 0, gen()) : shadow.largest_with_cache(); break;
      default: ok = shadow.largest_with_cache(); break;
    }
    ok = ok && shadow.verify();
    checks++;
    if (!ok) {
      failures++;
      std::fprintf(stderr, "seed %u step %d: %s\n", seed, step, shadow.problem().c_str());
    }
  }
  checks++;
  if (ok && !shadow.close()) {
    failures++;
    std::fprintf(stderr, "seed %u at the end: %s\n", seed, shadow.problem().c_str());
  }
  const slabpool_test::Shadow::Reached& r = shadow.reached();
  reached.heap_retired += r.heap_retired;
  reached.mapped_retired += r.mapped_retired;
  reached.decommit_destroyed += r.decommit_destroyed;
  reached.plain_destroyed += r.plain_destroyed;
  reached.last_view_freed += r.last_view_freed;
}

int main(int argc, char** argv) {
  uint32_t seeds = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 40;
  test_construction();
  test_alignment();
  test_blocks_and_runs();
  test_slabs();
  test_refusals();
  test_first_fit_past_a_short_run();
  test_first_fit_across_words_and_slots();
  test_slab_memory_lifetime(511);
  test_slab_memory_lifetime(512);
  for (uint32_t seed = 1; seed <= seeds; seed++) test_random(seed);
  std::printf("views held when: a heap slab was freed %u times, a mapped slab %u, decommit_all and destruction %u, destruction alone %u; last view freed a given-up slab %u times\n",
              reached.heap_retired, reached.mapped_retired, reached.decommit_destroyed, reached.plain_destroyed, reached.last_view_freed);
  if (seeds >= 8) {  // the fewest any caller runs (valgrind); each path is reached by then
    EXPECT(reached.heap_retired > 0);
    EXPECT(reached.mapped_retired > 0);
    EXPECT(reached.decommit_destroyed > 0);
    EXPECT(reached.plain_destroyed > 0);
    EXPECT(reached.last_view_freed > 0);
  }
  return expect_summary();
}
