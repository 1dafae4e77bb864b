// igla: ternary codes — quantization and the 2-bit storage layout.
//
// A trit t in {-1, 0, +1} is stored as two bits: nz = (t != 0), sign = (t < 0). A vector of D
// trits becomes two bitplanes of W = ceil(D / 64) 64-bit words each (bit d of plane word d / 64,
// at bit position d % 64); bits past D are zero, and sign bits are zero wherever nz is zero, so
// the encoding is canonical. The dot product of two ternary vectors a, b is then
//
//     t   = nz_a & nz_b                        (dims where both are non-zero)
//     dot = popcount(t) - 2 * popcount(t & (sign_a ^ sign_b))
//
// i.e. 2 popcounts per 64 dims instead of 64 multiply-adds.
//
// The vocabulary ("index codes") is stored in blocks of kBlockWords = 8 words, interleaved so
// that one SIMD lane holds one word: for block b and plane word j,
//
//     codes[(b * W + j) * 16 + lane]       nz   word j of vocabulary word 8 * b + lane
//     codes[(b * W + j) * 16 + 8 + lane]   sign word j of vocabulary word 8 * b + lane
//
// Each 128-byte group is two aligned cache lines, and an AVX-512 kernel scores 8 words against a
// query with no horizontal reduction (FAISS's fast-scan codes are laid out for the same reason).
// The vocabulary is padded to a multiple of 8 with all-zero words, which score 0 and are never
// reported. Query codes are plain rows: nz[W] then sign[W].
//
// The norm of a ternary vector is sqrt(number of non-zero trits).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace igla {

inline constexpr uint32_t kBlockWords = 8;                 // vocabulary words per block
inline constexpr float kDefaultThresholdFactor = 0.5f;    // the seed's f in |x| > f * mean|x|

constexpr uint32_t plane_words(uint32_t dims) { return (dims + 63) / 64; }
constexpr size_t padded_words(size_t n) { return (n + kBlockWords - 1) / kBlockWords * kBlockWords; }
constexpr size_t block_count(size_t n) { return padded_words(n) / kBlockWords; }
// uint64 words of the blocked code array for n vocabulary words
constexpr size_t code_words(size_t n, uint32_t dims) { return block_count(n) * plane_words(dims) * 16; }

// 1/sqrt(nnz), 0 for an all-zero vector. Every search path (reference, SIMD, CUDA) uses exactly
// this value, so scores agree to the bit.
inline float inv_norm_from_nnz(uint32_t nnz) { return nnz ? 1.0f / std::sqrt(static_cast<float>(nnz)) : 0.0f; }

// The seed's quantizer: trit = sign(x) where |x| > factor * mean|x| (mean over this vector), else 0.
void quantize_seed(std::span<const float> x, float factor, std::span<int8_t> out);

// Clamps an integer vector (e.g. b - a + c of trits) back to {-1, 0, +1}.
void clamp_trits(std::span<const int32_t> x, std::span<int8_t> out);

// Packs trits into a query row (nz[W], sign[W]); `row` has 2 * plane_words(dims) words.
void pack_row(std::span<const int8_t> trits, std::span<uint64_t> row);
void unpack_row(std::span<const uint64_t> row, uint32_t dims, std::span<int8_t> trits);

// Writes word `word`'s trits into the blocked code array (see the layout above).
void pack_into_blocks(std::span<const int8_t> trits, size_t word, uint64_t* codes);
void unpack_from_blocks(const uint64_t* codes, size_t word, uint32_t dims, std::span<int8_t> trits);

uint32_t count_nonzero(std::span<const int8_t> trits);

}  // namespace igla
