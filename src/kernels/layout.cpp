#include "kernels/layout.hpp"

#include <algorithm>

#include "igla/error.hpp"
#include "igla/ternary.hpp"

namespace igla::kernels {

AlignedArray<uint64_t> to_block_layout(const CodesView& c, uint32_t block_words) {
  const size_t nblocks = (c.n_words + block_words - 1) / block_words;
  if (block_words == kBlockWords) {
    AlignedArray<uint64_t> out(code_words(c.n_words, c.dims));
    std::copy(c.codes, c.codes + out.size(), out.data());
    return out;
  }
  if (block_words == 32) {
    // Byte per word and 4 dims (layout.hpp); 4 dims never straddle a 64-bit plane word.
    const uint32_t W = c.W, W16 = layout_plane_words(c.dims, 32);
    AlignedArray<uint64_t> out(nblocks * W16 * 16);
    auto* o = reinterpret_cast<uint8_t*>(out.data());
    uint8_t code[16][16];
    for (uint32_t nz = 0; nz < 16; ++nz)
      for (uint32_t sg = 0; sg < 16; ++sg) code[nz][sg] = quad_code(nz, sg);
    for (size_t i = 0; i < c.n_words; ++i) {
      const uint64_t* src = c.codes + (i / kBlockWords) * W * 16 + i % kBlockWords;  // plane word 0, nz
      uint8_t* dst = o + (i / 32) * W16 * 128 + i % 32;
      for (uint32_t g = 0; g < 4 * W16 && 4 * g < c.dims; ++g) {
        const unsigned shift = (4 * g) % 64;
        const uint64_t nz = src[(4 * g / 64) * 16], sg = src[(4 * g / 64) * 16 + 8];
        dst[g * 32] = code[(nz >> shift) & 15][(sg >> shift) & 15];
      }
    }
    return out;
  }
  if (block_words != 16) throw Error("no code layout with " + std::to_string(block_words) + "-word blocks");
  const uint32_t W = c.W, W32 = layout_plane_words(c.dims, 16);
  AlignedArray<uint64_t> out(nblocks * W32 * 16);  // per block and plane word: 32 uint32
  auto* o = reinterpret_cast<uint32_t*>(out.data());
  for (size_t i = 0; i < c.n_words; ++i) {
    const uint64_t* src = c.codes + (i / kBlockWords) * W * 16 + i % kBlockWords;  // plane word 0, nz
    uint32_t* dst = o + (i / 16) * W32 * 32 + i % 16;
    for (uint32_t j = 0; j < W32; ++j) {
      const unsigned shift = 32 * (j % 2);
      dst[j * 32] = static_cast<uint32_t>(src[(j / 2) * 16] >> shift);
      dst[j * 32 + 16] = static_cast<uint32_t>(src[(j / 2) * 16 + 8] >> shift);
    }
  }
  return out;
}

}  // namespace igla::kernels
