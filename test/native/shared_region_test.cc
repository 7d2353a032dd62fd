// Unit test of the shared region registry (native/shared_region.h), without Node: sizes and
// alignments, tokens, reference counting, freeing at zero, owners, refusals, the races the N-API
// layer will bring (a finalizer and a cleanup hook releasing one reference, a last release
// against an acquire), and a multi-threaded stress test with an exact account at the end. Built
// and run by test/native-core.test.ts (npm test), under ASAN+UBSan, valgrind and ThreadSanitizer
// (scripts/check-native.js), and for Windows with mingw-w64 under wine (.ci/win32).
//   shared_region_test [seeds [operations per thread [race rounds]]]
#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../../native/shared_region.h"
#include "expect.h"

namespace sr = slabpool::shared_region;
using sr::Status;

inline std::string show(Status s) { return sr::status_name(s); }

static bool aligned(const void* p, size_t alignment) { return reinterpret_cast<uintptr_t>(p) % alignment == 0; }

static bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

// The page holding p belongs to no mapping any more: a mapped region's memory went back to the OS.
static bool unmapped(const void* p) {
#ifdef _WIN32
  MEMORY_BASIC_INFORMATION info;
  return VirtualQuery(p, &info, sizeof info) == sizeof info && info.State == MEM_FREE;
#else
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
#ifdef __linux__
  unsigned char resident;
#else
  char resident;
#endif
  return mincore(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) / page * page), 1, &resident) != 0 && errno == ENOMEM;
#endif
}

static bool same_totals(const sr::Totals& a, const sr::Totals& b) {
  return a.regions == b.regions && a.bytes == b.bytes && a.references == b.references && a.created == b.created && a.freed == b.freed;
}

static void test_sizes_and_alignments() {
  const sr::Totals before = sr::totals();
  const size_t sizes[] = {1, 8, 63, 64, 100, 4095, 4096, 4097, 65536, (size_t{1} << 20) + 8};
  const size_t alignments[] = {8, 16, 64, 256, 4096};
  uint64_t made = 0;
  for (size_t bytes : sizes) {
    for (size_t alignment : alignments) {
      sr::Reference r{};
      EXPECT_EQ(sr::create(bytes, alignment, 7, &r), Status::kOk);
      made++;
      EXPECT(r.token != 0);
      EXPECT(r.id != 0);
      EXPECT_EQ(r.bytes, bytes);
      EXPECT(aligned(r.base, alignment));
      if (bytes >= 4096) EXPECT(aligned(r.base, 4096));  // mapped on its own: a page at least
      EXPECT(all_zero(r.base, bytes));
      std::memset(r.base, 0xa5, bytes);  // the whole range is writable
      sr::Info info{};
      EXPECT_EQ(sr::query(r.token, &info), Status::kOk);
      EXPECT_EQ(info.bytes, bytes);
      EXPECT_EQ(info.alignment, alignment);
      EXPECT_EQ(info.references, 1u);
      const sr::Totals during = sr::totals();
      EXPECT_EQ(during.regions, before.regions + 1);
      EXPECT_EQ(during.bytes, before.bytes + bytes);
      EXPECT_EQ(during.references, before.references + 1);
      EXPECT_EQ(sr::release(r.id), Status::kFreed);
      if (bytes >= 4096) EXPECT(unmapped(r.base));
      EXPECT_EQ(sr::query(r.token, &info), Status::kEnded);
    }
  }
  const sr::Totals after = sr::totals();
  EXPECT_EQ(after.regions, before.regions);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(after.references, before.references);
  EXPECT_EQ(after.created, before.created + made);
  EXPECT_EQ(after.freed, before.freed + made);
}

