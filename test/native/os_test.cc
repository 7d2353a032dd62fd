// Unit test of the OS layer's page treatments (native/os.h: huge pages, pre-faulting, reading back
// what the kernel gave) and of the allocator passing them through, without Node. Built and run by
// test/native-core.test.ts (npm test), under sanitizers and valgrind (scripts/check-native.js),
// and for Windows with mingw-w64 under wine (.ci/win32). What needs transparent huge pages is
// skipped, saying why, where the system has none.
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

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../native/os.h"
#include "../../native/slab.h"
#include "expect.h"

namespace os = slabpool::os;

static bool all_zero(const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

static size_t page_size() {
#ifdef _WIN32
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize;
#else
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
#endif
}

// Pages that [p, p + n) touches, and of those the ones in physical memory.
static size_t pages_spanned(const void* p, size_t n) {
  const uintptr_t page = page_size(), a = reinterpret_cast<uintptr_t>(p);
  return (a + n + page - 1) / page - a / page;
}
#ifdef _WIN32
static size_t resident_pages(const void* p, size_t n) {
  const uintptr_t page = page_size(), lo = reinterpret_cast<uintptr_t>(p) / page * page;
  std::vector<PSAPI_WORKING_SET_EX_INFORMATION> pages(pages_spanned(p, n));
  for (size_t i = 0; i < pages.size(); i++) pages[i].VirtualAddress = reinterpret_cast<void*>(lo + i * page);
  if (!QueryWorkingSetEx(GetCurrentProcess(), pages.data(), static_cast<DWORD>(pages.size() * sizeof(pages[0])))) return SIZE_MAX;
  size_t resident = 0;
  for (const PSAPI_WORKING_SET_EX_INFORMATION& info : pages) resident += info.VirtualAttributes.Valid;
  return resident;
}
#else
static size_t resident_pages(const void* p, size_t n) {
  const uintptr_t page = page_size(), lo = reinterpret_cast<uintptr_t>(p) / page * page;
  std::vector<unsigned char> in(pages_spanned(p, n));
  if (mincore(reinterpret_cast<void*>(lo), in.size() * page, in.data()) != 0) return SIZE_MAX;
  size_t resident = 0;
  for (unsigned char c : in) resident += c & 1;
  return resident;
}
#endif

static int64_t read_back(const void* p, size_t bytes, os::ReadBack only, os::ReadBack* how) {
  const os::Range range{p, bytes};
  return os::huge_page_bytes(&range, 1, how, only);
}

static void test_support() {
  const os::HugePageSupport s = os::huge_page_support();
  EXPECT((s.page_bytes == 0) == (s.why_not != nullptr));
#ifdef __linux__
  FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == nullptr) {
    EXPECT_EQ(s.page_bytes, size_t{0});
    EXPECT(std::strstr(s.why_not, "no transparent huge pages") != nullptr);
    return;
  }
  char line[128] = {};
  EXPECT(std::fgets(line, sizeof line, f) != nullptr);
  std::fclose(f);
  EXPECT(s.mode != nullptr);
  if (s.mode == nullptr) return;
  EXPECT(std::strstr(line, (std::string("[") + s.mode + "]").c_str()) != nullptr);
  EXPECT_EQ(s.page_bytes == 0, std::strcmp(s.mode, "never") == 0);
  if (s.page_bytes != 0) EXPECT((s.page_bytes & (s.page_bytes - 1)) == 0 && s.page_bytes >= (size_t{2} << 20));
#else
  EXPECT_EQ(s.page_bytes, size_t{0});
  EXPECT(s.mode == nullptr);
#endif
}

// Without a request, and where no huge page fits: as before issue 18, and said so.
static void test_plain_and_small() {
  os::SlabMapping m;
  void* p = os::alloc_slab(1 << 20, 64, os::SlabRequest{}, &m);
  EXPECT(p != nullptr && m.mapped && m.huge == os::Huge::kNotAsked && m.prefault == os::Prefault::kNotAsked);
  EXPECT_EQ(resident_pages(p, 1 << 20), size_t{0});
  os::free_slab(p, 1 << 20, m.mapped);

  // A heap slab: no huge page fits, and the memset has touched every page.
  p = os::alloc_slab(1000, 64, os::SlabRequest{true, true}, &m);
  EXPECT(p != nullptr && !m.mapped && m.huge == os::Huge::kTooSmall && m.prefault == os::Prefault::kTouched);
  EXPECT(all_zero(p, 1000));
  os::free_slab(p, 1000, m.mapped);

  // A mapped slab under one huge page: left as it is, untouched.
  const bool available = os::huge_page_support().page_bytes != 0;
  p = os::alloc_slab(1 << 20, 64, os::SlabRequest{true, false}, &m);
  EXPECT(p != nullptr && m.mapped && m.huge == (available ? os::Huge::kTooSmall : os::Huge::kUnavailable));
  EXPECT_EQ(resident_pages(p, 1 << 20), size_t{0});
  os::free_slab(p, 1 << 20, m.mapped);
}

