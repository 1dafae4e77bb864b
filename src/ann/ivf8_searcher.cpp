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
// A batch runs in three phases: (1) threads split the queries: each query quantized to int8 and
// its probes chosen by an int8 GEMM against the int8 centroids; (2) threads split the lists (cut
// by rows x queries): each list's rows read once per batch and scanned against all the queries
// probing it, 8 queries x 32 rows per register block, fused with each query's threshold test
// (int8_scan.hpp: scan_select_vnni), each part keeping every query's best positions; (3) threads
// split the queries again: the parts' positions merged and rescored. The answer does not depend
// on the number of threads or on the kernel: kernel "scalar" runs the plain loops (the reference).
// The rescoring's fast form (int8_rescore.hpp) is rerank_score's Sum arithmetic in registers,
// with the row's inverse norm computed once here (the same bits). A batch's buffers come from a
// pool kept by the searcher (WorkLease): a warm searcher allocates nothing per batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>

#include "ann/int8_rescore.hpp"
#include "ann/int8_row_searcher.hpp"
#include "ann/int8_scan.hpp"
#include "ann/probe_select.hpp"
#include "ann/top16.hpp"
#include "core/fdot.hpp"
#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"
#include "igla/ivf_residual.hpp"
#include "kernels/layout.hpp"

namespace igla {
namespace {

using ann::kInt8BlockRows;

// The IVF's positions with their int8 rows in the scan layout (int8_scan.hpp): the index's int8
// rows (laid out here), or the residual rows of an IVFR section (scanned in place).
struct Int8Lists {
  uint32_t D = 0, G = 0;           // float dims, groups of 4 dims
  kernels::AlignedArray<uint8_t> own_blocks;  // the index's rows: positions / 16 blocks of G * 64 bytes
  std::vector<float> own_inv_norms;  // per position: 1 / |decoded row| as rerank_score computes it (0: padding, zero row)
  const uint8_t* blocks = nullptr;   // the rows scanned: own_blocks or the residual rows' values
  // Per position, the factor of its int8 dot: the inverse norm (own rows) or the residual step.
  const float* inv_norms = nullptr;
  // Residual rows: per position 1 / |decoded row| (IvfResidualRows::decode, fdot; 0: padding, zero row).
  std::vector<float> res_inv_norms;
  std::vector<float> scales;       // the index's per-dimension scales (the probes' quantization)
  // The centroids in the same layout, for the probe choice (an int8 GEMM, not a float one):
  // centroid l's values c[d] / scales[d], quantized to int8 with its own step cent_step[l], so
  // that (dot - corr) * cent_step[l] is proportional to the query's float dot with the centroid.
  kernels::AlignedArray<uint8_t> cent_blocks;  // ceil(L / 16) blocks
  std::vector<float> cent_step;                // per centroid (padding: 0)
};

void build_centroid_blocks(const IvfIndex& ivf, Int8Lists& lists);

// `res`: the residual rows to scan (nullptr: the index's int8 rows, laid out here).
std::shared_ptr<const Int8Lists> build_lists(const Index& ix, const IvfIndex& ivf, const IvfResidualRows* res) {
  auto out = std::make_shared<Int8Lists>();
  const auto rows = ix.rerank_int8_rows();
  const auto sc = ix.rerank_int8_scales();
  const uint32_t D = ix.float_dims();
  out->D = D;
  out->G = (D + 3) / 4;
  out->scales.assign(sc.begin(), sc.end());
  if (res) {
    out->blocks = res->blocks();
    out->inv_norms = res->steps().data();
    out->res_inv_norms.assign(ivf.positions(), 0.0f);
    std::vector<float> x(D);
    const auto ids = ivf.ids();
    for (uint32_t l = 0; l < ivf.lists(); ++l)
      for (uint32_t p = ivf.offset(l); p < ivf.offset(l) + ivf.list_size(l); ++p) {
        if (ids[p] == ~0u) continue;
        res->decode(p, ivf.float_centroids().data() + size_t{l} * D, x.data());
        const float xx = fdot(x.data(), x.data(), D);
        out->res_inv_norms[p] = xx > 0 ? 1.0f / std::sqrt(xx) : 0.0f;
      }
    build_centroid_blocks(ivf, *out);
    return out;
  }
  const size_t P = ivf.positions(), G = out->G;
  out->own_blocks = kernels::AlignedArray<uint8_t>(P / kInt8BlockRows * G * 64);
  std::fill(out->own_blocks.data(), out->own_blocks.data() + out->own_blocks.size(), uint8_t{128});
  out->own_inv_norms.assign(P, 0.0f);
  out->blocks = out->own_blocks.data();
  out->inv_norms = out->own_inv_norms.data();
  const auto ids = ivf.ids();
  std::vector<float> x(D);
  for (size_t p = 0; p < P; ++p) {
    const uint32_t id = ids[p];
    if (id == ~0u) continue;
    const int8_t* r = rows.data() + size_t{id} * D;
    uint8_t* blk = out->own_blocks.data() + ann::int8_row_offset(p, G);
    for (uint32_t d = 0; d < D; ++d) {
      blk[(d / 4) * 64 + d % 4] = static_cast<uint8_t>(int{r[d]} + 128);
      x[d] = static_cast<float>(r[d]) * sc[d];
    }
    // The rerank stage's own inverse norm of the decoded row (rerank_score: the same float
    // arithmetic), so that the rescoring can take it from here instead of recomputing it.
    const float xx = fdot(x.data(), x.data(), D);
    out->own_inv_norms[p] = xx > 0 ? 1.0f / std::sqrt(xx) : 0.0f;
  }
  build_centroid_blocks(ivf, *out);
  return out;
}

// The centroids quantized for the probe choice (Int8Lists::cent_blocks, cent_step).
void build_centroid_blocks(const IvfIndex& ivf, Int8Lists& lists) {
  Int8Lists* out = &lists;
  const uint32_t D = out->D;
  const size_t G = out->G;
  const std::vector<float>& sc = out->scales;
  const size_t L = ivf.lists(), CB = (L + kInt8BlockRows - 1) / kInt8BlockRows;
  out->cent_blocks = kernels::AlignedArray<uint8_t>(CB * G * 64);
  std::fill(out->cent_blocks.data(), out->cent_blocks.data() + out->cent_blocks.size(), uint8_t{128});
  out->cent_step.assign(CB * kInt8BlockRows, 0.0f);
  std::vector<double> c(D);
  for (size_t l = 0; l < L; ++l) {
    const float* f = ivf.float_centroids().data() + l * D;
    double m = 0;
    for (uint32_t d = 0; d < D; ++d) {
      c[d] = sc[d] > 0 ? double(f[d]) / sc[d] : 0.0;
      m = std::max(m, std::fabs(c[d]));
    }
    if (m == 0) continue;
    out->cent_step[l] = static_cast<float>(m / 127.0);
    uint8_t* blk = out->cent_blocks.data() + ann::int8_row_offset(l, G);
    for (uint32_t d = 0; d < D; ++d) {
      const long v = std::clamp<long>(std::lround(c[d] * 127.0 / m), -127, 127);
      blk[(d / 4) * 64 + d % 4] = static_cast<uint8_t>(v + 128);
    }
  }
}

// A query's best `cap` positions by approximate score so far, ordered by score then position (a
// total order: the set kept does not depend on the order of the pushes, so neither on the lists'
// order nor on the threads). Small caps (the usual 10-40): a sorted array, the threshold (the
// cap-th score) raised at every insert, so a row below it costs one compare. Large caps: rows
// appended, cut back to the best cap when the buffer holds 4 cap + 16. Caps up to 16 on AVX-512
// (`simd`): the 16 best as keys in registers' width (top16.hpp), a branch-free insertion.
class TopPositions {
 public:
  static constexpr size_t kSortedCap = 64;
  // `floor`: a score at most the final cap-th (rows below it are never pushed).
  void reset(size_t cap, float floor, bool simd) {
    cap_ = cap;
    v_.clear();
    thr_ = floor;
    simd_ = simd && cap >= 1 && cap <= 16;
    if (simd_) {
      top_.clear();
      kth_ = 0;
      return;
    }
    v_.reserve(cap <= kSortedCap ? cap + 1 : 4 * cap + 16);
  }
  float threshold() const { return thr_; }
  void push(float s, uint32_t pos) {
    if (simd_) {
      const uint64_t key = ann::top16_key(s, pos);
      if (key <= kth_) return;  // not above the cap-th (0 while fewer are held)
      top_.insert(key);
      kth_ = top_[cap_ - 1];
      if (kth_) thr_ = ann::top16_score(kth_);
      return;
    }
    if (cap_ > kSortedCap) {
      v_.push_back({s, pos});
      if (v_.size() >= 4 * cap_ + 16) cut();
      return;
    }
    if (v_.size() == cap_ && !before({s, pos}, v_.back())) return;
    if (v_.size() < cap_) v_.push_back({s, pos});
    size_t i = v_.size() - 1;
    for (; i > 0 && before({s, pos}, v_[i - 1]); --i) v_[i] = v_[i - 1];
    v_[i] = {s, pos};
    if (v_.size() == cap_) thr_ = v_.back().first;
  }
  // After finish(): the pairs it returned.
  const std::vector<std::pair<float, uint32_t>>& held() const { return v_; }
  std::vector<std::pair<float, uint32_t>>& finish() {
    if (simd_) {
      v_.clear();
      for (size_t i = 0; i < cap_ && top_[i]; ++i) v_.push_back({ann::top16_score(top_[i]), ann::top16_pos(top_[i])});
      return v_;
    }
    cut();
    return v_;
  }

