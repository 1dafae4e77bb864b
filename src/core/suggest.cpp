// "Did you mean": the closest known words to an unknown one, by edit distance.
#include <algorithm>
#include <numeric>

#include "igla/index.hpp"

namespace igla {

namespace {

// Levenshtein distance, or cap + 1 once it must exceed cap.
size_t edit_distance(std::string_view a, std::string_view b, size_t cap) {
  if (a.size() > b.size() + cap || b.size() > a.size() + cap) return cap + 1;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    size_t row_min = cur[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min > cap) return cap + 1;
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::vector<std::string> Index::suggest(std::string_view w, size_t n) const {
  if (n == 0) return {};
  std::vector<std::pair<size_t, uint32_t>> best;  // (distance, id); ids ascend = frequent first
  size_t cap = std::max<size_t>(2, w.size() / 2);
  for (uint32_t id = 0; id < size(); ++id) {
    const size_t d = edit_distance(w, word(id), cap);
    if (d > cap) continue;
    best.push_back({d, id});
    if (best.size() > 4 * n) {
      std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first < b.first; });
      best.resize(n);
      cap = best.back().first;
    }
  }
  std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(n, best.size()); ++i) out.emplace_back(word(best[i].second));
  return out;
}

}  // namespace igla
