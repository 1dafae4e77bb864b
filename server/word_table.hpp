// igla serve: word -> id lookups in a few cache misses. Index::find is a binary search over the
// sorted vocabulary (~19 probes, each reading a random word: ~4 us on GloVe's 341K words, the
// largest non-search cost of a one-word request after the socket calls); this open-addressing
// table of ids (4 bytes a slot, load <= 1/2) answers the same ids from ~3 cache lines. Built once
// per loaded index (Service::load), immutable afterwards: lookups may run on any thread at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "igla/index.hpp"

namespace igla::server {

class WordTable {
 public:
  WordTable() = default;
  // Every word of `ix` (which must outlive the table). Where a word occurs more than once, the
  // id is the one Index::find answers.
  explicit WordTable(const Index& ix);
  // The id Index::find(word) answers (no case folding).
  std::optional<uint32_t> find(std::string_view word) const;
  size_t slots() const { return slots_.size(); }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  const Index* ix_ = nullptr;
  std::vector<uint32_t> slots_;  // ids, kEmpty where free; size a power of two
  uint64_t mask_ = 0;
  static uint64_t hash(std::string_view w);
};

}  // namespace igla::server
