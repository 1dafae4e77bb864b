// igla CUDA backend: the IVF searcher on the GPU ("cuda-ivf", include/igla/ivf.hpp).
//
// The IVF lists of an index are laid out once per searcher as the mma path's int8 tiles, each list
// starting a tile of its own (its words sorted by non-zero count, as tile_order does, so the
// kernel's integer bound stays tight; the tiles carry word ids). A batch:
//   1. each query's nprobe lists, on the host, by the CPU IVF searcher's own code
//      (ann/ivf_probes.hpp; threads split the queries), so both scan the same lists;
//   2. the (query, list) pairs grouped by list: the queries probing list l are gathered into
//      query tiles of 128 rows, and each (query tile, list) is one CTA of the tensor-core kernel
//      in list mode (mma_scan_lists), which keeps each row's top-K keys (score, ~id) of the list;
//   3. per query, the nprobe lists' keys merged on the device (launch_merge: exclusions dropped,
//      best kk kept), then the rerank rows rescored on the device (rerank_search) when the index
//      has them, and the k hits copied back.
// Every score is the exact search's float expression and the order is (score desc, id asc), so the
// answer is the CPU IVF searcher's at the same nprobe (and, with every list probed, the exact
// search's). Queries the tensor-core path does not take (several terms, 3CosMul, a zero weight,
// k + candidates + exclusions over 64, dims over 384) go to the CPU IVF searcher (with the CPU
// rerank stage), so every query is answered the same way either route.
// Thread-safety: search() is const; one call at a time runs on the GPU (a mutex inside).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ann/ivf_probes.hpp"
#include "core/backends.hpp"
#include "cpu/thread_pool.hpp"
#include "cuda/device.hpp"
#include "cuda/host_common.hpp"
#include "cuda/kernels.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"

namespace igla {

namespace {

using cuda::ck;

constexpr size_t kAlign = 256;
inline size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }
// Per-query lists of one chunk (nprobe x K keys a query) stay below this.
constexpr size_t kPartialBytes = size_t{256} << 20;

class CudaIvfSearcher final : public Searcher {
 public:
  CudaIvfSearcher(std::shared_ptr<const Index> index, std::shared_ptr<const IvfIndex> ivf, const SearcherOptions& opts)
      : index_(std::move(index)), ivf_(std::move(ivf)), tables_(*ivf_), threads_(opts.cpu.threads) {
    int device = opts.cuda.device;
    if (device < 0) ck(cudaGetDevice(&device), "cudaGetDevice");
    dev_ = &cuda::device_state(device);
    const std::string prefix = "cuda/" + std::to_string(device) + "/";
    // The same device copies the exact CUDA searcher uses (one per index per GPU).
    codes_ = std::static_pointer_cast<const cuda::DeviceCodes>(index_->derived(prefix + "codes", [&] {
      return std::static_pointer_cast<const void>(cuda::upload_codes(index_->codes(), *dev_));
    }));
    if (index_->rerank() != Rerank::None && opts.cuda.device_rerank)
      rows_ = cuda::shared_rows(*index_, *dev_, opts.cuda.rerank_int8_rows);
    // The route for queries the tensor-core path does not take: the CPU IVF searcher over the
    // same lists, reranked by the CPU stage when this searcher reranks.
    fallback_ = make_ivf_searcher(index_, opts, ivf_);
    if (rows_) fallback_ = make_rerank_stage(fallback_, index_, opts.cpu.threads);
    ck(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    build_tiles();
    name_ = "cuda-ivf/" + dev_->name + " " + std::to_string(ivf_->lists()) + " lists";
  }

  ~CudaIvfSearcher() override {
    try {
      dev_->quiesce();
    } catch (const std::exception&) {
    }
    cudaSetDevice(dev_->device);
    if (stream_) cudaStreamSynchronize(stream_);
    for (cuda::DeviceBuffer* b : {&in_, &out_, &d_in_, &d_work_}) b->release();
    if (tiled_) cudaFree(tiled_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }

  std::string report() const {
    return "cuda-ivf: " + std::to_string(gpu_batches_.load()) + " batches on the GPU, " +
           std::to_string(cpu_batches_.load()) + " on the CPU route\n";
  }

  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = static_cast<size_t>(cuda::kMaxListK);
    c.max_fast_terms = 1;
    c.multi_term = true;  // through the CPU IVF searcher
    c.exact = false;
    c.reranks = rows_ != nullptr;
    return c;
  }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) const override {
    ann::check_ivf_batch(batch, *ivf_);
    const size_t nq = batch.size(), k = params.k;
    if (nq == 0 || k == 0) {
      out.reset(nq, k);
      return;
    }
    const bool rerank = rows_ && params.candidates > 0 && batch.any_float();
    if (rerank && batch.float_dims != rows_->dims)
      throw Error("query float dims " + std::to_string(batch.float_dims) + " != index float dims " +
                  std::to_string(rows_->dims));
    const size_t kk = rerank ? std::max(params.candidates, k) : k;
    size_t max_excl = 0;
    bool fits = batch.combine == Combine::Sum;
    for (size_t q = 0; q < nq && fits; ++q) {
      const uint32_t t0 = batch.term_offsets[q];
      fits = batch.term_offsets[q + 1] - t0 == 1 && batch.weights[t0] != 0.0f;
      max_excl = std::max<size_t>(max_excl, batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]);
    }
    const size_t K = kk + max_excl;
    const uint32_t limit =
        static_cast<uint32_t>(params.limit ? std::min<size_t>(params.limit, index_->size()) : index_->size());
    cuda::MmaPlan plan;
    fits = fits && K <= static_cast<size_t>(cuda::kMaxListK) &&
           cuda::mma_plan(ix_, cuda::kTileQueries, limit, static_cast<int>(K), dev_->num_sms, dev_->max_smem, plan);
    if (fits && rerank) {  // the rerank kernel's shared memory (as the exact CUDA searcher checks it)
      const size_t smem = (size_t{rows_->dims} + kk + 1) * sizeof(float);
      fits = smem <= dev_->max_smem;
    }
    if (!fits) {
      ++cpu_batches_;
      fallback_->search(batch, params, out);
      return;
    }
    ++gpu_batches_;
    out.reset(nq, k);
    const uint32_t L = ivf_->lists();
    const uint32_t nprobe = params.nprobe ? std::min(params.nprobe, L) : default_nprobe(L);