 private:
  static bool before(const std::pair<float, uint32_t>& a, const std::pair<float, uint32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  }
  void cut() {
    if (v_.size() <= cap_) return;
    auto kth = v_.begin() + static_cast<std::ptrdiff_t>(cap_ - 1);
    std::nth_element(v_.begin(), kth, v_.end(), before);
    thr_ = kth->first;
    v_.resize(cap_);
  }
  size_t cap_ = 0;
  std::vector<std::pair<float, uint32_t>> v_;
  float thr_ = -std::numeric_limits<float>::infinity();
  bool simd_ = false;
  ann::Top16 top_;
  uint64_t kth_ = 0;
};

class Ivf8Searcher final : public Searcher {
 public:
  Ivf8Searcher(std::shared_ptr<const Index> index, std::shared_ptr<const IvfIndex> ivf,
               std::shared_ptr<const Int8Lists> lists, const SearcherOptions& opts,
               std::shared_ptr<const IvfResidualRows> res = nullptr)
      : index_(std::move(index)), ivf_(std::move(ivf)), lists_(std::move(lists)), res_(std::move(res)) {
    ThreadPool& pool = ThreadPool::shared();
    if (opts.cpu.threads > pool.size()) pool.grow_to(opts.cpu.threads);
    threads_ = opts.cpu.threads > 0 ? std::min(opts.cpu.threads, pool.size()) : pool.size();
    vnni_ = opts.cpu.kernel != "scalar" && ann::int8_scan_vnni_available();
    fast_probes_ = vnni_ && ann::choose_probes_avx512_available();
    fast_rescore_ = vnni_ && ann::rescore_dot_avx2_available();
    fast_top_ = vnni_ && ann::top16_available();
    fast_prep_ = vnni_ && ann::query_prep_avx512_available();
    for (uint32_t l = 0; l < ivf_->lists(); ++l) max_list_ = std::max<size_t>(max_list_, ivf_->list_size(l));
    fallback_ = make_rerank_stage(make_ivf_searcher(index_, opts, ivf_), index_, threads_);
  }

