// The final rescoring stage on float16 / float32 rows (include/igla/final_rerank.hpp).
#include "igla/final_rerank.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/half.hpp"
#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace igla {

namespace {

// n float16 values to float: exact either way (every float16 is a float), so the F16C path and
// the plain loop give the same bits; F16C converts 8 at a time.
void decode_f16_plain(const uint16_t* h, uint32_t n, float* out) {
  for (uint32_t d = 0; d < n; ++d) out[d] = half_to_float(h[d]);
}
#if defined(__x86_64__)
// F16C is asked for through AVX2: every x86 CPU with AVX2 has F16C, and clang's
// __builtin_cpu_supports does not know the name "f16c".
__attribute__((target("avx2,f16c"))) void decode_f16_f16c(const uint16_t* h, uint32_t n, float* out) {
  uint32_t d = 0;
  for (; d + 8 <= n; d += 8)
    _mm256_storeu_ps(out + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + d))));
  for (; d < n; ++d) out[d] = half_to_float(h[d]);
}
using DecodeF16 = void (*)(const uint16_t*, uint32_t, float*);
DecodeF16 pick_decode_f16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? decode_f16_f16c : decode_f16_plain;
}
const DecodeF16 decode_f16 = pick_decode_f16();
#else
constexpr auto decode_f16 = decode_f16_plain;
#endif

std::string where(const Index& ix) { return ix.path().empty() ? std::string("(in memory)") : ix.path(); }

class FinalRerankStage final : public Searcher {
 public:
  FinalRerankStage(std::shared_ptr<const Searcher> base, std::shared_ptr<const Index> index, FinalRows rows,
                   int threads)
      : base_(std::move(base)), index_(std::move(index)), kind_(rows), threads_(threads), D_(index_->float_dims()) {
    if (kind_ == FinalRows::F32) {
      f32_ = index_->float_vectors();  // verifies F32V (checksum, finite) once
    } else if (index_->rerank() != Rerank::F16) {
      f16_ = encode_f16_rows(index_->float_vectors(), D_);
    }
  }

  std::string name() const override { return base_->name() + " + final rerank " + final_rows_name(kind_); }

  Capabilities capabilities() const override {
    Capabilities c = base_->capabilities();
    c.reranks = true;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& p, SearchResults& out) const override {
    if (p.k == 0 || !batch.any_float()) {
      base_->search(batch, p, out);
      return;
    }
    if (batch.float_dims != D_) throw Error("final rerank: query float form does not match the index's float dims");
    search_then_rescore(
        *base_, batch, p, threads_,
        [&](size_t q, std::span<const Hit> c, std::vector<Hit>& best) {
          rescore_candidates(
              batch, q, c, p.k, [&](uint32_t id, float* buf) { return row(id, buf); },
              [&](uint32_t id) { prefetch(id); }, best);
        },
        out);
  }

 private:
  void prefetch(uint32_t id) const {
    const char* r = kind_ == FinalRows::F32 ? reinterpret_cast<const char*>(f32_.data() + size_t{id} * D_)
                    : f16_.empty()          ? nullptr
                                            : reinterpret_cast<const char*>(f16_.data() + size_t{id} * D_);
    if (!r) return index_->prefetch_rerank_row(id);
    const size_t bytes = size_t{D_} * (kind_ == FinalRows::F32 ? 4 : 2);
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(r + o);
    __builtin_prefetch(r + bytes - 1);
  }

  // Word id's row as float: a pointer into F32V, or decoded into buf.
  const float* row(uint32_t id, float* buf) const {
    if (kind_ == FinalRows::F32) return f32_.data() + size_t{id} * D_;
    if (f16_.empty()) {
      index_->rerank_row(id, {buf, D_});
      return buf;
    }
    decode_f16(f16_.data() + size_t{id} * D_, D_, buf);
    return buf;
  }

  std::shared_ptr<const Searcher> base_;
  std::shared_ptr<const Index> index_;
  FinalRows kind_;
  int threads_;
  uint32_t D_;
  std::span<const float> f32_;
  std::vector<uint16_t> f16_;  // made from F32V when the index has no RF16
};

}  // namespace

FinalRows parse_final_rows(std::string_view name) {
  if (name == "none") return FinalRows::None;
  if (name == "f16") return FinalRows::F16;
  if (name == "f32") return FinalRows::F32;
  throw Error("unknown final rerank rows '" + std::string(name) + "' (none, f16, f32)");
}

const char* final_rows_name(FinalRows r) {
  switch (r) {
    case FinalRows::F16: return "f16";
    case FinalRows::F32: return "f32";
    default: return "none";
  }
}

double final_rows_bytes_per_word(const Index& index, FinalRows r) {
  return r == FinalRows::F16 ? 2.0 * index.float_dims() : r == FinalRows::F32 ? 4.0 * index.float_dims() : 0.0;
}

std::shared_ptr<const Searcher> make_final_rerank_stage(std::shared_ptr<const Searcher> base,
                                                        std::shared_ptr<const Index> index, FinalRows rows,
                                                        int threads) {
  if (!base || !index) throw Error("make_final_rerank_stage: no searcher or no index");
  if (rows == FinalRows::None) throw Error("make_final_rerank_stage: rows 'none' (use the base searcher itself)");
  const bool in_place_f16 = rows == FinalRows::F16 && index->rerank() == Rerank::F16;
  if (!in_place_f16 && !index->has_float())
    throw Error("index " + where(*index) + " has no float32 vectors (F32V) for the final " + final_rows_name(rows) +
                " rerank rows" + (rows == FinalRows::F16 ? " and no RF16 rows" : "") +
                ": build it with float32 kept (`igla convert`)");
  if (index->float_dims() == 0) throw Error("index " + where(*index) + " has no float dims");
  return std::make_shared<FinalRerankStage>(std::move(base), std::move(index), rows, threads);
}

}  // namespace igla
