// Unit test of native/run_index.cc alone, against a plain vector of leaf values: largest() is its
// maximum and first_at_least(k, from) its first entry at or after `from` of at least k, on an empty
// index, a single leaf, every size from 1 to 70 (every k and from that can tell answers apart),
// growth by cover() keeping values, check() naming the first disagreeing leaf, then seeded random
// walks of set() and cover() checked after every step. lib/run-index.ts is held to the same in
// test/run-index.test.ts; test/native-core.test.ts also builds this program over planted bugs in
// run_index.cc and expects it to fail. Prints its own 'N passed, N failed' line.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../native/run_index.h"
#include "expect.h"

using slabpool::RunIndex;

namespace {

int64_t brute_first_at_least(const std::vector<uint32_t>& values, uint32_t k, size_t from) {
  for (size_t leaf = from; leaf < values.size(); leaf++) {
    if (values[leaf] >= k) return static_cast<int64_t>(leaf);
  }
  return -1;
}

uint32_t brute_largest(const std::vector<uint32_t>& values) {
  uint32_t best = 0;
  for (uint32_t v : values) best = std::max(best, v);
  return best;
}

struct Query {
  uint32_t k;
  size_t from;
};

// Every query that can tell two answers apart: k of 1 and of every value and one past it (the
// answer only changes there), from every leaf to two past the end.
std::vector<Query> all_queries(const std::vector<uint32_t>& values) {
  std::set<uint32_t> ks = {1};
  for (uint32_t v : values) {
    if (v > 0) ks.insert({v, v + 1});
  }
  std::vector<Query> queries;
  for (uint32_t k : ks) {
    for (size_t from = 0; from <= values.size() + 2; from++) queries.push_back(Query{k, from});
  }
  return queries;
}

// The first way `index` disagrees with `values` (leaf count, check(), largest(), get(), the
// queries), or an empty string.
std::string disagreement(const RunIndex& index, const std::vector<uint32_t>& values, const std::vector<Query>& queries) {
  auto at = [](uint64_t i) { return std::to_string(i); };
  if (index.leaf_count() != values.size()) return "leaf_count " + at(index.leaf_count()) + ", expected " + at(values.size());
  std::string problem = index.check(values.data());
  if (!problem.empty()) return "check(): " + problem;
  if (index.largest() != brute_largest(values)) return "largest() " + at(index.largest()) + ", expected " + at(brute_largest(values));
  for (size_t leaf = 0; leaf < values.size(); leaf++) {
    if (index.get(leaf) != values[leaf]) return "get(" + at(leaf) + ") " + at(index.get(leaf)) + ", expected " + at(values[leaf]);
  }
  for (const Query& q : queries) {
    int64_t got = index.first_at_least(q.k, q.from);
    int64_t want = brute_first_at_least(values, q.k, q.from);
    if (got != want) {
      return "first_at_least(" + at(q.k) + ", " + at(q.from) + ") " + std::to_string(got) + ", expected " + std::to_string(want);
    }
  }
  return std::string();
}

// A check that prints the disagreement when there is one.
#define EXPECT_AGREES(index, values, queries)                                  \
  do {                                                                         \
    checks++;                                                                  \
    std::string why = disagreement((index), (values), (queries));              \
    if (!why.empty()) {                                                        \
      failures++;                                                              \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, why.c_str());    \
    }                                                                          \
  } while (0)

void fill(RunIndex& index, const std::vector<uint32_t>& values) {
  EXPECT(index.cover(values.size()));
  for (size_t leaf = 0; leaf < values.size(); leaf++) index.set(leaf, values[leaf]);
}

void test_empty() {
  RunIndex index;
  EXPECT_EQ(index.leaf_count(), size_t{0});
  EXPECT_EQ(index.largest(), 0u);
  EXPECT_EQ(index.first_at_least(1, 0), int64_t{-1});
  EXPECT_EQ(index.get(0), 0u);
  EXPECT_EQ(index.check(nullptr), std::string());  // no leaf to read
  index.set(0, 5);  // past leaf_count: ignored
  index.clear();    // no table yet
  EXPECT_EQ(index.largest(), 0u);
  EXPECT(index.cover(0));
  EXPECT_EQ(index.leaf_count(), size_t{0});
}

