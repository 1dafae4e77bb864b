// igla internal: the search backends behind make_searcher() (src/core/registry.cpp). Each lives in
// its own folder (src/cpu, src/cuda); the CUDA one exists only when CMake found nvcc.
#pragma once

#include <memory>
#include <string>

#include "igla/search.hpp"

namespace igla {

std::shared_ptr<const Searcher> make_cpu_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts);

// Throws Error saying why when the backend was not built or no GPU is usable.
std::shared_ptr<const Searcher> make_cuda_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts);

// Exact float32 cosine search over the float32 vectors kept in the index (F32V): the float peer
// of `eval --float` and the tests' oracle. Queries need a float form (FloatForm::Float32).
std::shared_ptr<const Searcher> make_float_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts);

// True when a CUDA device can be used; otherwise `why` says why (not built, no device, ...).
bool cuda_available(std::string* why = nullptr);

}  // namespace igla
