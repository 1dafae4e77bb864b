// igla CUDA backend: per-device state and per-index device copies (device.hpp).
#include "cuda/device.hpp"
#include "cuda/kernels.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "igla/error.hpp"

namespace igla::cuda {

void cuda_fail(cudaError_t e, const char* what) {
  throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}

uint32_t OneQueryKernel::post(const SingleArgs& a, uint32_t cmd) {
  uint32_t w[kSingleArgWords];
  std::memcpy(w, &a, sizeof w);
  const uint32_t tag = next_tag;
  const unsigned long long hi = static_cast<unsigned long long>(tag) << 32;
  volatile unsigned long long* b = box;
  for (int i = 0; i < kSingleArgWords; ++i) b[i] = hi | w[i];
  b[kSingleArgWords] = hi | cmd;
  next_tag = tag + 1 ? tag + 1 : 1;
  return tag;
}

void OneQueryKernel::stop_locked() {
  if (!running) return;
  post(SingleArgs{}, kCmdStop);
  running = false;
  ++stops;
  const Clock::time_point t0 = Clock::now();
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) cuda_fail(e, "persistent one-query kernel");
    if (seconds_since(t0) > 5.0) throw Error("cuda: the persistent one-query kernel did not stop within 5 s");
  }
}

DeviceState& device_state(int device) {
  static std::mutex mu;
  static std::map<int, DeviceState*> states;  // never freed: the kernels may outlive any searcher
  std::lock_guard<std::mutex> g(mu);
  ck(cudaSetDevice(device), "cudaSetDevice");
  auto it = states.find(device);
  if (it != states.end()) return *it->second;
  auto* d = new DeviceState;
  d->device = device;
  cudaDeviceProp prop{};
  ck(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  d->name = prop.name;
  d->num_sms = prop.multiProcessorCount;
  d->max_smem = prop.sharedMemPerBlockOptin;
  mma_prepare_attributes(d->max_smem);
  popc_prepare_attributes(d->max_smem);
  multi_prepare_attributes(d->max_smem);
  single_prepare_attributes(d->max_smem);
  persistent_prepare_attributes(d->max_smem);
  states.emplace(device, d);
  return *d;
}

DeviceCodes::~DeviceCodes() {
  try {
    dev->quiesce();  // cudaFree waits for every kernel of the device
  } catch (const std::exception&) {
  }
  cudaSetDevice(dev->device);
  cudaFree(codes);
  cudaFree(inv);
  cudaFree(tiled);
}

std::shared_ptr<DeviceCodes> upload_codes(const CodesView& codes, DeviceState& dev) {
  if (codes.n_words >= (size_t{1} << 31)) throw Error("--device cuda: more than 2^31 words");
  dev.quiesce();  // the build kernels need the SMs
  ck(cudaSetDevice(dev.device), "cudaSetDevice");
  auto dc = std::make_shared<DeviceCodes>();
  dc->dev = &dev;
  DeviceIndex& ix = dc->ix;
  ix.dims = codes.dims;
  ix.W = codes.W;
  ix.n = static_cast<uint32_t>(codes.n_words);
  ix.n_tiles = std::max<uint32_t>(1, (ix.n + kTileWords - 1) / kTileWords);
  ix.Kp = (codes.dims + 31) / 32 * 32;
  ix.tile_stride = kTileWords * ix.Kp + kTileExtra;

  cudaStream_t s0;
  ck(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking), "cudaStreamCreate");
  const size_t n_code_words = ::igla::code_words(codes.n_words, codes.dims);
  const size_t inv_n = static_cast<size_t>(ix.n_tiles) * kTileWords;
  ck(cudaMalloc(&dc->codes, std::max<size_t>(n_code_words, 1) * 8), "cudaMalloc(codes)");
  ck(cudaMalloc(&dc->inv, inv_n * sizeof(float)), "cudaMalloc(inv)");
  ck(cudaMalloc(&dc->tiled, static_cast<size_t>(ix.n_tiles) * ix.tile_stride), "cudaMalloc(tiled codes)");
  if (n_code_words)
    ck(cudaMemcpyAsync(dc->codes, codes.codes, n_code_words * 8, cudaMemcpyHostToDevice, s0), "upload codes");
  ck(cudaMemsetAsync(dc->inv, 0, inv_n * sizeof(float), s0), "memset");
  if (codes.n_words)
    ck(cudaMemcpyAsync(dc->inv, codes.inv_norms, codes.n_words * sizeof(float), cudaMemcpyHostToDevice, s0),
       "upload inverse norms");
  ix.codes = static_cast<const uint64_t*>(dc->codes);
  ix.inv = static_cast<const float*>(dc->inv);
  std::vector<uint32_t> perm(inv_n);
  tile_order(codes.inv_norms, ix.n, ix.n_tiles, perm.data());
  void* d_perm = nullptr;
  ck(cudaMalloc(&d_perm, inv_n * sizeof(uint32_t)), "cudaMalloc(tile order)");
  ck(cudaMemcpyAsync(d_perm, perm.data(), inv_n * sizeof(uint32_t), cudaMemcpyHostToDevice, s0), "upload tile order");
  build_device_index(ix, static_cast<const float*>(dc->inv), static_cast<const uint32_t*>(d_perm),
                     static_cast<int8_t*>(dc->tiled), s0);
  ck(cudaStreamSynchronize(s0), "building the device index");
  cudaFree(d_perm);
  ck(cudaGetLastError(), "building the device index");
  cudaStreamDestroy(s0);
  return dc;
}

