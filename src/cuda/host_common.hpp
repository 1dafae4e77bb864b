// igla CUDA backend: host helpers shared by the search paths' launch code: the scratch bump
// allocator, the growable device / pinned buffer, the launch check, the per-split merge (merge.cu) and the popc kernel's probe (popc.cu).
#pragma once

#include <cuda_runtime.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
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

// A growable device or pinned host block (the CUDA searcher's slots, the CUDA IVF searcher's
// buffers). Host blocks are pinned and mapped (the one-query graph's kernels write their hits
// straight into them); with `huge`, blocks of 2 MB or more are 2 MB-aligned anonymous memory
// advised as huge pages and registered (fewer page faults to pin than cudaHostAlloc's 4 KB
// pages: NOTES v14), cudaHostAlloc where that fails.
struct DeviceBuffer {
  void* p = nullptr;
  size_t cap = 0;
  bool pinned = false;
  void* mapped = nullptr;  // host blocks from mmap + cudaHostRegister: the mapping (p inside it)
  size_t mapped_len = 0;
  void release() {
    if (p) {
      if (mapped) {
        cudaHostUnregister(p);
#if defined(__linux__)
        munmap(mapped, mapped_len);
#endif
      } else if (pinned) {
        cudaFreeHost(p);
      } else {
        cudaFree(p);
      }
    }
    p = mapped = nullptr;
    cap = mapped_len = 0;
  }
  // Returns true when it had to reallocate (the old contents are lost).
  bool ensure(size_t need, bool host, DeviceState& dev, bool huge = false) {
    if (need <= cap) return false;
    dev.quiesce();  // cudaFree / cudaHostAlloc wait for every kernel
    release();
    size_t c = std::max<size_t>(need + need / 4, 1 << 16);
    pinned = host;
    if (host && huge && register_huge(c)) return true;
    ck(host ? cudaHostAlloc(&p, c, cudaHostAllocMapped) : cudaMalloc(&p, c), host ? "cudaHostAlloc" : "cudaMalloc");
    cap = c;
    return true;
  }
  bool register_huge(size_t c) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr size_t kHuge = size_t{2} << 20;
    if (c < kHuge) return false;
    c = (c + kHuge - 1) / kHuge * kHuge;
    const size_t len = c + kHuge;  // room to align the start to 2 MB
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    void* a = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(m) + kHuge - 1) & ~uintptr_t{kHuge - 1});
    (void)madvise(a, c, MADV_HUGEPAGE);
    if (cudaHostRegister(a, c, cudaHostRegisterMapped) != cudaSuccess) {
      (void)cudaGetLastError();  // clear it: cudaHostAlloc takes over
      munmap(m, len);
      return false;
    }
    p = a;
    mapped = m;
    mapped_len = len;
    cap = c;
    return true;
#else
    (void)c;
    return false;
#endif
  }
  char* bytes() const { return static_cast<char*>(p); }
  void* device_view() const {
    void* d = nullptr;
    ck(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer");
    return d;
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
