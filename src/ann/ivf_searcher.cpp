// The IVF searcher (include/igla/ivf.hpp): probe the lists nearest each query, scan them with the
// CPU kernels, map positions back to word ids.
//
// A batch is cut into contiguous chunks of queries, one per thread. Within a chunk the queries
// are grouped by list and the lists walked in ascending order, so each probed list's codes are
// read once per chunk (they stay in L1/L2 while its group is scanned) and every query sees its
// positions in ascending order, the order the kernel-held top-k lists assume.
//
// Two scan paths:
//   - kernel-held lists (scan_topk / scan_sum_topk): each query's list persists across the lists
//     it probes (copied into the group's contiguous slots for the call and back). Its ids are
//     positions, so among equal scores it keeps the lower position, not the lower word id; the
//     list holds a margin beyond k + exclusions, and a query whose k-th score equals the list's
//     last (a tie that may cross the cut) is scanned again on the exact path below.
//   - exact ties (the fused scan_cosine for one-term queries, else dots, scores, select; into a
//     reservoir of word ids): the threshold is lowered one ulp so words equal to the k-th score
//     get in, and ties are broken by word id as every searcher does. Used for k beyond the
//     kernel lists (the rerank stage's candidates), 3CosMul, --limit, and kernels without
//     kernel-held lists.
// With every list probed both give exactly the exact search's answer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "ann/ivf_probes.hpp"
#include "ann/kmeans.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"
#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"

namespace igla {
namespace ann {

IvfProbeTables::IvfProbeTables(const IvfIndex& ivf) {
  const uint32_t L = ivf.lists();
  code_ct = transpose(ivf.code_centroids().data(), L, ivf.dims());
  if (ivf.float_dims()) float_ct = transpose(ivf.float_centroids().data(), L, ivf.float_dims());
}

void check_ivf_batch(const QueryBatch& batch, const IvfIndex& ivf) {
  batch.validate();
  if (batch.dims != ivf.dims())
    throw Error("query batch has " + std::to_string(batch.dims) + " dimensions, the IVF index has " +
                std::to_string(ivf.dims()));
}

void choose_ivf_lists(const IvfIndex& ivf, const IvfProbeTables& tables, const QueryBatch& batch, size_t q0,
                      size_t q1, uint32_t nprobe, std::vector<uint32_t>& probes) {
  const uint32_t L = ivf.lists();
  const size_t nq = q1 - q0;
  probes.resize(nq * nprobe);
  if (nprobe >= L) {
    for (size_t q = 0; q < nq; ++q)
      for (uint32_t i = 0; i < L; ++i) probes[q * L + i] = i;
    return;
  }
  const uint32_t fd = ivf.float_dims(), cd = ivf.dims();
  std::vector<uint32_t> fq, cq;  // chunk-local queries per space
  for (size_t q = 0; q < nq; ++q) {
    const size_t gq = q0 + q;
    const bool f = fd && batch.float_dims == fd && gq < batch.has_float.size() && batch.has_float[gq];
    (f ? fq : cq).push_back(static_cast<uint32_t>(q));
  }
  auto probe_weight = [&](uint32_t t, uint32_t first, bool fl) {
    const float w = fl ? batch.float_weights[t] : batch.weights[t];
    if (batch.combine == Combine::CosMul) return t == first ? -std::abs(w) : std::abs(w);  // b + c - a
    return w;
  };
  std::vector<float> x, s;
  for (int space = 0; space < 2; ++space) {
    const auto& qs = space == 0 ? fq : cq;
    if (qs.empty()) continue;
    const bool fl = space == 0;
    const size_t d = fl ? fd : cd;
    x.assign(qs.size() * d, 0.0f);
    for (size_t i = 0; i < qs.size(); ++i) {
      const size_t gq = q0 + qs[i];
      const uint32_t first = batch.term_offsets[gq];
      for (uint32_t t = first; t < batch.term_offsets[gq + 1]; ++t) {
        const float w = probe_weight(t, first, fl);
        float* xr = x.data() + i * d;
        if (fl) {
          const float* v = batch.float_terms.data() + size_t{t} * fd;
          for (size_t j = 0; j < d; ++j) xr[j] += w * v[j];
        } else {
          const int8_t* v = batch.trits.data() + size_t{t} * cd;
          for (size_t j = 0; j < d; ++j) xr[j] += w * static_cast<float>(v[j]);
        }
      }
    }
    s.resize(qs.size() * L);
    dot_rows(x.data(), qs.size(), (fl ? tables.float_ct : tables.code_ct).data(), L, d, s.data());
    for (size_t i = 0; i < qs.size(); ++i)
      top_indices(s.data() + i * L, L, nprobe, probes.data() + size_t{qs[i]} * nprobe);
  }
}

}  // namespace ann

namespace {

using kernels::FusedTopK;

constexpr size_t kGroupTerms = 48;  // terms per dots pass on the exact-ties path

// A query's best k so far on the exact-ties path: hits at or above the threshold are appended,
// and when the buffer holds 4k + 16 the k-th best score t is found (nth_element on scores alone,
// cheaper than the id tie-break), every hit scoring t or more is kept (ties at t included, so
// the final pick by `better` stays exact) and t becomes the threshold. Appending is one store where a heap of a few hundred (the rerank stage's
// candidates) costs ~2 log k unpredictable compares per hit: IVF lists hold the query's
// neighbourhood, so a large share of the words scanned do enter.
class Reservoir {
 public:
  void reset(size_t k) {
    k_ = k;
    v_.clear();
    v_.reserve(4 * k + 16);
    thr_ = -std::numeric_limits<float>::infinity();
  }
  // Hits scoring below this cannot enter; equal ones can (they may have a lower id).
  float threshold() const { return thr_; }
  void push(Hit h) {
    if (k_ == 0 || h.score < thr_) return;
    v_.push_back(h);
    if (v_.size() >= 4 * k_ + 16) shrink();
  }
  // The best min(k, pushed) hits, best first.
  std::span<const Hit> sorted() {
    if (v_.size() > k_) {
      std::nth_element(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(k_ - 1), v_.end(), better);
      v_.resize(k_);
    }
    std::sort(v_.begin(), v_.end(), better);
    return v_;
  }

