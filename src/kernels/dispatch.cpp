// Run-time kernel choice: the best the CPU supports, or the one IGLA_KERNEL / --kernel names
// (so tests run every path on one machine, as simdjson's SIMDJSON_FORCE_IMPLEMENTATION does).
#include <array>
#include <cstdlib>

#include "igla/error.hpp"
#include "kernels/kernel.hpp"

namespace igla::kernels {

// Best first. Only the target architecture's kernels are built (CMakeLists.txt defines which);
// each one's supported() asks the CPU at run time.
std::span<const Kernel* const> all_kernels() {
  static const auto list = std::to_array<const Kernel*>({
#if defined(IGLA_KERNELS_X86)
      &avx512_kernel(), &avx2_kernel(),
#endif
#if defined(IGLA_KERNELS_NEON)
      &neon_dotprod_kernel(), &neon_kernel(),
#endif
      &scalar_kernel()});
  return list;
}

const Kernel& select_kernel(const std::string& requested) {
  const std::string& name = requested;
  if (name.empty() || name == "auto") {
    for (const Kernel* k : all_kernels())
      if (k->supported()) return *k;
  }
  std::string known;
  for (const Kernel* k : all_kernels()) {
    if (name == k->name) {
      if (!k->supported()) throw Error("kernel '" + name + "' is not supported by this CPU");
      return *k;
    }
    known += (known.empty() ? "" : ", ") + std::string(k->name);
  }
  throw Error("unknown kernel '" + name + "' (--kernel / IGLA_KERNEL): known kernels are auto, " + known);
}

}  // namespace igla::kernels
