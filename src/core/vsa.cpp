// VSA algebra on trits: bind (product), bundle (majority), permute (cyclic shift).
#include "igla/vsa.hpp"

#include "igla/error.hpp"

namespace igla::vsa {

std::vector<int8_t> bind(std::span<const int8_t> a, std::span<const int8_t> b) {
  if (a.size() != b.size()) throw Error("bind: vectors of different dimensions");
  std::vector<int8_t> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = static_cast<int8_t>(a[i] * b[i]);
  return out;
}

std::vector<int8_t> bundle(std::span<const std::span<const int8_t>> vs) {
  if (vs.empty()) throw Error("bundle: no vectors");
  std::vector<int32_t> sum(vs[0].size(), 0);
  for (auto v : vs) {
    if (v.size() != sum.size()) throw Error("bundle: vectors of different dimensions");
    for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
  }
  std::vector<int8_t> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<int8_t>((sum[i] > 0) - (sum[i] < 0));
  return out;
}

std::vector<int8_t> permute(std::span<const int8_t> a, int64_t shift) {
  const int64_t n = static_cast<int64_t>(a.size());
  std::vector<int8_t> out(a.size());
  if (n == 0) return out;
  const int64_t s = ((shift % n) + n) % n;
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>((i + s) % n)] = a[static_cast<size_t>(i)];
  return out;
}

}  // namespace igla::vsa
