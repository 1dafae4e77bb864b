// igla CUDA backend: the popc path (popc_kernel): any query (several terms, CosMul), top-K <= 64,
// scored from 2-bit bitplanes with AND + popcount on the CUDA cores; its plan, scratch, launch
// and shared memory limit.
#include "cuda/kernels.hpp"

#include <string>

#include "igla/error.hpp"

#include <algorithm>

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"
#include "cuda/prepare.cuh"

namespace igla::cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// popc path: one CTA per (query, vocabulary split); each warp keeps a top-K list of its words,
// the CTA merges its 8 lists and writes them for merge_kernel.

struct PopcArgs {
  const uint64_t* codes;
  const float* inv;
  uint32_t W, L;
  const uint64_t* planes;  // [term][2W]
  const float* weights;
  const uint32_t* term_off;
  int combine, K, n_splits;
  uint32_t split_len;
  uint64_t* partial;
  // The last CTA of each query to finish merges its splits' lists and writes the hits (no
  // separate merge launch): counters[q] counts finished CTAs and is reset by that last one.
  uint32_t* counters;
  int k;
  const uint32_t* excl;
  const uint32_t* excl_off;
  uint2* hits;
  uint32_t* count;
};

template <bool kSingle>
__global__ __launch_bounds__(256) void popc_kernel(PopcArgs a) {
  extern __shared__ uint64_t sm[];
  const int q = blockIdx.x / a.n_splits, split = blockIdx.x % a.n_splits;
  const uint32_t W = a.W;
  const SharedQuery sq = load_shared_query(sm, q, W, a.planes, a.weights, a.term_off);
  uint64_t* const lists = sq.lists;
  const uint64_t* const qp = sq.qp;
  const float* const w = sq.w;
  const uint32_t T = sq.T;

  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const uint32_t s0 = split * a.split_len;
  const uint32_t s1 = min(s0 + a.split_len, a.L);
  WarpList list;
  list.init(a.K);
  for (uint32_t base = s0 + warp * 32; base < s1; base += 256) {
    const uint32_t x = base + lane;
    uint64_t key = 0;
    if (x < s1) {
      float score;
      if (kSingle) {
        const uint64_t* wp = a.codes + static_cast<size_t>(x >> 3) * W * 16 + (x & 7);
        score = __fmul_rn(sum_term(0.0f, w[0], dot_planes(wp, qp, W)), __ldg(a.inv + x));
      } else {
        score = score_generic(x, a.codes, W, qp, w, T, a.combine, __ldg(a.inv + x));
      }
      key = make_key(score, x);
    }
    list.offer(key);
  }
  tree_merge(list, reinterpret_cast<uint64_t(*)[64]>(lists), static_cast<int>(warp), 0, 8);
  if (a.n_splits == 1) {  // the whole vocabulary was this CTA's: finish here
    if (warp == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
    return;
  }
  if (warp == 0) list.store(a.partial + (static_cast<size_t>(q) * a.n_splits + split) * a.K);
  if (!a.counters) return;  // merge_kernel merges the splits

  // Last CTA of this query: merge every split's list.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(a.counters + q, 1u) == static_cast<unsigned>(a.n_splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  uint64_t* pre = sq.qp + T * 2 * W + (T + 1) / 2;  // after the weights
  const size_t total = static_cast<size_t>(a.n_splits) * a.K;
  const uint64_t* src = a.partial + static_cast<size_t>(q) * total;
  for (size_t i = threadIdx.x; i < total; i += blockDim.x) pre[i] = __ldcg(src + i);
  __syncthreads();
  list.init(a.K);
  for (int sp = static_cast<int>(warp); sp < a.n_splits; sp += 8) list.merge_stored(pre + static_cast<size_t>(sp) * a.K);
  tree_merge(list, reinterpret_cast<uint64_t(*)[64]>(lists), static_cast<int>(warp), 0, 8);
  if (warp == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
  if (threadIdx.x == 0) a.counters[q] = 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// The kernel's static shared memory counts against the same per-block limit: asking for all of
// max_smem as dynamic memory fails, and the failure (cleared here) left the 48 KB default, so a
// batch of 2 queries with lists of 51 keys over 341K words (132 splits: 54 KB) failed to launch
// and the merge then read unwritten lists (an illegal address: every later call failed; seen
// under `igla serve --device cuda`, run 36).
void popc_prepare_attributes(size_t max_smem) {
  for (auto f : {popc_kernel<true>, popc_kernel<false>}) {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, f) == cudaSuccess)
      cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(max_smem - std::min(max_smem, attr.sharedSizeBytes)));
  }
  cudaGetLastError();
}