  std::string name() const override {
    return std::string(res_ ? "ivf-int8-residual/" : "ivf-int8/") + std::string(vnni_ ? "avx512vnni" : "scalar") + " " + std::to_string(ivf_->lists()) +
           " lists x" + std::to_string(threads_) + " threads";
  }

  Capabilities capabilities() const override { return ann::int8_rows_capabilities(); }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    batch.validate();
    const size_t nq = batch.size();
    // no float form, 3CosMul or --limit: the ternary IVF and the rerank stage
    if (!ann::int8_rows_answer(batch, params, static_cast<uint32_t>(lists_->D))) {
      fallback_->search(batch, params, out);
      return;
    }
    out.reset(nq, params.k);
    if (nq == 0 || params.k == 0) return;
    const uint32_t L = ivf_->lists();
    const uint32_t nprobe = params.nprobe ? std::min(params.nprobe, L) : default_nprobe(L);
    const size_t G = lists_->G;
    const WorkLease lease(*this);
    Work& w = *lease.work;
    w.parts.resize(std::max<size_t>(static_cast<size_t>(threads_), 1));
    w.q4.assign(nq * G + kGatherSlack, 0);  // (slack: scan_lists copies whole 64-byte chunks)
    w.corr.resize(nq);
    w.probes.resize(nq * nprobe);
    if (res_) {
      w.qstep.resize(nq);
      w.qc.resize(nq * nprobe);
      w.xq.resize(nq * lists_->D);
    }
    // 1. Per query (threads split the queries): the int8 query, its probes and its score floor.
    w.floor.resize(nq);
    auto cap_of = [&](size_t q) {
      return std::max(params.candidates, params.k) + (batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]);
    };
    for_parts(std::min<size_t>(static_cast<size_t>(threads_), (nq + 7) / 8), [&](size_t c, size_t parts) {
      const size_t q0 = nq * c / parts, q1 = nq * (c + 1) / parts;
      prepare(batch, nprobe, q0, q1, w, w.parts[c]);
      // The floors read the first rows of each query's best list, cold in memory: the rows of
      // the query kFloorAhead ahead are prefetched (the arithmetic is unchanged).
      for (size_t q = q0; q < std::min(q1, q0 + kFloorAhead); ++q) prefetch_floor_rows(w, q, nprobe);
      for (size_t q = q0; q < q1; ++q) {
        if (q + kFloorAhead < q1) prefetch_floor_rows(w, q + kFloorAhead, nprobe);
        w.floor[q] = score_floor(w, q, nprobe, cap_of(q));
      }
    });
    // 2. The queries of each list; the lists cut into one part per thread by work (rows x
    // queries), so each list's rows are read once per batch. Each part keeps every query's best
    // positions among its own lists.
    // (A small batch stays on one thread: waking another costs more than it saves.)
    const size_t parts = nq < 16 ? 1 : static_cast<size_t>(threads_);
    // One part: its probed lists alone, sorted (no pass over every list); else per-list counts.
    const bool sparse = parts == 1;
    w.members.resize(w.probes.size());
    if (res_) w.member_qc.resize(w.probes.size());
    if (sparse) {
      std::vector<std::pair<uint32_t, uint32_t>>& pr = w.pairs;  // (list, q * nprobe + i)
      pr.clear();
      for (uint32_t x = 0; x < w.probes.size(); ++x) pr.push_back({w.probes[x], x});
      // By list, then query: the order of the per-list fill below. One query keeps its probes'
      // order instead, the best list first: its first rows are in cache from the score floor,
      // and its rows raise the threshold early (the answer does not depend on the order).
      if (nq > 1) std::sort(pr.begin(), pr.end());
      w.active.clear();
      w.abegin.clear();
      for (size_t j = 0; j < pr.size(); ++j) {
        if (j == 0 || pr[j].first != pr[j - 1].first) {
          w.active.push_back(pr[j].first);
          w.abegin.push_back(static_cast<uint32_t>(j));
        }
        w.members[j] = pr[j].second / nprobe;
        if (res_) w.member_qc[j] = w.qc[pr[j].second];
      }
      w.abegin.push_back(static_cast<uint32_t>(pr.size()));
    } else {
    w.begin.assign(size_t{L} + 1, 0);
    for (uint32_t p : w.probes) ++w.begin[p + 1];
    for (size_t l = 0; l < L; ++l) w.begin[l + 1] += w.begin[l];
    {
      std::vector<uint32_t>& fill = w.fill;
      fill.assign(w.begin.begin(), w.begin.end() - 1);
      for (size_t q = 0; q < nq; ++q)
        for (uint32_t i = 0; i < nprobe; ++i) {
          const uint32_t at = fill[w.probes[q * nprobe + i]]++;
          w.members[at] = static_cast<uint32_t>(q);
          if (res_) w.member_qc[at] = w.qc[q * nprobe + i];
        }
    }
    }
    std::vector<double>& work = w.work;
    if (parts > 1) {  // (one part: no cut to place, and no pass over every list for it)
      work.assign(size_t{L} + 1, 0.0);
      for (size_t l = 0; l < L; ++l)
        work[l + 1] = work[l] + double(w.begin[l + 1] - w.begin[l]) * double(ivf_->list_size(static_cast<uint32_t>(l)) + 16);
    }
    std::vector<size_t>& cut = w.cut;
    cut.assign(parts + 1, L);
    cut[0] = 0;
    for (size_t p = 1; p < parts; ++p)
      cut[p] = static_cast<size_t>(std::lower_bound(work.begin(), work.end(), work[L] * double(p) / double(parts)) - work.begin());
    // (The pooled Work keeps each TopPositions' buffer: no allocation per query once warm.)
    w.tops.resize(parts);
    for_parts(parts, [&](size_t p, size_t) {
      w.tops[p].resize(nq);
      for (size_t q = 0; q < nq; ++q) w.tops[p][q].reset(cap_of(q), w.floor[q], fast_top_);
      scan_lists(cut[p], std::max(cut[p], cut[p + 1]), w, w.tops[p], w.parts[p], sparse);
    });
    // 3. Per query: the parts' best positions merged (the best cap of the union: what one part
    // over every list would keep), rescored exactly on their rows, best k kept.
    for_parts(std::min<size_t>(static_cast<size_t>(threads_), (nq + 7) / 8), [&](size_t c, size_t n) {
      finish(batch, params, nq * c / n, nq * (c + 1) / n, w, w.parts[c], out);
    });
  }

