// igla CUDA backend: the query preparation kernels of prepare.cu that the search paths launch:
// tile_queries_kernel (mma path: int8 tiles), query_planes_kernel (popc and sort paths: bitplanes).
#pragma once

#include <cstdint>

namespace igla::cuda {

__global__ void tile_queries_kernel(const int8_t* trits, const float* weights, const uint32_t* term_off, int n_q,
                                    uint32_t dims, uint32_t Kp, int n_qt, int8_t* out, float* qw);
__global__ void query_planes_kernel(const int8_t* trits, int n_terms, uint32_t dims, uint32_t W, uint64_t* out);

}  // namespace igla::cuda
