// The IVF-int8 searcher (include/igla/ivf.hpp, make_ivf8_searcher): the IVF's lists hold each
// word's int8 rerank row (FAISS IVF-SQ8's shape) instead of its ternary code, scanned with the
// float query quantized to int8 (AVX-512 VNNI: int8_scan.hpp); the best `candidates` rows by that
// approximate score are rescored with the rerank stage's exact arithmetic (rerank_score) on the
// same rows, so the scores returned are the rerank stage's scores for those words.
//
// Why (BENCHMARKS.md, issue 16): ternary-vs-ternary scores rank GloVe neighbours so loosely that
// recall@10 >= 0.95 against float truth took 200 candidates, and rescoring them (a random row
// read each) cost more than the list scan. Ranking on the int8 rows inside the lists needs few
// candidates and reads rows that are contiguous.
//
// A batch is cut into one chunk of queries per thread; within a chunk the queries are grouped by
// list and the lists walked once, so a list's rows are read from memory once per chunk.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ann/int8_scan.hpp"
#include "ann/kmeans.hpp"
#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"

namespace igla {
namespace {

using ann::kInt8BlockRows;

// The IVF's positions with their int8 rows in the scan layout (int8_scan.hpp).
struct Int8Lists {
  uint32_t D = 0, G = 0;           // float dims, groups of 4 dims
  std::vector<uint8_t> blocks;     // positions / 16 blocks of G * 64 bytes
  std::vector<float> inv_norms;    // per position: 1 / |decoded row| (0: padding or a zero row)
  std::vector<float> scales;       // the index's per-dimension scales
};

std::shared_ptr<const Int8Lists> build_lists(const Index& ix, const IvfIndex& ivf) {
  auto out = std::make_shared<Int8Lists>();
  const auto rows = ix.rerank_int8_rows();
  const auto sc = ix.rerank_int8_scales();
  const uint32_t D = ix.float_dims();
  out->D = D;
  out->G = (D + 3) / 4;
  out->scales.assign(sc.begin(), sc.end());
  const size_t P = ivf.positions(), G = out->G;
  out->blocks.assign(P / kInt8BlockRows * G * 64, uint8_t{128});
  out->inv_norms.assign(P, 0.0f);
  const auto ids = ivf.ids();
  for (size_t p = 0; p < P; ++p) {
    const uint32_t id = ids[p];
    if (id == ~0u) continue;
    const int8_t* r = rows.data() + size_t{id} * D;
    uint8_t* blk = out->blocks.data() + (p / kInt8BlockRows) * G * 64 + 4 * (p % kInt8BlockRows);
    double n2 = 0;
    for (uint32_t d = 0; d < D; ++d) {
      blk[(d / 4) * 64 + d % 4] = static_cast<uint8_t>(int{r[d]} + 128);
      const double x = double(r[d]) * sc[d];
      n2 += x * x;
    }
    out->inv_norms[p] = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.0f;
  }
  return out;
}

// A query's best `cap` positions by approximate score so far: appended above a threshold, cut
// back to the best cap when the buffer holds 4 cap + 16 (the threshold rises to the cap-th).
class TopPositions {
 public:
  void reset(size_t cap) {
    cap_ = cap;
    v_.clear();
    thr_ = -std::numeric_limits<float>::infinity();
  }
  float threshold() const { return thr_; }
  void push(float s, uint32_t pos) {
    v_.push_back({s, pos});
    if (v_.size() >= 4 * cap_ + 16) cut();
  }
  std::vector<std::pair<float, uint32_t>>& finish() {
    cut();
    return v_;
  }

 private:
  void cut() {
    if (v_.size() <= cap_) return;
    auto kth = v_.begin() + static_cast<std::ptrdiff_t>(cap_ - 1);
    // Order by score, then position: the same set whatever order the lists were pushed in.
    std::nth_element(v_.begin(), kth, v_.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    thr_ = kth->first;
    v_.resize(cap_);
  }
  size_t cap_ = 0;
  std::vector<std::pair<float, uint32_t>> v_;
  float thr_ = -std::numeric_limits<float>::infinity();
};

class Ivf8Searcher final : public Searcher {
 public:
  Ivf8Searcher(std::shared_ptr<const Index> index, std::shared_ptr<const IvfIndex> ivf,
               std::shared_ptr<const Int8Lists> lists, const SearcherOptions& opts)
      : index_(std::move(index)), ivf_(std::move(ivf)), lists_(std::move(lists)) {
    ThreadPool& pool = ThreadPool::shared();
    if (opts.cpu.threads > pool.size()) pool.grow_to(opts.cpu.threads);
    threads_ = opts.cpu.threads > 0 ? std::min(opts.cpu.threads, pool.size()) : pool.size();
    vnni_ = opts.cpu.kernel != "scalar" && ann::int8_scan_vnni_available();
    float_ct_ = ann::transpose(ivf_->float_centroids().data(), ivf_->lists(), ivf_->float_dims());
    fallback_ = make_rerank_stage(make_ivf_searcher(index_, opts, ivf_), index_, threads_);
  }