    // 1. The probes of every query (threads split the queries; a query's lists depend on it alone).
    std::vector<uint32_t> probes(nq * nprobe);
    {
      ThreadPool& pool = ThreadPool::shared();
      const int threads = threads_ > 0 ? std::min(threads_, pool.size()) : pool.size();
      const size_t tasks = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), nq / 64));
      auto run = [&](uint32_t t, int) {
        const size_t q0 = nq * t / tasks, q1 = nq * (t + 1) / tasks;
        std::vector<uint32_t> pr;
        ann::choose_ivf_lists(*ivf_, tables_, batch, q0, q1, nprobe, pr);
        std::copy(pr.begin(), pr.end(), probes.begin() + static_cast<std::ptrdiff_t>(q0 * nprobe));
      };
      if (tasks > 1)
        pool.run(static_cast<uint32_t>(tasks), run, threads);
      else
        run(0, 0);
    }

    std::lock_guard<std::mutex> lock(mu_);
    ck(cudaSetDevice(dev_->device), "cudaSetDevice");
    cuda::BatchGuard guard(*dev_);
    const size_t per_query = size_t{nprobe} * K * sizeof(uint64_t);
    const size_t chunk = std::clamp<size_t>(kPartialBytes / per_query, 1, 65536);
    for (size_t q0 = 0; q0 < nq; q0 += chunk)
      run_chunk(batch, params, probes, nprobe, q0, std::min(nq, q0 + chunk), static_cast<int>(K), kk, limit, rerank,
                plan, out);
  }

 private:
  // Lays the lists out as tiles (words of a list sorted by non-zero count, stable) on the device.
  void build_tiles() {
    const uint32_t L = ivf_->lists();
    tile0_.assign(size_t{L} + 1, 0);
    std::vector<uint32_t> perm;
    const auto ids = ivf_->ids();
    const float* inv = index_->codes().inv_norms;
    for (uint32_t l = 0; l < L; ++l) {
      const uint32_t off = ivf_->offset(l), size = ivf_->list_size(l);
      std::vector<uint32_t> w;
      for (uint32_t p = off; p < off + size; ++p)
        if (ids[p] != ~0u) w.push_back(ids[p]);
      std::stable_sort(w.begin(), w.end(), [&](uint32_t x, uint32_t y) { return inv[x] > inv[y]; });
      const uint32_t tiles = static_cast<uint32_t>((w.size() + cuda::kTileWords - 1) / cuda::kTileWords);
      w.resize(size_t{tiles} * cuda::kTileWords, ~0u);
      perm.insert(perm.end(), w.begin(), w.end());
      tile0_[l + 1] = tile0_[l] + tiles;
    }
    ix_ = codes_->ix;
    ix_.n_tiles = std::max<uint32_t>(1, tile0_[L]);
    perm.resize(size_t{ix_.n_tiles} * cuda::kTileWords, ~0u);
    dev_->quiesce();
    ck(cudaSetDevice(dev_->device), "cudaSetDevice");
    void* d_perm = nullptr;
    ck(cudaMalloc(&d_perm, perm.size() * sizeof(uint32_t)), "cudaMalloc(ivf perm)");
    ck(cudaMalloc(&tiled_, size_t{ix_.n_tiles} * ix_.tile_stride), "cudaMalloc(ivf tiles)");
    ck(cudaMemcpyAsync(d_perm, perm.data(), perm.size() * sizeof(uint32_t), cudaMemcpyHostToDevice, stream_),
       "copy ivf perm");
    cuda::build_device_index(ix_, ix_.inv, static_cast<const uint32_t*>(d_perm), static_cast<int8_t*>(tiled_), stream_);
    ck(cudaStreamSynchronize(stream_), "build ivf tiles");
    cudaFree(d_perm);
  }

  // Queries [q0, q1) of the batch: gather, scan, merge, rerank, copy back.
  void run_chunk(const QueryBatch& batch, const SearchParams& params, const std::vector<uint32_t>& probes,
                 uint32_t nprobe, size_t q0, size_t q1, int K, size_t kk, uint32_t limit, bool rerank,
                 const cuda::MmaPlan& plan, SearchResults& out) const {
    const size_t nq = q1 - q0, k = params.k, dims = batch.dims;
    const uint32_t L = ivf_->lists();
    // Group the (query, probe) pairs by list: rows of each probed list padded to whole query tiles.
    std::vector<uint32_t> count(L, 0);
    for (size_t i = q0 * nprobe; i < q1 * nprobe; ++i) ++count[probes[i]];
    std::vector<size_t> row0(size_t{L} + 1, 0);
    size_t n_work = 0;
    for (uint32_t l = 0; l < L; ++l) {
      const bool scan = count[l] > 0 && tile0_[l + 1] > tile0_[l];
      const size_t tiles = scan ? (count[l] + cuda::kTileQueries - 1) / cuda::kTileQueries : 0;
      row0[l + 1] = row0[l] + tiles * cuda::kTileQueries;
      n_work += tiles;
    }
    const size_t n_rows = row0[L];
    // Real rows: one query term each; the padding rows all read one zero term (index n_real).
    size_t n_real = 0;
    for (uint32_t l = 0; l < L; ++l)
      if (row0[l + 1] > row0[l]) n_real += count[l];
    const size_t n_excl = batch.exclude_offsets[q1] - batch.exclude_offsets[q0];
    const uint32_t fd = rerank ? batch.float_dims : 0;
    // One input block (pinned host, then one copy up).
    size_t o = 0;
    auto put = [&](size_t bytes) {
      const size_t at = o;
      o = align_up(o + bytes);
      return at;
    };
    const size_t o_trits = put((n_real + 1) * dims), o_w = put((n_real + 1) * 4), o_toff = put((n_rows + 1) * 4),
                 o_slot = put(n_rows * 4), o_work = put(n_work * 16), o_excl = put(n_excl * 4),
                 o_eoff = put((nq + 1) * 4), o_ft = put(nq * fd * 4), o_fw = put(fd ? nq * 4 : 0),
                 o_qoff = put(fd ? (nq + 1) * 4 : 0), o_hf = put(fd ? nq : 0);
    const size_t in_bytes = o;
    in_.ensure(in_bytes, true, *dev_);
    d_in_.ensure(in_bytes, false, *dev_);
    char* h = in_.bytes();
    auto* trits = reinterpret_cast<int8_t*>(h + o_trits);
    auto* w = reinterpret_cast<float*>(h + o_w);
    auto* toff = reinterpret_cast<uint32_t*>(h + o_toff);
    auto* slot = reinterpret_cast<uint32_t*>(h + o_slot);
    auto* work = reinterpret_cast<int4*>(h + o_work);
    std::memset(trits + n_real * dims, 0, dims);
    w[n_real] = 0.0f;
    std::fill(slot, slot + n_rows, ~0u);
    std::fill(toff, toff + n_rows + 1, static_cast<uint32_t>(n_real));
    {
      std::vector<size_t> fill(row0.begin(), row0.end() - 1);
      size_t j = 0;  // the next real term
      for (size_t q = q0; q < q1; ++q) {
        const uint32_t t = batch.term_offsets[q];
        for (uint32_t i = 0; i < nprobe; ++i) {
          const uint32_t l = probes[q * nprobe + i];
          if (row0[l + 1] == row0[l]) continue;  // an empty list: its slot stays zero (no keys)
          const size_t r = fill[l]++;
          std::memcpy(trits + j * dims, batch.trits.data() + size_t{t} * dims, dims);
          w[j] = batch.weights[t];
          toff[r] = static_cast<uint32_t>(j);
          slot[r] = static_cast<uint32_t>((q - q0) * nprobe + i);
          ++j;
        }
      }
      size_t b = 0;
      for (uint32_t l = 0; l < L; ++l)
        for (size_t r = row0[l]; r < row0[l + 1]; r += cuda::kTileQueries)
          work[b++] = int4{static_cast<int>(r / cuda::kTileQueries), static_cast<int>(tile0_[l]),
                           static_cast<int>(tile0_[l + 1] - tile0_[l]), 0};
    }
    auto* excl = reinterpret_cast<uint32_t*>(h + o_excl);
    auto* eoff = reinterpret_cast<uint32_t*>(h + o_eoff);
    const uint32_t e0 = batch.exclude_offsets[q0];
    std::copy(batch.exclude.begin() + e0, batch.exclude.begin() + e0 + static_cast<std::ptrdiff_t>(n_excl), excl);
    for (size_t q = q0; q <= q1; ++q) eoff[q - q0] = batch.exclude_offsets[q] - e0;
    if (fd) {
      auto* ft = reinterpret_cast<float*>(h + o_ft);
      auto* fw = reinterpret_cast<float*>(h + o_fw);
      auto* qoff = reinterpret_cast<uint32_t*>(h + o_qoff);
      auto* hf = reinterpret_cast<uint8_t*>(h + o_hf);
      for (size_t q = q0; q < q1; ++q) {
        const uint32_t t = batch.term_offsets[q];
        const bool has = q < batch.has_float.size() && batch.has_float[q];
        hf[q - q0] = has ? 1 : 0;
        if (has) std::memcpy(ft + (q - q0) * fd, batch.float_terms.data() + size_t{t} * fd, fd * sizeof(float));
        else std::fill(ft + (q - q0) * fd, ft + (q - q0 + 1) * fd, 0.0f);
        fw[q - q0] = has ? batch.float_weights[t] : 0.0f;
        qoff[q - q0] = static_cast<uint32_t>(q - q0);
      }
      qoff[nq] = static_cast<uint32_t>(nq);
    }
    // Device work space: the lists' scratch, per-query lists, candidates, hits.
    size_t wo = 0;
    auto wput = [&](size_t bytes) {
      const size_t at = wo;
      wo = align_up(wo + bytes);
      return at;
    };
    const size_t w_scratch = wput(cuda::mma_lists_scratch_bytes(ix_, static_cast<int>(std::max<size_t>(n_rows, 1)))),
                 w_partial = wput(nq * nprobe * static_cast<size_t>(K) * 8), w_cand = wput(rerank ? nq * kk * 8 : 0),
                 w_ccount = wput(rerank ? nq * 4 : 0), w_hits = wput(nq * k * 8), w_count = wput(nq * 4);
    d_work_.ensure(wo, false, *dev_);
    const size_t out_bytes = align_up(nq * k * 8) + nq * 4;
    out_.ensure(out_bytes, true, *dev_);
    char* d = d_in_.bytes();
    char* dw = d_work_.bytes();
    ck(cudaMemcpyAsync(d, h, in_bytes, cudaMemcpyHostToDevice, stream_), "copy ivf batch");
    auto* partial = reinterpret_cast<uint64_t*>(dw + w_partial);
    ck(cudaMemsetAsync(partial, 0, nq * nprobe * static_cast<size_t>(K) * 8, stream_), "memset ivf lists");
    cuda::MmaListWork lw;
    lw.trits = reinterpret_cast<const int8_t*>(d + o_trits);
    lw.weights = reinterpret_cast<const float*>(d + o_w);
    lw.term_off = reinterpret_cast<const uint32_t*>(d + o_toff);
    lw.n_rows = static_cast<int>(n_rows);
    lw.work = reinterpret_cast<const int4*>(d + o_work);
    lw.n_work = static_cast<int>(n_work);
    lw.row_slot = reinterpret_cast<const uint32_t*>(d + o_slot);
    cuda::mma_scan_lists(ix_, lw, limit, K, plan, dw + w_scratch, partial, stream_);
    cuda::ChunkQueries cq;
    cq.n_q = static_cast<int>(nq);
    cq.excl = reinterpret_cast<const uint32_t*>(d + o_excl);
    cq.excl_off = reinterpret_cast<const uint32_t*>(d + o_eoff);
    const cuda::OutHits hits{reinterpret_cast<uint2*>(dw + w_hits), reinterpret_cast<uint32_t*>(dw + w_count)};
    if (rerank) {
      const cuda::OutHits cand{reinterpret_cast<uint2*>(dw + w_cand), reinterpret_cast<uint32_t*>(dw + w_ccount)};
      cuda::launch_merge(partial, static_cast<int>(nq), static_cast<int>(nprobe), K, static_cast<int>(kk), cq, cand,
                         stream_);
      cuda::RerankQueries rq;
      rq.n_q = static_cast<int>(nq);
      rq.combine = 0;
      rq.terms = reinterpret_cast<const float*>(d + o_ft);
      rq.weights = reinterpret_cast<const float*>(d + o_fw);
      rq.term_off = reinterpret_cast<const uint32_t*>(d + o_qoff);
      rq.has_float = reinterpret_cast<const uint8_t*>(d + o_hf);
      rq.max_terms = 1;
      cuda::rerank_search(rows_->view(), rq, cand.hits, cand.count, static_cast<int>(kk),
                          static_cast<int>(k), hits, stream_);
      ck(cudaGetLastError(), "rerank kernel launch");
    } else {
      cuda::launch_merge(partial, static_cast<int>(nq), static_cast<int>(nprobe), K, static_cast<int>(k), cq, hits,
                         stream_);
    }
    ck(cudaMemcpyAsync(out_.p, hits.hits, nq * k * 8, cudaMemcpyDeviceToHost, stream_), "copy ivf hits");
    ck(cudaMemcpyAsync(out_.bytes() + align_up(nq * k * 8), hits.count, nq * 4, cudaMemcpyDeviceToHost, stream_),
       "copy ivf counts");
    ck(cudaStreamSynchronize(stream_), "ivf search");
    const auto* hh = reinterpret_cast<const uint2*>(out_.p);
    const auto* hc = reinterpret_cast<const uint32_t*>(out_.bytes() + align_up(nq * k * 8));
    for (size_t q = 0; q < nq; ++q) {
      const uint32_t c = std::min<uint32_t>(hc[q], static_cast<uint32_t>(k));
      out.count[q0 + q] = c;
      for (uint32_t j = 0; j < c; ++j) {
        const uint2 v = hh[q * k + j];
        float s;
        std::memcpy(&s, &v.y, sizeof s);
        out.hits[(q0 + q) * k + j] = Hit{v.x, s};
      }
    }
  }

  std::shared_ptr<const Index> index_;
  std::shared_ptr<const IvfIndex> ivf_;
  ann::IvfProbeTables tables_;
  int threads_ = 0;
  cuda::DeviceState* dev_ = nullptr;
  std::shared_ptr<const cuda::DeviceCodes> codes_;
  std::shared_ptr<const cuda::DeviceRows> rows_;
  std::shared_ptr<const Searcher> fallback_;
  cuda::DeviceIndex ix_;          // the lists' tiles (codes and inv norms: the index's device copy)
  std::vector<uint32_t> tile0_;   // list l: tiles [tile0_[l], tile0_[l + 1])
  void* tiled_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::string name_;
  mutable std::mutex mu_;
  mutable cuda::DeviceBuffer in_, out_, d_in_, d_work_;
  mutable std::atomic<uint64_t> gpu_batches_{0}, cpu_batches_{0};
};

}  // namespace

std::string cuda_ivf_report(const Searcher& s) {
  const auto* c = dynamic_cast<const CudaIvfSearcher*>(&s);
  return c ? c->report() : std::string();
}

std::shared_ptr<const Searcher> make_cuda_ivf_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                       std::shared_ptr<const IvfIndex> ivf) {
  if (!index) throw Error("cuda-ivf searcher: no index");
  std::string why;
  if (!cuda_available(&why)) throw Error("--device cuda-ivf: " + why);
  if (!ivf) ivf = ivf_of(*index);
  if (ivf->dims() != index->dims() || ivf->size() != index->size())
    throw Error("cuda-ivf searcher: the IVF lists were built for another index");
  return std::make_shared<CudaIvfSearcher>(std::move(index), std::move(ivf), opts);
}

}  // namespace igla
