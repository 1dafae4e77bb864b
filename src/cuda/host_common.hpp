// igla CUDA backend: host helpers shared by the search paths' launch code: the scratch bump
// allocator, the launch check, the per-split merge (merge.cu) and the popc kernel's probe (popc.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/device.hpp"
#include "cuda/kernels.hpp"

namespace igla::cuda {

// Bump allocator over one scratch block (256-byte aligned pieces).
struct Bump {
  char* p;
  size_t used = 0;
  template <class T>
  T* take(size_t count) {
    used = (used + 255) & ~size_t{255};
    T* r = reinterpret_cast<T*>(p ? p + used : nullptr);
    used += count * sizeof(T);
    return r;
  }
};

// A failed launch is an error (igla::Error through cuda_fail), never a warning printed by the
// library and then ignored.
inline void launch_check(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) cuda_fail(e, what);
}

// Merges each query's n_splits top-K lists (partial: [q][split][K]) without its exclusions into
// the final k hits: merge_kernel (merge.cu), for the mma and popc paths.
void launch_merge(const uint64_t* partial, int n_q, int n_splits, int K, int k, const ChunkQueries& q, OutHits out,
                  cudaStream_t s);
// cudaFuncGetAttributes of popc_kernel (popc.cu), for probe_kernels.
cudaError_t popc_probe();

}  // namespace igla::cuda
