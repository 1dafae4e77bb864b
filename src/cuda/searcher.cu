// igla CUDA backend: the Searcher (batch API) over the kernels of kernels.hpp (src/cuda/*.cu).
//
// Submission: a batch is cut into chunks; each chunk goes through one of kSlots slots (stream +
// pinned host buffers + device buffers): the chunk's queries are packed into the slot's pinned
// input block, copied up with one cudaMemcpyAsync, searched, and the hits come back with one
// copy into the slot's pinned output block. While the GPU works on a chunk the host packs the
// next one into another slot, so host copies, transfers and kernels of different chunks overlap.
// A batch of one query goes to a persistent kernel through a mailbox in mapped host memory
// (search_one; at most one such kernel runs in a process, stopped before any other GPU work of
// any searcher), or is one kernel launch (IGLA_CUDA_SINGLE=launch, or where the persistent
// grid cannot be resident at once), or where it does not fit the query parameter block, a replay
// of a CUDA graph of the whole batch sequence (cached per shape).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/backends.hpp"
#include "cuda/kernels.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla {

namespace {

using cuda::ChunkQueries;
using cuda::DeviceIndex;
using cuda::OutHits;

[[noreturn]] void cuda_fail(cudaError_t e, const char* what) {
  throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}
inline void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) cuda_fail(e, what);
}

constexpr int kSlots = 3;
constexpr size_t kAlign = 256;
inline size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

enum class Path { Mma, Popc, Sort };

struct DeviceBuffer {
  void* p = nullptr;
  size_t cap = 0;
  bool pinned = false;
  void release() {
    if (p) {
      if (pinned) cudaFreeHost(p);
      else cudaFree(p);
    }
    p = nullptr;
    cap = 0;
  }
  // Returns true when it had to reallocate. Host blocks are pinned and mapped (the one-query
  // graph's kernels write their hits straight into them).
  bool ensure(size_t need, bool host) {
    if (need <= cap) return false;
    release();
    size_t c = std::max<size_t>(need + need / 4, 1 << 16);
    pinned = host;
    ck(host ? cudaHostAlloc(&p, c, cudaHostAllocMapped) : cudaMalloc(&p, c), host ? "cudaHostAlloc" : "cudaMalloc");
    cap = c;
    return true;
  }
  void* device_view() const {
    void* d = nullptr;
    ck(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer");
    return d;
  }
};

// Byte layout of one chunk's input block (identical on host and device).
struct InLayout {
  size_t trits = 0, weights = 0, term_off = 0, excl = 0, excl_off = 0, planes = 0, total = 0;
  InLayout(size_t n_terms, uint32_t dims, size_t n_q, size_t n_excl, size_t plane_words) {
    size_t o = 0;
    trits = o;
    o = align_up(o + n_terms * dims);
    weights = o;
    o = align_up(o + n_terms * sizeof(float));
    term_off = o;
    o = align_up(o + (n_q + 1) * sizeof(uint32_t));
    excl = o;
    o = align_up(o + n_excl * sizeof(uint32_t));
    excl_off = o;
    o = align_up(o + (n_q + 1) * sizeof(uint32_t));
    planes = o;
    o = align_up(o + plane_words * sizeof(uint64_t));
    total = o;
  }
};

struct Chunk {
  size_t q0 = 0, q1 = 0;  // queries [q0, q1) of the batch
  size_t t0 = 0, t1 = 0;  // their terms
  size_t e0 = 0, e1 = 0;  // their exclusions
  size_t n_q() const { return q1 - q0; }
};

struct Slot {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  DeviceBuffer h_in, d_in, h_out, d_out, scratch;
  uint32_t* counters = nullptr;  // popc path: per query of a chunk, kept zero between launches
  bool pending = false;
  Chunk chunk;
  size_t k = 0;
};

// --- the persistent one-query kernel (kernels.hpp, PersistArgs) -----------------------------------
// It fills the GPU while it runs (idle CTAs poll), so at most one runs in the process: whoever
// wants the GPU for anything else stops it first (quiesce), and every access to a Persist
// happens under g_persist_mu (a query holds it from posting to reading its answer).
using Clock = std::chrono::steady_clock;
struct Persist {
  cudaStream_t stream = nullptr;              // its own non-blocking stream
  unsigned long long* box = nullptr;          // mapped pinned mailbox, kBoxWords words
  const unsigned long long* box_dev = nullptr;
  unsigned long long* relay = nullptr;        // device, kRelayWords words
  bool running = false;
  int form = -1, n_splits = 0;
  uint32_t split_len = 0;
  size_t smem = 0;
  uint32_t next_tag = 1;                      // never 0 (the zeroed mailbox)
  Clock::time_point last{};                   // last answer read
  unsigned long long starts = 0, queries = 0, recoveries = 0;
};
std::mutex g_persist_mu;
Persist* g_persist_running = nullptr;

inline uint32_t next_tag(uint32_t t) { return t + 1 ? t + 1 : 1; }
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Writes one message (every word tagged with next_tag) and advances the tag.
uint32_t persist_post(Persist& ps, const cuda::SingleArgs& a, uint32_t cmd) {
  uint32_t w[cuda::kSingleArgWords];
  std::memcpy(w, &a, sizeof w);
  const uint32_t tag = ps.next_tag;
  const unsigned long long hi = static_cast<unsigned long long>(tag) << 32;
  volatile unsigned long long* box = ps.box;
  for (int i = 0; i < cuda::kSingleArgWords; ++i) box[i] = hi | w[i];
  box[cuda::kSingleArgWords] = hi | cmd;
  ps.next_tag = next_tag(tag);
  return tag;
}

// Stops ps's kernel (g_persist_mu held): a stop message, then its stream's end, at most 5 s.
void persist_stop(Persist& ps) {
  if (!ps.running) return;
  persist_post(ps, cuda::SingleArgs{}, cuda::kCmdStop);
  ps.running = false;
  if (g_persist_running == &ps) g_persist_running = nullptr;
  const Clock::time_point t0 = Clock::now();
  for (;;) {
    const cudaError_t e = cudaStreamQuery(ps.stream);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) cuda_fail(e, "persistent one-query kernel");
    if (seconds_since(t0) > 5.0) throw Error("cuda: the persistent one-query kernel did not stop within 5 s");
  }
}

