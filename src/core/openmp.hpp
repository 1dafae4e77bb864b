// igla internal: <omp.h> when built with OpenMP, else the few OpenMP calls igla makes, answering
// as a team of one: the `#pragma omp` loops then run on the calling thread (CMakeLists.txt makes
// OpenMP optional; Apple's clang has none).
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#else
#include <algorithm>
#include <thread>

inline int omp_get_max_threads() { return 1; }
inline int omp_get_num_procs() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
inline void omp_set_num_threads(int) {}
#endif
