// igla internal: what this Arm CPU offers beyond NEON, asked once at run time (the kernels built
// with more than the AArch64 baseline run only where it says yes). Linux: the kernel's hwcaps;
// macOS: sysctl (every Apple M-series core has dotprod).
#pragma once

#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace igla::kernels::arm {

inline bool has_dotprod() {
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // arch/arm64/include/uapi/asm/hwcap.h
#endif
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &n, nullptr, 0) == 0 && v != 0;
#else
  return false;
#endif
}

}  // namespace igla::kernels::arm