void test_single_leaf() {
  RunIndex index;
  EXPECT(index.cover(1));
  std::vector<uint32_t> values = {0};
  EXPECT_AGREES(index, values, all_queries(values));
  index.set(0, 5);
  values[0] = 5;
  EXPECT_AGREES(index, values, all_queries(values));
  EXPECT_EQ(index.first_at_least(5, 0), int64_t{0});
  EXPECT_EQ(index.first_at_least(6, 0), int64_t{-1});
  EXPECT_EQ(index.first_at_least(1, 1), int64_t{-1});  // from at leaf_count
  index.set(1, 9);  // past leaf_count: ignored
  EXPECT_AGREES(index, values, all_queries(values));
  index.set(0, 0);
  values[0] = 0;
  EXPECT_AGREES(index, values, all_queries(values));
}

void test_first_at_least() {
  // Six leaves: not a power of two, so the table has two leaves past leaf_count.
  std::vector<uint32_t> values = {3, 0, 7, 2, 7, 1};
  RunIndex index;
  fill(index, values);
  EXPECT_EQ(index.largest(), 7u);
  EXPECT_EQ(index.first_at_least(1, 0), int64_t{0});
  EXPECT_EQ(index.first_at_least(4, 0), int64_t{2});  // past a leaf of 3
  EXPECT_EQ(index.first_at_least(4, 3), int64_t{4});  // from past the first 7
  EXPECT_EQ(index.first_at_least(7, 2), int64_t{2});  // from's own leaf counts
  EXPECT_EQ(index.first_at_least(8, 0), int64_t{-1});  // more than any leaf
  EXPECT_EQ(index.first_at_least(1, 5), int64_t{5});   // the last leaf
  EXPECT_EQ(index.first_at_least(2, 5), int64_t{-1});  // nothing at or after from
  EXPECT_EQ(index.first_at_least(1, 6), int64_t{-1});  // from at leaf_count
  EXPECT_EQ(index.first_at_least(1, 1000), int64_t{-1});
  EXPECT_EQ(index.first_at_least(1, SIZE_MAX), int64_t{-1});
  EXPECT_AGREES(index, values, all_queries(values));
  // Lowering the largest leaves brings largest() down to the next.
  index.set(2, 0);
  index.set(4, 2);
  values[2] = 0;
  values[4] = 2;
  EXPECT_EQ(index.largest(), 3u);
  EXPECT_AGREES(index, values, all_queries(values));
  // Values as large as a slab can be.
  index.set(5, 1u << 30);
  values[5] = 1u << 30;
  EXPECT_EQ(index.first_at_least(1u << 30, 0), int64_t{5});
  EXPECT_AGREES(index, values, all_queries(values));
}

void test_every_size() {
  std::mt19937 gen(7);
  for (size_t size = 1; size <= 70; size++) {
    std::vector<uint32_t> values(size);
    for (uint32_t& v : values) v = gen() % 10 < 3 ? 0 : 1 + gen() % 9;
    RunIndex index;
    fill(index, values);
    EXPECT_AGREES(index, values, all_queries(values));
  }
}

void test_growth() {
  RunIndex index;
  std::vector<uint32_t> values = {4, 0, 9, 1, 6};
  fill(index, values);
  for (size_t leaves : {5, 6, 8, 9, 16, 17, 1000, 1025}) {
    EXPECT(index.cover(leaves));
    values.resize(leaves, 0);
    EXPECT_AGREES(index, values, (std::vector<Query>{{1, 0}, {5, 0}, {9, 0}, {10, 0}, {1, 5}, {1, leaves - 1}, {1, leaves}}));
    EXPECT(index.cover(3));  // covering fewer changes nothing
    EXPECT_EQ(index.leaf_count(), leaves);
  }
  index.set(1024, 12);  // a leaf of the grown part
  values[1024] = 12;
  EXPECT_EQ(index.first_at_least(10, 0), int64_t{1024});
  EXPECT_AGREES(index, values, (std::vector<Query>{{12, 0}, {13, 0}, {12, 1024}, {12, 1025}}));
  index.clear();
  std::fill(values.begin(), values.end(), 0);
  EXPECT_EQ(index.leaf_count(), size_t{1025});  // clear() keeps the leaves it covers
  EXPECT_AGREES(index, values, (std::vector<Query>{{1, 0}, {1, 1024}}));
  index.set(3, 4);  // usable again
  values[3] = 4;
  EXPECT_AGREES(index, values, (std::vector<Query>{{1, 0}, {4, 0}, {5, 0}, {4, 4}, {1, 1024}}));
}

