// Why select_kernel() picks the kernel it picks, in words (igla bench prints it, so a reader of
// a result from any machine can tell which code ran and why).
#include <string>

#include "kernels/kernel.hpp"

namespace igla::kernels {
namespace {

struct Feature {
  const char* name;  // as __builtin_cpu_supports and /proc/cpuinfo spell it
  bool present;
};

#if defined(__x86_64__) || defined(__i386__)
// The instruction sets the x86 kernels test in their supported() (kernels/*/…_kernel.cpp).
std::string x86_features(bool want_present) {
  const Feature f[] = {{"avx2", __builtin_cpu_supports("avx2") != 0},
                       {"avx512f", __builtin_cpu_supports("avx512f") != 0},
                       {"avx512bw", __builtin_cpu_supports("avx512bw") != 0},
                       {"avx512dq", __builtin_cpu_supports("avx512dq") != 0},
                       {"avx512vl", __builtin_cpu_supports("avx512vl") != 0},
                       {"avx512vpopcntdq", __builtin_cpu_supports("avx512vpopcntdq") != 0}};
  std::string s;
  for (const Feature& x : f)
    if (x.present == want_present) s.append(s.empty() ? "" : " ").append(x.name);
  return s;
}
#endif

std::string cpu_features_note() {
#if defined(__x86_64__) || defined(__i386__)
  const std::string has = x86_features(true), lacks = x86_features(false);
  std::string s = "cpu has ";
  s += has.empty() ? "none of avx2 avx512*" : has;
  if (!lacks.empty()) s.append("; lacks ").append(lacks);
  return s;
#else
  return "no x86 features probed on this architecture";
#endif
}

}  // namespace

std::string explain_kernel_choice(const std::string& name, const std::string& forced_by) {
  const Kernel& k = select_kernel(name);  // throws as the searcher would
  std::string s = "kernel ";
  s.append(k.name).append(" (");
  if (!name.empty() && name != "auto")
    s.append("forced by ").append(forced_by);
  else
    s.append("the best this cpu runs");
  s.append("; ").append(cpu_features_note()).append(")");
  return s;
}

}  // namespace igla::kernels
