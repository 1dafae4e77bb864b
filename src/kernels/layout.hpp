// igla internal: the code layouts of the CPU kernels.
//
// The index stores blocks of 8 words with 64-bit plane words (include/igla/ternary.hpp), which is
// what the scalar and AVX2 kernels read. A kernel with 32-bit lanes (AVX-512) reads blocks of 16
// words with 32-bit plane words instead, so that one zmm holds one plane word of 16 words:
//
//     codes32[(b * W32 + j) * 32 + lane]        nz bits [32 j, 32 j + 32) of word 16 b + lane
//     codes32[(b * W32 + j) * 32 + 16 + lane]   sign bits of the same dims
//
// with W32 = ceil(dims / 32), padding words all zero. The CPU searcher converts once when it is
// made: a copy the size of the codes (8 MB for 100K x 300, a few ms).
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

// The codes of `c` in blocks of `block_words` (8 or 16) words, as uint64 words (the 16-word
// layout's 32-bit words in pairs); one block past the last word is zero padding.
AlignedArray<uint64_t> to_block_layout(const CodesView& c, uint32_t block_words);

}  // namespace igla::kernels
