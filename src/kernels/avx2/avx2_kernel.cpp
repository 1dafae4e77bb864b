// AVX2 kernel for CPUs without AVX-512: 4 words per ymm lane group, popcount by nibble lookup
// (VPSHUFB) and VPSADBW, since AVX2 has no vector popcount. QB queries share each loaded block.
#include <immintrin.h>

#include <limits>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace avx2 {
#include "kernels/epilogue.inl"

// Per-byte popcounts of v (each byte 0..8).
inline __m256i popcnt8(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
}

template <int QB>
void dots_block(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* q, int32_t* out, size_t stride) {
  const __m256i zero = _mm256_setzero_si256();
  for (size_t b = 0; b < nblocks; ++b) {
    const uint64_t* blk = blocks + b * W * 16;
    for (int half = 0; half < 2; ++half) {  // lanes 0-3, then 4-7
      __m256i acc[QB];
      for (int k = 0; k < QB; ++k) acc[k] = zero;
      for (uint32_t j = 0; j < W; ++j) {
        const __m256i nz = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + j * 16 + half * 4));
        const __m256i sg = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + j * 16 + 8 + half * 4));
        for (int k = 0; k < QB; ++k) {
          const __m256i t = _mm256_and_si256(nz, _mm256_set1_epi64x(static_cast<long long>(q[k * 2 * W + j])));
          const __m256i x = _mm256_xor_si256(sg, _mm256_set1_epi64x(static_cast<long long>(q[k * 2 * W + W + j])));
          // Per byte: popcount(agree) + 8 - popcount(disagree) in [0, 16]; SAD sums the 8 bytes of
          // a 64-bit lane, so dot = sum - 64 per plane word.
          const __m256i agree = popcnt8(_mm256_andnot_si256(x, t));
          const __m256i dis = popcnt8(_mm256_and_si256(x, t));
          const __m256i biased = _mm256_sub_epi8(_mm256_add_epi8(agree, _mm256_set1_epi8(8)), dis);
          acc[k] = _mm256_add_epi64(acc[k], _mm256_sad_epu8(biased, zero));
        }
      }
      const __m256i bias = _mm256_set1_epi64x(64LL * W);
      for (int k = 0; k < QB; ++k) {
        alignas(32) long long v[4];
        _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_sub_epi64(acc[k], bias));
        int32_t* o = out + k * stride + b * 8 + half * 4;
        for (int l = 0; l < 4; ++l) o[l] = static_cast<int32_t>(v[l]);
      }
    }
  }
}

void dots(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq, int32_t* out,
          size_t stride) {
  constexpr int QB = 4;
  size_t q = 0;
  for (; q + QB <= nq; q += QB) dots_block<QB>(blocks, nblocks, W, queries + q * 2 * W, out + q * stride, stride);
  for (; q < nq; ++q) dots_block<1>(blocks, nblocks, W, queries + q * 2 * W, out + q * stride, stride);
}

bool supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt"); }

size_t scan_cosine(const uint64_t* blocks, size_t nblocks, uint32_t W, const uint64_t* queries, size_t nq,
                   const float* w, const float* thr, const float* inv, size_t nw, Candidate* out, int32_t* scratch) {
  return scan_cosine_two_pass(dots, blocks, nblocks, W, queries, nq, w, thr, inv, nw, out, scratch);
}
}  // namespace avx2

const Kernel& avx2_kernel() {
  static const Kernel k{"avx2", "AVX2, nibble-lookup popcount, 4 words per register, 4 queries per pass", kBlockWords, false,
                        avx2::supported, avx2::dots, avx2::scores_impl, avx2::select_impl,
                        avx2::scan_cosine, nullptr, nullptr};
  return k;
}

}  // namespace igla::kernels
