// igla CLI: the IGLA_CUDA_* environment variables mapped onto the CUDA backend's typed options
// (the library reads no environment; the CLI and scripts/gpu/cuda_bench call this).
#pragma once

#include "igla/search.hpp"

namespace igla::cli {

// Starts from `base` (defaults) and overrides each field whose variable is set:
//   IGLA_CUDA_DEVICE=N               device            CUDA device ordinal
//   IGLA_CUDA_PATH=mma|popc|mt|sort  path              batch path (default: chosen per batch)
//   IGLA_CUDA_RERANK=host            device_rerank     rescore candidates on the host instead
//   IGLA_CUDA_RERANK_INT8=0|1        rerank_int8_rows  rerank rows on the GPU as the index's int8 bytes
//   IGLA_CUDA_CALIBRATE=0            calibrate         fixed path rule instead of timing both
//   IGLA_CUDA_MMA_MODE=1|2           mma_mode          timing experiments (wrong results)
//   IGLA_CUDA_STAGES=N               mma_max_stages    tile ring stages of the mma path
//   IGLA_CUDA_GROUP=N                mma_group_soft    group-drain threshold (0: overflow only)
//   IGLA_CUDA_GROUP_CTA=1            mma_group_cta     group drains of all 8 consumer warps
//   IGLA_CUDA_SINGLE=LIST            single            one-query route / mode (launch, graph, trace, ...)
//   IGLA_CUDA_PERSIST_IDLE_MS=X      persist_idle_ms   the persistent kernel leaves after X ms idle
//   IGLA_CUDA_PERSIST_HOST_IDLE_MS=X persist_host_idle_ms
//   IGLA_CUDA_PERSIST_SLEEP_NS=N     persist_sleep_ns
//   IGLA_CUDA_PERSIST_RELAY=flag     persist_relay_flag
//   IGLA_CUDA_SINGLE_SPLIT=N         single_split      words per CTA of the one-query kernel
//   IGLA_CUDA_SINGLE_SYNC=1          single_sync
//   IGLA_CUDA_SINGLE_PREFIX=N        single_prefix     keys a CTA keeps for one query past 32 keys (0: off)
//   IGLA_CUDA_STATS=1                stats             count kernel events (cuda_report)
//   IGLA_CUDA_MT_SAMPLE=N            mt_sample         words that bound the mt path's scan
//   IGLA_CUDA_MT_CAP=N               mt_cap            candidates kept per query on the mt path
//   IGLA_CUDA_MT_PREFILTER=0|1       mt_prefilter      the mt scan's fixed-point prefilter (A/B)
//   IGLA_CUDA_MT_SHARED_BOUND=0|1    mt_shared_bound   the bound pass over a chunk's distinct terms (A/B)
//   IGLA_CUDA_MT_SPREAD=N            mt_sample_spread  more words for that bound, spread over the rest
//   IGLA_CUDA_MT_SHARED=0|1|2        mt_shared_terms   the mt scan over a chunk's distinct terms (1: where they repeat)
//   IGLA_CUDA_MMA_SAMPLE=N           mma_sample        first words of the mma path's sampled start
//   IGLA_CUDA_MMA_SPREAD=N           mma_sample_spread words spread over the rest for that start
//   IGLA_CUDA_MMA_SAMPLE_K=N         mma_sample_min_k  list lengths from which the mma path samples
//   IGLA_CUDA_MMA_RANK=N             mma_sample_rank   that start the sample's N-th key, a guess (0: K-th)
//   IGLA_CUDA_BOUND_LANES=0|1        mma_bound_lanes   per-lane lists in that bound pass (default 1; 0 for A/B)
// Throws igla::Error naming the variable when a value does not parse.
CudaOptions cuda_options_from_env(CudaOptions base = {});

// IGLA_CUDA_REPORT=1: commands that search in batches (eval analogies) print the CUDA searcher's
// report (cuda_report: host time by phase, path counts, calibration) on stderr when done.
bool cuda_report_requested();

}  // namespace igla::cli