 private:
  // A thread's buffers within one phase (one per part; parts <= threads).
  struct PartScratch {
    std::vector<int32_t> gq4, cd;     // scan_lists: the group's queries; prepare: centroid dots
    std::vector<float> gcorr, gthr, cs;
    std::vector<uint32_t> sel_count, sel_pos, probe_scratch;
    std::vector<float> sel_score, x, row;
    std::vector<Hit> hits;
    std::vector<int8_t> vals;  // a residual row's values (4 G)
  };
  // One batch's state between the phases. Kept in a pool between calls (WorkLease), so that a
  // warm searcher allocates nothing per batch of a size it has seen.
  struct Work {
    std::vector<int32_t> q4;          // per query: G int8 x 4
    std::vector<float> corr;          // per query: 128 x the sum of its int8 values
    std::vector<float> floor;         // per query: a score at most its final cap-th (score_floor)
    std::vector<uint32_t> probes;     // per query: nprobe lists
    std::vector<uint32_t> begin, members, fill;  // per list: its queries (members[begin[l], begin[l + 1]))
    // One-part batches instead: the probed lists (ascending) and their queries' ranges in members.
    std::vector<uint32_t> active, abegin;
    std::vector<std::pair<uint32_t, uint32_t>> pairs;
    // Residual rows: per query its int8 step; per query and probe (and per member) q . centroid.
    std::vector<float> qstep, qc, member_qc;
    std::vector<float> xq;  // residual rows: per query its float form (D values, the terms' weighted sum)
    std::vector<double> work;
    std::vector<size_t> cut;
    std::vector<std::vector<TopPositions>> tops;  // per part, per query
    std::vector<PartScratch> parts;
    size_t bytes() const {
      size_t b = 4 * (q4.capacity() + corr.capacity() + floor.capacity() + probes.capacity() + members.capacity());
      for (const auto& t : tops) b += t.capacity() * (sizeof(TopPositions) + 16 * 12);
      return b;
    }
  };
  // A Work taken from the pool (or new) for one search() call, given back at its end unless the
  // pool holds enough or the Work grew large (a huge batch's buffers are freed).
  static constexpr size_t kPoolMax = 8, kPoolBytesMax = size_t{64} << 20;
  struct WorkLease {
    const Ivf8Searcher& s;
    std::unique_ptr<Work> work;
    explicit WorkLease(const Ivf8Searcher& owner) : s(owner) {
      {
        const std::lock_guard<std::mutex> lock(s.pool_mu_);
        if (!s.pool_.empty()) {
          work = std::move(s.pool_.back());
          s.pool_.pop_back();
        }
      }
      if (!work) work = std::make_unique<Work>();
    }
    ~WorkLease() {
      if (work->bytes() > kPoolBytesMax) return;
      const std::lock_guard<std::mutex> lock(s.pool_mu_);
      if (s.pool_.size() < kPoolMax) s.pool_.push_back(std::move(work));
    }
    WorkLease(const WorkLease&) = delete;
    WorkLease& operator=(const WorkLease&) = delete;
  };

  template <class Fn>
  void for_parts(size_t parts, const Fn& fn) const {
    parts = std::max<size_t>(parts, 1);
    if (parts == 1) return fn(0, 1);
    ThreadPool::shared().run(static_cast<uint32_t>(parts), [&](uint32_t c, int) { fn(c, parts); }, threads_);
  }

