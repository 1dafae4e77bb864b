// igla CUDA backend: the query preparation kernels of prepare.cu that the search paths launch:
// tile_queries_kernel (mma path: int8 tiles), query_planes_kernel (popc and sort paths: bitplanes).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace igla::cuda {

__global__ void tile_queries_kernel(const int8_t* trits, const float* weights, const uint32_t* term_off, int n_q,
                                    uint32_t dims, uint32_t Kp, int n_qt, int8_t* out, float* qw);
__global__ void query_planes_kernel(const int8_t* trits, int n_terms, uint32_t dims, uint32_t W, uint64_t* out);
// Launches query_planes_kernel over n_terms terms (at most 65,535 blocks of 128; the kernel strides).
void query_planes(const int8_t* trits, int n_terms, uint32_t dims, uint32_t W, uint64_t* out, cudaStream_t s);

}  // namespace igla::cuda
