// igla CLI: the IGLA_CUDA_* environment variables (A/B knobs of the GPU runs) as typed options.
// Only front ends read the environment; the library takes CudaOptions.
#pragma once

#include "igla/search.hpp"

namespace igla::cli {

// Starts from `base` and applies every IGLA_CUDA_* variable that is set.
CudaOptions cuda_options_from_env(CudaOptions base = {});

}  // namespace igla::cli
