// igla internal: the search backends behind make_searcher() (src/core/registry.cpp). Each lives in
// its own folder (src/cpu, src/cuda); the CUDA one exists only when CMake found nvcc.
#pragma once

#include <memory>
#include <string>

#include "igla/search.hpp"

namespace igla {

std::shared_ptr<const Searcher> make_cpu_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts);

// The CUDA searcher over a shared index (registry backend "cuda"). Its device copy of the codes
// (and of the rerank rows, when the index has them) is made once per index per GPU
// (Index::derived) and shared by every CUDA searcher over that index. With rerank rows and
// opts.cuda.device_rerank it rescores candidates itself (capabilities().reranks). Throws Error
// saying why when the backend was not built or no GPU is usable.
std::shared_ptr<const Searcher> make_cuda_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts);

// The same over raw codes (tests, benchmarks): no index, so no rerank rows and no sharing; the
// codes are copied to the device here and need not outlive the call.
std::shared_ptr<const Searcher> make_cuda_searcher_for_codes(const CodesView& codes, const CudaOptions& opts);

// What a CUDA searcher counted and chose (kernel event counts when CudaOptions::stats, the
// persistent one-query kernel's counts, the path calibration table), as text lines for
// benchmarks and `igla` diagnostics; empty for any other searcher. Nothing is ever printed.
std::string cuda_report(const Searcher& s);
// The same for a CUDA IVF searcher (cuda_report answers it): batches on the GPU and on the CPU route.
std::string cuda_ivf_report(const Searcher& s);

// Exact float32 cosine search over the float32 vectors kept in the index (F32V): the float peer
// of `eval --float` and the tests' oracle. Queries need a float form (FloatForm::Float32).
std::shared_ptr<const Searcher> make_float_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts);

// True when a CUDA device can be used; otherwise `why` says why (not built, no device, ...).
bool cuda_available(std::string* why = nullptr);

}  // namespace igla
