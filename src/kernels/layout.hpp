// igla internal: the code layouts of the CPU kernels.
//
// The index stores blocks of 8 words with 64-bit plane words (include/igla/ternary.hpp), which is
// what the scalar and AVX2 kernels read. A kernel with 32-bit lanes (AVX-512) reads blocks of 16
// words with 32-bit plane words instead, so that one zmm holds one plane word of 16 words:
//
//     codes32[(b * W32 + j) * 32 + lane]        nz bits [32 j, 32 j + 32) of word 16 b + lane
//     codes32[(b * W32 + j) * 32 + 16 + lane]   sign bits of the same dims
//
// with W32 = ceil(dims / 32), padding words all zero.
//
// The AVX2 kernel reads blocks of 32 words transposed to bytes ("fast scan", as FAISS's 4-bit PQ
// fast-scan codes): one byte per word per 4 dims, so that one ymm holds the same 4 dims of 32
// words and a VPSHUFB with a 16-entry table made from the query's 2 dims scores a nibble (2
// dims) of 32 words at once:
//
//     codes8[((b * W16 + j) * 4 + s) * 32 + lane]   dims 16 j + 4 s + i, i = 0..3, of word 32 b + lane:
//                                                    bit 2 i = nz, bit 2 i + 1 = sign (quad_code)
//
// with W16 = ceil(dims / 16) (a "plane word" of 16 bits per plane), padding words and dims zero.
// Every layout has 128 bytes per block and plane word. The conversion is a pure function of the
// codes (so one copy per index can be shared); the CPU searcher converts once when it is made: a
// copy the size of the codes (8 MB for 100K x 300, a few ms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "igla/index.hpp"

namespace igla::kernels {

// Plane words per vocabulary word in a layout of `block_words`-word blocks.
constexpr uint32_t layout_plane_words(uint32_t dims, uint32_t block_words) {
  const uint32_t bits = 512 / block_words;
  return (dims + bits - 1) / bits;
}

// The byte of 4 dims in the 32-word layout: bit 2 i = nz bit i, bit 2 i + 1 = sign bit i (nz4,
// sg4: the 4 dims' bits of each plane). A nibble is then 2 dims: (nz, sign, nz, sign).
constexpr uint8_t quad_code(uint32_t nz4, uint32_t sg4) {
  uint32_t b = 0;
  for (uint32_t i = 0; i < 4; ++i) b |= ((nz4 >> i) & 1u) << (2 * i) | ((sg4 >> i) & 1u) << (2 * i + 1);
  return static_cast<uint8_t>(b);
}

// 64-byte aligned, zero-filled storage.
template <class T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(size_t n)
      : n_(n), p_(static_cast<T*>(std::aligned_alloc(64, std::max<size_t>(64, (n * sizeof(T) + 63) / 64 * 64)))) {
    if (!p_) throw std::bad_alloc();
    std::fill(p_.get(), p_.get() + n, T{});
  }
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  size_t n_ = 0;
  std::unique_ptr<T, Free> p_;
};

// The codes of `c` in blocks of `block_words` (8, 16 or 32) words, as uint64 words (the 16-word
// layout's 32-bit words in pairs, the 32-word layout's bytes in eights); the last block is
// padded with zero words.
AlignedArray<uint64_t> to_block_layout(const CodesView& c, uint32_t block_words);

}  // namespace igla::kernels