  void prepare(const QueryBatch& batch, uint32_t nprobe, size_t q0, size_t q1, Work& w, PartScratch& ps) const {
    const size_t nq = q1 - q0, D = lists_->D, G = lists_->G, L = ivf_->lists();
    int32_t* q4 = w.q4.data() + q0 * G;
    float* corr = w.corr.data() + q0;
    uint32_t* probes = w.probes.data() + q0 * nprobe;
    // The query vectors: sum of weighted float terms; int8 of it times the row scales.
    std::vector<float>& x = ps.x;
    x.resize(D);
    for (size_t q = 0; q < nq; ++q) {
      float* xr = x.data();
      std::fill(x.begin(), x.end(), 0.0f);
      for (uint32_t t = batch.term_offsets[q0 + q]; t < batch.term_offsets[q0 + q + 1]; ++t) {
        const float* v = batch.float_terms.data() + size_t{t} * D;
        for (size_t d = 0; d < D; ++d) xr[d] += batch.float_weights[t] * v[d];
      }
      auto* qb = reinterpret_cast<int8_t*>(q4 + q * G);
      const int32_t sum = fast_prep_ ? ann::quantize_query_avx512(xr, lists_->scales.data(), D, qb)
                                     : ann::quantize_query_plain(xr, lists_->scales.data(), D, qb);
      corr[q] = 128.0f * static_cast<float>(sum);
    }
    // Probes: the int8 query against the int8 centroids (int8_scan_*, kernel groups of 8 queries),
    // the best nprobe by (dot - corr) * step, ties to the lower list: the best first (its floor),
    // the others in ascending list order (probe_select.hpp).
    if (nprobe >= L) {
      for (size_t q = 0; q < nq; ++q)
        for (uint32_t i = 0; i < L; ++i) probes[q * L + i] = i;
    } else {
      const size_t CB = (L + kInt8BlockRows - 1) / kInt8BlockRows, LP = CB * kInt8BlockRows;
      constexpr size_t kProbeGroup = 8;
      std::vector<int32_t>& cdv = ps.cd;
      cdv.resize(kProbeGroup * LP);
      int32_t* const cd = cdv.data();
      std::vector<float>& cs = ps.cs;
      cs.resize(L);
      std::vector<uint32_t>& scratch = ps.probe_scratch;
      for (size_t q = 0; q < nq; q += kProbeGroup) {
        const size_t g = std::min(kProbeGroup, nq - q);
        if (vnni_)
          ann::int8_scan_vnni(lists_->cent_blocks.data(), CB, static_cast<uint32_t>(G), q4 + q * G, g, cd);
        else
          ann::int8_scan_scalar(lists_->cent_blocks.data(), CB, static_cast<uint32_t>(G), q4 + q * G, g, cd);
        for (size_t j = 0; j < g; ++j) {
          const int32_t* dq = cd + j * LP;
          if (fast_prep_)
            ann::centroid_scores_avx512(dq, corr[q + j], lists_->cent_step.data(), L, cs.data());
          else
            ann::centroid_scores_plain(dq, corr[q + j], lists_->cent_step.data(), L, cs.data());
          if (fast_probes_)
            ann::choose_probes_avx512(cs.data(), L, nprobe, probes + (q + j) * nprobe, scratch);
          else
            ann::choose_probes_plain(cs.data(), L, nprobe, probes + (q + j) * nprobe);
        }
      }
    }
    if (!res_) return;
    // Residual rows: the query quantized again with the residuals' scales (the form the lists are
    // scanned with), its step, and its float dot with each probed centroid.
    const float* rs = res_->scales().data();
    for (size_t q = 0; q < nq; ++q) {
      float* xr = w.xq.data() + (q0 + q) * D;
      std::fill(xr, xr + D, 0.0f);
      for (uint32_t t = batch.term_offsets[q0 + q]; t < batch.term_offsets[q0 + q + 1]; ++t) {
        const float* v = batch.float_terms.data() + size_t{t} * D;
        for (size_t d = 0; d < D; ++d) xr[d] += batch.float_weights[t] * v[d];
      }
      auto* qb = reinterpret_cast<int8_t*>(q4 + q * G);
      const int32_t sum = fast_prep_ ? ann::quantize_query_avx512(xr, rs, D, qb) : ann::quantize_query_plain(xr, rs, D, qb);
      corr[q] = 128.0f * static_cast<float>(sum);
      float m = 0.0f;
      for (size_t d = 0; d < D; ++d) m = std::max(m, std::fabs(xr[d] * rs[d]));
      w.qstep[q0 + q] = m / 127.0f;
      for (uint32_t i = 0; i < nprobe; ++i) {
        const uint32_t l = probes[q * nprobe + i];
        w.qc[(q0 + q) * nprobe + i] = fdot(xr, ivf_->float_centroids().data() + size_t{l} * D, static_cast<uint32_t>(D));
      }
    }
  }

