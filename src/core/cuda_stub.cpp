// Stands in for src/cuda when the CUDA backend is not built, so callers get a clear message.
#ifndef IGLA_HAVE_CUDA
#include "core/backends.hpp"
#include "igla/error.hpp"

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

}  // namespace igla
#endif
