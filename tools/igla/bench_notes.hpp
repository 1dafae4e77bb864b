// The header lines of `igla bench` that let a reader on another machine place its figures:
// which kernel ran and why, and the core clock.
#pragma once

#include <string>

namespace igla::cli {

// "clock: ~3.71 GHz (cpu cycle counter over 20 ms of this thread's cpu time; ...)" where the OS lets
// this process read the cycle counter (perf_event_open), else "clock: unknown (...why...)".
// A loop of dependent adds, the old way, reads ~6.5 GHz on recent Intel cores, which run such
// chains faster than one add per cycle; the counter holds on every CPU that has one.
std::string clock_note();

// The kernel to run: `--kernel kernel_option`, else $IGLA_KERNEL, else "" (the best), and the
// line that says so: "kernel avx2 (forced by IGLA_KERNEL=avx2; cpu has ...)".
struct KernelChoice {
  std::string name, note;
};
KernelChoice kernel_choice(const std::string& kernel_option);

}  // namespace igla::cli