  // Residual rows: a row's score from its scan score s (the step times the int8 dot, corrected)
  // in its list (qc: the query's dot with the list's centroid; qs: the query's int8 step).
  static float residual_score(float s, float qc, float qs) { return qc + qs * s; }
  // The scan threshold for the rows of that list whose residual_score may reach `thr`: a little
  // below the exact inverse (the selection is a pre-filter; TopPositions decides exactly), so that
  // no row at or above thr is dropped by rounding.
  static float residual_threshold(float thr, float qc, float qs) {
    if (!(qs > 0.0f) || thr == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<float>::infinity();
    const float t = (thr - qc) / qs;
    return t - ((std::fabs(thr) + std::fabs(qc)) / qs * 1e-5f + 1e-30f);
  }

  // A lower bound of query q's cap-th best approximate score over its probed rows: the cap-th
  // best of the first kFloorRows rows of its nearest list (rows it will scan anyway). Rows below
  // it are never pushed, so the first list a query meets is not pushed whole. -inf when that
  // list is shorter than cap.
  static constexpr size_t kFloorRows = ann::kMaxBoundScores, kFloorAhead = 4;
  // The floor's bisection steps (probe_select.hpp): a bound within ~2^-10 of the score range of
  // those rows below the cap-th (the answer does not depend on it: only the pushes it saves).
  static constexpr int kFloorSteps = 10;
  // List l's rows in the scan layout (lists start on a block), and the bytes of its first `rows`.
  const uint8_t* list_blocks(uint32_t l) const {
    return lists_->blocks + size_t{ivf_->offset(l) / kInt8BlockRows} * lists_->G * 64;
  }
  size_t blocks_bytes(size_t rows) const { return (rows + kInt8BlockRows - 1) / kInt8BlockRows * lists_->G * 64; }

  void prefetch_floor_rows(const Work& w, size_t q, uint32_t nprobe) const {
    const uint32_t l = w.probes[q * nprobe];
    const char* p = reinterpret_cast<const char*>(list_blocks(l));
    const size_t bytes = blocks_bytes(std::min<size_t>(ivf_->list_size(l), kFloorRows));
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
  }
  float score_floor(const Work& w, size_t q, uint32_t nprobe, size_t cap) const {
    const uint32_t l = w.probes[q * nprobe];
    const size_t rows = std::min<size_t>(ivf_->list_size(l), kFloorRows), G = lists_->G;
    if (rows < cap || rows == 0) return -std::numeric_limits<float>::infinity();
    const uint32_t off = ivf_->offset(l);
    uint32_t pos[kFloorRows], count = 0;
    float score[kFloorRows];
    const float none = -std::numeric_limits<float>::infinity();
    const ann::ScanSelect sel{w.q4.data() + q * G, &w.corr[q], &none, 1, pos, score, kFloorRows, &count};
    const uint8_t* blocks = list_blocks(l);
    if (vnni_)
      ann::scan_select_vnni(blocks, rows, static_cast<uint32_t>(G), lists_->inv_norms + off, sel);
    else
      ann::scan_select_scalar(blocks, rows, static_cast<uint32_t>(G), lists_->inv_norms + off, sel);
    float f;
    if (fast_probes_) {
      f = ann::mth_largest_lower_bound_avx512(score, count, cap, kFloorSteps);
    } else {
      std::nth_element(score, score + cap - 1, score + count, std::greater<float>());
      f = score[cap - 1];
    }
    if (!res_) return f;
    // (monotone in f: still at most the cap-th of those rows' residual scores)
    const float qs = w.qstep[q];
    if (!(qs > 0.0f) || f == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<float>::infinity();
    return residual_score(f, w.qc[q * nprobe], qs);
  }

  // Lists [l0, l1), each with its queries in groups of kMaxScanGroup: the group's rows scanned
  // and the rows above each query's threshold (as the list starts) selected in one pass.
  static constexpr size_t kGatherSlack = 16;  // int32 values: one 64-byte chunk
  // `sparse`: the lists are w.active (all of them; l0, l1 unused), else those of [l0, l1) with queries.
  void scan_lists(size_t l0, size_t l1, const Work& w, std::vector<TopPositions>& top, PartScratch& ps,
                  bool sparse) const {
    const size_t G = lists_->G;
    constexpr size_t kGroup = ann::kMaxScanGroup;
    std::vector<int32_t>& gq4 = ps.gq4;
    gq4.resize(kGroup * G + kGatherSlack);
    std::vector<float>&gcorr = ps.gcorr, &gthr = ps.gthr;
    gcorr.resize(kGroup);
    gthr.resize(kGroup);
    std::vector<uint32_t>& sel_count = ps.sel_count;
    sel_count.resize(kGroup);
    ps.sel_pos.resize(kGroup * max_list_);
    ps.sel_score.resize(kGroup * max_list_);
    uint32_t* const sel_pos = ps.sel_pos.data();
    float* const sel_score = ps.sel_score.data();
    const size_t n_lists = sparse ? w.active.size() : l1 - std::min(l0, l1);
    for (size_t li = 0; li < n_lists; ++li) {
      const size_t l = sparse ? w.active[li] : l0 + li;
      const uint32_t m0 = sparse ? w.abegin[li] : w.begin[l], m1 = sparse ? w.abegin[li + 1] : w.begin[l + 1];
      const uint32_t off = ivf_->offset(static_cast<uint32_t>(l)), size = ivf_->list_size(static_cast<uint32_t>(l));
      if (size == 0 || m0 == m1) continue;
      const uint8_t* blocks = list_blocks(static_cast<uint32_t>(l));
      const float* inv = lists_->inv_norms + off;
      for (uint32_t i = m0; i < m1; i += kGroup) {
        const size_t g = std::min<size_t>(kGroup, m1 - i);
        for (size_t j = 0; j < g; ++j) {
          const uint32_t q = w.members[i + j];
          // The query's G values in whole 64-byte chunks (constant-size copies, inline; a call to
          // memmove per query and list was 1-2% of the time): the chunk past G spills into the
          // next query's place, copied after it, or the slack.
          const int32_t* src = w.q4.data() + size_t{q} * G;
          int32_t* dst = gq4.data() + j * G;
          for (size_t x = 0; x < G; x += kGatherSlack) std::memcpy(dst + x, src + x, kGatherSlack * sizeof(int32_t));
          gcorr[j] = w.corr[q];
          gthr[j] = res_ ? residual_threshold(top[q].threshold(), w.member_qc[i + j], w.qstep[q]) : top[q].threshold();
        }
        ann::ScanSelect sel{gq4.data(), gcorr.data(), gthr.data(), g, sel_pos, sel_score, size,
                            sel_count.data()};
        // A one-part search visits its probed lists in order: the next one is prefetched while
        // this one is scanned (once per list), so its rows are not read cold from memory.
        if (sparse && i == m0 && li + 1 < n_lists) {
          const uint32_t nl = w.active[li + 1];
          sel.prefetch = list_blocks(nl);
          sel.prefetch_bytes = blocks_bytes(ivf_->list_size(nl));
        }
        if (vnni_)
          ann::scan_select_vnni(blocks, size, static_cast<uint32_t>(G), inv, sel);
        else
          ann::scan_select_scalar(blocks, size, static_cast<uint32_t>(G), inv, sel);
        for (size_t j = 0; j < g; ++j) {
          TopPositions& t = top[w.members[i + j]];
          if (res_) {
            const float qc = w.member_qc[i + j], qs = w.qstep[w.members[i + j]];
            for (size_t r = 0; r < sel_count[j]; ++r)
              t.push(residual_score(sel_score[j * size + r], qc, qs), off + sel_pos[j * size + r]);
            continue;
          }
          for (size_t r = 0; r < sel_count[j]; ++r) t.push(sel_score[j * size + r], off + sel_pos[j * size + r]);
        }
      }
    }
  }

  // Queries [q0, q1): each query's parts merged, then its candidates rescored. The positions'
  // ids and inverse norms and the rows are random reads (cold after the scan of the whole batch),
  // so the loop runs as a pipeline of three stages: a query is merged and its ids and inverse
  // norms prefetched kMergeAhead queries before its rescoring, its rows kRescoreAhead before.
  static constexpr size_t kRescoreAhead = 4, kMergeAhead = 8;
  void finish(const QueryBatch& batch, const SearchParams& params, size_t q0, size_t q1, Work& w, PartScratch& ps,
              SearchResults& out) const {
    const size_t D = lists_->D;
    const auto ids = ivf_->ids();
    const auto rows = index_->rerank_int8_rows();
    std::vector<float>& row = ps.row;
    row.resize(D);
    ps.vals.resize(4 * size_t{lists_->G});
    std::vector<Hit>& hits = ps.hits;
    const float* inv_norms = lists_->inv_norms;
    const float* res_inv_norms = lists_->res_inv_norms.data();
    const uint32_t nprobe = static_cast<uint32_t>(w.probes.size() / batch.size());
    for (size_t i = q0; i < q1 + kMergeAhead; ++i) {
      if (i < q1) {  // merged; its positions' ids and inverse norms prefetched
        TopPositions& top = w.tops[0][i];
        for (size_t p = 1; p < w.tops.size(); ++p)
          for (const auto& [s, pos] : w.tops[p][i].finish()) top.push(s, pos);
        for (const auto& [s, pos] : top.finish()) {
          __builtin_prefetch(ids.data() + pos);
          // (residual rows: the steps were read by the scan; their inverse norms are cold)
          __builtin_prefetch(res_ ? res_inv_norms + pos : inv_norms + pos);
        }
      }
      if (i >= q0 + kMergeAhead - kRescoreAhead && i - (kMergeAhead - kRescoreAhead) < q1)  // rows prefetched
        for (const auto& [s, pos] : w.tops[0][i - (kMergeAhead - kRescoreAhead)].held())
          if (ids[pos] != ~0u) {
            if (!res_)
              index_->prefetch_rerank_row(ids[pos]);
            else if (batch.size() >= 16)  // (a small batch's lists were just scanned: in cache)
              res_->prefetch(pos);
          }
      if (i < q0 + kMergeAhead) continue;
      const size_t gq = i - kMergeAhead;
      const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[gq];
      const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[gq + 1];
      hits.clear();
      const uint32_t t0 = batch.term_offsets[gq], t1 = batch.term_offsets[gq + 1];
      for (const auto& [s, pos] : w.tops[0][gq].held()) {
        const uint32_t id = ids[pos];
        if (id == ~0u || (ex != ex_end && std::find(ex, ex_end, id) != ex_end)) continue;
        if (res_) {  // the residual row's exact score (ivf_residual.hpp: residual_row_score)
          const float qc = probed_centroid_dot(w, gq, nprobe, pos);
          hits.push_back({id, residual_score_of(pos, w.xq.data() + gq * D, row.data(), ps.vals.data(), &qc)});
          continue;
        }
        // The word's int8 row as the index holds it (the bytes the list scan read, contiguous).
        const int8_t* r = rows.data() + size_t{id} * D;
        if (!fast_rescore_) {  // the reference: the rerank stage's own function on the decoded row
          for (size_t d = 0; d < D; ++d) row[d] = static_cast<float>(r[d]) * lists_->scales[d];
          hits.push_back({id, rerank_score(row.data(), batch, gq)});
          continue;
        }
        // rerank_score's Sum arithmetic with its inverse norm from the lists (the same bits).
        const float inv = inv_norms[pos];
        float score = 0.0f;
        for (uint32_t t = t0; t < t1; ++t)
          score += batch.float_weights[t] *
                   (ann::rescore_dot_avx2(r, lists_->scales.data(), batch.float_terms.data() + size_t{t} * D,
                                          static_cast<uint32_t>(D)) *
                    inv);
        hits.push_back({id, score});
      }
      const size_t m = std::min(params.k, hits.size());
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(m), hits.end(), better);
      std::copy_n(hits.begin(), m, out.hits.begin() + static_cast<std::ptrdiff_t>(gq * params.k));
      out.count[gq] = static_cast<uint32_t>(m);
    }
  }

  // Residual rows: the score of position pos for the query's float form xq (D values):
  //   (fdot(xq, c_l) + t_pos * fdot(s * v_pos, xq)) * res_inv_norms[pos]
  // with v_pos the row's int8 values and s the per-dimension scales (int8_rescore.hpp's dot: the
  // same bits plain or AVX2). `scratch`: D floats; `vp`: 4 G bytes. `qc`: fdot(xq, c_l) when the
  // caller has it (prepare's w.qc: the same function on the same values, so the same bits), else
  // nullptr (computed here).
  float residual_score_of(uint32_t pos, const float* xq, float* scratch, int8_t* vp, const float* qc_known = nullptr) const {
    const uint32_t D = lists_->D, G = lists_->G;
    const uint8_t* b = lists_->blocks + ann::int8_row_offset(pos, G);
    for (uint32_t g = 0; g < G; ++g) {
      uint32_t u;
      std::memcpy(&u, b + size_t{g} * 64, 4);
      u ^= 0x80808080u;  // value + 128 -> value
      std::memcpy(vp + 4 * g, &u, 4);
    }
    const float* rs = res_->scales().data();
    const float dot = fast_rescore_ ? ann::rescore_dot_avx2(vp, rs, xq, D) : ann::rescore_dot_plain(vp, rs, xq, D, scratch);
    const float qc = qc_known ? *qc_known : fdot(xq, ivf_->float_centroids().data() + size_t{list_of(pos)} * D, D);
    return (qc + res_->steps()[pos] * dot) * lists_->res_inv_norms[pos];
  }

  // Query q's dot with the centroid of the probed list holding pos (w.qc, from prepare), or with
  // that list's centroid computed as prepare does when no probe holds it (not reached: the
  // candidates come from the probed lists).
  float probed_centroid_dot(const Work& w, size_t q, uint32_t nprobe, uint32_t pos) const {
    for (uint32_t i = 0; i < nprobe; ++i) {
      const uint32_t l = w.probes[q * nprobe + i];
      if (pos - ivf_->offset(l) < ivf_->list_size(l)) return w.qc[q * nprobe + i];
    }
    const uint32_t D = lists_->D;
    return fdot(w.xq.data() + q * D, ivf_->float_centroids().data() + size_t{list_of(pos)} * D, D);
  }

  // The list holding position pos (the last list starting at or before it: empty lists share
  // their successor's offset).
  uint32_t list_of(uint32_t pos) const {
    uint32_t lo = 0, hi = ivf_->lists();
    while (hi - lo > 1) {
      const uint32_t mid = (lo + hi) / 2;
      if (ivf_->offset(mid) <= pos)
        lo = mid;
      else
        hi = mid;
    }
    return lo;
  }

  std::shared_ptr<const Index> index_;
  std::shared_ptr<const IvfIndex> ivf_;
  std::shared_ptr<const Int8Lists> lists_;
  std::shared_ptr<const IvfResidualRows> res_;  // nullptr: the index's int8 rows
  std::shared_ptr<const Searcher> fallback_;
  int threads_ = 1;
  bool vnni_ = false;
  bool fast_probes_ = false;  // choose_probes_avx512 (else the plain reference)
  bool fast_rescore_ = false;  // rescore_dot_avx2 (else rerank_score on the decoded row)
  bool fast_top_ = false;      // TopPositions in Top16 registers for caps <= 16 (else the sorted array)
  bool fast_prep_ = false;     // quantize_query_avx512, centroid_scores_avx512 (else the plain loops)
  size_t max_list_ = 0;  // rows of the longest list
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<Work>> pool_;  // Work of finished calls (WorkLease)
};

}  // namespace

