// Unit test of native/run_index.cc alone, over a fake free layout (a string: '.' free, 'x' used):
// every add/remove followed by largest(), first fit where the lowest run is too short, check()
// catching planted disagreements, edge inputs, then a random walk against a multiset of lengths.
// Built and run by test/native-core.test.ts; prints its own 'N passed, N failed' line.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../../native/run_index.h"
#include "expect.h"

using slabpool::Run;
using slabpool::RunIndex;

// A free structure written as a string; counts the calls an index makes into it.
class FakeLayout final : public slabpool::FreeLayout {
 public:
  explicit FakeLayout(std::string map) : map_(std::move(map)) {}

  int64_t next_free(int64_t from) const override {
    calls++;
    for (int64_t i = std::max<int64_t>(from, 0); i < static_cast<int64_t>(map_.size()); i++) {
      if (map_[static_cast<size_t>(i)] == '.') return i;
    }
    return -1;
  }

  uint32_t run_length(int64_t start) const override {
    calls++;
    if (broken) return 0;
    uint32_t n = 0;
    while (start + n < static_cast<int64_t>(map_.size()) && map_[static_cast<size_t>(start + n)] == '.') n++;
    return n;
  }

  std::vector<Run> runs() const {
    std::vector<Run> out;
    for (int64_t p = next_free(0); p >= 0; p = next_free(p + out.back().length)) out.push_back(Run{p, run_length(p)});
    return out;
  }

  void fill(RunIndex& index) const {
    for (const Run& r : runs()) index.add(r.start, r.length);
  }

  mutable int calls = 0;
  bool broken = false;

 private:
  std::string map_;
};

static void test_construction() {
  FakeLayout layout("....");
  RunIndex none(0, layout);
  EXPECT_EQ(none.valid(), false);
  none.add(0, 1);  // changes nothing
  none.remove(0, 1);
  EXPECT_EQ(none.largest(), 0u);
  EXPECT_EQ(none.first_fit(1, 0), int64_t{-1});
  EXPECT_EQ(none.check({}), std::string("run index has no tables"));
  none.clear();

  RunIndex one(1, layout);
  EXPECT_EQ(one.valid(), true);
  EXPECT_EQ(one.largest(), 0u);
  EXPECT_EQ(one.check({}), std::string());
  one.add(7, 1);
  EXPECT_EQ(one.largest(), 1u);
  one.add(8, 2);  // longer than max_length: ignored
  EXPECT_EQ(one.largest(), 1u);
  EXPECT_EQ(one.check({Run{7, 1}}), std::string());
}

static void test_add_remove_largest() {
  FakeLayout layout("");
  RunIndex index(100, layout);
  struct Step {
    bool add;
    int64_t start;
    uint32_t length;
    uint32_t largest;
  };
  // Lengths on both sides of the bitmap's word boundaries (31/32/33, 63/64/65) and max_length.
  const Step steps[] = {
      {true, 0, 3, 3},      {true, 10, 5, 5},     {true, 20, 5, 5},    {false, 10, 5, 5},   {false, 20, 5, 3},
      {true, 30, 1, 3},     {false, 0, 3, 1},     {false, 30, 1, 0},   {true, 0, 64, 64},   {true, 100, 32, 64},
      {true, 200, 31, 64},  {true, 300, 65, 65},  {false, 300, 65, 64}, {false, 0, 64, 32},  {false, 100, 32, 31},
      {true, 400, 100, 100}, {true, 500, 33, 100}, {false, 400, 100, 33}, {false, 500, 33, 31}, {false, 200, 31, 0},
  };
  std::vector<Run> present;
  for (const Step& s : steps) {
    if (s.add) {
      index.add(s.start, s.length);
      present.push_back(Run{s.start, s.length});
    } else {
      index.remove(s.start, s.length);
      present.erase(std::find_if(present.begin(), present.end(), [&](const Run& r) { return r.start == s.start; }));
    }
    EXPECT_EQ(index.largest(), s.largest);
    EXPECT_EQ(index.check(present), std::string());
  }
}

static void test_edge_inputs() {
  FakeLayout layout("");
  RunIndex index(8, layout);
  index.add(0, 4);
  index.add(0, 0);   // no run: ignored
  index.add(0, 9);   // longer than max_length: ignored
  index.remove(0, 0);
  index.remove(0, 9);
  index.remove(0, 2);  // no run of 2: ignored, no count below zero
  EXPECT_EQ(index.largest(), 4u);
  EXPECT_EQ(index.check({Run{0, 4}}), std::string());
  index.add(10, 8);  // max_length itself
  EXPECT_EQ(index.largest(), 8u);
  index.remove(10, 8);
  EXPECT_EQ(index.largest(), 4u);
  index.clear();
  EXPECT_EQ(index.largest(), 0u);
  EXPECT_EQ(index.check({}), std::string());
  EXPECT_EQ(index.first_fit(1, 0), int64_t{-1});
  index.add(3, 2);  // usable again after clear()
  EXPECT_EQ(index.largest(), 2u);
}

