// igla CUDA backend: the Searcher (batch API) over the kernels of kernels.hpp (src/cuda/*.cu).
//
// Thread-safety: search() is const and may be called from any number of threads; one searcher
// runs one call at a time (a mutex inside: its streams and pinned buffers are reused between
// calls), so threads that want the GPU in parallel make one searcher each over the same index
// (they share its device copies: device.hpp).
//
// Submission: a batch is cut into chunks; each chunk goes through one of kSlots slots (stream +
// pinned host buffers + device buffers): the chunk's queries are packed into the slot's pinned
// input block, copied up with one cudaMemcpyAsync, searched (and, with rerank rows, rescored on
// the device: rerank.cu), and the hits come back with one copy into the slot's pinned output
// block. While the GPU works on a chunk the host packs the next one into another slot.
// A batch of one query goes to the device's persistent kernel through a mailbox in mapped host
// memory (device.hpp says who owns it and when it stops), or is one kernel launch
// (CudaOptions::single = "launch", or where the persistent grid cannot be resident at once, or
// while a batch runs on the device), or where it does not fit the query parameter block, a replay
// of a CUDA graph of the whole batch sequence (cached per shape). A reranked query of one gets its
// candidates from those routes and is rescored on the host (rerank_query: ~50 rows, microseconds).
//
// Path choice for batches (CudaOptions::calibrate): where mma and popc can both answer, the first
// batch of each shape (size class, list length, limit) runs a sub-batch on both, timed end to end,
// and the faster is kept for that shape (per index per GPU, DeviceCodes::calib; cuda_report lists it).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/backends.hpp"
#include "core/distinct_rows.hpp"
#include "core/rerank.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/ternary.hpp"
#include "cuda/device.hpp"
#include "cuda/host_common.hpp"
#include "cuda/kernels.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla {

namespace {

using cuda::BatchGuard;
using cuda::ChunkQueries;
using cuda::ck;
using cuda::Clock;
using cuda::cuda_fail;
using cuda::DeviceBuffer;
using cuda::DeviceIndex;
using cuda::OutHits;
using cuda::seconds_since;

constexpr int kSlots = 3;
constexpr size_t kAlign = 256;
inline size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

enum class Path { Mma, Popc, Mt, Sort };

// Byte layout of one chunk's input block (identical on host and device).
struct InLayout {
  size_t trits = 0, weights = 0, term_off = 0, excl = 0, excl_off = 0, planes = 0;
  size_t fterms = 0, fweights = 0, has_float = 0, term_distinct = 0, distinct_trits = 0, total = 0;
  // distinct: room for the mt path's distinct terms (shared-terms scan), at most max_distinct.
  InLayout(size_t n_terms, uint32_t dims, size_t n_q, size_t n_excl, size_t plane_words, uint32_t float_dims,
           bool distinct = false, size_t max_distinct = 0) {
    size_t o = 0;
    auto put = [&](size_t& at, size_t bytes) {
      at = o;
      o = align_up(o + bytes);
    };
    put(trits, n_terms * dims);
    put(weights, n_terms * sizeof(float));
    put(term_off, (n_q + 1) * sizeof(uint32_t));
    put(excl, n_excl * sizeof(uint32_t));
    put(excl_off, (n_q + 1) * sizeof(uint32_t));
    put(planes, plane_words * sizeof(uint64_t));
    put(fterms, float_dims ? n_terms * float_dims * sizeof(float) : 0);
    put(fweights, float_dims ? n_terms * sizeof(float) : 0);
    put(has_float, float_dims ? n_q : 0);
    put(term_distinct, distinct ? n_terms * sizeof(uint32_t) : 0);
    put(distinct_trits, distinct ? std::min(n_terms, max_distinct) * dims : 0);
    total = o;
  }
};

// Copies blocks in slices of ~512 KB on the shared CPU pool (the caller takes tasks too, so a
// busy pool never stalls it), with `beside` (if any) as one more task.
struct BlockCopy {
  char* dst;
  const char* src;
  size_t bytes;
};
void copy_blocks(const std::vector<BlockCopy>& blocks, const std::function<void()>& beside) {
  constexpr size_t kSlice = size_t{512} << 10;
  struct Piece {
    size_t block, at, bytes;
  };
  std::vector<Piece> pieces;
  for (size_t b = 0; b < blocks.size(); ++b)
    for (size_t at = 0; at < blocks[b].bytes; at += kSlice)
      pieces.push_back({b, at, std::min(kSlice, blocks[b].bytes - at)});
  const uint32_t n = static_cast<uint32_t>(pieces.size() + (beside ? 1 : 0));
  if (n <= 1) {  // one small copy or the search alone: no pool round trip
    for (const Piece& p : pieces) std::memcpy(blocks[p.block].dst + p.at, blocks[p.block].src + p.at, p.bytes);
    if (beside) beside();
    return;
  }
  ThreadPool::shared().run(n, [&](uint32_t i, int) {
    if (beside && i == 0) return beside();  // first: the longest task starts at once
    const Piece& p = pieces[beside ? i - 1 : i];
    std::memcpy(blocks[p.block].dst + p.at, blocks[p.block].src + p.at, p.bytes);
  });
}

struct Chunk {
  size_t q0 = 0, q1 = 0;  // queries [q0, q1) of the batch
  size_t t0 = 0, t1 = 0;  // their terms
  size_t e0 = 0, e1 = 0;  // their exclusions
  size_t n_q() const { return q1 - q0; }
};

struct Slot {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  DeviceBuffer h_in, d_in, h_out, d_out, d_cand, scratch;
  uint32_t* counters = nullptr;  // popc path: per query of a chunk, kept zero between launches
  bool pending = false;
  Chunk chunk;
  size_t k = 0;
};

struct GraphKey {
  int path, combine, n_terms, n_excl, K, k;
  uint32_t L;
  auto tie() const { return std::tie(path, combine, n_terms, n_excl, K, k, L); }
  bool operator<(const GraphKey& o) const { return tie() < o.tie(); }
};

// How one batch is searched (the same for all its chunks).
struct Plan {
  Path path = Path::Sort;
  int K = 0;            // list length: candidates (or k) + the most exclusions, at most L
  size_t kk = 0;        // ternary hits kept per query (candidates when reranking, else k)
  size_t k = 0;         // hits returned per query
  uint32_t L = 0;
  int max_terms = 0;
  bool single = false;  // every query one Sum term
  bool rerank = false;  // rescored on the device
};

// The first m queries of b (calibration sub-batches).
QueryBatch head(const QueryBatch& b, size_t m) {
  QueryBatch h(b.dims, b.combine);
  const size_t nt = b.term_offsets[m], ne = b.exclude_offsets[m];
  h.trits.assign(b.trits.begin(), b.trits.begin() + static_cast<std::ptrdiff_t>(nt * b.dims));
  h.weights.assign(b.weights.begin(), b.weights.begin() + static_cast<std::ptrdiff_t>(nt));
  h.term_offsets.assign(b.term_offsets.begin(), b.term_offsets.begin() + static_cast<std::ptrdiff_t>(m + 1));
  h.exclude.assign(b.exclude.begin(), b.exclude.begin() + static_cast<std::ptrdiff_t>(ne));
  h.exclude_offsets.assign(b.exclude_offsets.begin(), b.exclude_offsets.begin() + static_cast<std::ptrdiff_t>(m + 1));
  return h;  // no float form: calibration times the ternary search only
}

void reset_results(SearchResults& out, size_t n_q, size_t k) {
  out.k = k;
  out.hits.assign(n_q * k, Hit{0, 0.0f});
  out.count.assign(n_q, 0);
}

class CudaSearcher final : public Searcher {
 public:
  CudaSearcher(std::shared_ptr<const Index> index, const CodesView& codes, const CudaOptions& opt)
      : index_(std::move(index)), opt_(opt), dims_(codes.dims), W_(codes.W), n_words_(codes.n_words) {
    if (!opt_.path.empty() && opt_.path != "mma" && opt_.path != "popc" && opt_.path != "mt" && opt_.path != "sort")
      throw Error("--device cuda: unknown path '" + opt_.path + "' (mma, popc, mt or sort)");
    int device = opt_.device;
    if (device < 0) ck(cudaGetDevice(&device), "cudaGetDevice");
    dev_ = &cuda::device_state(device);
    const std::string prefix = "cuda/" + std::to_string(device) + "/";
    if (index_) {
      codes_ = std::static_pointer_cast<const cuda::DeviceCodes>(index_->derived(
          prefix + "codes", [&] { return std::static_pointer_cast<const void>(cuda::upload_codes(codes, *dev_)); }));
      if (index_->rerank() != Rerank::None && opt_.device_rerank)
        rows_ = cuda::shared_rows(*index_, *dev_, opt_.rerank_int8_rows);
    } else {
      codes_ = cuda::upload_codes(codes, *dev_);
    }
    parse_single(opt_.single);
    w_ = std::make_unique<Work>();
    if (opt_.stats) {
      ck(cudaMalloc(&w_->stats, 7 * sizeof(unsigned long long)), "cudaMalloc(stats)");
      ck(cudaMemset(w_->stats, 0, 7 * sizeof(unsigned long long)), "cudaMemset(stats)");
    }
    for (Slot& sl : w_->slots) {
      ck(cudaStreamCreateWithFlags(&sl.stream, cudaStreamNonBlocking), "cudaStreamCreate");
      ck(cudaEventCreateWithFlags(&sl.done, cudaEventDisableTiming), "cudaEventCreate");
      ck(cudaMalloc(&sl.counters, kPopcChunk * sizeof(uint32_t)), "cudaMalloc(counters)");
      ck(cudaMemset(sl.counters, 0, kPopcChunk * sizeof(uint32_t)), "cudaMemset(counters)");
    }
    name_ = "cuda/" + dev_->name;
  }