 private:
  void shrink() {
    if (v_.size() <= k_) return;
    const auto kth = v_.begin() + static_cast<std::ptrdiff_t>(k_ - 1);
    std::nth_element(v_.begin(), kth, v_.end(), [](const Hit& a, const Hit& b) { return a.score > b.score; });
    const float t = kth->score;
    auto end = std::partition(kth, v_.end(), [t](const Hit& h) { return h.score >= t; });
    v_.erase(end, v_.end());
    thr_ = t;
    if (v_.size() >= 2 * k_ + 16) {  // many ties at t: keep exactly the best k by `better`
      std::nth_element(v_.begin(), kth, v_.end(), better);
      v_.resize(k_);
    }
  }
  size_t k_ = 0;
  std::vector<Hit> v_;
  float thr_ = -std::numeric_limits<float>::infinity();
};

class IvfSearcher final : public Searcher {
 public:
  IvfSearcher(std::shared_ptr<const Index> index, std::shared_ptr<const IvfIndex> ivf, const SearcherOptions& opts)
      : index_(std::move(index)), ivf_(std::move(ivf)), kernel_(kernels::select_kernel(opts.cpu.kernel)),
        bw_(kernel_.block_words), W_(kernels::layout_plane_words(ivf_->dims(), bw_)), W64_(plane_words(ivf_->dims())) {
    ThreadPool& pool = ThreadPool::shared();
    if (opts.cpu.threads > pool.size()) pool.grow_to(opts.cpu.threads);
    threads_ = opts.cpu.threads > 0 ? std::min(opts.cpu.threads, pool.size()) : pool.size();
    const CodesView cv = ivf_->codes();
    codes_ = cv.codes;
    inv_ = cv.inv_norms;
    if (bw_ != kBlockWords) {
      // The kernel reads another block layout: converted once per searcher (positions are a
      // multiple of kIvfAlign, so the inverse norms need no padding).
      layout_ = std::make_shared<const kernels::AlignedArray<uint64_t>>(kernels::to_block_layout(cv, bw_));
      codes_ = layout_->data();
    }
  }

