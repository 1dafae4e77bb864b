// The CPU backend: batched, register-blocked scans with a fused top-k, on a persistent thread
// pool (no thread is created per query; see thread_pool.hpp for why not OpenMP here).
//
// Work is cut into tasks = (group of queries) x (range of the vocabulary). Within a task the
// vocabulary is walked in tiles that stay in cache; each tile is scored against every term of
// the group (so the codes are read once per group, not once per query). Three ways, the first
// the kernel offers:
//   - kernel-held lists (scan_topk, scan_sum_topk): the kernel keeps each query's top k + its
//     exclusions itself; the searcher drops the exclusions at the end;
//   - a fused scan (scan_cosine): the kernel hands back the words above each query's threshold,
//     which go into the query's heap here;
//   - two passes: dots of every term into a scratch, then scores, selection, heap.
// Big batches split by query group; small ones (one query) split the vocabulary across threads,
// and the partial heaps are merged.
#include <algorithm>
#include <memory>

#include "core/backends.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/index.hpp"
#include "cpu/topk.hpp"
#include "igla/error.hpp"
#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"

namespace igla {
namespace {

// A tile is the stretch of vocabulary that a group's queries scan in turn while it stays in
// cache. A register-fused scan keeps nothing per word, and each pass of it (a few queries) costs
// a fixed setup, so its tiles are large (measured at 100K x 300: 256-word tiles 0.42 ns per
// word-query, 4096-word tiles 0.38); thresholds are refreshed per tile, which costs a few extra
// candidates per query (see the ramp below). Two-pass scoring writes an int32 per word and term
// of the tile, so its tiles stay small enough for that scratch to stay in L2 (256 words at 300
// dims; with the large tiles the AVX2 kernel ran 2.7 ns per word-query instead of ~1).
constexpr size_t kFusedTileBytes = 256 * 1024;
constexpr size_t kTwoPassTileBytes = 20 * 1024;
constexpr size_t kGroupTerms = 48;     // terms scored per pass over a tile
// A thread's share of one query must outweigh waking it (a few us): at least 8192 x 512 bits
// of codes (16K words at 300 dims); smaller searches run on the calling thread alone.
constexpr size_t kMinSplitWork = 8192;

struct Scratch {
  std::vector<int32_t> dots;                   // kGroupTerms x tile words
  std::vector<float> scores;                   // tile words
  std::vector<uint32_t> sel;                   // tile words
  std::vector<float> thr;                      // per query of the group, fused path
  std::vector<kernels::Candidate> candidates;  // fused path: group queries x tile words at most
  std::vector<kernels::FusedTopK> lists;       // kernel-held top-k paths: one per group query
  std::vector<uint32_t> offsets;               // the group's term offsets, from 0
};

// The codes in a kernel's block layout when it is not the index's own: made once per index and
// layout (Index::derived), shared by every searcher over that index.
struct KernelLayout {
  kernels::AlignedArray<uint64_t> codes;
  kernels::AlignedArray<float> inv;  // inverse norms padded to whole blocks of the layout
};

// Per-thread buffers: a thread runs one task at a time, so these are reused without locks by
// every searcher and every call (they grow to the largest tile and stay).
Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

class CpuSearcher final : public Searcher {
 public:
  CpuSearcher(std::shared_ptr<const Index> index, const CpuOptions& opts)
      : index_(std::move(index)), c_(index_->codes()), kernel_(kernels::select_kernel(opts.kernel)),
        bw_(kernel_.block_words), W_(kernels::layout_plane_words(c_.dims, bw_)) {
    ThreadPool& pool = ThreadPool::shared();
    if (opts.threads > pool.size()) pool.grow_to(opts.threads);
    threads_ = opts.threads > 0 ? std::min(opts.threads, pool.size()) : pool.size();
    codes_ = c_.codes;
    inv_ = c_.inv_norms;
    if (bw_ != kBlockWords) {
      // The kernel reads another block layout: a copy the size of the codes, once per index.
      const CodesView c = c_;
      const uint32_t bw = bw_;
      layout_ = std::static_pointer_cast<const KernelLayout>(
          index_->derived("cpu/layout/" + std::to_string(bw), [c, bw]() -> std::shared_ptr<const void> {
            auto l = std::make_shared<KernelLayout>();
            l->codes = kernels::to_block_layout(c, bw);
            l->inv = kernels::AlignedArray<float>((c.n_words + bw - 1) / bw * bw);
            std::copy(c.inv_norms, c.inv_norms + c.n_words, l->inv.data());
            return l;
          }));
      codes_ = layout_->codes.data();
      inv_ = layout_->inv.data();
    }
  }