static void test_first_fit() {
  //                 0123456789012345
  FakeLayout layout("..x....xx.x.....");
  RunIndex index(16, layout);
  layout.fill(index);
  EXPECT_EQ(index.check(layout.runs()), std::string());
  EXPECT_EQ(index.largest(), 5u);
  EXPECT_EQ(index.first_fit(1, 0), int64_t{0});
  EXPECT_EQ(index.first_fit(2, 0), int64_t{0});
  EXPECT_EQ(index.first_fit(3, 0), int64_t{3});  // the lowest run (2) is too short
  EXPECT_EQ(index.first_fit(4, 0), int64_t{3});
  EXPECT_EQ(index.first_fit(5, 0), int64_t{11});  // past two short runs
  EXPECT_EQ(index.first_fit(3, 3), int64_t{3});
  EXPECT_EQ(index.first_fit(1, 9), int64_t{9});
  EXPECT_EQ(index.first_fit(2, 9), int64_t{11});
  EXPECT_EQ(index.first_fit(0, 2), int64_t{3});   // k = 0: any run
  EXPECT_EQ(index.first_fit(1, 16), int64_t{-1});  // from past the end
  layout.calls = 0;
  EXPECT_EQ(index.first_fit(6, 0), int64_t{-1});  // larger than largest(): at once
  EXPECT_EQ(layout.calls, 0);

  // largest() >= k, yet no run that long at or after `from`: the walk ends.
  FakeLayout tail("......x.x.");
  RunIndex short_tail(10, tail);
  tail.fill(short_tail);
  EXPECT_EQ(short_tail.first_fit(2, 7), int64_t{-1});
  EXPECT_EQ(short_tail.first_fit(6, 0), int64_t{0});

  // A layout that reports runs of length 0 cannot make it loop forever.
  FakeLayout broken("..x..");
  RunIndex on_broken(5, broken);
  broken.fill(on_broken);
  broken.broken = true;
  EXPECT_EQ(on_broken.first_fit(1, 0), int64_t{-1});
}

static void test_check_catches() {
  FakeLayout layout(".x..x....x..");
  RunIndex index(12, layout);
  layout.fill(index);
  std::vector<Run> runs = layout.runs();  // lengths 1, 2, 4, 2
  EXPECT_EQ(runs.size(), size_t{4});
  EXPECT_EQ(index.check(runs), std::string());
  std::vector<Run> reversed(runs.rbegin(), runs.rend());
  EXPECT_EQ(index.check(reversed), std::string());  // any order

  std::vector<Run> shorter = runs;
  shorter[2].length = 3;  // the structure says 3 where the index heard 4
  EXPECT_EQ(index.check(shorter), std::string("run index records largest free run 4, the slabs 3"));
  std::vector<Run> missing(runs.begin(), runs.end() - 1);
  EXPECT_EQ(index.check(missing), std::string("run index counts 2 free runs of 2, the slabs 1"));
  std::vector<Run> zero = runs;
  zero.push_back(Run{40, 0});
  EXPECT_EQ(index.check(zero), std::string("free run at 40 has length 0"));
  std::vector<Run> too_long = runs;
  too_long.push_back(Run{41, 13});
  EXPECT_EQ(index.check(too_long), std::string("free run at 41 has length 13"));

  index.add(20, 3);  // planted: a run the structure does not have
  EXPECT_EQ(index.check(runs), std::string("run index counts 1 free runs of 3, the slabs 0"));
  index.remove(20, 3);
  EXPECT_EQ(index.check(runs), std::string());
  index.remove(0, 1);  // planted: a run forgotten
  EXPECT_EQ(index.check(runs), std::string("run index counts 0 free runs of 1, the slabs 1"));
}

// Random adds and removes against a multiset of lengths; largest() and check() after each.
static void test_random(uint32_t seed) {
  std::mt19937 gen(seed);
  const uint32_t max_length = 1 + gen() % 200;
  FakeLayout layout("");
  RunIndex index(max_length, layout);
  std::vector<Run> present;
  int64_t next_start = 0;
  bool ok = true;
  for (int step = 0; step < 2000 && ok; step++) {
    if (present.empty() || gen() % 2 == 0) {
      Run r{next_start, 1 + static_cast<uint32_t>(gen() % max_length)};
      next_start += r.length + 1;
      index.add(r.start, r.length);
      present.push_back(r);
    } else {
      size_t i = gen() % present.size();
      index.remove(present[i].start, present[i].length);
      present.erase(present.begin() + static_cast<long>(i));
    }
    uint32_t expected = 0;
    for (const Run& r : present) expected = std::max(expected, r.length);
    std::string problem = index.check(present);
    ok = index.largest() == expected && problem.empty();
    checks++;
    if (!ok) {
      failures++;
      std::fprintf(stderr, "seed %u step %d: largest %u, expected %u; %s\n", seed, step, index.largest(), expected, problem.c_str());
    }
  }
}

int main() {
  test_construction();
  test_add_remove_largest();
  test_edge_inputs();
  test_first_fit();
  test_check_catches();
  for (uint32_t seed = 1; seed <= 20; seed++) test_random(seed);
  return expect_summary();
}