static void test_refusals() {
  const sr::Totals before = sr::totals();
  sr::Reference r{1, 2, nullptr, 3};
  EXPECT_EQ(sr::create(0, 64, 0, &r), Status::kInvalid);
  EXPECT_EQ(sr::create(static_cast<size_t>(sr::kMaxRegionBytes) + 1, 64, 0, &r), Status::kInvalid);
  EXPECT_EQ(sr::create(SIZE_MAX, 64, 0, &r), Status::kInvalid);
  for (size_t alignment : {size_t{0}, size_t{1}, size_t{4}, size_t{24}, size_t{8192}, SIZE_MAX}) EXPECT_EQ(sr::create(64, alignment, 0, &r), Status::kInvalid);
  EXPECT_EQ(sr::create(64, 64, 0, nullptr), Status::kInvalid);
  EXPECT(r.token == 1 && r.id == 2 && r.base == nullptr && r.bytes == 3);  // left as it was
  EXPECT(same_totals(sr::totals(), before));

  sr::Reference a{};
  EXPECT_EQ(sr::create(64, 64, 0, &a), Status::kOk);
  sr::Info info{};
  EXPECT_EQ(sr::acquire(0, 64, 0, &r), Status::kUnknown);
  EXPECT_EQ(sr::acquire(a.token, 64, 0, nullptr), Status::kInvalid);
  EXPECT_EQ(sr::acquire(a.token ^ 1, 64, 0, &r), Status::kUnknown);  // a token never given (its counter is out of range)
  EXPECT_EQ(sr::acquire(~a.token, 64, 0, &r), Status::kUnknown);
  EXPECT_EQ(sr::query(0, &info), Status::kUnknown);
  EXPECT_EQ(sr::query(a.token, nullptr), Status::kInvalid);
  EXPECT_EQ(sr::query(a.token ^ 0x8000, &info), Status::kUnknown);
  EXPECT_EQ(sr::release(0), Status::kUnknown);
  EXPECT_EQ(sr::release(UINT64_MAX), Status::kUnknown);
  EXPECT_EQ(sr::release(a.id + 1000000), Status::kUnknown);  // an id not given yet
  EXPECT(r.token == 1 && r.id == 2 && r.base == nullptr && r.bytes == 3);
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 1u);
  EXPECT_EQ(sr::release(a.id), Status::kFreed);
  EXPECT_EQ(sr::totals().regions, before.regions);

  for (Status s : {Status::kOk, Status::kFreed, Status::kInvalid, Status::kNoMemory, Status::kUnknown, Status::kEnded, Status::kSizeMismatch}) {
    EXPECT(std::strcmp(sr::status_name(s), "?") != 0);
  }
  EXPECT_EQ(std::string(sr::status_name(Status::kSizeMismatch)), std::string("size mismatch"));
}

