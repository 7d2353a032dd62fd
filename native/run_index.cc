#include "run_index.h"

#include <algorithm>
#include <cstring>

#include "bits.h"
#include "os.h"

namespace slabpool {

namespace {

size_t CountBytes(uint32_t max_length) { return (static_cast<size_t>(max_length) + 1) * sizeof(uint32_t); }
size_t BitsBytes(uint32_t max_length) { return (static_cast<size_t>(max_length >> 5) + 1) * sizeof(uint32_t); }

}  // namespace

RunIndex::RunIndex(uint32_t max_length, const FreeLayout& layout) : max_length_(max_length), layout_(layout) {
  if (max_length == 0) return;
  count_ = static_cast<uint32_t*>(os::zeroed_alloc(CountBytes(max_length)));
  length_bits_ = static_cast<uint32_t*>(os::zeroed_alloc(BitsBytes(max_length)));
}

RunIndex::~RunIndex() {
  os::zeroed_free(count_, CountBytes(max_length_));
  os::zeroed_free(length_bits_, BitsBytes(max_length_));
}

bool RunIndex::valid() const { return count_ != nullptr && length_bits_ != nullptr; }

void RunIndex::add(int64_t /*start: unused by a histogram*/, uint32_t length) {
  if (length == 0 || length > max_length_ || !valid()) return;
  if (count_[length]++ == 0) length_bits_[length >> 5] |= 1u << (length & 31);
  if (length > largest_) largest_ = length;
}

void RunIndex::remove(int64_t /*start*/, uint32_t length) {
  if (length == 0 || length > max_length_ || !valid() || count_[length] == 0) return;
  if (--count_[length] != 0) return;
  length_bits_[length >> 5] &= ~(1u << (length & 31));
  if (length == largest_) largest_ = highest_length_below(length);
}

int64_t RunIndex::first_fit(uint32_t k, int64_t from) const {
  if (largest_ < k) return -1;
  int64_t p = layout_.next_free(from);
  while (p >= 0) {
    // p follows an allocated block or a slab start, so it starts a run.
    uint32_t length = layout_.run_length(p);
    if (length >= k) return p;
    p = layout_.next_free(p + std::max(length, 1u));  // a broken layout cannot loop forever
  }
  return -1;
}

std::string RunIndex::check(const std::vector<Run>& runs) const {
  auto at = [](int64_t i) { return std::to_string(i); };
  if (!valid()) return "run index has no tables";
  std::vector<uint32_t> expected(static_cast<size_t>(max_length_) + 1, 0);
  uint32_t largest = 0;
  for (const Run& run : runs) {
    if (run.length == 0 || run.length > max_length_) return "free run at " + at(run.start) + " has length " + at(run.length);
    expected[run.length]++;
    largest = std::max(largest, run.length);
  }
  if (largest != largest_) return "run index records largest free run " + at(largest_) + ", the slabs " + at(largest);
  for (uint32_t length = 1; length <= max_length_; length++) {
    if (count_[length] != expected[length]) {
      return "run index counts " + at(count_[length]) + " free runs of " + at(length) + ", the slabs " + at(expected[length]);
    }
    uint32_t bit = (length_bits_[length >> 5] >> (length & 31)) & 1u;
    if (bit != (expected[length] > 0 ? 1u : 0u)) return "run-length bit " + at(length) + " is " + at(bit) + " with " + at(expected[length]) + " runs";
  }
  return std::string();
}

void RunIndex::clear() {
  if (valid()) {
    std::memset(count_, 0, CountBytes(max_length_));
    std::memset(length_bits_, 0, BitsBytes(max_length_));
  }
  largest_ = 0;
}

uint32_t RunIndex::highest_length_below(uint32_t length) const {
  size_t w = length >> 5;
  uint32_t word = length_bits_[w] & ((1u << (length & 31)) - 1);
  while (word == 0 && w > 0) word = length_bits_[--w];
  return word == 0 ? 0 : static_cast<uint32_t>((w << 5) + 31 - clz32(word));
}

}  // namespace slabpool
