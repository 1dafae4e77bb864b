// Stands in for src/cuda when the CUDA backend is not built, so callers get a clear message.
#ifndef IGLA_HAVE_CUDA
#include "core/backends.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"

namespace igla {

bool cuda_available(std::string* why) {
  if (why) *why = "igla was built without the CUDA backend (no nvcc found, or IGLA_CUDA=OFF)";
  return false;
}

std::shared_ptr<const Searcher> make_cuda_searcher(std::shared_ptr<const Index>, const SearcherOptions&) {
  std::string why;
  cuda_available(&why);
  throw Error("--device cuda: " + why);
}

std::shared_ptr<const Searcher> make_cuda_searcher_for_codes(const CodesView&, const CudaOptions&) {
  std::string why;
  cuda_available(&why);
  throw Error("--device cuda: " + why);
}

std::string cuda_report(const Searcher&) { return {}; }
std::string cuda_ivf_report(const Searcher&) { return {}; }

std::shared_ptr<const Searcher> make_cuda_ivf_searcher(std::shared_ptr<const Index>, const SearcherOptions&,
                                                       std::shared_ptr<const IvfIndex>) {
  std::string why;
  cuda_available(&why);
  throw Error("--device cuda-ivf: " + why);
}

}  // namespace igla
#endif
