// The checks the C++ test programs count: EXPECT(cond) and EXPECT_EQ(a, b), each printing where
// and why it failed; a program ends with expect_summary(), which prints the 'N passed, N failed'
// line that test/native-core.test.ts reads and returns the exit code. The counts are atomic, so
// that threads may check too (shared_region_test).
#ifndef SLABPOOL_TEST_EXPECT_H_
#define SLABPOOL_TEST_EXPECT_H_

#include <atomic>
#include <cstdio>
#include <string>
#include <type_traits>

inline std::atomic<int> checks{0};
inline std::atomic<int> failures{0};

inline std::string show(const std::string& s) { return '"' + s + '"'; }
inline std::string show(bool v) { return v ? "true" : "false"; }
template <typename T>
std::enable_if_t<std::is_arithmetic_v<T>, std::string> show(T v) {
  return std::to_string(v);
}

#define EXPECT(cond)                                                               \
  do {                                                                             \
    checks++;                                                                      \
    if (!(cond)) {                                                                 \
      failures++;                                                                  \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);     \
    }                                                                              \
  } while (0)

#define EXPECT_EQ(a, b)                                                                 \
  do {                                                                                  \
    checks++;                                                                           \
    auto va = (a);                                                                      \
    auto vb = (b);                                                                      \
    if (!(va == vb)) {                                                                  \
      failures++;                                                                       \
      std::fprintf(stderr, "%s:%d: %s == %s: %s vs %s\n", __FILE__, __LINE__, #a, #b, \
                   show(va).c_str(), show(vb).c_str());                                 \
    }                                                                                   \
  } while (0)

inline int expect_summary() {
  std::printf("%d passed, %d failed\n", checks - failures, failures.load());
  return failures == 0 ? 0 : 1;
}

#endif  // SLABPOOL_TEST_EXPECT_H_