  std::string name() const override {
    return "ivf/" + std::string(kernel_.name) + " " + std::to_string(ivf_->lists()) + " lists x" +
           std::to_string(threads_) + " threads";
  }

  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = kernel_.scan_topk ? FusedTopK::kMax : 0;
    c.max_fast_terms = kernel_.scan_sum_topk ? kernels::Kernel::kMaxSumTerms : 1;
    c.multi_term = true;
    c.exact = false;
    c.reranks = false;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    ann::check_ivf_batch(batch, *ivf_);
    const size_t nq = batch.size();
    out.reset(nq, params.k);
    if (nq == 0 || params.k == 0) return;
    const uint32_t L = ivf_->lists();
    const uint32_t nprobe = params.nprobe ? std::min(params.nprobe, L) : default_nprobe(L);
    const size_t chunks = std::min<size_t>(static_cast<size_t>(threads_), nq);
    auto run = [&](uint32_t c, int) {
      const size_t q0 = nq * c / chunks, q1 = nq * (c + 1) / chunks;
      search_chunk(batch, params, nprobe, q0, q1, out);
    };
    if (chunks > 1)
      ThreadPool::shared().run(static_cast<uint32_t>(chunks), run, threads_);
    else
      run(0, 0);
  }

 private:
  // Per-chunk state; every call makes its own (search() is reentrant).
  struct Chunk {
    size_t q0 = 0, q1 = 0;
    std::vector<uint32_t> probes;                  // (q - q0) * nprobe + i
    std::vector<uint32_t> list_begin, list_queries;  // CSR: queries (chunk-local) probing each list
    std::vector<uint64_t> rows;                    // packed terms of the chunk's queries
  };

  void search_chunk(const QueryBatch& batch, const SearchParams& params, uint32_t nprobe, size_t q0, size_t q1,
                    SearchResults& out) const {
    Chunk ch;
    ch.q0 = q0;
    ch.q1 = q1;
    const size_t nq = q1 - q0, W = W64_;
    const uint32_t t0 = batch.term_offsets[q0], nterms = batch.term_offsets[q1] - t0;
    ch.rows.resize(size_t{nterms} * 2 * W);
    for (uint32_t t = 0; t < nterms; ++t)
      pack_row({batch.trits.data() + size_t{t0 + t} * batch.dims, batch.dims}, {ch.rows.data() + size_t{t} * 2 * W, 2 * W});
    choose_lists(batch, nprobe, ch);

    // Group by list.
    const uint32_t L = ivf_->lists();
    ch.list_begin.assign(size_t{L} + 1, 0);
    for (uint32_t p : ch.probes) ++ch.list_begin[p + 1];
    for (uint32_t l = 0; l < L; ++l) ch.list_begin[l + 1] += ch.list_begin[l];
    ch.list_queries.resize(ch.probes.size());
    {
      std::vector<uint32_t> fill(ch.list_begin.begin(), ch.list_begin.end() - 1);
      for (size_t q = 0; q < nq; ++q)
        for (uint32_t i = 0; i < nprobe; ++i) ch.list_queries[fill[ch.probes[q * nprobe + i]]++] = static_cast<uint32_t>(q);
    }

    const size_t k = params.k;
    auto n_excl = [&](size_t q) { return size_t{batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]}; };
    bool fits = batch.combine == Combine::Sum && (params.limit == 0 || params.limit >= index_->size());
    bool one_term = true;
    for (size_t q = q0; q < q1 && fits; ++q) {
      const uint32_t nt = batch.term_offsets[q + 1] - batch.term_offsets[q];
      fits = k + n_excl(q) <= FusedTopK::kMax && nt <= kernels::Kernel::kMaxSumTerms;
      one_term = one_term && nt == 1 && batch.weights[batch.term_offsets[q]] > 0.0f;
    }
    const bool topk = fits && one_term && kernel_.scan_topk;
    const bool sum_topk = fits && !topk && kernel_.scan_sum_topk;