DeviceRows::~DeviceRows() {
  try {
    dev->quiesce();
  } catch (const std::exception&) {
  }
  cudaSetDevice(dev->device);
  cudaFree(rows);
  cudaFree(rows8);
  cudaFree(scale);
  cudaFree(inv);
}

namespace {

// bytes: the index's int8 rows (kept as they are), or empty (rows decoded to float).
std::shared_ptr<DeviceRows> upload_rows(const Index& index, DeviceState& dev, std::span<const int8_t> bytes) {
  const uint32_t D = index.float_dims();
  const size_t n = index.size();
  std::vector<float> host;
  std::vector<int8_t> padded;  // int8 rows at a stride of 16 bytes
  const uint32_t stride = rerank_int8_stride(D);
  if (bytes.empty()) {
    host.resize(std::max<size_t>(1, n * D));
    for (size_t i = 0; i < n; ++i) index.rerank_row(i, std::span<float>(host.data() + i * D, D));
  } else {
    padded.assign(std::max<size_t>(1, n * stride), 0);
    for (size_t i = 0; i < n; ++i) std::memcpy(padded.data() + i * stride, bytes.data() + i * D, D);
  }
  dev.quiesce();
  ck(cudaSetDevice(dev.device), "cudaSetDevice");
  auto r = std::make_shared<DeviceRows>();
  r->dev = &dev;
  r->dims = D;
  r->n = n;
  if (bytes.empty()) {
    ck(cudaMalloc(&r->rows, host.size() * sizeof(float)), "cudaMalloc(rerank rows)");
    ck(cudaMemcpy(r->rows, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "upload rerank rows");
  } else {
    const std::span<const float> scale = index.rerank_int8_scales();
    r->stride8 = stride;
    ck(cudaMalloc(&r->rows8, padded.size()), "cudaMalloc(rerank rows)");
    ck(cudaMemcpy(r->rows8, padded.data(), padded.size(), cudaMemcpyHostToDevice), "upload rerank rows");
    ck(cudaMalloc(&r->scale, std::max<size_t>(1, scale.size()) * sizeof(float)), "cudaMalloc(rerank scales)");
    ck(cudaMemcpy(r->scale, scale.data(), scale.size() * sizeof(float), cudaMemcpyHostToDevice), "upload rerank scales");
  }
  ck(cudaMalloc(&r->inv, std::max<size_t>(1, n) * sizeof(float)), "cudaMalloc(rerank norms)");
  rerank_row_norms(r->view(), n, r->inv, nullptr);
  ck(cudaDeviceSynchronize(), "rerank row norms");
  return r;
}

}  // namespace

std::shared_ptr<const DeviceRows> shared_rows(const Index& index, DeviceState& dev, bool int8) {
  const std::span<const int8_t> bytes = int8 ? index.rerank_int8_rows() : std::span<const int8_t>{};
  const std::string key = "cuda/" + std::to_string(dev.device) + (bytes.empty() ? "/rerank-rows" : "/rerank-rows-int8");
  return std::static_pointer_cast<const DeviceRows>(
      index.derived(key, [&] { return std::static_pointer_cast<const void>(upload_rows(index, dev, bytes)); }));
}

}  // namespace igla::cuda