  std::string name() const override {
    return std::string("cpu/") + kernel_.name + " x" + std::to_string(threads_) + " threads";
  }

  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = kernel_.scan_topk ? kernels::FusedTopK::kMax : 0;
    c.max_fast_terms = kernel_.scan_sum_topk ? kernels::Kernel::kMaxSumTerms : 1;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    batch.validate();
    if (batch.dims != c_.dims)
      throw Error("query batch has " + std::to_string(batch.dims) + " dimensions, the index has " +
                  std::to_string(c_.dims));
    const size_t nq = batch.size(), W = c_.W;
    const size_t n_eff = params.limit ? std::min(params.limit, c_.n_words) : c_.n_words;
    const size_t nblocks = (n_eff + bw_ - 1) / bw_;
    out.reset(nq, params.k);
    if (nq == 0 || params.k == 0 || n_eff == 0) return;
    Call call;

    // Pack every term once per call (a few hundred bytes per query).
    std::vector<uint64_t>& rows = call.rows;
    rows.resize(batch.n_terms() * 2 * W);
    for (size_t t = 0; t < batch.n_terms(); ++t)
      pack_row({batch.trits.data() + t * c_.dims, c_.dims}, {rows.data() + t * 2 * W, 2 * W});

    // Query groups: consecutive queries with at most kGroupTerms terms in all.
    auto& groups = call.groups;
    for (size_t q = 0; q < nq;) {
      size_t e = q, terms = 0;
      while (e < nq && (e == q || terms + (batch.term_offsets[e + 1] - batch.term_offsets[e]) <= kGroupTerms)) {
        terms += batch.term_offsets[e + 1] - batch.term_offsets[e];
        ++e;
      }
      groups.push_back({q, e});
      q = e;
    }
    // Vocabulary splits: enough tasks to keep every thread busy.
    const size_t ng = groups.size();
    size_t splits = 1;
    if (ng < static_cast<size_t>(threads_))
      splits = std::max<size_t>(1, std::min((threads_ + ng - 1) / ng, nblocks * W_ * bw_ / 8 / kMinSplitWork));
    const size_t per_split = (nblocks + splits - 1) / splits;

    auto& heaps = call.heaps;
    heaps.resize(nq * splits);
    ThreadPool::shared().run(
        static_cast<uint32_t>(ng * splits),
        [&](uint32_t task, int) {
          const size_t g = task / splits, s = task % splits;
          const size_t b0 = s * per_split, b1 = std::min(nblocks, b0 + per_split);
          run_task(call, batch, groups[g].first, groups[g].second, s, b0, b1, n_eff, params.k, splits,
                   thread_scratch());
        },
        threads_);

    // Merge the splits of each query.
    std::vector<Hit> merged;
    for (size_t q = 0; q < nq; ++q) {
      merged.clear();
      for (size_t s = 0; s < splits; ++s) {
        const auto& items = heaps[q * splits + s].items();
        merged.insert(merged.end(), items.begin(), items.end());
      }
      const size_t m = std::min(params.k, merged.size());
      std::partial_sort(merged.begin(), merged.begin() + m, merged.end(), better);
      std::copy(merged.begin(), merged.begin() + m, out.hits.begin() + q * params.k);
      out.count[q] = static_cast<uint32_t>(m);
    }
  }