// Pre-faulting: every page resident at once, contents zero, by either method.
static void test_prefault() {
  const size_t bytes = (size_t{16} << 20) + 100;  // not a whole number of pages
  os::SlabMapping m;
  void* p = os::alloc_slab(bytes, 64, os::SlabRequest{false, true}, &m);
  EXPECT(p != nullptr && m.mapped && m.huge == os::Huge::kNotAsked);
#ifdef __linux__
  EXPECT(m.prefault == os::Prefault::kPopulated);  // Linux 5.14+ (the supported kernels of Node 20's distributions are older only on RHEL 8)
#else
  EXPECT(m.prefault == os::Prefault::kTouched);
#endif
  EXPECT_EQ(resident_pages(p, bytes), pages_spanned(p, bytes));
  EXPECT(all_zero(p, bytes));
  os::free_slab(p, bytes, m.mapped);

  // touch_pages alone (the fallback of kernels before 5.14): every page, even at unaligned ends.
  os::SlabMapping plain;
  uint8_t* q = static_cast<uint8_t*>(os::alloc_slab(size_t{4} << 20, 64, os::SlabRequest{}, &plain));
  EXPECT_EQ(resident_pages(q, size_t{4} << 20), size_t{0});
  os::touch_pages(q + 100, (size_t{2} << 20) + 5000);
  EXPECT_EQ(resident_pages(q + 100, (size_t{2} << 20) + 5000), pages_spanned(q + 100, (size_t{2} << 20) + 5000));
  EXPECT(all_zero(q, size_t{4} << 20));

  // prefault() of memory alloc_slab did not make and that does not start on a page (the native
  // engine's V8-owned slabs): the pages at either end hold bytes of it, so they are populated too.
  uint8_t* r = q + (size_t{3} << 20) + 16;
  const size_t n = (size_t{512} << 10) + 3;
  const os::Prefault how = os::prefault(r, n);
  EXPECT(how == os::Prefault::kPopulated || how == os::Prefault::kTouched);
  EXPECT_EQ(resident_pages(r, n), pages_spanned(r, n));
  EXPECT(all_zero(q, size_t{4} << 20));
  os::free_slab(q, size_t{4} << 20, plain.mapped);
}

