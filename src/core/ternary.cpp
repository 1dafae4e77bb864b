// Quantization and bit packing for the 2-bit layout described in include/igla/ternary.hpp.
#include "igla/ternary.hpp"

#include <algorithm>
#include <cstring>

namespace igla {

void quantize_seed(std::span<const float> x, float factor, std::span<int8_t> out) {
  // Double accumulation keeps the threshold independent of summation order quirks.
  double sum = 0;
  for (float v : x) sum += std::fabs(static_cast<double>(v));
  const double thr = x.empty() ? 0.0 : factor * (sum / static_cast<double>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    out[i] = v > thr ? int8_t{1} : (v < -thr ? int8_t{-1} : int8_t{0});
  }
}

void clamp_trits(std::span<const int32_t> x, std::span<int8_t> out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<int8_t>(std::clamp(x[i], -1, 1));
}

void pack_row(std::span<const int8_t> trits, std::span<uint64_t> row) {
  const uint32_t W = plane_words(static_cast<uint32_t>(trits.size()));
  // Branch-free: random trits would mispredict about once per dimension (it was ~5% of a
  // batched search's time).
  for (uint32_t j = 0; j < W; ++j) {
    uint64_t nz = 0, sg = 0;
    const size_t d0 = size_t{j} * 64, n = std::min<size_t>(64, trits.size() - d0);
    for (size_t i = 0; i < n; ++i) {
      nz |= uint64_t{trits[d0 + i] != 0} << i;
      sg |= uint64_t{trits[d0 + i] < 0} << i;
    }
    row[j] = nz;
    row[W + j] = sg;
  }
}

void unpack_row(std::span<const uint64_t> row, uint32_t dims, std::span<int8_t> trits) {
  const uint32_t W = plane_words(dims);
  for (uint32_t d = 0; d < dims; ++d) {
    const bool nz = (row[d / 64] >> (d % 64)) & 1, neg = (row[W + d / 64] >> (d % 64)) & 1;
    trits[d] = nz ? (neg ? -1 : 1) : 0;
  }
}

void pack_into_blocks(std::span<const int8_t> trits, size_t word, uint64_t* codes) {
  const uint32_t W = plane_words(static_cast<uint32_t>(trits.size()));
  uint64_t* base = codes + (word / kBlockWords) * W * 16 + word % kBlockWords;
  for (uint32_t j = 0; j < W; ++j) base[j * 16] = base[j * 16 + 8] = 0;
  for (size_t d = 0; d < trits.size(); ++d) {
    const uint64_t bit = uint64_t{1} << (d % 64);
    if (trits[d] != 0) base[(d / 64) * 16] |= bit;
    if (trits[d] < 0) base[(d / 64) * 16 + 8] |= bit;
  }
}

void unpack_from_blocks(const uint64_t* codes, size_t word, uint32_t dims, std::span<int8_t> trits) {
  const uint32_t W = plane_words(dims);
  const uint64_t* base = codes + (word / kBlockWords) * W * 16 + word % kBlockWords;
  for (uint32_t j = 0; j < W; ++j) {
    const uint64_t nz = base[j * 16], sg = base[j * 16 + 8];
    const uint32_t d0 = j * 64, n = std::min<uint32_t>(64, dims - d0);
    for (uint32_t b = 0; b < n; ++b) {
      const int nzb = static_cast<int>((nz >> b) & 1), sgb = static_cast<int>((sg >> b) & 1);
      trits[d0 + b] = static_cast<int8_t>(nzb * (1 - 2 * sgb));
    }
  }
}

uint32_t count_nonzero(std::span<const int8_t> trits) {
  return static_cast<uint32_t>(std::count_if(trits.begin(), trits.end(), [](int8_t t) { return t != 0; }));
}

}  // namespace igla