std::shared_ptr<const Searcher> make_ivf8_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                   std::shared_ptr<const IvfIndex> ivf) {
  if (!index) throw Error("ivf-int8 searcher: no index");
  const std::string where = index->path().empty() ? std::string("(in memory)") : index->path();
  if (index->rerank() != Rerank::Int8)
    throw Error("ivf-int8 searcher: index " + where + " has no int8 rerank rows (rerank: " +
                rerank_name(index->rerank()) + ")");
  // The index's own lists with residual rows (built with `igla build-ivf --residual`): those rows.
  if (!ivf && has_ivf_residual_section(*index)) return make_ivf_residual_searcher(std::move(index), opts);
  if (!ivf) ivf = ivf_of(*index);
  if (ivf->dims() != index->dims() || ivf->size() != index->size())
    throw Error("ivf-int8 searcher: the IVF lists were built for another index");
  if (ivf->float_dims() != index->float_dims())
    throw Error("ivf-int8 searcher: the IVF of index " + where + " has no float centroids (fitted on " +
                ivf_source_name(ivf->source()) + ")");
  auto lists = build_lists(*index, *ivf, nullptr);
  return std::make_shared<Ivf8Searcher>(std::move(index), std::move(ivf), std::move(lists), opts);
}

std::shared_ptr<const Searcher> make_ivf_residual_searcher(std::shared_ptr<const Index> index,
                                                           const SearcherOptions& opts,
                                                           std::shared_ptr<const IvfIndex> ivf,
                                                           std::shared_ptr<const IvfResidualRows> rows) {
  if (!index) throw Error("ivf-int8 residual searcher: no index");
  const std::string where = index->path().empty() ? std::string("(in memory)") : index->path();
  if (index->rerank() != Rerank::Int8)
    throw Error("ivf-int8 residual searcher: index " + where + " has no int8 rerank rows (rerank: " +
                rerank_name(index->rerank()) + "), whose scales choose the probes");
  if (!ivf) ivf = ivf_of(*index);
  if (ivf->dims() != index->dims() || ivf->size() != index->size() || ivf->float_dims() != index->float_dims())
    throw Error("ivf-int8 residual searcher: the IVF lists were built for another index, or have no float centroids");
  if (!rows) {
    rows = ivf_residual_of(*index);
    if (!rows) throw Error("ivf-int8 residual searcher: index " + where + " has no IVF residual rows (IVFR)");
  }
  if (rows->positions() != ivf->positions() || rows->dims() != index->float_dims())
    throw Error("ivf-int8 residual searcher: the residual rows were built for other IVF lists");
  auto lists = build_lists(*index, *ivf, rows.get());
  return std::make_shared<Ivf8Searcher>(std::move(index), std::move(ivf), std::move(lists), opts, std::move(rows));
}

}  // namespace igla