// Stops the process's persistent kernel, if one runs (before any other GPU work).
void quiesce() {
  std::lock_guard<std::mutex> g(g_persist_mu);
  if (g_persist_running) persist_stop(*g_persist_running);
}

struct GraphKey {
  int path, combine, n_terms, n_excl, K, k;
  uint32_t L;
  auto tie() const { return std::tie(path, combine, n_terms, n_excl, K, k, L); }
  bool operator<(const GraphKey& o) const { return tie() < o.tie(); }
};

class CudaSearcher final : public Searcher {
 public:
  CudaSearcher(const CodesView& codes, const SearcherOptions& opts) : view_(codes) {
    quiesce();  // another searcher's persistent kernel would hold the SMs (and cudaFree waits for it)
    force_ = opts.kernel;
    if (!force_.empty() && force_ != "mma" && force_ != "popc" && force_ != "sort")
      throw Error("--device cuda: unknown kernel '" + force_ + "' (mma, popc or sort)");
    ck(cudaGetDevice(&device_), "cudaGetDevice");
    cudaDeviceProp prop{};
    ck(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
    name_ = std::string("cuda/") + prop.name;
    num_sms_ = prop.multiProcessorCount;
    max_smem_ = prop.sharedMemPerBlockOptin;
    cuda::mma_prepare_attributes(max_smem_);
    cuda::popc_prepare_attributes(max_smem_);
    cuda::single_prepare_attributes(max_smem_);
    cuda::persistent_prepare_attributes(max_smem_);

    ix_.dims = codes.dims;
    ix_.W = codes.W;
    ix_.n = static_cast<uint32_t>(codes.n_words);
    ix_.n_tiles = std::max<uint32_t>(1, (ix_.n + cuda::kTileWords - 1) / cuda::kTileWords);
    ix_.Kp = (codes.dims + 31) / 32 * 32;
    if (codes.n_words >= (size_t{1} << 31)) throw Error("--device cuda: more than 2^31 words");

    cudaStream_t s0;
    ck(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking), "cudaStreamCreate");
    const size_t code_words = ::igla::code_words(codes.n_words, codes.dims);
    const size_t inv_n = static_cast<size_t>(ix_.n_tiles) * cuda::kTileWords;
    ck(cudaMalloc(&d_codes_, std::max<size_t>(code_words, 1) * 8), "cudaMalloc(codes)");
    ck(cudaMalloc(&d_inv_, inv_n * sizeof(float)), "cudaMalloc(inv)");
    ix_.tile_stride = cuda::kTileWords * ix_.Kp + cuda::kTileExtra;
    ck(cudaMalloc(&d_tiled_, static_cast<size_t>(ix_.n_tiles) * ix_.tile_stride), "cudaMalloc(tiled codes)");
    if (code_words) ck(cudaMemcpyAsync(d_codes_, codes.codes, code_words * 8, cudaMemcpyHostToDevice, s0), "upload codes");
    ck(cudaMemsetAsync(d_inv_, 0, inv_n * sizeof(float), s0), "memset");
    if (codes.n_words)
      ck(cudaMemcpyAsync(d_inv_, codes.inv_norms, codes.n_words * sizeof(float), cudaMemcpyHostToDevice, s0),
         "upload inverse norms");
    ix_.codes = static_cast<const uint64_t*>(d_codes_);
    ix_.inv = static_cast<const float*>(d_inv_);
    std::vector<uint32_t> perm(inv_n);
    cuda::tile_order(codes.inv_norms, ix_.n, ix_.n_tiles, perm.data());
    void* d_perm = nullptr;
    ck(cudaMalloc(&d_perm, inv_n * sizeof(uint32_t)), "cudaMalloc(tile order)");
    ck(cudaMemcpyAsync(d_perm, perm.data(), inv_n * sizeof(uint32_t), cudaMemcpyHostToDevice, s0), "upload tile order");
    cuda::build_device_index(ix_, static_cast<const float*>(d_inv_), static_cast<const uint32_t*>(d_perm),
                             static_cast<int8_t*>(d_tiled_), s0);
    ck(cudaStreamSynchronize(s0), "building the device index");
    cudaFree(d_perm);
    ck(cudaGetLastError(), "building the device index");
    cudaStreamDestroy(s0);

    if (const char* m = std::getenv("IGLA_CUDA_MMA_MODE")) mma_mode_ = std::atoi(m);
    if (const char* m = std::getenv("IGLA_CUDA_STAGES")) mma_max_stages_ = std::atoi(m);
    if (const char* m = std::getenv("IGLA_CUDA_GROUP")) mma_group_soft_ = std::max(0, std::atoi(m));
    if (const char* m = std::getenv("IGLA_CUDA_GROUP_CTA")) mma_group_cta_ = std::atoi(m) == 1;
    if (const char* m = std::getenv("IGLA_CUDA_SINGLE")) {  // comma-separated: a route and/or a mode
      const std::string v = std::string(",") + m + ",";
      auto has = [&](const char* w) { return v.find(std::string(",") + w + ",") != std::string::npos; };
      single_mode_ = has("graph") ? 1 : has("empty") ? 2 : has("nomerge") ? 3 : has("trace") ? 4 : has("echo") ? 5 : 0;
      single_launch_ = has("launch");
    }
    if (const char* m = std::getenv("IGLA_CUDA_PERSIST_IDLE_MS")) persist_idle_s_ = std::atof(m) / 1e3;
    persist_host_idle_s_ = persist_idle_s_ / 2;
    if (const char* m = std::getenv("IGLA_CUDA_PERSIST_HOST_IDLE_MS")) persist_host_idle_s_ = std::atof(m) / 1e3;
    if (const char* m = std::getenv("IGLA_CUDA_PERSIST_SLEEP_NS")) persist_sleep_ns_ = static_cast<uint32_t>(std::atoi(m));
    if (const char* m = std::getenv("IGLA_CUDA_PERSIST_RELAY")) persist_relay_flag_ = std::string(m) == "flag";
    if (const char* m = std::getenv("IGLA_CUDA_SINGLE_SPLIT")) single_split_ = static_cast<uint32_t>(std::atoi(m));
    single_sync_ = std::getenv("IGLA_CUDA_SINGLE_SYNC") != nullptr;
    if (std::getenv("IGLA_CUDA_STATS")) {
      ck(cudaMalloc(&stats_, 4 * sizeof(unsigned long long)), "cudaMalloc(stats)");
      ck(cudaMemset(stats_, 0, 4 * sizeof(unsigned long long)), "cudaMemset(stats)");
    }
    for (Slot& sl : slots_) {
      ck(cudaStreamCreateWithFlags(&sl.stream, cudaStreamNonBlocking), "cudaStreamCreate");
      ck(cudaEventCreateWithFlags(&sl.done, cudaEventDisableTiming), "cudaEventCreate");
      ck(cudaMalloc(&sl.counters, kPopcChunk * sizeof(uint32_t)), "cudaMalloc(counters)");
      ck(cudaMemset(sl.counters, 0, kPopcChunk * sizeof(uint32_t)), "cudaMemset(counters)");
    }
  }