    std::vector<Reservoir> heaps(nq);
    for (auto& h : heaps) h.reset(k);
    std::vector<uint8_t> redo(nq, 0);
    if (topk || sum_topk) {
      kernel_lists(batch, ch, k, topk, heaps, redo);
    } else {
      std::fill(redo.begin(), redo.end(), 1);
    }
    // The exact-ties path: every query when the kernel lists do not apply, else the few whose
    // k-th score tied the end of their list.
    std::vector<uint32_t> qs;
    for (uint32_t l = 0; l < L; ++l) {
      qs.clear();
      for (uint32_t i = ch.list_begin[l]; i < ch.list_begin[l + 1]; ++i)
        if (redo[ch.list_queries[i]]) qs.push_back(ch.list_queries[i]);
      if (!qs.empty()) exact_ties_scan(batch, params, ch, l, qs, heaps);
    }
    for (size_t q = 0; q < nq; ++q) {
      const auto v = heaps[q].sorted();
      std::copy(v.begin(), v.end(), out.hits.begin() + static_cast<std::ptrdiff_t>((q0 + q) * k));
      out.count[q0 + q] = static_cast<uint32_t>(v.size());
    }
  }

  // The nprobe best lists of each query (ann/ivf_probes.hpp).
  void choose_lists(const QueryBatch& batch, uint32_t nprobe, Chunk& ch) const {
    ann::choose_ivf_lists(*ivf_, probe_tables_, batch, ch.q0, ch.q1, nprobe, ch.probes);
  }

