// igla CUDA backend: the merge of a batch's per-split top-K lists (merge_kernel, launch_merge),
// used by the mma and popc paths: each query's K best over its splits, its exclusions dropped,
// the final k hits.
#include "cuda/kernels.hpp"

#include "cuda/device_common.cuh"
#include "cuda/host_common.hpp"

namespace igla::cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// Merge of per-split lists + exclusions + the final k hits.

struct MergeArgs {
  const uint64_t* partial;  // [q][split][K]
  int n_splits, K, k, n_q, wpq;
  const uint32_t* excl;
  const uint32_t* excl_off;
  uint2* hits;
  uint32_t* count;
  bool preload;
};

__global__ __launch_bounds__(256) void merge_kernel(MergeArgs a) {
  __shared__ uint64_t sh[8][64];
  extern __shared__ uint64_t pre[];  // this block's lists when they fit (a.preload)
  const unsigned warp = threadIdx.x >> 5, lane = lane_id();
  const int qpb = 8 / a.wpq;
  const int q0 = blockIdx.x * qpb;
  const int q = q0 + static_cast<int>(warp) / a.wpq;
  const int sub = static_cast<int>(warp) % a.wpq;
  const bool active = q < a.n_q;
  const size_t per_q = static_cast<size_t>(a.n_splits) * a.K;
  if (a.preload) {  // one coalesced pass: every load of the block in flight at once
    const size_t total = static_cast<size_t>(min(qpb, a.n_q - q0)) * per_q;
    const uint64_t* src = a.partial + static_cast<size_t>(q0) * per_q;
    for (size_t i = threadIdx.x; i < total; i += blockDim.x) pre[i] = src[i];
    __syncthreads();
  }
  WarpList list;
  list.init(a.K);
  if (active) {
    const uint64_t* base =
        a.preload ? pre + static_cast<size_t>(q - q0) * per_q : a.partial + static_cast<size_t>(q) * per_q;
    auto load = [&](int s, unsigned r) -> uint64_t {
      return (s < a.n_splits && r < static_cast<unsigned>(a.K)) ? base[static_cast<size_t>(s) * a.K + r] : 0;
    };
    if (!list.two) {
      for (int s = sub; s < a.n_splits; s += 4 * a.wpq) {
        const uint64_t o0 = load(s, lane), o1 = load(s + a.wpq, lane), o2 = load(s + 2 * a.wpq, lane),
                       o3 = load(s + 3 * a.wpq, lane);
        list.merge_sorted(o0);
        list.merge_sorted(o1);
        list.merge_sorted(o2);
        list.merge_sorted(o3);
      }
    } else {  // K > 32: two keys a lane
      for (int s = sub; s < a.n_splits; s += 2 * a.wpq) {
        const uint64_t o0 = load(s, lane), p0 = load(s, lane + 32), o1 = load(s + a.wpq, lane),
                       p1 = load(s + a.wpq, lane + 32);
        list.merge_list(o0, p0);
        list.merge_list(o1, p1);
      }
    }
  }
  tree_merge(list, sh, static_cast<int>(warp), static_cast<int>(warp) - sub, a.wpq);
  if (active && sub == 0) finalize_list(list, q, a.k, a.excl, a.excl_off, a.hits, a.count);
}

}  // namespace

void launch_merge(const uint64_t* partial, int n_q, int n_splits, int K, int k, const ChunkQueries& q, OutHits out,
                  cudaStream_t s) {
  const int wpq = n_splits >= 8 ? 8 : n_splits >= 4 ? 4 : n_splits >= 2 ? 2 : 1;
  const int qpb = 8 / wpq;
  const size_t pre = static_cast<size_t>(qpb) * n_splits * K * sizeof(uint64_t);
  MergeArgs a{partial, n_splits, K, k, n_q, wpq, q.excl, q.excl_off, out.hits, out.count, pre <= 40 * 1024};
  merge_kernel<<<(n_q + qpb - 1) / qpb, 256, a.preload ? pre : 0, s>>>(a);
  launch_check("merge_kernel");
}

}  // namespace igla::cuda