 private:
  // One call's state: the packed query rows, the query groups and a heap per query and split.
  struct Call {
    std::vector<uint64_t> rows;
    std::vector<std::pair<size_t, size_t>> groups;
    std::vector<TopK> heaps;
  };

  void run_task(Call& call, const QueryBatch& batch, size_t q0, size_t q1, size_t split, size_t b0, size_t b1,
                size_t n_eff, size_t k, size_t splits, Scratch& sc) const {
    const std::vector<uint64_t>& term_rows = call.rows;
    std::vector<TopK>& heaps = call.heaps;
    const uint32_t t0 = batch.term_offsets[q0], nterms = batch.term_offsets[q1] - t0;
    // One term per query (nearest, clamp analogies, the batched benchmark): the fused kernel
    // scores in registers and hands back only the words above each query's threshold.
    const bool fused = batch.combine == Combine::Sum && nterms == q1 - q0 &&
                       std::all_of(batch.weights.begin() + t0, batch.weights.begin() + t0 + nterms,
                                   [](float w) { return w > 0.0f; });  // a zero query takes the general path
    // The kernel keeps each query's list itself when it can: k plus the query's exclusions (which
    // take list slots and are dropped below) within FusedTopK::kMax; one-term queries of positive
    // weight by scan_topk, Sum queries of up to kMaxSumTerms terms (3CosAdd, most_similar) by
    // scan_sum_topk, which scores them exactly in registers.
    auto list_k = [&](size_t q) { return k + (batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]); };
    bool lists_fit = true;
    for (size_t q = q0; q < q1; ++q) lists_fit = lists_fit && list_k(q) <= kernels::FusedTopK::kMax;
    const bool topk = lists_fit && fused && kernel_.scan_topk;
    bool sum_topk = lists_fit && !topk && batch.combine == Combine::Sum && kernel_.scan_sum_topk;
    for (size_t q = q0; sum_topk && q < q1; ++q)
      sum_topk = batch.term_offsets[q + 1] - batch.term_offsets[q] <= kernels::Kernel::kMaxSumTerms;
    const size_t W = c_.W, block_bytes = size_t{W_} * 128;
    const size_t tile_bytes =
        (fused && kernel_.fused_scan) || topk || sum_topk ? kFusedTileBytes : kTwoPassTileBytes;
    const size_t tile_blocks = std::max<size_t>(1, tile_bytes / block_bytes), tile_words = tile_blocks * bw_;
    for (size_t q = q0; q < q1; ++q) heaps[q * splits + split].reset(k);
    auto push = [&](size_t q, uint32_t id, float score) {
      const uint32_t* ex = batch.exclude.data() + batch.exclude_offsets[q];
      const uint32_t* ex_end = batch.exclude.data() + batch.exclude_offsets[q + 1];
      if (ex != ex_end && std::find(ex, ex_end, id) != ex_end) return;
      heaps[q * splits + split].push({id, score});
    };
    if (topk || sum_topk) {
      sc.lists.resize(q1 - q0);
      for (size_t q = q0; q < q1; ++q) sc.lists[q - q0].reset(static_cast<uint32_t>(list_k(q)));
      if (sum_topk) {
        sc.offsets.resize(q1 - q0 + 1);
        for (size_t q = q0; q <= q1; ++q) sc.offsets[q - q0] = batch.term_offsets[q] - t0;
      }
      const uint64_t* rows = term_rows.data() + size_t{t0} * 2 * W;
      for (size_t b = b0; b < b1; b += tile_blocks) {
        const size_t nb = std::min(tile_blocks, b1 - b), w0 = b * bw_, nw = std::min(nb * bw_, n_eff - w0);
        if (topk)
          kernel_.scan_topk(codes_ + b * W_ * 16, nb, W_, rows, nterms, batch.weights.data() + t0, inv_ + w0, nw,
                            static_cast<uint32_t>(w0), sc.lists.data());
        else
          kernel_.scan_sum_topk(codes_ + b * W_ * 16, nb, W_, rows, sc.offsets.data(), q1 - q0,
                                batch.weights.data() + t0, inv_ + w0, nw, static_cast<uint32_t>(w0), sc.lists.data());
      }
      for (size_t q = q0; q < q1; ++q) {
        const kernels::FusedTopK& l = sc.lists[q - q0];
        for (uint32_t i = 0; i < l.n; ++i) push(q, l.id[i], l.score[i]);
      }
      return;
    }
    sc.dots.resize(std::max<size_t>(nterms, 1) * tile_words);  // two-pass kernels' scratch
    if (fused) {
      sc.thr.resize(nterms);
      sc.candidates.resize(nterms * tile_words);
    } else {
      sc.scores.resize(tile_words);
      sc.sel.resize(tile_words);
    }

