// The portable kernel: the bitplane dot product with std::popcount, one word at a time. It runs
// everywhere and is the packed path the SIMD kernels are compared against (the int8 reference
// in src/core/query_batch.cpp checks it in turn).
#include <bit>
#include <limits>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace scalar {
#include "kernels/epilogue.inl"

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  for (size_t q = 0; q < nq; ++q) {
    const uint64_t* qn = queries + q * 2 * W;
    const uint64_t* qs = qn + W;
    for (size_t b = 0; b < nblocks; ++b) {
      const uint64_t* blk = blocks + b * W * 16;
      for (uint32_t lane = 0; lane < kBlockWords; ++lane) {
        int32_t d = 0;
        for (uint32_t j = 0; j < W; ++j) {
          const uint64_t t = blk[j * 16 + lane] & qn[j];
          const uint64_t u = t & (blk[j * 16 + 8 + lane] ^ qs[j]);
          d += std::popcount(t) - 2 * std::popcount(u);
        }
        out[q * stride + b * kBlockWords + lane] = d;
      }
    }
  }
}

bool supported() { return true; }

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t* scratch) {
  return scan_cosine_two_pass(dots, blocks, nblocks, W, queries, nq, w, thr, inv, nw, out, scratch);
}
}  // namespace scalar

const Kernel& scalar_kernel() {
  static const Kernel k{"scalar", "portable C++ (std::popcount), one word at a time", kBlockWords, false, scalar::supported,
                        scalar::dots, scalar::scores_impl, scalar::select_impl,
                        scalar::scan_cosine, nullptr, nullptr};
  return k;
}

}  // namespace igla::kernels
