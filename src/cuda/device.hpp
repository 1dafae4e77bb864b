// igla CUDA backend: what exists once per GPU (the device's properties and its persistent
// one-query kernel) and once per index per GPU (the device copies of the codes and the rerank
// rows, cached by Index::derived so every CUDA searcher over one index shares them). Host code;
// included by src/cuda only.
//
// The persistent one-query kernel (kernels.hpp, PersistArgs) belongs to the device, not to a
// searcher: any searcher on the GPU posts its one-query searches to it (one at a time, under
// OneQueryKernel::mu, from posting to reading the answer; each searcher's query carries its own
// index pointers and answer block, so searchers over different indexes share it). It is started
// lazily by the first one-query search, restarted when a query needs another grid shape, and
// leaves by itself after CudaOptions::persist_idle_ms without a query. While it runs its CTAs
// fill the SMs, so work that needs them asks the device to stop it first (DeviceState::quiesce):
// a batch search (and the kernel stays off while any batch runs: one-query searches then take
// the one-launch route), a one-launch query, and freeing device memory (cudaFree waits for every
// kernel). No searcher stops it when it is made or for any other reason of its own; the next
// one-query search starts it again.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "cuda/kernels.hpp"
#include "igla/index.hpp"

namespace igla::cuda {

[[noreturn]] void cuda_fail(cudaError_t e, const char* what);
inline void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) cuda_fail(e, what);
}

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The device's persistent one-query kernel and its mailbox. Every field is guarded by mu.
struct OneQueryKernel {
  std::mutex mu;
  cudaStream_t stream = nullptr;              // its own non-blocking stream
  unsigned long long* box = nullptr;          // mapped pinned mailbox, kBoxWords words
  const unsigned long long* box_dev = nullptr;
  unsigned long long* relay = nullptr;        // device, kRelayWords words
  bool running = false;
  int form = -1, n_splits = 0;
  uint32_t split_len = 0;
  size_t smem = 0;
  uint32_t next_tag = 1;                      // never 0 (the zeroed mailbox)
  Clock::time_point last{};                   // last answer read
  unsigned long long starts = 0, queries = 0, recoveries = 0, stops = 0;
  std::map<std::tuple<int, int, size_t>, bool> fits;  // (form, splits, smem) -> grid resident at once

  // Writes one message (every word tagged with next_tag) and advances the tag (mu held).
  uint32_t post(const SingleArgs& a, uint32_t cmd);
  // Stops the kernel if it runs (mu held): a stop message, then its stream's end, at most 5 s.
  void stop_locked();
};

struct DeviceState {
  int device = 0;
  std::string name;
  int num_sms = 0;
  size_t max_smem = 0;
  OneQueryKernel one;
  std::atomic<int> batches{0};  // batch searches in flight: the persistent kernel stays off

  // Stops the device's persistent one-query kernel, if it runs (before work that needs the SMs).
  void quiesce() {
    std::lock_guard<std::mutex> g(one.mu);
    one.stop_locked();
  }
};

// The state of CUDA device `device` (made on first use, with the kernels' attributes set; lives
// until the process ends). Makes `device` current.
DeviceState& device_state(int device);

// While it lives, a batch search runs on the device: the persistent kernel is stopped and stays off.
class BatchGuard {
 public:
  explicit BatchGuard(DeviceState& d) : d_(d) {
    ++d_.batches;
    d_.quiesce();
  }
  ~BatchGuard() { --d_.batches; }
  BatchGuard(const BatchGuard&) = delete;
  BatchGuard& operator=(const BatchGuard&) = delete;

 private:
  DeviceState& d_;
};

// The path a batch of one shape took, timed once (CudaOptions::calibrate).
struct Calibration {
  double popc_s = 0, mma_s = 0;  // wall time of the same sub-batch, end to end, second run of each
  size_t queries = 0;            // its size
  bool mma = false;              // the faster
};
struct CalibKey {
  int size_class = 0;   // ceil(log2(queries in one chunk))
  int list_class = 0;   // 32 or 64 (K)
  uint32_t limit = 0;   // L
  auto tie() const { return std::tie(size_class, list_class, limit); }
  bool operator<(const CalibKey& o) const { return tie() < o.tie(); }
};

// An index's codes on one device: bitplanes, inverse norms and the mma tiles; plus the path
// calibration of batches over it (shared by its searchers: the same data, the same answer).
struct DeviceCodes {
  DeviceState* dev = nullptr;
  DeviceIndex ix;
  void* codes = nullptr;
  void* inv = nullptr;
  void* tiled = nullptr;
  mutable std::mutex calib_mu;
  mutable std::map<CalibKey, Calibration> calib;
  ~DeviceCodes();
};
// Copies `codes` to dev (the caller keeps them alive only during the call).
std::shared_ptr<DeviceCodes> upload_codes(const CodesView& codes, DeviceState& dev);

// An index's rerank rows on one device, n * float_dims: decoded to float by the index itself
// (Index::rerank_row, the same decoding as the CPU rerank), or with int8 (an index with int8
// rows only) the index's bytes and scales, decoded by the kernels to the same floats.
struct DeviceRows {
  DeviceState* dev = nullptr;
  float* rows = nullptr;
  int8_t* rows8 = nullptr;  // rows of stride8 bytes (rerank_int8_stride(dims)), zero-padded
  float* scale = nullptr;
  float* inv = nullptr;  // per row 1 / |row| (rerank_row_norms)
  uint32_t dims = 0, stride8 = 0;
  size_t n = 0;
  RerankRows view() const { return {rows, rows8, scale, inv, dims, stride8}; }
  ~DeviceRows();
};
// The index's rows on dev, uploaded at first use and kept in its derived() cache, one copy per
// index, device and form ("cuda/N/rerank-rows", "cuda/N/rerank-rows-int8"): int8 asks for the
// index's int8 bytes, which an index with float16 rows does not have (it gets float rows).
std::shared_ptr<const DeviceRows> shared_rows(const Index& index, DeviceState& dev, bool int8);

}  // namespace igla::cuda
