// igla CLI: IGLA_CUDA_* -> CudaOptions (cuda_env.hpp).
#include "cuda_env.hpp"

#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>

#include "igla/error.hpp"

namespace igla::cli {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

template <class T>
T number(const char* name, const char* v) {
  T x{};
  const std::string_view s(v);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size())
    throw Error(std::string(name) + "='" + v + "' is not a number");
  return x;
}

bool flag(const char* name, const char* v) {
  const std::string_view s(v);
  if (s == "1" || s == "on" || s == "yes" || s == "true") return true;
  if (s == "0" || s == "off" || s == "no" || s == "false") return false;
  throw Error(std::string(name) + "='" + v + "': expected 1 or 0");
}

}  // namespace

bool cuda_report_requested() {
  const char* v = env("IGLA_CUDA_REPORT");
  return v && flag("IGLA_CUDA_REPORT", v);
}

CudaOptions cuda_options_from_env(CudaOptions o) {
  if (const char* v = env("IGLA_CUDA_DEVICE")) o.device = number<int>("IGLA_CUDA_DEVICE", v);
  if (const char* v = env("IGLA_CUDA_PATH")) o.path = v;
  if (const char* v = env("IGLA_CUDA_RERANK")) {
    const std::string_view s(v);
    if (s != "host" && s != "device") throw Error(std::string("IGLA_CUDA_RERANK='") + v + "': expected host or device");
    o.device_rerank = s == "device";
  }
  if (const char* v = env("IGLA_CUDA_RERANK_INT8")) o.rerank_int8_rows = flag("IGLA_CUDA_RERANK_INT8", v);
  if (const char* v = env("IGLA_CUDA_CALIBRATE")) o.calibrate = flag("IGLA_CUDA_CALIBRATE", v);
  if (const char* v = env("IGLA_CUDA_MMA_MODE")) o.mma_mode = number<int>("IGLA_CUDA_MMA_MODE", v);
  if (const char* v = env("IGLA_CUDA_STAGES")) o.mma_max_stages = number<int>("IGLA_CUDA_STAGES", v);
  if (const char* v = env("IGLA_CUDA_GROUP")) o.mma_group_soft = number<int>("IGLA_CUDA_GROUP", v);
  if (const char* v = env("IGLA_CUDA_GROUP_CTA")) o.mma_group_cta = flag("IGLA_CUDA_GROUP_CTA", v);
  if (const char* v = env("IGLA_CUDA_APPEND_K")) o.mma_append_k = number<int>("IGLA_CUDA_APPEND_K", v);
  if (const char* v = env("IGLA_CUDA_APPEND_SLACK")) o.mma_append_slack = number<int>("IGLA_CUDA_APPEND_SLACK", v);
  if (const char* v = env("IGLA_CUDA_APPEND_EAGER")) o.mma_append_eager = number<int>("IGLA_CUDA_APPEND_EAGER", v);
  if (const char* v = env("IGLA_CUDA_SINGLE")) o.single = v;
  if (const char* v = env("IGLA_CUDA_PERSIST_IDLE_MS")) o.persist_idle_ms = number<double>("IGLA_CUDA_PERSIST_IDLE_MS", v);
  if (const char* v = env("IGLA_CUDA_PERSIST_HOST_IDLE_MS"))
    o.persist_host_idle_ms = number<double>("IGLA_CUDA_PERSIST_HOST_IDLE_MS", v);
  if (const char* v = env("IGLA_CUDA_PERSIST_SLEEP_NS")) o.persist_sleep_ns = number<uint32_t>("IGLA_CUDA_PERSIST_SLEEP_NS", v);
  if (const char* v = env("IGLA_CUDA_PERSIST_RELAY")) o.persist_relay_flag = std::string_view(v) == "flag";
  if (const char* v = env("IGLA_CUDA_SINGLE_SPLIT")) o.single_split = number<uint32_t>("IGLA_CUDA_SINGLE_SPLIT", v);
  if (const char* v = env("IGLA_CUDA_SINGLE_SYNC")) o.single_sync = flag("IGLA_CUDA_SINGLE_SYNC", v);
  if (const char* v = env("IGLA_CUDA_SINGLE_PREFIX")) o.single_prefix = number<int>("IGLA_CUDA_SINGLE_PREFIX", v);
  if (const char* v = env("IGLA_CUDA_STATS")) o.stats = flag("IGLA_CUDA_STATS", v);
  if (const char* v = env("IGLA_CUDA_HOST_HUGE")) o.host_huge_pages = flag("IGLA_CUDA_HOST_HUGE", v);
  if (const char* v = env("IGLA_CUDA_MT_SAMPLE")) o.mt_sample = number<uint32_t>("IGLA_CUDA_MT_SAMPLE", v);
  if (const char* v = env("IGLA_CUDA_MT_CAP")) o.mt_cap = number<uint32_t>("IGLA_CUDA_MT_CAP", v);
  if (const char* v = env("IGLA_CUDA_MT_PREFILTER")) o.mt_prefilter = flag("IGLA_CUDA_MT_PREFILTER", v);
  if (const char* v = env("IGLA_CUDA_MT_SHARED_BOUND")) o.mt_shared_bound = flag("IGLA_CUDA_MT_SHARED_BOUND", v);
  if (const char* v = env("IGLA_CUDA_MT_SHARED")) {
    o.mt_shared_terms = number<int>("IGLA_CUDA_MT_SHARED", v);
    if (o.mt_shared_terms < 0 || o.mt_shared_terms > 2)
      throw Error(std::string("IGLA_CUDA_MT_SHARED='") + v + "': expected 0, 1 or 2");
  }
  if (const char* v = env("IGLA_CUDA_MT_SPREAD")) o.mt_sample_spread = number<uint32_t>("IGLA_CUDA_MT_SPREAD", v);
  if (const char* v = env("IGLA_CUDA_MMA_SAMPLE")) o.mma_sample = number<uint32_t>("IGLA_CUDA_MMA_SAMPLE", v);
  if (const char* v = env("IGLA_CUDA_MMA_SPREAD")) o.mma_sample_spread = number<uint32_t>("IGLA_CUDA_MMA_SPREAD", v);
  if (const char* v = env("IGLA_CUDA_MMA_SAMPLE_K")) o.mma_sample_min_k = number<int>("IGLA_CUDA_MMA_SAMPLE_K", v);
  if (const char* v = env("IGLA_CUDA_MMA_RANK")) o.mma_sample_rank = number<uint32_t>("IGLA_CUDA_MMA_RANK", v);
  if (const char* v = env("IGLA_CUDA_BOUND_LANES")) o.mma_bound_lanes = flag("IGLA_CUDA_BOUND_LANES", v);
  return o;
}

}  // namespace igla::cli
