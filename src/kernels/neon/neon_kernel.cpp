// NEON kernel (every AArch64 CPU: Apple M-series, Graviton, Ampere, Cortex-A). The body is in
// neon_kernel.inl, shared with the dotprod build (neon_dotprod_kernel.cpp).
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace neon {
#include "kernels/neon/neon_kernel.inl"

bool supported() { return true; }  // NEON (Advanced SIMD) is part of AArch64
}  // namespace neon

const Kernel& neon_kernel() {
  static const Kernel k{"neon",
                        "NEON, CNT popcounts in byte accumulators, 4 words per register, 4 queries per pass",
                        neon::kWords,
                        true,
                        neon::supported,
                        neon::dots,
                        neon::scores_impl,
                        neon::select_impl,
                        neon::scan_cosine,
                        neon::scan_topk,
                        neon::scan_sum_topk};
  return k;
}

}  // namespace igla::kernels