void test_check_names_the_first_leaf() {
  RunIndex index;
  fill(index, {3, 0, 7, 2, 7, 1});
  const uint32_t good[] = {3, 0, 7, 2, 7, 1};
  const uint32_t one_more[] = {3, 0, 7, 4, 7, 1};
  const uint32_t gone[] = {3, 0, 7, 2, 7, 0};
  const uint32_t none[] = {0, 0, 0, 0, 0, 0};
  const uint32_t longer[] = {3, 0, 7, 2, 7, 1, 9, 9};
  EXPECT_EQ(index.check(good), std::string());
  EXPECT_EQ(index.check(one_more), std::string("run index leaf 3 holds 2, the slabs 4"));
  EXPECT_EQ(index.check(gone), std::string("run index leaf 5 holds 1, the slabs 0"));
  EXPECT_EQ(index.check(none), std::string("run index leaf 0 holds 3, the slabs 0"));
  EXPECT_EQ(index.check(longer), std::string());  // entries past leaf_count are not leaves
}

// A seeded walk of set() and cover() beside a plain vector, checked after every step (one count
// per step). Values are mostly short with a few long ones, as run lengths are in a fragmented
// pool; queries take k past every value and `from` at and past leaf_count.
void test_random(uint32_t seed) {
  std::mt19937 gen(seed);
  auto in = [&](uint32_t lo, uint32_t hi) { return lo + static_cast<uint32_t>(gen() % (hi - lo + 1)); };
  const uint32_t max_value = std::vector<uint32_t>{1, 3, 40, 1u << 30}[seed % 4];
  auto value = [&]() -> uint32_t {
    uint32_t r = gen() % 100;
    return r < 25 ? 0 : r < 85 ? in(1, std::min(max_value, 4u)) : in(1, max_value);
  };
  RunIndex index;
  std::vector<uint32_t> values(in(1, 70), 0);
  EXPECT(index.cover(values.size()));
  for (int step = 0; step < 2000; step++) {
    uint32_t r = gen() % 100;
    std::string op;
    if (r < 4) {
      // Growth in the middle of the walk: the new leaves hold 0, the old ones keep their values.
      size_t leaves = values.size() + (gen() % 2 ? in(0, 3) : in(1, 60));
      if (!index.cover(leaves)) op = "(refused) ";
      values.resize(leaves, 0);
      op += "cover(" + std::to_string(leaves) + ")";
    } else if (r < 6) {
      size_t leaves = in(0, static_cast<uint32_t>(values.size()));  // no more than it covers: a no-op
      if (!index.cover(leaves)) op = "(refused) ";
      op += "cover(" + std::to_string(leaves) + ")";
    } else if (r < 8) {
      size_t leaf = values.size() + in(0, 3);  // past leaf_count: ignored
      index.set(leaf, in(1, 100));
      op = "set(" + std::to_string(leaf) + ") past the end";
    } else {
      size_t leaf = in(0, static_cast<uint32_t>(values.size() - 1));
      uint32_t v = r < 12 ? values[leaf] : value();  // sometimes the value it holds already
      index.set(leaf, v);
      values[leaf] = v;
      op = "set(" + std::to_string(leaf) + ", " + std::to_string(v) + ")";
    }
    const uint32_t top = brute_largest(values);
    std::vector<Query> queries;
    for (int q = 0; q < 6; q++) {
      uint32_t k = q == 0 ? top + 1 : q == 1 && top > 0 ? top : in(1, std::max(1u, std::min(top, 8u)));
      size_t from = q == 2 ? values.size() : q == 3 ? values.size() + in(1, 5) : in(0, static_cast<uint32_t>(values.size() - 1));
      queries.push_back(Query{k, from});
    }
    std::string why = disagreement(index, values, queries);
    checks++;
    if (!why.empty()) {
      failures++;
      std::fprintf(stderr, "seed %u step %d: after %s: %s\n", seed, step, op.c_str(), why.c_str());
      return;
    }
  }
  EXPECT_AGREES(index, values, all_queries(values));
}

}  // namespace

int main() {
  test_empty();
  test_single_leaf();
  test_first_at_least();
  test_every_size();
  test_growth();
  test_check_names_the_first_leaf();
  for (uint32_t seed = 1; seed <= 20; seed++) test_random(seed);
  return expect_summary();
}
