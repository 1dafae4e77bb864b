// Top16 (top16.hpp): whether the CPU runs its AVX-512 insertion.
#include "ann/top16.hpp"

namespace igla::ann {

#if defined(__x86_64__)
bool top16_available() { return __builtin_cpu_supports("avx512f"); }
#else
bool top16_available() { return false; }
#endif

}  // namespace igla::ann