  ~CudaSearcher() override {
    // Frees wait for every kernel of the device: the device's one-query kernel is stopped (the
    // next one-query search of any searcher starts it again).
    try {
      dev_->quiesce();
    } catch (const std::exception&) {
    }
    cudaSetDevice(dev_->device);
    Work& w = *w_;
    for (auto& [key, g] : w.graphs) cudaGraphExecDestroy(g);
    if (w.one_stream) {
      cudaStreamSynchronize(w.one_stream);
      cudaStreamDestroy(w.one_stream);
    }
    if (w.one_out) cudaFreeHost(w.one_out);
    if (w.one_counter) cudaFree(w.one_counter);
    if (w.one_partial) cudaFree(w.one_partial);
    if (w.stats) cudaFree(w.stats);
    for (Slot& sl : w.slots) {
      if (sl.stream) cudaStreamSynchronize(sl.stream);
      sl.h_in.release();
      sl.d_in.release();
      sl.h_out.release();
      sl.d_out.release();
      sl.d_cand.release();
      sl.scratch.release();
      if (sl.done) cudaEventDestroy(sl.done);
      if (sl.counters) cudaFree(sl.counters);
      if (sl.stream) cudaStreamDestroy(sl.stream);
    }
  }

  std::string name() const override { return name_; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = static_cast<size_t>(cuda::kMaxListK);
    c.max_fast_terms = static_cast<uint32_t>(cuda::kSingleMaxTerms);
    c.multi_term = true;
    c.exact = true;
    c.reranks = rows_ != nullptr;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    std::lock_guard<std::mutex> lock(mu_);
    ck(cudaSetDevice(dev_->device), "cudaSetDevice");
    const size_t n_q = batch.size();
    const size_t k = params.k;
    reset_results(out, n_q, k);
    check_batch(batch);
    const uint32_t L = static_cast<uint32_t>(params.limit ? std::min<size_t>(params.limit, n_words_) : n_words_);
    if (n_q == 0 || k == 0 || L == 0) return;

    Plan plan;
    plan.k = k;
    plan.L = L;
    plan.rerank = rows_ && params.candidates > 0 && batch.float_dims > 0 &&
                  std::any_of(batch.has_float.begin(), batch.has_float.end(), [](uint8_t f) { return f != 0; });
    if (plan.rerank && batch.float_dims != rows_->dims)
      throw Error("query float dims " + std::to_string(batch.float_dims) + " != index float dims " +
                  std::to_string(rows_->dims));
    plan.kk = plan.rerank ? std::max(params.candidates, k) : k;
    bool single = batch.combine == Combine::Sum;
    size_t max_excl = 0, max_terms = 0;
    for (size_t q = 0; q < n_q; ++q) {
      const size_t t = batch.term_offsets[q + 1] - batch.term_offsets[q];
      single = single && t == 1;
      max_terms = std::max(max_terms, t);
      max_excl = std::max<size_t>(max_excl, batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]);
    }
    plan.single = single;
    plan.max_terms = static_cast<int>(max_terms);
    plan.K = static_cast<int>(std::min<size_t>(plan.kk + max_excl, L));

    if (n_q == 1) {
      if (!plan.rerank) {
        if (search_one(batch, k, L, plan.K, out)) return;
      } else {
        SearchResults cand;
        reset_results(cand, 1, plan.kk);
        if (search_one(batch, plan.kk, L, plan.K, cand)) {
          rerank_on_host(batch, cand, out);
          return;
        }
      }
    }
    BatchGuard guard(*dev_);  // the batch kernels need the SMs
    plan.path = choose_path(batch, plan);
    if (plan.rerank && !device_rerank_fits(batch, plan)) {
      // Rows too wide for the rerank kernel's shared memory: candidates here, rescored on the host.
      SearchResults cand;
      Plan p2 = plan;
      p2.rerank = false;
      p2.k = plan.kk;
      reset_results(cand, n_q, plan.kk);
      run_batch(batch, p2, cand);
      rerank_on_host(batch, cand, out);
      return;
    }
    run_batch(batch, plan, out);
  }

