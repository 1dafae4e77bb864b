#include "bench_notes.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

#if defined(__linux__)
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/kernel.hpp"

namespace igla::cli {
namespace {

#if defined(__linux__)
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
#endif

}  // namespace

std::string clock_note() {
#if defined(__linux__)
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_CPU_CYCLES;
  attr.disabled = 1;
  attr.exclude_kernel = 1;  // allowed at perf_event_paranoid 2 (Debian's default)
  attr.exclude_hv = 1;
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;  // scaled if multiplexed
  const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  if (fd < 0)
    return fmt::format("clock: unknown (no cycle counter readable here: perf_event_open: {})", std::strerror(errno));
  // Busy user-mode work on this thread for ~20 ms of its cpu time; cycles / cpu seconds.
  volatile uint64_t sink = 0;
  ioctl(fd, PERF_EVENT_IOC_RESET, 0);
  const double t0 = thread_cpu_seconds();
  ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
  double t1 = t0;
  uint64_t x = 1;
  while (t1 - t0 < 0.02) {
    for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    t1 = thread_cpu_seconds();
  }
  ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  sink = x;
  (void)sink;
  uint64_t v[3] = {0, 0, 0};  // count, time enabled, time running (ns of this thread's run time)
  const ssize_t got = read(fd, v, sizeof v);
  close(fd);
  if (got != static_cast<ssize_t>(sizeof v) || v[0] == 0 || v[2] == 0)
    return "clock: unknown (the cycle counter opened but counted nothing: a VM without a virtual PMU?)";
  // Cycles per nanosecond of the time the counter ran: the core's own cycles (Intel's unhalted
  // core cycles, AMD's core clock, turbo included), not a reference clock, and not a chain of
  // dependent adds, whose cycles per add differ between cores (that read ~6.5 GHz on an Intel
  // Xeon). Dividing by the counter's running time rather than the thread's cpu time keeps it
  // right when the counter is multiplexed or counts on one core type only (Intel hybrid CPUs:
  // a generic cycles event lives on the P-core PMU and stops while the thread is on an E-core).
  const double running_s = 1e-9 * double(v[2]);
  if (running_s < 0.25 * (t1 - t0))
    return fmt::format("clock: unknown (the cycle counter ran {:.1f} of {:.1f} ms: multiplexed or another core type)",
                       1e3 * running_s, 1e3 * (t1 - t0));
  return fmt::format("clock: ~{:.2f} GHz (cpu cycle counter over {:.0f} ms of this thread's cpu time; on a shared "
                     "VM it varies with the host's load, and every figure below with it)",
                     double(v[0]) / double(v[2]), 1e3 * running_s);
#else
  return "clock: unknown (no cycle counter read on this OS)";
#endif
}

KernelChoice kernel_choice(const std::string& kernel_option) {
  if (!kernel_option.empty())
    return {kernel_option, kernels::explain_kernel_choice(kernel_option, "--kernel " + kernel_option)};
  const char* env = std::getenv("IGLA_KERNEL");
  const std::string name = env ? env : "";
  return {name, kernels::explain_kernel_choice(name, "IGLA_KERNEL=" + name)};
}

}  // namespace igla::cli