// Huge pages: mapped aligned, advised, backed when touched; read back exactly by both methods.
static void test_huge_pages() {
  const os::HugePageSupport support = os::huge_page_support();
  if (support.page_bytes == 0) {
    std::printf("skipped the huge page checks: %s\n", support.why_not);
    os::SlabMapping m;
    void* p = os::alloc_slab(size_t{8} << 20, 64, os::SlabRequest{true, false}, &m);
    EXPECT(p != nullptr && m.huge == os::Huge::kUnavailable);
    os::ReadBack how;
    EXPECT(read_back(p, size_t{8} << 20, os::ReadBack::kNone, &how) <= 0);
    os::free_slab(p, size_t{8} << 20, m.mapped);
    return;
  }
  const size_t huge = support.page_bytes;
  const size_t bytes = 4 * huge + 4096;  // four huge pages and a tail no huge page fits in
  os::SlabMapping m;
  uint8_t* p = static_cast<uint8_t*>(os::alloc_slab(bytes, 64, os::SlabRequest{true, false}, &m));
  EXPECT(p != nullptr && m.mapped && m.huge == os::Huge::kAdvised && m.prefault == os::Prefault::kNotAsked);
  EXPECT_EQ(m.huge_page_bytes, huge);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % huge, uintptr_t{0});
  EXPECT_EQ(resident_pages(p, bytes), size_t{0});  // advised, not populated
  os::ReadBack how = os::ReadBack::kNone;
  EXPECT_EQ(read_back(p, bytes, os::ReadBack::kNone, &how), int64_t{0});
  EXPECT(how != os::ReadBack::kNone);
  EXPECT(all_zero(p, bytes));
  std::memset(p, 0x5a, bytes);

  // What the kernel gave: both methods, the same answer. A kernel short of free huge pages may
  // give fewer, never more than the four that fit.
  os::ReadBack pagemap_how, smaps_how;
  const int64_t by_pagemap = read_back(p, bytes, os::ReadBack::kPagemap, &pagemap_how);
  const int64_t by_smaps = read_back(p, bytes, os::ReadBack::kSmaps, &smaps_how);
  EXPECT(smaps_how == os::ReadBack::kSmaps && by_smaps > 0 && by_smaps <= static_cast<int64_t>(4 * huge) && by_smaps % static_cast<int64_t>(huge) == 0);
  if (pagemap_how == os::ReadBack::kPagemap) EXPECT_EQ(by_pagemap, by_smaps);
  else std::printf("PAGEMAP_SCAN is missing (Linux before 6.7): checked /proc/self/smaps alone\n");
  std::printf("huge pages: %lld of %zu bytes, read back by pagemap (%lld) and smaps (%lld)\n", static_cast<long long>(by_smaps), bytes,
              static_cast<long long>(by_pagemap), static_cast<long long>(by_smaps));

  // Part of a slab: pagemap sees the range itself, smaps at most the range's bytes of its mapping.
  if (by_smaps == static_cast<int64_t>(4 * huge)) {
    EXPECT_EQ(read_back(p + huge, huge, os::ReadBack::kSmaps, &how), static_cast<int64_t>(huge));
    if (pagemap_how == os::ReadBack::kPagemap) EXPECT_EQ(read_back(p + huge, huge, os::ReadBack::kPagemap, &how), static_cast<int64_t>(huge));
  }
  // Two ranges: a sum; memory without huge pages: none.
  os::SlabMapping plain;
  void* other = os::alloc_slab(bytes, 64, os::SlabRequest{}, &plain);
  std::memset(other, 1, 4096);
  const os::Range both[2] = {{p, bytes}, {other, bytes}};
  EXPECT_EQ(os::huge_page_bytes(both, 2, &how), by_smaps);
  EXPECT_EQ(read_back(other, bytes, os::ReadBack::kNone, &how), int64_t{0});
  os::free_slab(other, bytes, plain.mapped);

  // Decommitted: the huge pages go back at once, the range reads zeros.
  EXPECT(os::decommit_slab(p, bytes, m.mapped));
  EXPECT_EQ(read_back(p, bytes, os::ReadBack::kNone, &how), int64_t{0});
  EXPECT_EQ(resident_pages(p, bytes), size_t{0});
  EXPECT(all_zero(p, bytes));
  os::free_slab(p, bytes, m.mapped);

  // Both options: advised first, so the pages the kernel populates are huge.
  p = static_cast<uint8_t*>(os::alloc_slab(2 * huge, 64, os::SlabRequest{true, true}, &m));
  EXPECT(p != nullptr && m.huge == os::Huge::kAdvised && m.prefault == os::Prefault::kPopulated);
  EXPECT_EQ(resident_pages(p, 2 * huge), pages_spanned(p, 2 * huge));
  const int64_t populated_huge = read_back(p, 2 * huge, os::ReadBack::kNone, &how);
  EXPECT(populated_huge > 0 && populated_huge <= static_cast<int64_t>(2 * huge));
  EXPECT(all_zero(p, 2 * huge));
  os::free_slab(p, 2 * huge, m.mapped);
}

// The allocator hands its request to every slab it allocates, and check() holds an advised slab
// to the huge page alignment; adopted memory has no mapping of its own.
static void test_allocator() {
  const size_t huge = os::huge_page_support().page_bytes;
  const uint32_t blocks = huge != 0 ? static_cast<uint32_t>(huge / 64) : 32768;  // one huge page of 64-byte blocks (2 MiB without THP)
  slabpool::Allocator a(64, 64, blocks, os::SlabRequest{true, true});
  EXPECT(a.add_slab(0, blocks) == slabpool::Allocator::Result::kOk);
  EXPECT(a.add_slab(1, 3) == slabpool::Allocator::Result::kOk);  // a small last slab
  const os::SlabMapping big = a.slab_mapping(0), small = a.slab_mapping(1);
  EXPECT(big.huge == (huge != 0 ? os::Huge::kAdvised : os::Huge::kUnavailable));
  EXPECT(big.prefault != os::Prefault::kNotAsked && big.prefault != os::Prefault::kFailed);
  EXPECT(small.huge == os::Huge::kTooSmall && small.prefault == os::Prefault::kTouched);
  if (huge != 0) EXPECT_EQ(reinterpret_cast<uintptr_t>(a.slab_base(0)) % huge, uintptr_t{0});
  std::vector<uint8_t> state(2 * blocks, 0);
  EXPECT(a.check(state.data(), state.size(), nullptr, 0).empty());
  EXPECT(a.slab_mapping(2).huge == os::Huge::kNotAsked);  // no slab there
  std::vector<uint8_t> memory(64 * 8 + 64);
  uint8_t* aligned = memory.data() + (64 - reinterpret_cast<uintptr_t>(memory.data()) % 64) % 64;
  slabpool::Allocator adopting(64, 64, 8, os::SlabRequest{true, true});
  EXPECT(adopting.add_slab(0, 8, aligned) == slabpool::Allocator::Result::kOk);
  EXPECT(adopting.slab_mapping(0).huge == os::Huge::kNotAsked && adopting.slab_mapping(0).prefault == os::Prefault::kNotAsked);
}

int main() {
  test_support();
  test_plain_and_small();
  test_prefault();
  test_huge_pages();
  test_allocator();
  return expect_summary();
}
