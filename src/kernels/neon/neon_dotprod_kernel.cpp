// The NEON kernel built with the dotprod extension (Armv8.2+ optional, Armv8.4+ always: Apple
// M1 on, Neoverse N1/V1/V2, Graviton 2-4): SDOT accumulates the per-byte popcounts straight into
// int32, so no widening per block and half the accumulator registers. CMakeLists.txt compiles
// this file with +dotprod; dispatch picks it only where the CPU says it has it.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "kernels/kernel.hpp"
#include "kernels/neon/arm_cpu.hpp"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "neon_dotprod_kernel.cpp must be compiled with +dotprod (see CMakeLists.txt)"
#endif

namespace igla::kernels {
namespace neon_dotprod {
#include "kernels/neon/neon_kernel.inl"

bool supported() { return arm::has_dotprod(); }
}  // namespace neon_dotprod

const Kernel& neon_dotprod_kernel() {
  static const Kernel k{"neon-dotprod",
                        "NEON + dotprod, CNT popcounts summed by SDOT, 4 words per register, 4 queries per pass",
                        neon_dotprod::kWords,
                        true,
                        neon_dotprod::supported,
                        neon_dotprod::dots,
                        neon_dotprod::scores_impl,
                        neon_dotprod::select_impl,
                        neon_dotprod::scan_cosine,
                        neon_dotprod::scan_topk,
                        neon_dotprod::scan_sum_topk};
  return k;
}

}  // namespace igla::kernels
