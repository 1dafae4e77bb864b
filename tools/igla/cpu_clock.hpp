// The core clock this process runs at, from the CPU's own cycle counter, for `igla bench`.
#pragma once

#include <string>

namespace igla::cli {

// "clock: ~3.71 GHz (cpu cycle counter over 20 ms of this thread's cpu time; ...)" where the OS lets
// this process read the cycle counter (perf_event_open), else "clock: unknown (...why...)".
// A loop of dependent adds, the old way, reads ~6.5 GHz on recent Intel cores, which run such
// chains faster than one add per cycle; the counter holds on every CPU that has one.
std::string clock_note();

}  // namespace igla::cli
