// Rerank rows: encoding at build, decoding per candidate, and the exact float rescoring.
#include "core/rerank.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fdot.hpp"
#include "core/half.hpp"
#include "core/index_format.hpp"
#include "igla/error.hpp"

namespace igla {

namespace {

// x (D values) scaled to unit length (a zero row stays zero), computed in double.
void unit_row(const float* x, size_t D, float* out) {
  double n2 = 0;
  for (size_t d = 0; d < D; ++d) n2 += double(x[d]) * x[d];
  const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
  for (size_t d = 0; d < D; ++d) out[d] = static_cast<float>(x[d] * inv);
}

// Row i of v scaled to unit length.
void unit_row(const FloatVectors& v, size_t i, float* out) { unit_row(v.row(i).data(), v.dims, out); }

}  // namespace

std::vector<uint16_t> encode_f16_rows(std::span<const float> data, uint32_t D) {
  if (D == 0 || data.size() % D != 0) throw Error("encode_f16_rows: data is not a whole number of rows");
  std::vector<uint16_t> out(data.size());
  std::vector<float> u(D);
  for (size_t i = 0; i < data.size() / D; ++i) {
    unit_row(data.data() + i * D, D, u.data());
    for (size_t d = 0; d < D; ++d) out[i * D + d] = float_to_half(u[d]);
  }
  return out;
}

std::vector<char> encode_rerank_rows(const FloatVectors& v, Rerank kind) {
  const size_t n = v.size(), D = v.dims;
  std::vector<char> out;
  if (kind == Rerank::None) return out;
  std::vector<float> u(D);
  if (kind == Rerank::F16) {
    out.resize(n * D * 2);
    for (size_t i = 0; i < n; ++i) {
      unit_row(v, i, u.data());
      for (size_t d = 0; d < D; ++d) {
        const uint16_t h = float_to_half(u[d]);
        std::memcpy(out.data() + (i * D + d) * 2, &h, 2);
      }
    }
    return out;  // the bytes of encode_f16_rows(v.data, D): the same unit_row and rounding
  }
  // int8: scale[d] = max |unit[d]| / 127 over the vocabulary, so no value clips.
  std::vector<float> scale(D, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    unit_row(v, i, u.data());
    for (size_t d = 0; d < D; ++d) scale[d] = std::max(scale[d], std::fabs(u[d]));
  }
  for (float& s : scale) s = s > 0 ? s / 127.0f : 1.0f;
  const size_t head = format::align_up(D * 4);
  out.assign(head + n * D, 0);
  std::memcpy(out.data(), scale.data(), D * 4);
  for (size_t i = 0; i < n; ++i) {
    unit_row(v, i, u.data());
    for (size_t d = 0; d < D; ++d)
      out[head + i * D + d] = static_cast<char>(std::clamp<long>(std::lround(u[d] / scale[d]), -127, 127));
  }
  return out;
}

void Index::rerank_row(size_t id, std::span<float> out) const {
  const uint32_t D = float_dims_;
  if (!rerank_rows_)
    throw Error("index " + (path_.empty() ? std::string("(in memory)") : path_) + " has no rerank rows");
  if (out.size() != D || id >= size()) throw Error("rerank_row: bad word id or output size");
  if (quant_.rerank == Rerank::Int8) {
    const int8_t* r = static_cast<const int8_t*>(rerank_rows_) + id * D;
    for (uint32_t d = 0; d < D; ++d) out[d] = static_cast<float>(r[d]) * rerank_scale_[d];
  } else {
    const char* r = static_cast<const char*>(rerank_rows_) + id * D * 2;
    for (uint32_t d = 0; d < D; ++d) {
      uint16_t h;
      std::memcpy(&h, r + d * 2, 2);
      out[d] = half_to_float(h);
    }
  }
}

void Index::prefetch_rerank_row(size_t id) const {
  if (!rerank_rows_ || id >= size()) return;
  const size_t bytes = size_t{float_dims_} * (quant_.rerank == Rerank::Int8 ? 1 : 2);
  const char* r = static_cast<const char*>(rerank_rows_) + id * bytes;
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(r + o);
  __builtin_prefetch(r + bytes - 1);
}

std::span<const int8_t> Index::rerank_int8_rows() const {
  if (!rerank_rows_ || quant_.rerank != Rerank::Int8) return {};
  return {static_cast<const int8_t*>(rerank_rows_), size() * float_dims_};
}

std::span<const float> Index::rerank_int8_scales() const {
  if (!rerank_rows_ || quant_.rerank != Rerank::Int8) return {};
  return {rerank_scale_, float_dims_};
}

float rerank_score(const float* x, const QueryBatch& batch, size_t q) {
  const uint32_t D = batch.float_dims;
  const uint32_t t0 = batch.term_offsets[q], nt = batch.term_offsets[q + 1] - t0;
  const float* terms = batch.float_terms.data() + size_t{t0} * D;
  const float* w = batch.float_weights.data() + t0;
  const float xx = fdot(x, x, D);
  const float inv = xx > 0 ? 1.0f / std::sqrt(xx) : 0.0f;
  if (batch.combine == Combine::CosMul) {  // combine_score's 3CosMul on float cosines
    const float ca = fdot(x, terms, D) * inv, cb = fdot(x, terms + D, D) * inv, cc = fdot(x, terms + 2 * D, D) * inv;
    const float sa = (ca + 1.0f) * 0.5f, sb = (cb + 1.0f) * 0.5f, sc = (cc + 1.0f) * 0.5f;
    return (sb * sc) / (sa + kCosMulEpsilon);
  }
  float score = 0.0f;
  for (size_t t = 0; t < nt; ++t) score += w[t] * (fdot(x, terms + t * D, D) * inv);
  return score;
}

void rerank_query(const Index& ix, const QueryBatch& batch, size_t q, std::span<const Hit> candidates, size_t k,
                  std::vector<Hit>& out) {
  const uint32_t D = ix.float_dims();
  if (batch.float_dims != D) throw Error("rerank: query float form does not match the index's float dims");
  const uint32_t nt = batch.term_offsets[q + 1] - batch.term_offsets[q];
  if (batch.combine == Combine::CosMul && nt != 3) throw Error("3CosMul takes exactly three terms (a, b, c)");
  rescore_candidates(
      batch, q, candidates, k,
      [&](uint32_t id, float* buf) {
        ix.rerank_row(id, {buf, D});
        return static_cast<const float*>(buf);
      },
      [&](uint32_t id) { ix.prefetch_rerank_row(id); }, out);
}

void rescore_or_keep(const QueryBatch& batch, size_t q, std::span<const Hit> candidates, const RescoreFn& rescore,
                     std::vector<Hit>& best, SearchResults& out) {
  const size_t k = out.k;
  if (batch.has_float[q]) rescore(q, candidates, best);
  else best.assign(candidates.begin(), candidates.begin() + static_cast<long>(std::min(k, candidates.size())));
  std::copy(best.begin(), best.end(), out.hits.begin() + static_cast<long>(q * k));
  out.count[q] = static_cast<uint32_t>(best.size());
}

}  // namespace igla