  // Counters, the one-query kernel's counts and the calibration table (cuda_report).
  std::string report() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string r;
    char line[512];
    if (w_->stats) {
      unsigned long long h[7] = {};
      cudaSetDevice(dev_->device);
      for (Slot& sl : w_->slots) cudaStreamSynchronize(sl.stream);
      cudaMemcpy(h, w_->stats, sizeof h, cudaMemcpyDeviceToHost);
      std::snprintf(line, sizeof line,
                    "cuda stats: warp-tiles with a candidate %llu, staged %llu, queued %llu, drains %llu, list selects "
                    "%llu; mt candidates %llu, queries rescanned (mt, refill) %llu\n",
                    h[0], h[1], h[2], h[3], h[6], h[4], h[5]);
      r += line;
    }
    {
      std::lock_guard<std::mutex> g(dev_->one.mu);
      std::snprintf(line, sizeof line,
                    "cuda persistent one-query kernel (device %d, all searchers): %llu queries, %llu starts, %llu stops, "
                    "%llu recoveries\n",
                    dev_->device, dev_->one.queries, dev_->one.starts, dev_->one.stops, dev_->one.recoveries);
      r += line;
    }
    if (w_->host.calls) {
      const auto& h = w_->host;
      std::snprintf(line, sizeof line,
                    "cuda host time of %zu batch calls (%zu chunks), ms: sizing buffers %.2f, packing %.2f, launching "
                    "%.2f, waiting for the device %.2f, copying hits out %.2f\n",
                    h.calls, h.chunks, h.sizing * 1e3, h.packing * 1e3, h.launching * 1e3, h.waiting * 1e3,
                    h.copying * 1e3);
      r += line;
    }
    if (w_->mt_chunks) {
      std::snprintf(line, sizeof line, "cuda mt chunks: %zu, by the shared-terms scan %zu\n", w_->mt_chunks,
                    w_->st_chunks);
      r += line;
    }
    if (w_->trace_n) {
      const double* t = w_->trace_sum;
      const double n = static_cast<double>(w_->trace_n);
      std::snprintf(line, sizeof line,
                    "cuda one-query trace (cycles from the last CTA's start, mean of %zu): scored %.0f, selected %.0f, "
                    "last %.0f, preloaded %.0f, merged %.0f, done %.0f\n",
                    w_->trace_n, t[0] / n, t[1] / n, t[2] / n, t[3] / n, t[4] / n, t[5] / n);
      r += line;
    }
    std::lock_guard<std::mutex> g(codes_->calib_mu);
    for (const auto& [key, c] : codes_->calib) {
      std::snprintf(line, sizeof line,
                    "cuda calibration: batch <= %zu, K <= %d, limit %u: %zu queries, popc %.1f us (%.0f q/s), mma %.1f us "
                    "(%.0f q/s) -> %s\n",
                    size_t{1} << key.size_class, key.list_class, key.limit, c.queries, c.popc_s * 1e6, c.queries / c.popc_s,
                    c.mma_s * 1e6, c.queries / c.mma_s, c.mma ? "mma" : "popc");
      r += line;
    }
    return r;
  }

 private:
  // Below this the popc path wins without calibration (run 10: batch 64, 402 K q/s popc vs 259 K
  // mma; batch 1024, 916 K popc vs 1.02 M mma, on 100K x 300).
  static constexpr size_t kMmaMinBatch = 512;
  static constexpr uint32_t kPopcMaxWords = 1u << 18;  // 21 MB of bitplanes at 300 dims
  static constexpr size_t kPopcChunk = 4096;  // popc.cu sizes its per-query counters for this
  static constexpr size_t kCalibMinBatch = 16;  // below: popc, never timed
  static constexpr size_t kMtMinBatch = 256;    // several-term Sum batches from here take the mt path
  static constexpr double kAnswerTimeout = 10.0;  // seconds

  // Everything a call changes (guarded by mu_).
  struct Work {
    Slot slots[kSlots];
    std::map<GraphKey, cudaGraphExec_t> graphs;
    unsigned long long* stats = nullptr;
    double trace_sum[6] = {};
    size_t trace_n = 0;
    size_t mt_chunks = 0, st_chunks = 0;  // mt path chunks run, and of them by the shared-terms scan
    // The host's side of the batch calls (report()): where a call's wall time goes besides the
    // device's, in seconds.
    struct HostTime {
      size_t calls = 0, chunks = 0;
      double sizing = 0, packing = 0, launching = 0, waiting = 0, copying = 0;
    } host;
    cudaStream_t one_stream = nullptr;
    uint32_t* one_out = nullptr;      // mapped pinned: flag, count, hits
    uint32_t* one_out_dev = nullptr;  // its device address
    uint32_t* one_counter = nullptr;
    void* one_partial = nullptr;
    size_t one_partial_cap = 0;
    uint32_t one_seq = 0;
    cuda::SingleArgs one_args;
  };

  void parse_single(const std::string& s) {  // comma-separated: a route and/or a mode
    const std::string v = "," + s + ",";
    auto has = [&](const char* w) { return v.find(std::string(",") + w + ",") != std::string::npos; };
    single_mode_ = has("graph") ? 1 : has("empty") ? 2 : has("nomerge") ? 3 : has("trace") ? 4 : has("echo") ? 5 : 0;
    single_launch_ = has("launch");
  }

  void check_batch(const QueryBatch& batch) const {
    const size_t n_q = batch.size();
    if (batch.dims != dims_)
      throw Error("query dims " + std::to_string(batch.dims) + " != index dims " + std::to_string(dims_));
    if (batch.trits.size() != batch.n_terms() * batch.dims || batch.term_offsets.empty() ||
        batch.term_offsets.front() != 0 || batch.term_offsets.back() != batch.n_terms() ||
        batch.exclude_offsets.size() != n_q + 1 || batch.exclude_offsets.back() != batch.exclude.size())
      throw Error("malformed QueryBatch");
    for (size_t q = 0; q < n_q; ++q)
      if (batch.term_offsets[q + 1] < batch.term_offsets[q] || batch.exclude_offsets[q + 1] < batch.exclude_offsets[q])
        throw Error("malformed QueryBatch: offsets not ascending at query " + std::to_string(q));
    if (batch.combine == Combine::CosMul)
      for (size_t q = 0; q < n_q; ++q)
        if (batch.term_offsets[q + 1] - batch.term_offsets[q] != 3)
          throw Error("CosMul queries need exactly three terms (a, b, c)");
    if (batch.float_dims && (batch.float_terms.size() != batch.n_terms() * batch.float_dims ||
                             batch.float_weights.size() != batch.n_terms() || batch.has_float.size() != n_q))
      throw Error("malformed QueryBatch: float form sizes");
  }

  // The rerank stage's arithmetic (src/core/rerank.cpp, rerank_query) over the candidates in cand.
  void rerank_on_host(const QueryBatch& batch, const SearchResults& cand, SearchResults& out) const {
    const RescoreFn rescore = [&](size_t q, std::span<const Hit> c, std::vector<Hit>& best) {
      rerank_query(*index_, batch, q, c, out.k, best);
    };
    std::vector<Hit> best;
    for (size_t q = 0; q < batch.size(); ++q) rescore_or_keep(batch, q, cand.of(q), rescore, best, out);
  }

  bool device_rerank_fits(const QueryBatch&, const Plan& p) const {
    return cuda::rerank_smem_bytes(rows_->view(), p.max_terms, static_cast<int>(p.kk)) <= dev_->max_smem;
  }

  bool mma_possible(const Plan& p, int n_q) const {
    if (!p.single || p.K > cuda::kMaxListK) return false;
    cuda::MmaPlan probe;
    return cuda::mma_plan(codes_->ix, std::max(n_q, 128), p.L, p.K, dev_->num_sms, dev_->max_smem, probe);
  }
  bool popc_possible(const Plan& p, size_t n_q) const {
    if (p.K > cuda::kMaxListK) return false;
    const cuda::PopcPlan pp =
        cuda::popc_plan(codes_->ix, static_cast<int>(std::min(n_q, kPopcChunk)), p.L, dev_->num_sms, p.max_terms, p.single);
    return cuda::popc_smem_bytes(codes_->ix, p.max_terms, p.K, pp.n_splits) <= dev_->max_smem;
  }

  cuda::WordSample mt_sample() const { return {opt_.mt_sample, opt_.mt_sample_spread}; }

  bool mt_possible(const QueryBatch& batch, const Plan& p, size_t n_q) const {
    if (batch.combine != Combine::Sum || p.K > cuda::kMaxListK) return false;
    cuda::MultiPlan mp;
    return cuda::multi_plan(codes_->ix, static_cast<int>(std::min(n_q, kPopcChunk)), p.L, p.K, p.max_terms,
                            dev_->num_sms, dev_->max_smem, opt_.mt_cap, mt_sample(), mp);
  }

  Path choose_path(const QueryBatch& batch, const Plan& p) const {
    const size_t n_q = batch.size();
    if (opt_.path == "sort" || p.K > cuda::kMaxListK) return Path::Sort;
    // Several-term Sum queries (3CosAdd): the tensor cores score each term exactly, where popc
    // spends 2 popcounts a plane word a term (run 38: NOTES.md v13).
    if ((opt_.path == "mt" || (opt_.path.empty() && !p.single && n_q >= kMtMinBatch)) && mt_possible(batch, p, n_q))
      return Path::Mt;
    const bool mma_ok = mma_possible(p, static_cast<int>(std::min<size_t>(n_q, 1 << 20)));
    const bool popc_ok = popc_possible(p, n_q);
    if (opt_.path == "mma" && mma_ok) return Path::Mma;
    if (opt_.path == "popc" && popc_ok) return Path::Popc;
    if (!mma_ok) return popc_ok ? Path::Popc : Path::Sort;
    if (!popc_ok) return Path::Mma;
    if (n_q < kCalibMinBatch) return Path::Popc;
    if (!opt_.calibrate) {
      // popc streams the bitplanes once per query: only worth it for few queries over an
      // L2-resident vocabulary (run 11: batch 64 on 100K x 300, popc 449 K q/s vs mma 268 K; on
      // 1M x 300, popc 35 K vs mma 109 K).
      const bool popc_better = n_q < kMmaMinBatch && (n_q < 16 || p.L <= kPopcMaxWords);
      return popc_better ? Path::Popc : Path::Mma;
    }
    // Calibrated per shape: one chunk of the mma path is the largest unit that behaves differently.
    const size_t chunk = static_cast<size_t>(dev_->num_sms) * cuda::kTileQueries;
    const size_t m = std::min(n_q, chunk);
    cuda::CalibKey key;
    while ((size_t{1} << key.size_class) < m) ++key.size_class;
    key.list_class = p.K <= 32 ? 32 : 64;
    key.limit = p.L;
    {
      std::lock_guard<std::mutex> g(codes_->calib_mu);
      auto it = codes_->calib.find(key);
      if (it != codes_->calib.end()) return it->second.mma ? Path::Mma : Path::Popc;
    }
    const QueryBatch sub = head(batch, m);
    Plan sp = p;
    sp.rerank = false;
    sp.k = p.kk;
    SearchResults scratch;
    auto time = [&](Path path) {
      sp.path = path;
      double best = 1e30;
      for (int r = 0; r < 2; ++r) {  // the first run loads the kernels' modules and sizes the buffers
        reset_results(scratch, m, sp.k);
        const Clock::time_point t0 = Clock::now();
        run_batch(sub, sp, scratch);
        if (r == 1) best = seconds_since(t0);
      }
      return best;
    };
    cuda::Calibration c;
    c.queries = m;
    c.popc_s = time(Path::Popc);
    c.mma_s = time(Path::Mma);
    c.mma = c.mma_s < c.popc_s;
    std::lock_guard<std::mutex> g(codes_->calib_mu);
    codes_->calib.emplace(key, c);
    return c.mma ? Path::Mma : Path::Popc;
  }

  void run_batch(const QueryBatch& batch, const Plan& p, SearchResults& out) const {
    const size_t n_q = batch.size();
    // Chunks. mma: one 128-query tile per SM, so a chunk is one full wave with no vocabulary split.
    const size_t chunk_q = p.path == Path::Mma ? static_cast<size_t>(dev_->num_sms) * cuda::kTileQueries
                           : p.path == Path::Popc || p.path == Path::Mt ? kPopcChunk
                                                  : 1024;
    const size_t chunk_terms = 3 * chunk_q;
    std::vector<Chunk> chunks;
    for (size_t q = 0; q < n_q;) {
      Chunk c;
      c.q0 = q;
      c.t0 = batch.term_offsets[q];
      c.e0 = batch.exclude_offsets[q];
      size_t q1 = q + 1;
      while (q1 < n_q && q1 - q < chunk_q && batch.term_offsets[q1 + 1] - c.t0 <= chunk_terms) ++q1;
      c.q1 = q1;
      c.t1 = batch.term_offsets[q1];
      c.e1 = batch.exclude_offsets[q1];
      chunks.push_back(c);
      q = q1;
    }
    Work& w = *w_;
    ++w.host.calls;
    w.host.chunks += chunks.size();
    // Every slot this batch uses sized before the first chunk runs: an allocation (pinned host
    // memory above all) while a chunk runs on the device waited for it (NOTES v14: the first call
    // of a process ran its first three chunks one after another).
    const Clock::time_point t0 = Clock::now();
    for (size_t i = 1; i < std::min<size_t>(chunks.size(), kSlots); ++i)
      if (!w.slots[i].pending) run_chunk(w.slots[i], batch, chunks[0], p, false, /*size_only=*/true);
    w.host.sizing += seconds_since(t0);
    for (size_t i = 0; i < chunks.size(); ++i) {
      Slot& sl = w.slots[i % kSlots];
      if (sl.pending) collect(sl, out);
      run_chunk(sl, batch, chunks[i], p, n_q == 1);
    }
    for (size_t i = 0; i < kSlots; ++i) {
      Slot& sl = w.slots[(chunks.size() + i) % kSlots];
      if (sl.pending) collect(sl, out);
    }
  }

  // One query in one kernel launch or through the device's persistent kernel (kernels.hpp,
  // SingleArgs): the query in the launch's parameters / the mailbox, the hits written into mapped
  // pinned memory and a sequence number the host spins on. False when the query does not fit the
  // parameter block or another path is forced (the caller then takes the batch route: the popc
  // path through a cached CUDA graph).
  bool search_one(const QueryBatch& batch, size_t k, uint32_t L, int K, SearchResults& out) const {
    if (single_mode_ == 1 || K > cuda::kMaxListK || k > 256 || opt_.path == "mma" || opt_.path == "sort") return false;
    const size_t T = batch.term_offsets[1], n_excl = batch.exclude.size(), W = W_;
    if (T == 0 || T > static_cast<size_t>(cuda::kSingleMaxTerms) ||
        T * 2 * W > static_cast<size_t>(cuda::kSinglePlaneWords) || n_excl > static_cast<size_t>(cuda::kSingleMaxExcl))
      return false;
    const DeviceIndex& ix = codes_->ix;
    const cuda::SinglePlan plan = cuda::single_plan(ix, L, K, static_cast<int>(T), dev_->num_sms, opt_.single_split,
                                                    opt_.single_prefix);
    if (plan.smem + 4096 > dev_->max_smem) return false;  // static shared memory besides
    Work& w = *w_;
    const size_t partial_bytes = static_cast<size_t>(plan.n_splits) * K * sizeof(uint64_t);
    if (!w.one_out || partial_bytes > w.one_partial_cap) dev_->quiesce();  // allocations wait for kernels
    if (!w.one_out) {  // first use: stream, mapped result block, device list buffer and counter
      ck(cudaStreamCreateWithFlags(&w.one_stream, cudaStreamNonBlocking), "cudaStreamCreate");
      ck(cudaHostAlloc(&w.one_out, 8192, cudaHostAllocMapped), "cudaHostAlloc");
      std::memset(w.one_out, 0, 8192);
      ck(cudaHostGetDevicePointer(reinterpret_cast<void**>(&w.one_out_dev), w.one_out, 0), "cudaHostGetDevicePointer");
      ck(cudaMalloc(&w.one_counter, sizeof(uint32_t)), "cudaMalloc(counter)");
      ck(cudaMemset(w.one_counter, 0, sizeof(uint32_t)), "cudaMemset(counter)");
    }
    if (partial_bytes > w.one_partial_cap) {
      ck(cudaStreamSynchronize(w.one_stream), "search");
      if (w.one_partial) cudaFree(w.one_partial);
      w.one_partial = nullptr;
      ck(cudaMalloc(&w.one_partial, partial_bytes), "cudaMalloc(partial)");
      w.one_partial_cap = partial_bytes;
    }
    cuda::SingleArgs& a = w.one_args;
    a.codes = ix.codes;
    a.inv = ix.inv;
    a.partial = static_cast<uint64_t*>(w.one_partial);
    a.counter = w.one_counter;
    a.out = w.one_out_dev;
    a.W = static_cast<uint32_t>(W);
    a.L = L;
    a.split_len = plan.split_len;
    a.seq = ++w.one_seq ? w.one_seq : ++w.one_seq;  // never 0 (the block starts zeroed)
    a.T = static_cast<int>(T);
    a.combine = batch.combine == Combine::CosMul ? 1 : 0;
    a.K = K;
    a.k = static_cast<int>(k);
    a.n_splits = plan.n_splits;
    a.n_excl = static_cast<int>(n_excl);
    a.prefix = plan.prefix;
    a.mode = single_mode_;
    for (size_t t = 0; t < T; ++t) a.w[t] = batch.weights[t];
    for (size_t e = 0; e < n_excl; ++e) a.excl[e] = batch.exclude[e];
    const uint32_t dims = batch.dims;
    std::memset(a.planes, 0, T * 2 * W * sizeof(uint64_t));
    for (size_t t = 0; t < T; ++t) {
      const int8_t* tr = batch.trits.data() + t * dims;
      uint64_t* nz = a.planes + t * 2 * W;
      uint64_t* sg = nz + W;
      for (uint32_t d = 0; d < dims; ++d) {
        const uint64_t bit = uint64_t{1} << (d % 64);
        if (tr[d]) nz[d / 64] |= bit;
        if (tr[d] < 0) sg[d / 64] |= bit;
      }
    }
    if (single_launch_ || dev_->batches.load() > 0 || !persistent_one(a, plan)) {
      dev_->quiesce();
      ck(cuda::single_launch(a, plan, w.one_stream), "kernel launch");
      // Spin on the sequence flag; after ~1 ms (2^20 reads) and then every ~1 ms, ask the stream
      // whether the kernel failed (run 21: every 4096 reads, i.e. a few us, put one or two driver
      // calls inside most searches).
      const volatile uint32_t* flag = w.one_out;
      if (opt_.single_sync) ck(cudaStreamSynchronize(w.one_stream), "search");  // experiment: the stream's own wait
      const Clock::time_point t0 = Clock::now();
      for (uint32_t spins = 1; *flag != a.seq; ++spins) {
        if (spins % (1u << 20) == 0) {
          const cudaError_t e = cudaStreamQuery(w.one_stream);
          if (e == cudaSuccess && *flag != a.seq) throw Error("cuda: one-query kernel finished without its result");
          if (e != cudaSuccess && e != cudaErrorNotReady) cuda_fail(e, "search");
          if (seconds_since(t0) > kAnswerTimeout) throw Error("cuda: no answer from the one-query kernel within 10 s");
        }
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (single_mode_ == 4) {
      const auto* t = reinterpret_cast<const unsigned long long*>(w.one_out + 1024);
      for (int i = 0; i < 6; ++i) w.trace_sum[i] += static_cast<double>(t[i]);
      ++w.trace_n;
    }
    const uint32_t n = w.one_out[1];
    out.count[0] = std::min<uint32_t>(n, static_cast<uint32_t>(k));
    static_assert(sizeof(Hit) == sizeof(uint2));
    std::memcpy(static_cast<void*>(out.hits.data()), w.one_out + 2, k * sizeof(Hit));
    return true;
  }

  // The query a through the device's persistent kernel (started or restarted here as needed).
  // False when its grid cannot be resident at once (the caller launches instead). Returns once
  // the answer is in one_out (flag == a.seq).
  bool persistent_one(const cuda::SingleArgs& a, const cuda::SinglePlan& plan) const {
    cuda::OneQueryKernel& ps = dev_->one;
    std::lock_guard<std::mutex> g(ps.mu);
    const int form = cuda::single_form(a);
    const double host_idle_s =
        (opt_.persist_host_idle_ms >= 0 ? opt_.persist_host_idle_ms : opt_.persist_idle_ms / 2) / 1e3;
    if (ps.running && (ps.form != form || ps.n_splits != plan.n_splits || ps.split_len != plan.split_len ||
                       ps.smem != plan.smem || seconds_since(ps.last) > host_idle_s))
      ps.stop_locked();  // another grid, or idle long enough that the kernel may be leaving by itself
    if (!ps.running) {
      const auto cap_key = std::make_tuple(form, plan.n_splits, plan.smem);
      auto it = ps.fits.find(cap_key);
      if (it == ps.fits.end())
        it = ps.fits.emplace(cap_key, cuda::persistent_capacity(form, plan, dev_->num_sms) >= plan.n_splits).first;
      if (!it->second) return false;
      if (!ps.stream) {
        ck(cudaStreamCreateWithFlags(&ps.stream, cudaStreamNonBlocking), "cudaStreamCreate");
        ck(cudaHostAlloc(reinterpret_cast<void**>(&ps.box), cuda::kBoxWords * 8, cudaHostAllocMapped), "cudaHostAlloc");
        std::memset(ps.box, 0, cuda::kBoxWords * 8);
        void* d = nullptr;
        ck(cudaHostGetDevicePointer(&d, ps.box, 0), "cudaHostGetDevicePointer");
        ps.box_dev = static_cast<const unsigned long long*>(d);
        ck(cudaMalloc(&ps.relay, cuda::kRelayWords * 8), "cudaMalloc(relay)");
      }
      persist_start(ps, form, plan, ps.next_tag);
    }
    const uint32_t tag = ps.post(a, cuda::kCmdQuery);
    const volatile uint32_t* flag = w_->one_out;
    const Clock::time_point t0 = Clock::now();
    int recoveries = 0;
    for (uint32_t spins = 1; *flag != a.seq; ++spins) {
      if (spins % (1u << 20) == 0) {
        const cudaError_t e = cudaStreamQuery(ps.stream);
        if (e == cudaSuccess && *flag != a.seq) {
          // The kernel left (idle exit racing this message): start it again on the same message.
          if (++recoveries > 3) {
            ps.running = false;
            throw Error("cuda: the persistent one-query kernel keeps leaving without an answer");
          }
          ++ps.recoveries;
          persist_start(ps, form, plan, tag);
        } else if (e != cudaSuccess && e != cudaErrorNotReady) {
          ps.running = false;
          cuda_fail(e, "persistent one-query kernel");
        }
        if (seconds_since(t0) > kAnswerTimeout)
          throw Error("cuda: no answer from the persistent one-query kernel within 10 s");
      }
    }
    ps.last = Clock::now();
    ++ps.queries;
    return true;
  }

  // Starts the device's kernel (its mutex held) with this searcher's tuning options.
  void persist_start(cuda::OneQueryKernel& ps, int form, const cuda::SinglePlan& plan, uint32_t tag) const {
    ck(cudaMemsetAsync(ps.relay, 0, cuda::kRelayWords * 8, ps.stream), "cudaMemsetAsync(relay)");
    cuda::PersistArgs pa;
    pa.box = ps.box_dev;
    pa.relay = ps.relay;
    pa.tag = tag;
    pa.idle_ns = static_cast<unsigned long long>(opt_.persist_idle_ms * 1e6);
    pa.relay_sleep_ns = opt_.persist_sleep_ns;
    pa.relay_flag = opt_.persist_relay_flag ? 1 : 0;
    ck(cuda::persistent_launch(pa, form, plan, ps.stream), "persistent kernel launch");
    ps.running = true;
    ps.form = form;
    ps.n_splits = plan.n_splits;
    ps.split_len = plan.split_len;
    ps.smem = plan.smem;
    ps.last = Clock::now();
    ++ps.starts;
  }

  void collect(Slot& sl, SearchResults& out) const {
    Clock::time_point t0 = Clock::now();
    ck(cudaEventSynchronize(sl.done), "search");
    w_->host.waiting += seconds_since(t0);
    t0 = Clock::now();
    const size_t n = sl.chunk.n_q();
    const uint2* hits = static_cast<const uint2*>(sl.h_out.p);
    const uint32_t* count =
        reinterpret_cast<const uint32_t*>(static_cast<const char*>(sl.h_out.p) + align_up(n * sl.k * sizeof(uint2)));
    static_assert(sizeof(Hit) == sizeof(uint2));
    std::memcpy(static_cast<void*>(out.hits.data() + sl.chunk.q0 * sl.k), hits, n * sl.k * sizeof(Hit));
    std::copy(count, count + n, out.count.begin() + static_cast<std::ptrdiff_t>(sl.chunk.q0));
    sl.pending = false;
    w_->host.copying += seconds_since(t0);
  }

  // size_only: the slot's buffers sized for chunk c, nothing run.
  void run_chunk(Slot& sl, const QueryBatch& batch, const Chunk& c, const Plan& p, bool graphable,
                 bool size_only = false) const {
    Work& w = *w_;
    const Clock::time_point t_start = Clock::now();
    const DeviceIndex& ix = codes_->ix;
    const size_t n_q = c.n_q(), n_terms = c.t1 - c.t0, n_excl = c.e1 - c.e0;
    const uint32_t dims = batch.dims;
    const Path path = p.path;
    const int K = p.K;
    const uint32_t L = p.L;
    const size_t k = p.k, kk = p.rerank ? p.kk : p.k;  // hits out; ternary hits per query
    const uint32_t fdims = p.rerank ? batch.float_dims : 0;
    // The one-query graph: planes packed here (no packing kernel), hits written by the merge
    // kernel straight into the mapped pinned output block (no copy back).
    const bool graph = graphable && !p.rerank && &sl == &w.slots[0] && path != Path::Sort;
    const bool host_planes = graph && path == Path::Popc;
    // The mt path's shared-terms scan: the chunk's distinct terms found here (never in a graph,
    // whose kernels would keep one chunk's count).
    const bool distinct = path == Path::Mt && opt_.mt_shared_terms > 0 && !graph;
    const InLayout lay(n_terms, dims, n_q, n_excl, host_planes ? n_terms * 2 * W_ : 0, fdims, distinct,
                       static_cast<size_t>(cuda::kStMaxDistinct));
    const size_t out_bytes = align_up(n_q * k * sizeof(uint2)) + align_up(n_q * sizeof(uint32_t));
    const size_t cand_bytes = align_up(n_q * kk * sizeof(uint2)) + align_up(n_q * sizeof(uint32_t));

    // Plans and scratch.
    cuda::MmaPlan mp;
    cuda::PopcPlan pp;
    cuda::MultiPlan tp;
    int sub = 0;
    size_t scratch = 0;
    if (path == Path::Mma) {
      cuda::mma_plan(ix, static_cast<int>(n_q), L, K, dev_->num_sms, dev_->max_smem, mp, opt_.mma_max_stages,
                     opt_.mma_append_k >= 0 ? opt_.mma_append_k : cuda::kAppendMinK,
                     opt_.mma_append_slack >= 0 ? opt_.mma_append_slack : cuda::kAppendSlack);
      mp.mode = opt_.mma_mode;
      if (opt_.mma_group_soft >= 0) mp.group_soft = opt_.mma_group_soft;
      mp.group_cta = opt_.mma_group_cta;
      mp.append_eager = opt_.mma_append_eager;
      mp.stats = w.stats;
      if (K >= opt_.mma_sample_min_k) {
        mp.sample = {opt_.mma_sample, opt_.mma_sample_spread, opt_.mma_sample_rank};
        mp.sample.lane_bound = opt_.mma_bound_lanes;
      }
      scratch = cuda::mma_scratch_bytes(ix, static_cast<int>(n_q), K, mp);
    } else if (path == Path::Popc) {
      pp = cuda::popc_plan(ix, static_cast<int>(n_q), L, dev_->num_sms, p.max_terms, p.single);
      pp.counters = sl.counters;
      scratch = cuda::popc_scratch_bytes(ix, static_cast<int>(n_q), static_cast<int>(n_terms), K, pp);
    } else if (path == Path::Mt) {
      if (!cuda::multi_plan(ix, static_cast<int>(n_q), L, K, p.max_terms, dev_->num_sms, dev_->max_smem, opt_.mt_cap,
                            mt_sample(), tp))
        throw Error("cuda: the mt path cannot take this chunk");
      tp.stats = w.stats;
      tp.prefilter = opt_.mt_prefilter;
      tp.shared_bound = opt_.mt_shared_bound;
      scratch = cuda::multi_scratch_bytes(ix, static_cast<int>(n_q), static_cast<int>(n_terms), tp);
    } else {
      sub = std::min<int>(cuda::sort_sub_batch(L), static_cast<int>(n_q));
      scratch = cuda::sort_scratch_bytes(ix, static_cast<int>(n_terms), L, sub);
    }
    bool realloc = false;
    realloc |= sl.h_in.ensure(lay.total, true, *dev_, opt_.host_huge_pages);
    realloc |= sl.d_in.ensure(lay.total, false, *dev_);
    realloc |= sl.h_out.ensure(out_bytes, true, *dev_, opt_.host_huge_pages);
    realloc |= sl.d_out.ensure(out_bytes, false, *dev_);
    if (p.rerank) realloc |= sl.d_cand.ensure(cand_bytes, false, *dev_);
    realloc |= sl.scratch.ensure(scratch, false, *dev_);
    if (realloc && &sl == &w.slots[0]) clear_graphs();
    if (size_only) return;
    const Clock::time_point t_sized = Clock::now();
    w.host.sizing += std::chrono::duration<double>(t_sized - t_start).count();

    // Pack the chunk into the pinned input block. The two large copies (trits, float terms: 6.5
    // MB a chunk of 4,096 analogies) in slices on the shared pool, with the distinct terms' search
    // beside them: one thread took 1.3-1.6 ms a chunk (run 75), most of an eval's host time.
    char* h = static_cast<char*>(sl.h_in.p);
    std::vector<BlockCopy> copies;
    copies.push_back({h + lay.trits, reinterpret_cast<const char*>(batch.trits.data() + c.t0 * dims), n_terms * dims});
    if (fdims)
      copies.push_back({h + lay.fterms, reinterpret_cast<const char*>(batch.float_terms.data() + c.t0 * fdims),
                        n_terms * fdims * sizeof(float)});
    int n_distinct = 0, distinct_max_nnz = 0;
    size_t n_unique = 0;
    auto find_distinct = [&] {
      int8_t* dt = reinterpret_cast<int8_t*>(h + lay.distinct_trits);
      n_unique = distinct_rows(batch.trits.data() + c.t0 * dims, n_terms, dims,
                               reinterpret_cast<uint32_t*>(h + lay.term_distinct), dt,
                               static_cast<size_t>(cuda::kStMaxDistinct));
      for (size_t i = 0; i < n_unique; ++i) {
        const uint32_t nnz = count_nonzero(std::span<const int8_t>(dt + i * dims, dims));
        distinct_max_nnz = std::max(distinct_max_nnz, static_cast<int>(nnz));
      }
    };
    copy_blocks(copies, distinct ? std::function<void()>(find_distinct) : std::function<void()>());
    std::memcpy(h + lay.weights, batch.weights.data() + c.t0, n_terms * sizeof(float));
    auto* to = reinterpret_cast<uint32_t*>(h + lay.term_off);
    for (size_t q = 0; q <= n_q; ++q) to[q] = static_cast<uint32_t>(batch.term_offsets[c.q0 + q] - c.t0);
    if (n_excl) std::memcpy(h + lay.excl, batch.exclude.data() + c.e0, n_excl * sizeof(uint32_t));
    auto* eo = reinterpret_cast<uint32_t*>(h + lay.excl_off);
    for (size_t q = 0; q <= n_q; ++q) eo[q] = static_cast<uint32_t>(batch.exclude_offsets[c.q0 + q] - c.e0);
    if (host_planes) {
      const uint32_t W = W_;
      auto* pl = reinterpret_cast<uint64_t*>(h + lay.planes);
      std::memset(pl, 0, n_terms * 2 * W * sizeof(uint64_t));
      const int8_t* tr = batch.trits.data() + c.t0 * dims;
      for (size_t t = 0; t < n_terms; ++t)
        for (uint32_t d = 0; d < dims; ++d) {
          const int8_t x = tr[t * dims + d];
          if (x) pl[t * 2 * W + d / 64] |= uint64_t{1} << (d % 64);
          if (x < 0) pl[t * 2 * W + W + d / 64] |= uint64_t{1} << (d % 64);
        }
    }
    if (distinct) {
      const size_t u = n_unique;
      // 1: only where the terms repeat (>= 4 a distinct term); 2: whenever they fit (tests).
      if (u > 0 && (opt_.mt_shared_terms >= 2 || u * 4 <= n_terms) &&
          cuda::shared_terms_fit(ix, static_cast<int>(u), distinct_max_nnz, dev_->max_smem))
        n_distinct = static_cast<int>(u);
    }
    if (path == Path::Mt) {
      ++w.mt_chunks;
      if (n_distinct > 0) ++w.st_chunks;
    }
    if (fdims) {
      std::memcpy(h + lay.fweights, batch.float_weights.data() + c.t0, n_terms * sizeof(float));
      std::memcpy(h + lay.has_float, batch.has_float.data() + c.q0, n_q);
    }

    auto enqueue = [&]() {
      char* d = static_cast<char*>(sl.d_in.p);
      ck(cudaMemcpyAsync(d, h, lay.total, cudaMemcpyHostToDevice, sl.stream), "copy queries");
      ChunkQueries q;
      q.n_q = static_cast<int>(n_q);
      q.n_terms = static_cast<int>(n_terms);
      q.combine = batch.combine == Combine::CosMul ? 1 : 0;
      q.trits = reinterpret_cast<const int8_t*>(d + lay.trits);
      q.weights = reinterpret_cast<const float*>(d + lay.weights);
      q.term_off = reinterpret_cast<const uint32_t*>(d + lay.term_off);
      q.excl = reinterpret_cast<const uint32_t*>(d + lay.excl);
      q.excl_off = reinterpret_cast<const uint32_t*>(d + lay.excl_off);
      if (host_planes) q.planes = reinterpret_cast<const uint64_t*>(d + lay.planes);
      if (n_distinct > 0) {
        q.n_distinct = n_distinct;
        q.distinct_max_nnz = distinct_max_nnz;
        q.term_distinct = reinterpret_cast<const uint32_t*>(d + lay.term_distinct);
        q.distinct_trits = reinterpret_cast<const int8_t*>(d + lay.distinct_trits);
      }
      char* dout = static_cast<char*>(graph ? sl.h_out.device_view() : sl.d_out.p);
      OutHits o;
      o.hits = reinterpret_cast<uint2*>(dout);
      o.count = reinterpret_cast<uint32_t*>(dout + align_up(n_q * k * sizeof(uint2)));
      OutHits cand = o;  // the ternary search's hits: the answer, or the rerank's candidates
      if (p.rerank) {
        char* dc = static_cast<char*>(sl.d_cand.p);
        cand.hits = reinterpret_cast<uint2*>(dc);
        cand.count = reinterpret_cast<uint32_t*>(dc + align_up(n_q * kk * sizeof(uint2)));
      }
      const int kt = static_cast<int>(kk);
      if (path == Path::Mma) cuda::mma_search(ix, q, L, K, kt, mp, sl.scratch.p, cand, sl.stream);
      else if (path == Path::Popc) cuda::popc_search(ix, q, L, K, kt, pp, sl.scratch.p, cand, sl.stream);
      else if (path == Path::Mt) cuda::multi_search(ix, q, L, K, kt, tp, sl.scratch.p, cand, sl.stream);
      else cuda::sort_search(ix, q, L, kt, sub, sl.scratch.p, sl.scratch.cap, cand, sl.stream);
      ck(cudaGetLastError(), "kernel launch");
      if (p.rerank) {
        cuda::RerankQueries rq;
        rq.n_q = static_cast<int>(n_q);
        rq.combine = q.combine;
        rq.terms = reinterpret_cast<const float*>(d + lay.fterms);
        rq.weights = reinterpret_cast<const float*>(d + lay.fweights);
        rq.term_off = q.term_off;
        rq.has_float = reinterpret_cast<const uint8_t*>(d + lay.has_float);
        rq.max_terms = p.max_terms;
        cuda::rerank_search(rows_->view(), rq, cand.hits, cand.count, kt,
                            static_cast<int>(k), o, sl.stream);
        ck(cudaGetLastError(), "rerank kernel launch");
      }
      if (!graph)
        ck(cudaMemcpyAsync(sl.h_out.p, sl.d_out.p, out_bytes, cudaMemcpyDeviceToHost, sl.stream), "copy hits");
    };

    const Clock::time_point t_packed = Clock::now();
    w.host.packing += std::chrono::duration<double>(t_packed - t_sized).count();
    if (graph) {
      const GraphKey key{static_cast<int>(path), static_cast<int>(batch.combine), static_cast<int>(n_terms),
                         static_cast<int>(n_excl),  K, static_cast<int>(k), L};
      auto it = w.graphs.find(key);
      if (it == w.graphs.end()) {
        cudaGraph_t g;
        ck(cudaStreamBeginCapture(sl.stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        enqueue();
        ck(cudaStreamEndCapture(sl.stream, &g), "cudaStreamEndCapture");
        cudaGraphExec_t exec;
        ck(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
        cudaGraphDestroy(g);
        it = w.graphs.emplace(key, exec).first;
      }
      ck(cudaGraphLaunch(it->second, sl.stream), "cudaGraphLaunch");
    } else {
      enqueue();
    }
    ck(cudaEventRecord(sl.done, sl.stream), "cudaEventRecord");
    w.host.launching += seconds_since(t_packed);
    sl.pending = true;
    sl.chunk = c;
    sl.k = k;
  }

  void clear_graphs() const {
    for (auto& [key, g] : w_->graphs) cudaGraphExecDestroy(g);
    w_->graphs.clear();
  }

  std::shared_ptr<const Index> index_;  // null for a searcher over raw codes
  CudaOptions opt_;
  uint32_t dims_ = 0, W_ = 0;
  size_t n_words_ = 0;
  cuda::DeviceState* dev_ = nullptr;
  std::shared_ptr<const cuda::DeviceCodes> codes_;
  std::shared_ptr<const cuda::DeviceRows> rows_;  // null: no rerank on the device
  std::string name_;
  // CudaOptions::single: 0 normal, 1 graph, 2 empty, 3 no merge, 4 trace, 5 echo (kernels.hpp)
  int single_mode_ = 0;
  bool single_launch_ = false;
  mutable std::mutex mu_;
  std::unique_ptr<Work> w_;
};

}  // namespace

bool cuda_available(std::string* why) {
  static std::once_flag once;
  static bool ok = false;
  static std::string reason;
  std::call_once(once, [] {
    cudaSetDeviceFlags(cudaDeviceScheduleSpin);  // lowest latency for one-query searches
    cudaGetLastError();
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      reason = e != cudaSuccess ? std::string("no usable CUDA driver or GPU here (") + cudaGetErrorString(e) + ")"
                                : std::string("no CUDA GPU found");
      return;
    }
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceProp prop{};
    if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) {
      reason = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e);
      return;
    }
    if (prop.major != 9 || prop.minor != 0) {
      reason = std::string("CUDA device ") + prop.name + " is sm_" + std::to_string(prop.major) +
               std::to_string(prop.minor) + "; igla's kernels are built for sm_90a (Hopper: H100, H200)";
      return;
    }
    if ((e = cuda::probe_kernels()) != cudaSuccess) {
      reason = std::string("igla's CUDA kernels cannot run on ") + prop.name + ": " + cudaGetErrorString(e);
      cudaGetLastError();
      return;
    }
    ok = true;
  });
  if (!ok && why) *why = reason;
  return ok;
}

std::shared_ptr<const Searcher> make_cuda_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts) {
  if (!index) throw Error("--device cuda: no index");
  std::string why;
  if (!cuda_available(&why)) throw Error("--device cuda: " + why);
  const CodesView codes = index->codes();
  return std::make_shared<CudaSearcher>(std::move(index), codes, opts.cuda);
}

std::shared_ptr<const Searcher> make_cuda_searcher_for_codes(const CodesView& codes, const CudaOptions& opts) {
  std::string why;
  if (!cuda_available(&why)) throw Error("--device cuda: " + why);
  return std::make_shared<CudaSearcher>(nullptr, codes, opts);
}

std::string cuda_report(const Searcher& s) {
  const auto* c = dynamic_cast<const CudaSearcher*>(&s);
  return c ? c->report() : cuda_ivf_report(s);
}

}  // namespace igla
