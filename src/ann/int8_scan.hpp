// igla internal: the int8 list scan of the IVF-int8 searcher (include/igla/ivf.hpp,
// make_ivf8_searcher). A list's rows are stored in blocks of 16 rows: for each group g of 4
// dimensions, 64 bytes hold the 16 rows' 4 values (row j at bytes 4j..4j+3) as unsigned bytes
// value + 128; a query is its int8 values packed 4 per int32 (group g in q4[g]). The dot of row j
// with the query is then sum over bytes of u8 * s8 - 128 * sum(query): one AVX-512 VNNI vpdpbusd
// per group per 16 rows. Integer arithmetic: every implementation gives the same int32 bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla::ann {

inline constexpr size_t kInt8BlockRows = 16;

// Byte offset of row p's first 4 values (group 0) in that layout with G groups; group g's 4 values
// are g * 64 bytes further on.
inline size_t int8_row_offset(size_t p, size_t G) {
  return (p / kInt8BlockRows) * G * 64 + 4 * (p % kInt8BlockRows);
}

// out[q * nblocks * 16 + b * 16 + j] = sum over g < G, i < 4 of
//   blocks[(b * G + g) * 64 + 4 j + i] (unsigned) * int8 byte i of q4[q * G + g]
// for q < nq (without the -128 sum(query) correction). The plain reference.
void int8_scan_scalar(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out);
// The same with AVX-512 VNNI; only where int8_scan_vnni_available().
void int8_scan_vnni(const uint8_t* blocks, size_t nblocks, uint32_t G, const int32_t* q4, size_t nq, int32_t* out);
bool int8_scan_vnni_available();

// The rows of one query's scan whose approximate cosine (float(dots[j]) - corr) * inv[j] is >= thr:
// their indices j (ascending) to pos and scores to score; returns how many (n at most). The plain
// reference of the selection that scan_select_vnni fuses into the scan.
size_t select_rows_scalar(const int32_t* dots, size_t n, float corr, const float* inv, float thr, uint32_t* pos,
                          float* score);

// The batched path's scan of one list: the scan above fused with the selection, for up to
// kMaxScanGroup queries at once. For query q < nq (int8 values q4[q * G, (q + 1) * G), correction
// corr[q], threshold thr[q]) and row j < rows (the list's first rows; the blocks hold
// ceil(rows / 16) blocks), the rows with (float(dot) - corr[q]) * inv[j] >= thr[q] go to
// pos[q * stride + ...] (j, ascending) and score[q * stride + ...]; count[q] = how many. stride >=
// rows. The same rows, order and score bits as int8_scan_* followed by select_rows_* per query.
inline constexpr size_t kMaxScanGroup = 8;
struct ScanSelect {
  const int32_t* q4;
  const float* corr;
  const float* thr;
  size_t nq;
  uint32_t* pos;
  float* score;
  size_t stride;
  uint32_t* count;
  // Optional: bytes read soon after this scan (the next list of a one-query search), prefetched
  // into L2 while it runs, NB lines per group of 4 dims (the rate of the scan's own reads, so a
  // region as long as the list is prefetched whole by its end). Hints only: no effect on results.
  const uint8_t* prefetch = nullptr;
  size_t prefetch_bytes = 0;
};
// The plain reference (int8_scan_scalar + select_rows_scalar through a dots buffer).
void scan_select_scalar(const uint8_t* blocks, size_t rows, uint32_t G, const float* inv, const ScanSelect& s);
// AVX-512 VNNI, register-blocked: each 64-byte load of a block's group feeds the nq queries,
// several blocks at a time (8 for one query, 2 for 5-8: enough independent accumulators to hide
// the multiply's latency), the scores compared in registers (no dots buffer). Only where
// int8_scan_vnni_available().
void scan_select_vnni(const uint8_t* blocks, size_t rows, uint32_t G, const float* inv, const ScanSelect& s);

// A query's int8 form (the IVF-int8 searcher's): y[d] = x[d] * scales[d], step 127 / max |y| (0
// for a zero query), out[d] = lround(y[d] * step) clamped to [-127, 127]; returns the sum of the
// out values. The plain reference, and the same bytes with AVX-512 (lround's half-away-from-zero
// rounding done exactly: truncation, then the exact remainder compared with 0.5).
int32_t quantize_query_plain(const float* x, const float* scales, size_t D, int8_t* out);
int32_t quantize_query_avx512(const float* x, const float* scales, size_t D, int8_t* out);
// Centroid scores from their int8 dots: cs[l] = (float(dots[l]) - corr) * step[l], l < L. The
// plain loop and the same bits with AVX-512.
void centroid_scores_plain(const int32_t* dots, float corr, const float* step, size_t L, float* cs);
void centroid_scores_avx512(const int32_t* dots, float corr, const float* step, size_t L, float* cs);
// Both AVX-512 forms run where this is true (AVX-512F).
bool query_prep_avx512_available();

}  // namespace igla::ann
