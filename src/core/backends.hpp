// igla internal: the search backends behind make_searcher(). Each lives in its own folder
// (src/cpu, src/cuda); the CUDA one exists only when CMake found nvcc.
#pragma once

#include <memory>
#include <string>

#include "igla/search.hpp"

namespace igla {

std::unique_ptr<Searcher> make_cpu_searcher(const CodesView& codes, const SearcherOptions& opts);

// Throws Error saying why when the backend was not built or no GPU is usable.
std::unique_ptr<Searcher> make_cuda_searcher(const CodesView& codes, const SearcherOptions& opts);

// True when a CUDA device can be used; otherwise `why` says why (not built, no device, ...).
bool cuda_available(std::string* why = nullptr);

}  // namespace igla