static void test_references() {
  const sr::Totals before = sr::totals();
  sr::Reference a{}, b{}, c{1, 2, nullptr, 3};
  EXPECT_EQ(sr::create(5000, 64, 1, &a), Status::kOk);
  EXPECT_EQ(sr::acquire(a.token, 5000, 2, &b), Status::kOk);
  EXPECT_EQ(b.token, a.token);
  EXPECT(b.base == a.base);
  EXPECT_EQ(b.bytes, size_t{5000});
  EXPECT(b.id != a.id && b.id != 0);
  sr::Info info{};
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 2u);
  EXPECT_EQ(sr::totals().references, before.references + 2);

  // The wrong size takes no reference.
  EXPECT_EQ(sr::acquire(a.token, 4999, 2, &c), Status::kSizeMismatch);
  EXPECT_EQ(sr::acquire(a.token, 5001, 2, &c), Status::kSizeMismatch);
  EXPECT(c.token == 1 && c.id == 2 && c.base == nullptr && c.bytes == 3);
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 2u);

  // One memory under both references.
  b.base[4999] = 42;
  EXPECT_EQ(a.base[4999], 42);

  // The first release leaves the memory to the other reference; releasing it again drops nothing.
  EXPECT_EQ(sr::release(a.id), Status::kOk);
  EXPECT_EQ(sr::release(a.id), Status::kEnded);
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 1u);
  b.base[0] = 7;
  EXPECT_EQ(b.base[0] + b.base[4999], 49);
  EXPECT(!unmapped(b.base));

  // The last one frees it; the token is ended for good, and the reference too.
  EXPECT_EQ(sr::release(b.id), Status::kFreed);
  EXPECT(unmapped(b.base));
  EXPECT_EQ(sr::query(a.token, &info), Status::kEnded);
  EXPECT_EQ(sr::acquire(a.token, 5000, 2, &c), Status::kEnded);
  EXPECT_EQ(sr::acquire(a.token, 4999, 2, &c), Status::kEnded);
  EXPECT_EQ(sr::release(b.id), Status::kEnded);
  EXPECT(same_totals(sr::totals(), sr::Totals{before.regions, before.bytes, before.references, before.created + 1, before.freed + 1}));

  // Many references, released in another order than taken.
  sr::Reference first{};
  EXPECT_EQ(sr::create(100, 8, 3, &first), Status::kOk);
  std::vector<sr::Reference> refs(50);
  for (sr::Reference& r : refs) EXPECT_EQ(sr::acquire(first.token, 100, 3, &r), Status::kOk);
  EXPECT_EQ(sr::query(first.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 51u);
  for (size_t i = 0; i < refs.size(); i += 2) EXPECT_EQ(sr::release(refs[i].id), Status::kOk);
  EXPECT_EQ(sr::release(first.id), Status::kOk);
  for (size_t i = 1; i + 2 < refs.size(); i += 2) EXPECT_EQ(sr::release(refs[i].id), Status::kOk);
  EXPECT_EQ(sr::query(first.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 1u);
  EXPECT_EQ(sr::release(refs.back().id), Status::kFreed);
  EXPECT_EQ(sr::totals().regions, before.regions);
}

static void test_tokens() {
  const int n = 2000;
  std::vector<uint64_t> tokens, ids;
  for (int i = 0; i < n; i++) {
    sr::Reference r{};
    EXPECT_EQ(sr::create(64, 64, 0, &r), Status::kOk);
    tokens.push_back(r.token);
    ids.push_back(r.id);
    EXPECT_EQ(sr::release(r.id), Status::kFreed);
  }
  // Never 0, never twice; ids increase.
  EXPECT(std::count(tokens.begin(), tokens.end(), uint64_t{0}) == 0);
  for (int i = 1; i < n; i++) EXPECT(ids[i] > ids[i - 1]);
  std::vector<uint64_t> sorted = tokens;
  std::sort(sorted.begin(), sorted.end());
  EXPECT(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  // Not a counter: consecutive tokens differ in about half their bits, and not by a constant.
  double bits = 0;
  int same_step = 0;
  for (int i = 1; i < n; i++) {
    uint64_t x = tokens[i] ^ tokens[i - 1];
    int c = 0;
    for (; x != 0; x &= x - 1) c++;
    bits += c;
    if (i > 1 && tokens[i] - tokens[i - 1] == tokens[i - 1] - tokens[i - 2]) same_step++;
  }
  bits /= n - 1;
  EXPECT(bits > 28 && bits < 36);
  EXPECT(same_step < 3);
  // Every one of them known as ended.
  sr::Info info{};
  int ended = 0;
  for (uint64_t t : tokens) ended += sr::query(t, &info) == Status::kEnded;
  EXPECT_EQ(ended, n);
}

static void test_owners() {
  const sr::Totals before = sr::totals();
  sr::Reference a{}, b{}, c{}, d{}, e{};
  EXPECT_EQ(sr::create(8192, 4096, 10, &a), Status::kOk);
  EXPECT_EQ(sr::acquire(a.token, 8192, 11, &b), Status::kOk);
  EXPECT_EQ(sr::acquire(a.token, 8192, 11, &c), Status::kOk);
  EXPECT_EQ(sr::acquire(a.token, 8192, 10, &d), Status::kOk);
  EXPECT_EQ(sr::create(16384, 64, 11, &e), Status::kOk);

  sr::Dropped none = sr::release_owner(12);
  EXPECT_EQ(none.references, size_t{0});
  EXPECT_EQ(none.regions, size_t{0});

  // Owner 11's teardown: three references, and e's region with its only one.
  sr::Dropped dropped = sr::release_owner(11);
  EXPECT_EQ(dropped.references, size_t{3});
  EXPECT_EQ(dropped.regions, size_t{1});
  sr::Info info{};
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 2u);
  EXPECT_EQ(sr::query(e.token, &info), Status::kEnded);
  EXPECT(unmapped(e.base));
  // The finalizer of a reference the cleanup hook released: nothing more.
  EXPECT_EQ(sr::release(b.id), Status::kEnded);
  EXPECT_EQ(sr::release(e.id), Status::kEnded);
  EXPECT_EQ(sr::query(a.token, &info), Status::kOk);
  EXPECT_EQ(info.references, 2u);
  a.base[8191] = 1;

  // A release by id, then the owner's teardown takes the rest.
  EXPECT_EQ(sr::release(d.id), Status::kOk);
  dropped = sr::release_owner(10);
  EXPECT_EQ(dropped.references, size_t{1});
  EXPECT_EQ(dropped.regions, size_t{1});
  EXPECT(unmapped(a.base));
  EXPECT_EQ(sr::release(a.id), Status::kEnded);
  dropped = sr::release_owner(10);
  EXPECT_EQ(dropped.references, size_t{0});

  // Owner 0 is an owner like any other.
  EXPECT_EQ(sr::create(64, 64, 0, &a), Status::kOk);
  EXPECT_EQ(sr::create(64, 64, 1, &b), Status::kOk);
  dropped = sr::release_owner(0);
  EXPECT_EQ(dropped.references, size_t{1});
  EXPECT_EQ(sr::query(b.token, &info), Status::kOk);
  EXPECT_EQ(sr::release(b.id), Status::kFreed);
  EXPECT(same_totals(sr::totals(), sr::Totals{before.regions, before.bytes, before.references, before.created + 4, before.freed + 4}));
}

// Runs first() and second() on two threads at once, `rounds` times: both wait for the other to
// start, then each spins a random while (up to about a system call's time), so that either may
// come first.
template <typename Setup, typename First, typename Second, typename Check>
static void race(int rounds, Setup setup, First first, Second second, Check check) {
  std::mt19937 rng(static_cast<uint32_t>(rounds));
  for (int i = 0; i < rounds; i++) {
    setup();
    const uint32_t delay[2] = {static_cast<uint32_t>(rng() % 4000), static_cast<uint32_t>(rng() % 4000)};
    std::atomic<int> ready{0};
    auto start = [&ready](uint32_t spins) {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (uint32_t k = 0; k < spins; k++) ready.load(std::memory_order_relaxed);
    };
    std::thread t([&] {
      start(delay[0]);
      first();
    });
    start(delay[1]);
    second();
    t.join();
    check();
  }
}

static void test_races(int rounds) {
  const sr::Totals before = sr::totals();
  sr::Reference a{};
  int wins_first = 0, wins_second = 0, round = 0;

  // A finalizer and the env's cleanup hook release one reference at once: it is dropped once.
  Status by_id{};
  sr::Dropped by_owner{};
  race(
      rounds, [&] { EXPECT_EQ(sr::create(++round % 2 ? 64 : 8192, 64, 99, &a), Status::kOk); },
      [&] { by_id = sr::release(a.id); }, [&] { by_owner = sr::release_owner(99); },
      [&] {
        const bool id_won = by_id == Status::kFreed;
        EXPECT(id_won ? by_id == Status::kFreed && by_owner.references == 0 && by_owner.regions == 0
                      : by_id == Status::kEnded && by_owner.references == 1 && by_owner.regions == 1);
        (id_won ? wins_first : wins_second)++;
      });
  std::printf("release vs release_owner of one reference, %d rounds: release dropped it %d times, release_owner %d\n", rounds, wins_first, wins_second);

  // Two releases of one reference.
  Status one{}, two{};
  wins_first = wins_second = 0;
  race(
      rounds, [&] { EXPECT_EQ(sr::create(4096, 4096, 0, &a), Status::kOk); }, [&] { one = sr::release(a.id); }, [&] { two = sr::release(a.id); },
      [&] {
        EXPECT((one == Status::kFreed && two == Status::kEnded) || (one == Status::kEnded && two == Status::kFreed));
        (one == Status::kFreed ? wins_first : wins_second)++;
      });

  // The last release against an acquire: the acquire either keeps the region alive (and its own
  // release frees it) or finds it ended; one free either way, and never memory already freed.
  Status released{}, acquired{}, released_after{};
  int kept = 0, late = 0;
  race(
      rounds,
      [&] {
        EXPECT_EQ(sr::create(++round % 2 ? 128 : 4096 * 3, 64, 5, &a), Status::kOk);
        std::memcpy(a.base, &a.token, sizeof a.token);
      },
      [&] { released = sr::release(a.id); },
      [&] {
        sr::Reference b{};
        acquired = sr::acquire(a.token, a.bytes, 6, &b);
        released_after = Status::kEnded;
        if (acquired == Status::kOk) {
          uint64_t stamp;
          std::memcpy(&stamp, b.base, sizeof stamp);
          EXPECT_EQ(stamp, a.token);
          released_after = sr::release(b.id);
        }
      },
      [&] {
        if (acquired == Status::kOk) {
          kept++;
          EXPECT((released == Status::kOk && released_after == Status::kFreed) || (released == Status::kFreed && released_after == Status::kOk));
        } else {
          late++;
          EXPECT(acquired == Status::kEnded && released == Status::kFreed);
        }
      });
  std::printf("last release vs acquire, %d rounds: the acquire kept the region %d times, found it ended %d\n", rounds, kept, late);
  const sr::Totals after = sr::totals();
  EXPECT_EQ(after.regions, before.regions);
  EXPECT_EQ(after.references, before.references);
  EXPECT_EQ(after.freed - before.freed, uint64_t(3 * rounds));
}

// ---- the stress test ----

// Regions are published in slots; a slot's regions all have its size and alignment, so that
// whoever reads a token there knows the size to expect. Heap and mapped regions both.
constexpr int kSlots = 24;
constexpr int kMail = 16;
constexpr size_t kMaxHeld = 24;
size_t slot_bytes(int s) {
  static const size_t sizes[] = {64, 200, 1000, 4096, 4096 * 3 + 8, 65536};
  return sizes[s % 6];
}
size_t slot_alignment(int s) {
  static const size_t alignments[] = {8, 64, 256, 4096};
  return alignments[(s / 6) % 4];
}

struct Shared {
  std::atomic<uint64_t> slots[kSlots];
  std::atomic<uint64_t> mail[kMail];  // reference ids sent to be released by another thread (a finalizer's thread)
};

struct Account {
  uint64_t created = 0, acquired = 0, size_refused = 0, ended = 0, mailed = 0, mailed_twice = 0, refused_second = 0, teardowns = 0;
  uint64_t freed_by_release = 0, refs_by_owner = 0, regions_by_owner = 0;
  std::vector<uint64_t> tokens;       // created here
  std::vector<uint64_t> released;     // reference ids this thread's release() dropped
  std::vector<uint64_t> freed_tokens;  // regions this thread's release() freed
};

struct Held {
  uint64_t id, token;
  uint8_t* base;
  size_t bytes, alignment;
};

static void stress_thread(Shared& shared, int t, uint64_t seed, int ops, Account& acc) {
  std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(t));
  const uint64_t owner = static_cast<uint64_t>(t) + 1;
  std::vector<Held> held;
  auto stamp_of = [](const uint8_t* base) {
    uint64_t v;
    std::memcpy(&v, base, sizeof v);
    return v;
  };
  auto drop = [&](size_t i) {  // by release(), here
    const Held h = held[i];
    held[i] = held.back();
    held.pop_back();
    EXPECT_EQ(stamp_of(h.base), h.token);
    EXPECT_EQ(h.base[8 + t], static_cast<uint8_t>(t + 1));
    const Status s = sr::release(h.id);
    EXPECT(s == Status::kOk || s == Status::kFreed);
    acc.released.push_back(h.id);
    if (s == Status::kFreed) {
      acc.freed_by_release++;
      acc.freed_tokens.push_back(h.token);
      for (auto& slot : shared.slots) {  // so that most tokens read there are alive (an acquire may still lose the race)
        uint64_t token = h.token;
        slot.compare_exchange_strong(token, 0);
      }
    }
  };
  auto keep = [&](const sr::Reference& r, size_t alignment) {
    EXPECT(aligned(r.base, alignment));
    r.base[8 + t] = static_cast<uint8_t>(t + 1);  // each thread writes its own byte of every region it holds
    held.push_back({r.id, r.token, r.base, r.bytes, alignment});
  };
  for (int op = 0; op < ops; op++) {
    const int c = static_cast<int>(rng() % 1000);
    if (c < 100) {
      const int s = static_cast<int>(rng() % kSlots);
      sr::Reference r{};
      EXPECT_EQ(sr::create(slot_bytes(s), slot_alignment(s), owner, &r), Status::kOk);
      if (r.base == nullptr) continue;
      std::memcpy(r.base, &r.token, sizeof r.token);  // before anyone else can see it
      keep(r, slot_alignment(s));
      acc.created++;
      acc.tokens.push_back(r.token);
      shared.slots[s].store(r.token, std::memory_order_release);
    } else if (c < 550) {
      const int s = static_cast<int>(rng() % kSlots);
      const uint64_t token = shared.slots[s].load(std::memory_order_acquire);
      if (token == 0) continue;
      const bool wrong = rng() % 8 == 0;
      sr::Reference r{};
      const Status st = sr::acquire(token, slot_bytes(s) + (wrong ? 8 : 0), owner, &r);
      if (st == Status::kEnded) {
        acc.ended++;
      } else if (wrong) {
        EXPECT_EQ(st, Status::kSizeMismatch);
        acc.size_refused++;
      } else {
        EXPECT_EQ(st, Status::kOk);
        if (st != Status::kOk) continue;
        EXPECT_EQ(r.token, token);
        EXPECT_EQ(r.bytes, slot_bytes(s));
        EXPECT_EQ(stamp_of(r.base), token);
        keep(r, slot_alignment(s));
        acc.acquired++;
      }
    } else if (c < 650) {
      if (!held.empty()) drop(static_cast<size_t>(rng() % held.size()));
    } else if (c < 750) {
      // Sent to another thread to release (as a finalizer may run elsewhere), sometimes twice
      // (a finalizer and a cleanup hook): this thread no longer touches its memory.
      if (held.empty()) continue;
      const size_t i = static_cast<size_t>(rng() % held.size());
      const int copies = rng() % 4 == 0 ? 2 : 1;
      int sent = 0;
      for (int k = 0, m = static_cast<int>(rng() % kMail); k < kMail && sent < copies; k++, m = (m + 1) % kMail) {
        uint64_t empty = 0;
        if (shared.mail[m].compare_exchange_strong(empty, held[i].id)) sent++;
      }
      if (sent == 0) {
        drop(i);
        continue;
      }
      acc.mailed++;
      acc.mailed_twice += sent == 2;
      held[i] = held.back();
      held.pop_back();
    } else if (c < 998) {
      const uint64_t id = shared.mail[rng() % kMail].exchange(0);
      if (id == 0) continue;
      const Status s = sr::release(id);
      EXPECT(s == Status::kOk || s == Status::kFreed || s == Status::kEnded);
      if (s == Status::kEnded) {
        acc.refused_second++;
      } else {
        acc.released.push_back(id);
        if (s == Status::kFreed) acc.freed_by_release++;  // its token is not known here
      }
    } else {
      // This thread's env ends: its cleanup hook drops all its references, mailed ones included.
      const sr::Dropped d = sr::release_owner(owner);
      EXPECT(d.references >= held.size());
      acc.refs_by_owner += d.references;
      acc.regions_by_owner += d.regions;
      acc.teardowns++;
      held.clear();
    }
    if (held.size() > kMaxHeld) drop(static_cast<size_t>(rng() % held.size()));
  }
}