  ~CudaSearcher() override {
    try {
      quiesce();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "igla cuda: %s\n", e.what());
    }
    if (stats_ || trace_n_ || std::getenv("IGLA_CUDA_PERSIST_STATS"))
      std::fprintf(stderr, "igla cuda persistent one-query kernel: %llu queries, %llu starts, %llu recoveries\n",
                   persist_.queries, persist_.starts, persist_.recoveries);
    if (persist_.stream) cudaStreamDestroy(persist_.stream);
    if (persist_.box) cudaFreeHost(persist_.box);
    if (persist_.relay) cudaFree(persist_.relay);
    if (stats_) {
      unsigned long long h[4] = {};
      cudaDeviceSynchronize();
      cudaMemcpy(h, stats_, sizeof h, cudaMemcpyDeviceToHost);
      std::fprintf(stderr, "igla cuda stats: warp-tiles with a candidate %llu, staged %llu, queued %llu, drains %llu\n", h[0],
                   h[1], h[2], h[3]);
      cudaFree(stats_);
    }
    if (trace_n_)
      std::fprintf(stderr,
                   "igla cuda one-query trace (cycles from the last CTA's start, mean of %zu): scored %.0f, "
                   "selected %.0f, last %.0f, preloaded %.0f, merged %.0f, done %.0f\n",
                   trace_n_, trace_sum_[0] / trace_n_, trace_sum_[1] / trace_n_, trace_sum_[2] / trace_n_,
                   trace_sum_[3] / trace_n_, trace_sum_[4] / trace_n_, trace_sum_[5] / trace_n_);
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g);
    if (one_stream_) {
      cudaStreamSynchronize(one_stream_);
      cudaStreamDestroy(one_stream_);
    }
    if (one_out_) cudaFreeHost(one_out_);
    if (one_counter_) cudaFree(one_counter_);
    if (one_partial_) cudaFree(one_partial_);
    for (Slot& sl : slots_) {
      if (sl.stream) cudaStreamSynchronize(sl.stream);
      sl.h_in.release();
      sl.d_in.release();
      sl.h_out.release();
      sl.d_out.release();
      sl.scratch.release();
      if (sl.done) cudaEventDestroy(sl.done);
      if (sl.counters) cudaFree(sl.counters);
      if (sl.stream) cudaStreamDestroy(sl.stream);
    }
    cudaFree(d_codes_);
    cudaFree(d_inv_);
    cudaFree(d_tiled_);
  }

  std::string name() const override { return name_; }

  void search(const QueryBatch& batch, const SearchParams& params, SearchResults& out) override {
    std::lock_guard<std::mutex> lock(mu_);
    ck(cudaSetDevice(device_), "cudaSetDevice");
    const size_t n_q = batch.size();
    const size_t k = params.k;
    out.k = k;
    out.hits.assign(n_q * k, Hit{0, 0.0f});
    out.count.assign(n_q, 0);
    if (batch.dims != view_.dims)
      throw Error("query dims " + std::to_string(batch.dims) + " != index dims " + std::to_string(view_.dims));
    if (batch.trits.size() != batch.n_terms() * batch.dims || batch.term_offsets.empty() ||
        batch.term_offsets.back() != batch.n_terms() || batch.exclude_offsets.size() != n_q + 1 ||
        batch.exclude_offsets.back() != batch.exclude.size())
      throw Error("malformed QueryBatch");
    if (batch.combine == Combine::CosMul)
      for (size_t q = 0; q < n_q; ++q)
        if (batch.term_offsets[q + 1] - batch.term_offsets[q] != 3)
          throw Error("CosMul queries need exactly three terms (a, b, c)");
    const uint32_t L = static_cast<uint32_t>(
        params.limit ? std::min<size_t>(params.limit, view_.n_words) : view_.n_words);
    if (n_q == 0 || k == 0 || L == 0) return;

    bool single = batch.combine == Combine::Sum;
    size_t max_excl = 0, max_terms = 0;
    for (size_t q = 0; q < n_q; ++q) {
      const size_t t = batch.term_offsets[q + 1] - batch.term_offsets[q];
      single = single && t == 1;
      max_terms = std::max(max_terms, t);
      max_excl = std::max<size_t>(max_excl, batch.exclude_offsets[q + 1] - batch.exclude_offsets[q]);
    }
    const int K = static_cast<int>(std::min<size_t>(k + max_excl, L));
    if (n_q == 1 && search_one(batch, k, L, K, out)) return;
    quiesce();  // the batch kernels need the SMs

    Path path = Path::Sort;
    if (K <= cuda::kMaxListK && force_ != "sort") {
      cuda::MmaPlan probe;
      const bool mma_ok = single && cuda::mma_plan(ix_, 128, L, K, num_sms_, max_smem_, probe);
      const cuda::PopcPlan pp = cuda::popc_plan(ix_, static_cast<int>(std::min<size_t>(n_q, kPopcChunk)), L, num_sms_,
                                                static_cast<int>(max_terms), single);
      const size_t popc_smem = cuda::popc_smem_bytes(ix_, static_cast<int>(max_terms), K, pp.n_splits);
      // popc streams the bitplanes once per query: only worth it for few queries over an
      // L2-resident vocabulary (run 11: batch 64 on 100K x 300, popc 449 K q/s vs mma 268 K; on
      // 1M x 300, popc 35 K vs mma 109 K).
      const bool popc_better = n_q < kMmaMinBatch && (n_q < 16 || L <= kPopcMaxWords);
      if (mma_ok && (force_ == "mma" || (force_.empty() && !popc_better))) path = Path::Mma;
      else if (popc_smem <= max_smem_) path = Path::Popc;
    }

    // Chunks. mma: one 128-query tile per SM, so a chunk is one full wave with no vocabulary split.
    const size_t chunk_q = path == Path::Mma ? static_cast<size_t>(num_sms_) * cuda::kTileQueries
                           : path == Path::Popc ? kPopcChunk
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

    for (size_t i = 0; i < chunks.size(); ++i) {
      Slot& sl = slots_[i % kSlots];
      if (sl.pending) collect(sl, out);
      run_chunk(sl, batch, chunks[i], path, K, k, L, static_cast<int>(max_terms), single, n_q == 1);
    }
    for (size_t i = 0; i < kSlots; ++i) {
      Slot& sl = slots_[(chunks.size() + i) % kSlots];
      if (sl.pending) collect(sl, out);
    }
  }

 private:
  // Below this the popc path wins (run 10: batch 64, 402 K q/s popc vs 259 K mma; batch 1024,
  // 916 K popc vs 1.02 M mma, on 100K x 300).
  static constexpr size_t kMmaMinBatch = 512;
  static constexpr uint32_t kPopcMaxWords = 1u << 18;  // 21 MB of bitplanes at 300 dims
  static constexpr size_t kPopcChunk = 4096;  // popc.cu sizes its per-query counters for this

  // One query in one kernel launch (kernels.hpp, SingleArgs): the query in the launch's
  // parameters, the hits written into mapped pinned memory and a sequence number the host spins
  // on. False when the query does not fit the parameter block or another path is forced (the
  // caller then takes the batch route: the popc path through a cached CUDA graph).
  bool search_one(const QueryBatch& batch, size_t k, uint32_t L, int K, SearchResults& out) {
    if (single_mode_ == 1 || K > cuda::kMaxListK || k > 256 || force_ == "mma" || force_ == "sort") return false;
    const size_t T = batch.term_offsets[1], n_excl = batch.exclude.size(), W = view_.W;
    if (T == 0 || T > static_cast<size_t>(cuda::kSingleMaxTerms) || T * 2 * W > static_cast<size_t>(cuda::kSinglePlaneWords) ||
        n_excl > static_cast<size_t>(cuda::kSingleMaxExcl))
      return false;
    const cuda::SinglePlan plan = cuda::single_plan(ix_, L, K, static_cast<int>(T), num_sms_, single_split_);
    if (plan.smem + 4096 > max_smem_) return false;  // static shared memory besides
    const size_t partial_bytes = static_cast<size_t>(plan.n_splits) * K * sizeof(uint64_t);
    if (!one_out_ || partial_bytes > one_partial_cap_) quiesce();  // cudaFree / cudaHostAlloc wait for kernels
    if (!one_out_) {  // first use: stream, mapped result block, device list buffer and counter
      ck(cudaStreamCreateWithFlags(&one_stream_, cudaStreamNonBlocking), "cudaStreamCreate");
      ck(cudaHostAlloc(&one_out_, 8192, cudaHostAllocMapped), "cudaHostAlloc");
      std::memset(one_out_, 0, 8192);
      ck(cudaHostGetDevicePointer(reinterpret_cast<void**>(&one_out_dev_), one_out_, 0), "cudaHostGetDevicePointer");
      ck(cudaMalloc(&one_counter_, sizeof(uint32_t)), "cudaMalloc(counter)");
      ck(cudaMemset(one_counter_, 0, sizeof(uint32_t)), "cudaMemset(counter)");
    }
    if (partial_bytes > one_partial_cap_) {
      ck(cudaStreamSynchronize(one_stream_), "search");
      if (one_partial_) cudaFree(one_partial_);
      one_partial_ = nullptr;
      ck(cudaMalloc(&one_partial_, partial_bytes), "cudaMalloc(partial)");
      one_partial_cap_ = partial_bytes;
    }
    cuda::SingleArgs& a = one_args_;
    a.codes = ix_.codes;
    a.inv = ix_.inv;
    a.partial = static_cast<uint64_t*>(one_partial_);
    a.counter = one_counter_;
    a.out = one_out_dev_;
    a.W = static_cast<uint32_t>(W);
    a.L = L;
    a.split_len = plan.split_len;
    a.seq = ++one_seq_ ? one_seq_ : ++one_seq_;  // never 0 (the block starts zeroed)
    a.T = static_cast<int>(T);
    a.combine = batch.combine == Combine::CosMul ? 1 : 0;
    a.K = K;
    a.k = static_cast<int>(k);
    a.n_splits = plan.n_splits;
    a.n_excl = static_cast<int>(n_excl);
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
    if (single_launch_ || !persistent_one(a, plan)) {
      quiesce();
      ck(cuda::single_launch(a, plan, one_stream_), "kernel launch");
      // Spin on the sequence flag; after ~1 ms (2^20 reads) and then every ~1 ms, ask the stream
      // whether the kernel failed (run 21: every 4096 reads, i.e. a few us, put one or two driver
      // calls inside most searches).
      const volatile uint32_t* flag = one_out_;
      if (single_sync_) ck(cudaStreamSynchronize(one_stream_), "search");  // experiment: the stream's own wait
      const Clock::time_point t0 = Clock::now();
      for (uint32_t spins = 1; *flag != a.seq; ++spins) {
        if (spins % (1u << 20) == 0) {
          const cudaError_t e = cudaStreamQuery(one_stream_);
          if (e == cudaSuccess && *flag != a.seq) throw Error("cuda: one-query kernel finished without its result");
          if (e != cudaSuccess && e != cudaErrorNotReady) cuda_fail(e, "search");
          if (seconds_since(t0) > kAnswerTimeout) throw Error("cuda: no answer from the one-query kernel within 10 s");
        }
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (single_mode_ == 4) {
      const auto* t = reinterpret_cast<const unsigned long long*>(one_out_ + 1024);
      for (int i = 0; i < 6; ++i) trace_sum_[i] += static_cast<double>(t[i]);
      ++trace_n_;
    }
    const uint32_t n = one_out_[1];
    out.count[0] = std::min<uint32_t>(n, static_cast<uint32_t>(k));
    static_assert(sizeof(Hit) == sizeof(uint2));
    std::memcpy(static_cast<void*>(out.hits.data()), one_out_ + 2, k * sizeof(Hit));
    return true;
  }

  // The query a through the persistent kernel (started or restarted here as needed). False when
  // its grid cannot be resident at once (the caller launches instead). Returns once the answer
  // is in one_out_ (flag == a.seq).
  static constexpr double kAnswerTimeout = 10.0;  // seconds
  bool persistent_one(const cuda::SingleArgs& a, const cuda::SinglePlan& plan) {
    std::lock_guard<std::mutex> g(g_persist_mu);
    Persist& ps = persist_;
    const int form = cuda::single_form(a);
    if (ps.running && (ps.form != form || ps.n_splits != plan.n_splits || ps.split_len != plan.split_len ||
                       ps.smem != plan.smem || seconds_since(ps.last) > persist_host_idle_s_))
      persist_stop(ps);  // another grid, or idle long enough that the kernel may be leaving by itself
    if (!ps.running) {
      const auto cap_key = std::make_tuple(form, plan.n_splits, plan.smem);
      auto it = persist_fits_.find(cap_key);
      if (it == persist_fits_.end())
        it = persist_fits_.emplace(cap_key, cuda::persistent_capacity(form, plan, num_sms_) >= plan.n_splits).first;
      if (!it->second) return false;
      if (g_persist_running) persist_stop(*g_persist_running);  // another searcher's
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
    const uint32_t tag = persist_post(ps, a, cuda::kCmdQuery);
    const volatile uint32_t* flag = one_out_;
    const Clock::time_point t0 = Clock::now();
    int recoveries = 0;
    for (uint32_t spins = 1; *flag != a.seq; ++spins) {
      if (spins % (1u << 20) == 0) {
        const cudaError_t e = cudaStreamQuery(ps.stream);
        if (e == cudaSuccess && *flag != a.seq) {
          // The kernel left (idle exit racing this message): start it again on the same message.
          if (++recoveries > 3) {
            ps.running = false;
            g_persist_running = nullptr;
            throw Error("cuda: the persistent one-query kernel keeps leaving without an answer");
          }
          ++ps.recoveries;
          persist_start(ps, form, plan, tag);
        } else if (e != cudaSuccess && e != cudaErrorNotReady) {
          ps.running = false;
          g_persist_running = nullptr;
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

  void persist_start(Persist& ps, int form, const cuda::SinglePlan& plan, uint32_t tag) {
    ck(cudaMemsetAsync(ps.relay, 0, cuda::kRelayWords * 8, ps.stream), "cudaMemsetAsync(relay)");
    cuda::PersistArgs pa;
    pa.box = ps.box_dev;
    pa.relay = ps.relay;
    pa.tag = tag;
    pa.idle_ns = static_cast<unsigned long long>(persist_idle_s_ * 1e9);
    pa.relay_sleep_ns = persist_sleep_ns_;
    pa.relay_flag = persist_relay_flag_;
    ck(cuda::persistent_launch(pa, form, plan, ps.stream), "persistent kernel launch");
    ps.running = true;
    ps.form = form;
    ps.n_splits = plan.n_splits;
    ps.split_len = plan.split_len;
    ps.smem = plan.smem;
    ps.last = Clock::now();
    ++ps.starts;
    g_persist_running = &ps;
  }

  void collect(Slot& sl, SearchResults& out) {
    ck(cudaEventSynchronize(sl.done), "search");
    const size_t n = sl.chunk.n_q();
    const uint2* hits = static_cast<const uint2*>(sl.h_out.p);
    const uint32_t* count = reinterpret_cast<const uint32_t*>(static_cast<const char*>(sl.h_out.p) +
                                                              align_up(n * sl.k * sizeof(uint2)));
    static_assert(sizeof(Hit) == sizeof(uint2));
    std::memcpy(out.hits.data() + sl.chunk.q0 * sl.k, hits, n * sl.k * sizeof(Hit));
    std::copy(count, count + n, out.count.begin() + static_cast<std::ptrdiff_t>(sl.chunk.q0));
    sl.pending = false;
  }

  void run_chunk(Slot& sl, const QueryBatch& batch, const Chunk& c, Path path, int K, size_t k, uint32_t L,
                 int max_terms, bool single, bool graphable) {
    const size_t n_q = c.n_q(), n_terms = c.t1 - c.t0, n_excl = c.e1 - c.e0;
    const uint32_t dims = batch.dims;
    // The one-query graph: planes packed here (no packing kernel), hits written by the merge
    // kernel straight into the mapped pinned output block (no copy back).
    const bool graph = graphable && &sl == &slots_[0] && path != Path::Sort;
    const bool host_planes = graph && path == Path::Popc;
    const InLayout lay(n_terms, dims, n_q, n_excl, host_planes ? n_terms * 2 * view_.W : 0);
    const size_t out_bytes = align_up(n_q * k * sizeof(uint2)) + align_up(n_q * sizeof(uint32_t));

    // Plans and scratch.
    cuda::MmaPlan mp;
    cuda::PopcPlan pp;
    int sub = 0;
    size_t scratch = 0;
    if (path == Path::Mma) {
      cuda::mma_plan(ix_, static_cast<int>(n_q), L, K, num_sms_, max_smem_, mp, mma_max_stages_);
      mp.mode = mma_mode_;
      if (mma_group_soft_ >= 0) mp.group_soft = mma_group_soft_;
      mp.group_cta = mma_group_cta_;
      mp.stats = stats_;
      scratch = cuda::mma_scratch_bytes(ix_, static_cast<int>(n_q), K, mp);
    } else if (path == Path::Popc) {
      pp = cuda::popc_plan(ix_, static_cast<int>(n_q), L, num_sms_, max_terms, single);
      pp.counters = sl.counters;
      scratch = cuda::popc_scratch_bytes(ix_, static_cast<int>(n_q), static_cast<int>(n_terms), K, pp);
    } else {
      sub = std::min<int>(cuda::sort_sub_batch(L), static_cast<int>(n_q));
      scratch = cuda::sort_scratch_bytes(ix_, static_cast<int>(n_terms), L, sub);
    }
    bool realloc = false;
    realloc |= sl.h_in.ensure(lay.total, true);
    realloc |= sl.d_in.ensure(lay.total, false);
    realloc |= sl.h_out.ensure(out_bytes, true);
    realloc |= sl.d_out.ensure(out_bytes, false);
    realloc |= sl.scratch.ensure(scratch, false);
    if (realloc && &sl == &slots_[0]) clear_graphs();

    // Pack the chunk into the pinned input block.
    char* h = static_cast<char*>(sl.h_in.p);
    std::memcpy(h + lay.trits, batch.trits.data() + c.t0 * dims, n_terms * dims);
    std::memcpy(h + lay.weights, batch.weights.data() + c.t0, n_terms * sizeof(float));
    auto* to = reinterpret_cast<uint32_t*>(h + lay.term_off);
    for (size_t q = 0; q <= n_q; ++q) to[q] = static_cast<uint32_t>(batch.term_offsets[c.q0 + q] - c.t0);
    if (n_excl) std::memcpy(h + lay.excl, batch.exclude.data() + c.e0, n_excl * sizeof(uint32_t));
    auto* eo = reinterpret_cast<uint32_t*>(h + lay.excl_off);
    for (size_t q = 0; q <= n_q; ++q) eo[q] = static_cast<uint32_t>(batch.exclude_offsets[c.q0 + q] - c.e0);
    if (host_planes) {
      const uint32_t W = view_.W;
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
      char* dout = static_cast<char*>(graph ? sl.h_out.device_view() : sl.d_out.p);
      OutHits o;
      o.hits = reinterpret_cast<uint2*>(dout);
      o.count = reinterpret_cast<uint32_t*>(dout + align_up(n_q * k * sizeof(uint2)));
      if (path == Path::Mma) cuda::mma_search(ix_, q, L, K, static_cast<int>(k), mp, sl.scratch.p, o, sl.stream);
      else if (path == Path::Popc)
        cuda::popc_search(ix_, q, L, K, static_cast<int>(k), pp, sl.scratch.p, o, sl.stream);
      else cuda::sort_search(ix_, q, L, static_cast<int>(k), sub, sl.scratch.p, sl.scratch.cap, o, sl.stream);
      ck(cudaGetLastError(), "kernel launch");
      if (!graph)
        ck(cudaMemcpyAsync(sl.h_out.p, sl.d_out.p, out_bytes, cudaMemcpyDeviceToHost, sl.stream), "copy hits");
    };

    if (graph) {
      const GraphKey key{static_cast<int>(path), static_cast<int>(batch.combine), static_cast<int>(n_terms), static_cast<int>(n_excl), K,
                         static_cast<int>(k), L};
      auto it = graphs_.find(key);
      if (it == graphs_.end()) {
        cudaGraph_t g;
        ck(cudaStreamBeginCapture(sl.stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        enqueue();
        ck(cudaStreamEndCapture(sl.stream, &g), "cudaStreamEndCapture");
        cudaGraphExec_t exec;
        ck(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
        cudaGraphDestroy(g);
        it = graphs_.emplace(key, exec).first;
      }
      ck(cudaGraphLaunch(it->second, sl.stream), "cudaGraphLaunch");
    } else {
      enqueue();
    }
    ck(cudaEventRecord(sl.done, sl.stream), "cudaEventRecord");
    sl.pending = true;
    sl.chunk = c;
    sl.k = k;
  }

  void clear_graphs() {
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g);
    graphs_.clear();
  }

  // Experiment knobs read from the environment by scripts/gpu (never needed otherwise):
  // IGLA_CUDA_MMA_MODE=1|2 drops the epilogue / its slow path (wrong results, for timing only);
  // IGLA_CUDA_STATS=1 counts the mma epilogue's events and prints them when the searcher goes;
  // IGLA_CUDA_STAGES=N: at most N stages in the mma path's tile ring (default: as many as fit, <= 6).
  // IGLA_CUDA_GROUP=N: group-drain threshold of the mma path's queues (default 4; 0: overflow only);
  // IGLA_CUDA_GROUP_CTA=1: a request makes all 8 consumer warps drain, not the warpgroup's 4.
  // IGLA_CUDA_SINGLE=graph|empty|nomerge|trace: the one-query route (graph: the batch route's
  // cached CUDA graph; empty / nomerge: the one-launch kernel without its work / without the
  // merge of the splits, wrong results, for timing only; trace: cycle counts of the last CTA,
  // printed when the searcher goes); IGLA_CUDA_SINGLE_SPLIT=N: its words per CTA.
  int mma_mode_ = 0;
  // IGLA_CUDA_SINGLE=launch: the one-launch route instead of the persistent kernel (combines with
  // empty / nomerge / trace, e.g. launch,empty); IGLA_CUDA_PERSIST_IDLE_MS: the persistent kernel
  // leaves after this long without a query (default 1000); IGLA_CUDA_PERSIST_HOST_IDLE_MS (tests):
  // the host restarts it before a query after this long (default half of that);
  // IGLA_CUDA_PERSIST_STATS=1: its counts printed when the searcher goes; IGLA_CUDA_SINGLE=echo:
  // the persistent kernel answers (nothing) as soon as the message is in (mailbox round trip);
  // IGLA_CUDA_PERSIST_SLEEP_NS=N: __nanosleep(N) between the relay polls of CTAs 1..;
  // IGLA_CUDA_PERSIST_RELAY=flag: CTA 0 relays the message behind one flag word (run P1's way).
  int single_mode_ = 0;  // 0 normal, 1 graph, 2 empty, 3 no merge, 4 trace (IGLA_CUDA_SINGLE=trace)
  bool single_launch_ = false;
  double persist_idle_s_ = 1.0, persist_host_idle_s_ = 0.5;
  uint32_t persist_sleep_ns_ = 0;
  int persist_relay_flag_ = 0;
  Persist persist_;
  std::map<std::tuple<int, int, size_t>, bool> persist_fits_;
  double trace_sum_[6] = {};
  size_t trace_n_ = 0;
  uint32_t single_split_ = 0;
  bool single_sync_ = false;  // IGLA_CUDA_SINGLE_SYNC: wait with cudaStreamSynchronize before the flag
  cudaStream_t one_stream_ = nullptr;
  uint32_t* one_out_ = nullptr;      // mapped pinned: flag, count, hits
  uint32_t* one_out_dev_ = nullptr;  // its device address
  uint32_t* one_counter_ = nullptr;
  void* one_partial_ = nullptr;
  size_t one_partial_cap_ = 0;
  uint32_t one_seq_ = 0;
  cuda::SingleArgs one_args_;
  int mma_max_stages_ = 6;   // IGLA_CUDA_STAGES: most tile stages of the mma path's ring (A/B runs)
  int mma_group_soft_ = -1;  // IGLA_CUDA_GROUP: the mma path's group-drain threshold (-1: the plan's)
  bool mma_group_cta_ = false;  // IGLA_CUDA_GROUP_CTA=1: group drains of all 8 consumer warps
  unsigned long long* stats_ = nullptr;

  CodesView view_;
  std::string force_;
  std::string name_;
  int device_ = 0;
  int num_sms_ = 0;
  size_t max_smem_ = 0;
  DeviceIndex ix_;
  void* d_codes_ = nullptr;
  void* d_inv_ = nullptr;
  void* d_tiled_ = nullptr;
  Slot slots_[kSlots];
  std::map<GraphKey, cudaGraphExec_t> graphs_;
  std::mutex mu_;
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

std::unique_ptr<Searcher> make_cuda_searcher(const CodesView& codes, const SearcherOptions& opts) {
  std::string why;
  if (!cuda_available(&why)) throw Error("--device cuda: " + why);
  return std::make_unique<CudaSearcher>(codes, opts);
}

}  // namespace igla