  std::string name() const override {
    return "ivf-int8/" + std::string(vnni_ ? "avx512vnni" : "scalar") + " " + std::to_string(ivf_->lists()) +
           " lists x" + std::to_string(threads_) + " threads";
  }

  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = std::numeric_limits<size_t>::max();
    c.max_fast_terms = std::numeric_limits<uint32_t>::max();
    c.multi_term = true;
    c.exact = false;
    c.reranks = true;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    batch.validate();
    const size_t nq = batch.size();
    bool own = batch.combine == Combine::Sum && batch.float_dims == lists_->D && params.limit == 0;
    for (size_t q = 0; q < nq && own; ++q) own = batch.has_float[q] != 0;
    if (!own) {  // no float form, 3CosMul or --limit: the ternary IVF and the rerank stage
      fallback_->search(batch, params, out);
      return;
    }
    out.reset(nq, params.k);
    if (nq == 0 || params.k == 0) return;
    const uint32_t L = ivf_->lists();
    const uint32_t nprobe = params.nprobe ? std::min(params.nprobe, L) : default_nprobe(L);
    const size_t chunks = std::min<size_t>(static_cast<size_t>(threads_), nq);
    auto run = [&](uint32_t c, int) { search_chunk(batch, params, nprobe, nq * c / chunks, nq * (c + 1) / chunks, out); };
    if (chunks > 1)
      ThreadPool::shared().run(static_cast<uint32_t>(chunks), run, threads_);
    else
      run(0, 0);
  }

