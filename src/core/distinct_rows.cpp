#include "core/distinct_rows.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>

namespace igla {

namespace {

struct RowHash {
  size_t operator()(std::string_view s) const noexcept { return static_cast<size_t>(XXH3_64bits(s.data(), s.size())); }
};

}  // namespace

size_t distinct_rows(const int8_t* rows, size_t n, size_t width, uint32_t* index, int8_t* distinct,
                     size_t max_distinct) {
  if (n == 0) return 0;
  std::unordered_map<std::string_view, uint32_t, RowHash> seen;
  seen.reserve(std::min(n, max_distinct + 1));
  size_t u = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string_view row(reinterpret_cast<const char*>(rows + i * width), width);
    const auto [it, added] = seen.try_emplace(row, static_cast<uint32_t>(u));
    if (added) {
      if (u == max_distinct) return 0;
      if (width) std::memcpy(distinct + u * width, row.data(), width);
      ++u;
    }
    index[i] = it->second;
  }
  return u;
}

}  // namespace igla