static void stress(uint64_t seed, int threads, int ops) {
  const sr::Totals before = sr::totals();
  Shared shared;
  for (auto& s : shared.slots) s.store(0);
  for (auto& m : shared.mail) m.store(0);
  std::vector<Account> accounts(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) pool.emplace_back(stress_thread, std::ref(shared), t, seed, ops, std::ref(accounts[static_cast<size_t>(t)]));
  for (std::thread& th : pool) th.join();

  // The end of every thread's env, then the finalizers still pending: all find their reference gone.
  Account total;
  for (int t = 0; t < threads; t++) {
    const sr::Dropped d = sr::release_owner(static_cast<uint64_t>(t) + 1);
    total.refs_by_owner += d.references;
    total.regions_by_owner += d.regions;
  }
  for (auto& m : shared.mail) {
    const uint64_t id = m.exchange(0);
    if (id != 0) EXPECT_EQ(sr::release(id), Status::kEnded);
  }
  std::vector<uint64_t> tokens, released, freed_tokens;
  for (const Account& a : accounts) {
    total.created += a.created;
    total.acquired += a.acquired;
    total.size_refused += a.size_refused;
    total.ended += a.ended;
    total.mailed += a.mailed;
    total.mailed_twice += a.mailed_twice;
    total.refused_second += a.refused_second;
    total.teardowns += a.teardowns;
    total.freed_by_release += a.freed_by_release;
    total.refs_by_owner += a.refs_by_owner;
    total.regions_by_owner += a.regions_by_owner;
    tokens.insert(tokens.end(), a.tokens.begin(), a.tokens.end());
    released.insert(released.end(), a.released.begin(), a.released.end());
    freed_tokens.insert(freed_tokens.end(), a.freed_tokens.begin(), a.freed_tokens.end());
  }

  // The account: every reference dropped exactly once, every region freed exactly once.
  const sr::Totals after = sr::totals();
  EXPECT_EQ(after.regions, before.regions);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(after.references, before.references);
  EXPECT_EQ(after.created - before.created, total.created);
  EXPECT_EQ(after.freed - before.freed, total.created);
  EXPECT_EQ(total.freed_by_release + total.regions_by_owner, total.created);
  EXPECT_EQ(released.size() + total.refs_by_owner, total.created + total.acquired);
  std::sort(released.begin(), released.end());
  EXPECT(std::adjacent_find(released.begin(), released.end()) == released.end());
  std::sort(freed_tokens.begin(), freed_tokens.end());
  EXPECT(std::adjacent_find(freed_tokens.begin(), freed_tokens.end()) == freed_tokens.end());
  std::sort(tokens.begin(), tokens.end());
  EXPECT(std::adjacent_find(tokens.begin(), tokens.end()) == tokens.end());
  int ended = 0;
  sr::Info info{};
  for (uint64_t token : tokens) ended += sr::query(token, &info) == Status::kEnded;
  EXPECT_EQ(static_cast<size_t>(ended), tokens.size());
  // Each path was taken.
  EXPECT(total.created > 0 && total.acquired > 0 && total.size_refused > 0 && total.mailed_twice > 0 && total.refused_second > 0);
  if (ops >= 2000) EXPECT(total.ended > 0 && total.teardowns > 0);
  std::printf("stress seed %llu, %d threads x %d operations: %llu regions created, %llu references acquired (%llu found ended, %llu refused for size), "
              "%llu sent to another thread (%llu twice; %llu second releases refused), %llu teardowns; freed by release %llu, by release_owner %llu\n",
              static_cast<unsigned long long>(seed), threads, ops, static_cast<unsigned long long>(total.created), static_cast<unsigned long long>(total.acquired),
              static_cast<unsigned long long>(total.ended), static_cast<unsigned long long>(total.size_refused), static_cast<unsigned long long>(total.mailed),
              static_cast<unsigned long long>(total.mailed_twice), static_cast<unsigned long long>(total.refused_second), static_cast<unsigned long long>(total.teardowns),
              static_cast<unsigned long long>(total.freed_by_release), static_cast<unsigned long long>(total.regions_by_owner));
}

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 4;
  const int ops = argc > 2 ? std::atoi(argv[2]) : 20000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 500;
  test_sizes_and_alignments();
  test_refusals();
  test_references();
  test_tokens();
  test_owners();
  test_races(rounds);
  for (int seed = 1; seed <= seeds; seed++) stress(static_cast<uint64_t>(seed), 4, ops);
  const sr::Totals end = sr::totals();
  EXPECT(end.regions == 0 && end.bytes == 0 && end.references == 0 && end.created == end.freed);
  return expect_summary();
}