 private:
  void search_chunk(const QueryBatch& batch, const SearchParams& params, uint32_t nprobe, size_t q0, size_t q1,
                    SearchResults& out) const {
    const size_t nq = q1 - q0, D = lists_->D, G = lists_->G, L = ivf_->lists();
    // The query vectors: sum of weighted float terms; int8 of it times the row scales.
    std::vector<float> x(nq * D, 0.0f);
    std::vector<int32_t> q4(nq * G, 0);
    std::vector<float> corr(nq);
    for (size_t q = 0; q < nq; ++q) {
      float* xr = x.data() + q * D;
      for (uint32_t t = batch.term_offsets[q0 + q]; t < batch.term_offsets[q0 + q + 1]; ++t) {
        const float* v = batch.float_terms.data() + size_t{t} * D;
        for (size_t d = 0; d < D; ++d) xr[d] += batch.float_weights[t] * v[d];
      }
      float m = 0;
      for (size_t d = 0; d < D; ++d) m = std::max(m, std::fabs(xr[d] * lists_->scales[d]));
      const float s = m > 0 ? 127.0f / m : 0.0f;
      int32_t sum = 0;
      auto* qb = reinterpret_cast<int8_t*>(q4.data() + q * G);
      for (size_t d = 0; d < D; ++d) {
        const long v = std::lround(xr[d] * lists_->scales[d] * s);
        qb[d] = static_cast<int8_t>(std::clamp<long>(v, -127, 127));
        sum += qb[d];
      }
      corr[q] = 128.0f * static_cast<float>(sum);
    }
    // Probes: the float query against the float centroids.
    std::vector<uint32_t> probes(nq * nprobe);
    if (nprobe >= L) {
      for (size_t q = 0; q < nq; ++q)
        for (uint32_t i = 0; i < L; ++i) probes[q * L + i] = i;
    } else {
      std::vector<float> s(nq * L);
      ann::dot_rows(x.data(), nq, float_ct_.data(), L, D, s.data());
      for (size_t q = 0; q < nq; ++q) ann::top_indices(s.data() + q * L, L, nprobe, probes.data() + q * nprobe);
    }
    std::vector<uint32_t> begin(L + 1, 0), members(probes.size());
    for (uint32_t p : probes) ++begin[p + 1];
    for (size_t l = 0; l < L; ++l) begin[l + 1] += begin[l];
    {
      std::vector<uint32_t> fill(begin.begin(), begin.end() - 1);
      for (size_t q = 0; q < nq; ++q)
        for (uint32_t i = 0; i < nprobe; ++i) members[fill[probes[q * nprobe + i]]++] = static_cast<uint32_t>(q);
    }
    std::vector<TopPositions> top(nq);
    auto n_excl = [&](size_t gq) { return size_t{batch.exclude_offsets[gq + 1] - batch.exclude_offsets[gq]}; };
    for (size_t q = 0; q < nq; ++q) top[q].reset(std::max(params.candidates, params.k) + n_excl(q0 + q));

    constexpr size_t kGroup = 8;  // queries per kernel call over one list
    std::vector<int32_t> dots;
    std::vector<int32_t> gq4(kGroup * G);
    std::vector<uint32_t> sel_pos;
    std::vector<float> sel_score;
    for (size_t l = 0; l < L; ++l) {
      const uint32_t off = ivf_->offset(static_cast<uint32_t>(l)), size = ivf_->list_size(static_cast<uint32_t>(l));
      if (size == 0) continue;
      const size_t nb = (size + kInt8BlockRows - 1) / kInt8BlockRows, stride = nb * kInt8BlockRows;
      const uint8_t* blocks = lists_->blocks.data() + size_t{off / kInt8BlockRows} * G * 64;
      const float* inv = lists_->inv_norms.data() + off;
      for (uint32_t i = begin[l]; i < begin[l + 1]; i += kGroup) {
        const size_t g = std::min<size_t>(kGroup, begin[l + 1] - i);
        for (size_t j = 0; j < g; ++j)
          std::copy_n(q4.data() + size_t{members[i + j]} * G, G, gq4.data() + j * G);
        dots.resize(g * stride);
        sel_pos.resize(stride);
        sel_score.resize(stride);
        if (vnni_)
          ann::int8_scan_vnni(blocks, nb, static_cast<uint32_t>(G), gq4.data(), g, dots.data());
        else
          ann::int8_scan_scalar(blocks, nb, static_cast<uint32_t>(G), gq4.data(), g, dots.data());
        for (size_t j = 0; j < g; ++j) {
          const uint32_t q = members[i + j];
          TopPositions& t = top[q];
          // The threshold as the list starts: rows below a later one are cut by the reservoir.
          const size_t m = vnni_ ? ann::select_rows_avx512(dots.data() + j * stride, size, corr[q], inv,
                                                           t.threshold(), sel_pos.data(), sel_score.data())
                                 : ann::select_rows_scalar(dots.data() + j * stride, size, corr[q], inv,
                                                           t.threshold(), sel_pos.data(), sel_score.data());
          for (size_t r = 0; r < m; ++r) t.push(sel_score[r], off + sel_pos[r]);
        }
      }
    }
    // Exact rescoring of each query's candidates on their rows (rerank_score), best k kept.
    const auto ids = ivf_->ids();
    std::vector<float> row(D);
    std::vector<Hit> hits;
    for (size_t q = 0; q < nq; ++q) {
      const size_t gq = q0 + q;
      const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[gq];
      const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[gq + 1];
      hits.clear();
      for (const auto& [s, pos] : top[q].finish()) {
        const uint32_t id = ids[pos];
        if (id == ~0u || (ex != ex_end && std::find(ex, ex_end, id) != ex_end)) continue;
        const uint8_t* blk = lists_->blocks.data() + size_t{pos / kInt8BlockRows} * G * 64 + 4 * (pos % kInt8BlockRows);
        for (size_t d = 0; d < D; ++d)
          row[d] = static_cast<float>(int{blk[(d / 4) * 64 + d % 4]} - 128) * lists_->scales[d];
        hits.push_back({id, rerank_score(row.data(), batch, gq)});
      }
      const size_t m = std::min(params.k, hits.size());
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(m), hits.end(), better);
      std::copy_n(hits.begin(), m, out.hits.begin() + static_cast<std::ptrdiff_t>(gq * params.k));
      out.count[gq] = static_cast<uint32_t>(m);
    }
  }

  std::shared_ptr<const Index> index_;
  std::shared_ptr<const IvfIndex> ivf_;
  std::shared_ptr<const Int8Lists> lists_;
  std::shared_ptr<const Searcher> fallback_;
  std::vector<float> float_ct_;  // float centroids transposed (float dims x L)
  int threads_ = 1;
  bool vnni_ = false;
};

}  // namespace

std::shared_ptr<const Searcher> make_ivf8_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                   std::shared_ptr<const IvfIndex> ivf) {
  if (!index) throw Error("ivf-int8 searcher: no index");
  const std::string where = index->path().empty() ? std::string("(in memory)") : index->path();
  if (index->rerank() != Rerank::Int8)
    throw Error("ivf-int8 searcher: index " + where + " has no int8 rerank rows (rerank: " +
                rerank_name(index->rerank()) + ")");
  if (!ivf) ivf = ivf_of(*index);
  if (ivf->dims() != index->dims() || ivf->size() != index->size())
    throw Error("ivf-int8 searcher: the IVF lists were built for another index");
  if (ivf->float_dims() != index->float_dims())
    throw Error("ivf-int8 searcher: the IVF of index " + where + " has no float centroids (fitted on " +
                ivf_source_name(ivf->source()) + ")");
  auto lists = build_lists(*index, *ivf);
  return std::make_shared<Ivf8Searcher>(std::move(index), std::move(ivf), std::move(lists), opts);
}

}  // namespace igla