  // The kernel-held lists over every probed list; marks queries whose answer may have lost a tie.
  void kernel_lists(const QueryBatch& batch, const Chunk& ch, size_t k, bool topk, std::vector<Reservoir>& heaps,
                    std::vector<uint8_t>& redo) const {
    const size_t nq = ch.q1 - ch.q0, W = W64_;
    auto n_excl = [&](size_t q) { return size_t{batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]}; };
    std::vector<FusedTopK> state(nq), work;
    for (size_t q = 0; q < nq; ++q) {
      const size_t need = k + n_excl(ch.q0 + q);
      // A margin past k + exclusions, up to the next whole register of 16 slots.
      state[q].reset(static_cast<uint32_t>(std::min<size_t>(FusedTopK::kMax, (need + 1 + 15) / 16 * 16)));
    }
    std::vector<uint64_t> rows;
    std::vector<float> w;
    std::vector<uint32_t> offs;
    const uint32_t t0 = batch.term_offsets[ch.q0];
    for (uint32_t l = 0; l < ivf_->lists(); ++l) {
      const uint32_t b = ch.list_begin[l], e = ch.list_begin[l + 1];
      if (b == e || ivf_->list_size(l) == 0) continue;
      const size_t g = e - b;
      work.resize(std::max(work.size(), g));
      rows.clear();
      w.clear();
      offs.assign(1, 0);
      for (size_t i = 0; i < g; ++i) {
        const uint32_t q = ch.list_queries[b + i];
        work[i] = state[q];
        const uint32_t qt0 = batch.term_offsets[ch.q0 + q], qt1 = batch.term_offsets[ch.q0 + q + 1];
        rows.insert(rows.end(), ch.rows.begin() + static_cast<std::ptrdiff_t>(size_t{qt0 - t0} * 2 * W),
                    ch.rows.begin() + static_cast<std::ptrdiff_t>(size_t{qt1 - t0} * 2 * W));
        w.insert(w.end(), batch.weights.begin() + qt0, batch.weights.begin() + qt1);
        offs.push_back(offs.back() + (qt1 - qt0));
      }
      const uint32_t off = ivf_->offset(l), size = ivf_->list_size(l);
      const uint64_t* blocks = codes_ + size_t{off / bw_} * W_ * 16;
      const size_t nblocks = (size + bw_ - 1) / bw_;
      if (topk)
        kernel_.scan_topk(blocks, nblocks, W_, rows.data(), g, w.data(), inv_ + off, size, off, work.data());
      else
        kernel_.scan_sum_topk(blocks, nblocks, W_, rows.data(), offs.data(), g, w.data(), inv_ + off, size, off,
                              work.data());
      for (size_t i = 0; i < g; ++i) state[ch.list_queries[b + i]] = work[i];
    }
    const auto ids = ivf_->ids();
    std::vector<Hit> v;
    for (size_t q = 0; q < nq; ++q) {
      const size_t gq = ch.q0 + q;
      const FusedTopK& s = state[q];
      const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[gq];
      const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[gq + 1];
      v.clear();
      for (uint32_t i = 0; i < s.n; ++i) {
        const uint32_t id = ids[s.id[i]];
        if (ex != ex_end && std::find(ex, ex_end, id) != ex_end) continue;
        v.push_back({id, s.score[i]});
      }
      std::sort(v.begin(), v.end(), better);
      // Words left out of a full list score at most its last score: the answer is certain unless
      // that score reaches the k-th kept one.
      if (s.n == s.k && (v.size() < k || v[k - 1].score <= s.score[s.k - 1])) {
        redo[q] = 1;
        continue;
      }
      for (size_t i = 0; i < std::min(k, v.size()); ++i) heaps[q].push(v[i]);
    }
  }

  // Queries `qs` (chunk-local) over list l on the exact-ties path.
  void exact_ties_scan(const QueryBatch& batch, const SearchParams& params, const Chunk& ch, uint32_t l,
                       const std::vector<uint32_t>& qs, std::vector<Reservoir>& heaps) const {
    const uint32_t off = ivf_->offset(l), size = ivf_->list_size(l);
    if (size == 0) return;
    const size_t W = W64_, nblocks = (size + bw_ - 1) / bw_, stride = nblocks * bw_;
    const uint64_t* blocks = codes_ + size_t{off / bw_} * W_ * 16;
    const uint32_t t0 = batch.term_offsets[ch.q0];
    const size_t limit = params.limit ? params.limit : index_->size();
    const auto ids = ivf_->ids();
    thread_local std::vector<uint64_t> rows;
    thread_local std::vector<int32_t> dots;
    thread_local std::vector<float> scores, thr, w;
    thread_local std::vector<uint32_t> sel;
    thread_local std::vector<kernels::Candidate> cand;
    scores.resize(stride);
    sel.resize(stride);
    auto push = [&](size_t gq, Reservoir& h, uint32_t pos, float score) {
      const uint32_t id = ids[off + pos];
      const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[gq];
      const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[gq + 1];
      if (id >= limit || (ex != ex_end && std::find(ex, ex_end, id) != ex_end)) return;
      h.push({id, score});
    };
    // Words equal to the k-th score must reach the reservoir: thresholds one ulp lower.
    auto lowered = [](float t) { return std::nextafter(t, -std::numeric_limits<float>::infinity()); };
    for (size_t i = 0; i < qs.size();) {
      // A group of queries with at most kGroupTerms terms (at least one query).
      size_t e = i, terms = 0;
      bool one_term = batch.combine == Combine::Sum;
      rows.clear();
      w.clear();
      while (e < qs.size()) {
        const size_t gq = ch.q0 + qs[e];
        const uint32_t qt0 = batch.term_offsets[gq], nt = batch.term_offsets[gq + 1] - qt0;
        if (e > i && terms + nt > kGroupTerms) break;
        const size_t r0 = size_t{qt0 - t0} * 2 * W;
        rows.insert(rows.end(), ch.rows.begin() + static_cast<std::ptrdiff_t>(r0),
                    ch.rows.begin() + static_cast<std::ptrdiff_t>(r0 + size_t{nt} * 2 * W));
        w.insert(w.end(), batch.weights.begin() + qt0, batch.weights.begin() + qt0 + nt);
        one_term = one_term && nt == 1 && batch.weights[qt0] > 0.0f;
        terms += nt;
        ++e;
      }
      if (one_term) {
        // The fused scan hands back only the words above each query's threshold.
        thr.resize(e - i);
        for (size_t j = i; j < e; ++j) thr[j - i] = lowered(heaps[qs[j]].threshold());
        cand.resize((e - i) * stride);
        dots.resize((e - i) * stride);
        const size_t m = kernel_.scan_cosine(blocks, nblocks, W_, rows.data(), e - i, w.data(), thr.data(), inv_ + off,
                                             size, cand.data(), dots.data());
        for (size_t c = 0; c < m; ++c) {
          const size_t j = i + cand[c].query;
          push(ch.q0 + qs[j], heaps[qs[j]], cand[c].word, cand[c].score);
        }
        i = e;
        continue;
      }
      dots.resize(terms * stride);
      kernel_.dots(blocks, nblocks, W_, rows.data(), terms, dots.data(), stride);
      size_t tr = 0;
      for (size_t j = i; j < e; ++j) {
        const size_t gq = ch.q0 + qs[j];
        const uint32_t qt0 = batch.term_offsets[gq], nt = batch.term_offsets[gq + 1] - qt0;
        kernel_.scores(batch.combine, dots.data() + tr * stride, stride, nt, batch.weights.data() + qt0, inv_ + off, size,
                       scores.data());
        tr += nt;
        Reservoir& h = heaps[qs[j]];
        const size_t m = kernel_.select(scores.data(), size, lowered(h.threshold()), sel.data());
        for (size_t c = 0; c < m; ++c) push(gq, h, sel[c], scores[sel[c]]);
      }
      i = e;
    }
  }

  std::shared_ptr<const Index> index_;
  std::shared_ptr<const IvfIndex> ivf_;
  const kernels::Kernel& kernel_;
  int threads_ = 1;  // threads of the shared pool one call uses
  uint32_t bw_, W_, W64_;
  std::shared_ptr<const kernels::AlignedArray<uint64_t>> layout_;  // the codes in the kernel's layout, if not the index's
  const uint64_t* codes_ = nullptr;
  const float* inv_ = nullptr;
  ann::IvfProbeTables probe_tables_{*ivf_};  // centroids transposed (dims x L)
};

std::shared_ptr<const Searcher> make_ivf_backend(std::shared_ptr<const Index> index, const SearcherOptions& opts) {
  return make_ivf_searcher(std::move(index), opts);
}

}  // namespace

std::shared_ptr<const Searcher> make_ivf_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                  std::shared_ptr<const IvfIndex> ivf) {
  if (!index) throw Error("ivf searcher: no index");
  if (!ivf) ivf = ivf_of(*index);
  if (ivf->dims() != index->dims() || ivf->size() != index->size())
    throw Error("ivf searcher: the IVF lists were built for another index");
  return std::make_shared<IvfSearcher>(std::move(index), std::move(ivf), opts);
}

void register_ivf_backend() {
  register_backend("ivf", make_ivf_backend);
  register_backend("ivf-int8", [](std::shared_ptr<const Index> index, const SearcherOptions& opts) {
    return make_ivf8_searcher(std::move(index), opts);
  });
  register_backend("cuda-ivf", [](std::shared_ptr<const Index> index, const SearcherOptions& opts) {
    return make_cuda_ivf_searcher(std::move(index), opts);
  });
}

}  // namespace igla