    // Tiles grow from one block to tile_blocks: each query's threshold is -inf until its heap
    // holds k words, and every word of a tile scanned under it is a candidate; small first tiles
    // raise the thresholds after a few dozen words instead of a whole tile.
    // A tile of T words after S scanned emits about k T / S candidates per query where about
    // k ln(1 + T / S) enter the list: growing by 1/4 (not 2x) keeps that overhead near 12%.
    for (size_t b = b0, nb = 0, ramp = 1; b < b1; b += nb, ramp = std::min(ramp + (ramp + 3) / 4, tile_blocks)) {
      nb = std::min(ramp, b1 - b);
      const size_t w0 = b * bw_;
      const size_t nw = std::min(nb * bw_, n_eff - w0);  // drop padding and words past --limit
      const uint64_t* tile = codes_ + b * W_ * 16;  // 16 uint64 = 128 bytes per block and plane word
      const uint64_t* rows = term_rows.data() + size_t{t0} * 2 * W;
      if (fused) {
        for (size_t q = q0; q < q1; ++q) sc.thr[q - q0] = heaps[q * splits + split].threshold();
        const size_t m = kernel_.scan_cosine(tile, nb, W_, rows, nterms, batch.weights.data() + t0, sc.thr.data(),
                                             inv_ + w0, nw, sc.candidates.data(), sc.dots.data());
        for (size_t i = 0; i < m; ++i) {
          const kernels::Candidate& c = sc.candidates[i];
          push(q0 + c.query, static_cast<uint32_t>(w0 + c.word), c.score);
        }
        continue;
      }
      kernel_.dots(tile, nb, W_, rows, nterms, sc.dots.data(), tile_words);
      for (size_t q = q0; q < q1; ++q) {
        const uint32_t qt0 = batch.term_offsets[q], qnt = batch.term_offsets[q + 1] - qt0;
        kernel_.scores(batch.combine, sc.dots.data() + (qt0 - t0) * tile_words, tile_words, qnt,
                       batch.weights.data() + qt0, inv_ + w0, nw, sc.scores.data());
        const size_t m = kernel_.select(sc.scores.data(), nw, heaps[q * splits + split].threshold(), sc.sel.data());
        for (size_t i = 0; i < m; ++i) push(q, static_cast<uint32_t>(w0 + sc.sel[i]), sc.scores[sc.sel[i]]);
      }
    }
  }

  std::shared_ptr<const Index> index_;
  CodesView c_;
  const kernels::Kernel& kernel_;
  int threads_ = 1;  // threads of the shared pool one call uses
  uint32_t bw_;      // words per block of the kernel's code layout
  uint32_t W_;       // plane words per word in that layout
  std::shared_ptr<const KernelLayout> layout_;  // the codes in the kernel's layout, if not the index's
  const uint64_t* codes_;
  const float* inv_;
};

}  // namespace

std::shared_ptr<const Searcher> make_cpu_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts) {
  if (!index) throw Error("make_searcher: no index");
  return std::make_shared<CpuSearcher>(std::move(index), opts);
}

}  // namespace igla
