// igla internal: the bytes of the IVF sections (see include/igla/ivf.hpp).
//
//   IVFM  IvfHeader (64 bytes), u32 offsets[L + 1], u32 sizes[L] (zero-padded to 64 bytes),
//         float code_centroids[L][dims] (padded to 64), float float_centroids[L][float_dims]
//   IVFW  u32 ids[positions] (padded to 64), u64 codes[code_words(positions, dims)] in the
//         blocked layout of ternary.hpp, float inv_norms[positions]
// Every array starts 64-byte aligned within its section (sections are 64-byte aligned in the
// file), so the codes are scanned in place.
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla::ann {

inline constexpr uint32_t kIvfMagic = 0x31465649;  // "IVF1"

struct IvfHeader {
  uint32_t magic, version, lists, dims, float_dims, source, iterations, align;
  uint64_t n_words, positions, seed;
  uint64_t reserved;
};
static_assert(sizeof(IvfHeader) == 64);

constexpr size_t pad64(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct IvfMetaLayout {
  size_t offsets, sizes, code_centroids, float_centroids, total;
  IvfMetaLayout(uint32_t L, uint32_t dims, uint32_t fd) {
    offsets = sizeof(IvfHeader);
    sizes = offsets + 4 * (size_t{L} + 1);
    code_centroids = pad64(sizes + 4 * size_t{L});
    float_centroids = pad64(code_centroids + 4 * size_t{L} * dims);
    total = pad64(float_centroids + 4 * size_t{L} * fd);
  }
};

struct IvfWordsLayout {
  size_t ids, codes, inv_norms, total;
  IvfWordsLayout(size_t positions, size_t code_words) {
    ids = 0;
    codes = pad64(4 * positions);
    inv_norms = pad64(codes + 8 * code_words);
    total = pad64(inv_norms + 4 * positions);
  }
};

}  // namespace igla::ann