PopcPlan popc_plan(const DeviceIndex&, int n_q, uint32_t L, int num_sms, int max_terms, bool single) {
  PopcPlan p;
  p.single = single;
  p.max_terms = max_terms;
  const uint32_t max_splits = std::max<uint32_t>(1, (L + 511) / 512);
  uint32_t splits = std::max<uint32_t>(1, (2u * num_sms + n_q - 1) / n_q);
  splits = std::min(splits, max_splits);
  p.split_len = std::max<uint32_t>(256, ((L + splits - 1) / splits + 255) / 256 * 256);
  p.n_splits = static_cast<int>(std::max<uint32_t>(1, (L + p.split_len - 1) / p.split_len));
  return p;
}

size_t popc_smem_bytes(const DeviceIndex& ix, int max_terms, int K, int n_splits) {
  return 8 * 64 * 8 + static_cast<size_t>(max_terms) * 2 * ix.W * 8 + (max_terms + 1) / 2 * 8 +
         (n_splits > 1 ? static_cast<size_t>(n_splits) * K * 8 : 0) + 16;
}

size_t popc_scratch_bytes(const DeviceIndex& ix, int n_q, int n_terms, int K, const PopcPlan& p) {
  Bump b{nullptr};
  b.take<uint64_t>(static_cast<size_t>(n_terms) * 2 * ix.W);
  b.take<uint64_t>(static_cast<size_t>(n_q) * p.n_splits * K);
  return b.used + 256;
}

void popc_search(const DeviceIndex& ix, const ChunkQueries& q, uint32_t L, int K, int k, const PopcPlan& p,
                 void* scratch, OutHits out, cudaStream_t s) {
  Bump b{static_cast<char*>(scratch)};
  uint64_t* planes = b.take<uint64_t>(static_cast<size_t>(q.n_terms) * 2 * ix.W);
  uint64_t* partial = b.take<uint64_t>(static_cast<size_t>(q.n_q) * p.n_splits * K);
  if (q.planes) {
    planes = const_cast<uint64_t*>(q.planes);
  } else {
    query_planes(q.trits, q.n_terms, ix.dims, ix.W, planes, s);
  }
  PopcArgs a{ix.codes,  ix.inv,      ix.W,    L,        planes, q.weights,  q.term_off,   q.combine, K,
             p.n_splits, p.split_len, partial, p.counters, k,    q.excl, q.excl_off, out.hits, out.count};
  const size_t smem = popc_smem_bytes(ix, p.max_terms, K, p.n_splits);
  const int grid = q.n_q * p.n_splits;
  // The splits are merged by merge_kernel (batches; a single query normally takes single_kernel,
  // and this path only when it does not fit that kernel's parameters).
  a.counters = nullptr;
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, p.single ? popc_kernel<true> : popc_kernel<false>) == cudaSuccess &&
      smem > static_cast<size_t>(attr.maxDynamicSharedSizeBytes))
    throw Error("cuda: popc plan needs " + std::to_string(smem) + " bytes of shared memory, the kernel may take " +
                std::to_string(attr.maxDynamicSharedSizeBytes));
  if (p.single) popc_kernel<true><<<grid, 256, smem, s>>>(a);
  else popc_kernel<false><<<grid, 256, smem, s>>>(a);
  launch_check("popc_kernel");
  if (p.n_splits > 1) launch_merge(partial, q.n_q, p.n_splits, K, k, q, out, s);
}

cudaError_t popc_probe() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, popc_kernel<true>);
}

}  // namespace igla::cuda
