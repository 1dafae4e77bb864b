#include "cuda_env.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace igla::cli {

CudaOptions cuda_options_from_env(CudaOptions o) {
  auto get = [](const char* name) { return std::getenv(name); };
  if (const char* m = get("IGLA_CUDA_MMA_MODE")) o.mma_mode = std::atoi(m);
  if (const char* m = get("IGLA_CUDA_STAGES")) o.mma_max_stages = std::atoi(m);
  if (const char* m = get("IGLA_CUDA_GROUP")) o.mma_group_soft = std::max(0, std::atoi(m));
  if (const char* m = get("IGLA_CUDA_GROUP_CTA")) o.mma_group_cta = std::atoi(m) == 1;
  if (const char* m = get("IGLA_CUDA_SINGLE")) o.single = m;
  if (const char* m = get("IGLA_CUDA_PERSIST_IDLE_MS")) o.persist_idle_ms = std::atof(m);
  if (const char* m = get("IGLA_CUDA_PERSIST_HOST_IDLE_MS")) o.persist_host_idle_ms = std::atof(m);
  if (const char* m = get("IGLA_CUDA_PERSIST_SLEEP_NS")) o.persist_sleep_ns = static_cast<uint32_t>(std::atoi(m));
  if (const char* m = get("IGLA_CUDA_PERSIST_RELAY")) o.persist_relay_flag = std::string(m) == "flag";
  if (const char* m = get("IGLA_CUDA_SINGLE_SPLIT")) o.single_split = static_cast<uint32_t>(std::atoi(m));
  if (get("IGLA_CUDA_SINGLE_SYNC")) o.single_sync = true;
  if (get("IGLA_CUDA_STATS")) o.stats = true;
  return o;
}

}  // namespace igla::cli
