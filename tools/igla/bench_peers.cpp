#include "bench_peers.hpp"

#include <dlfcn.h>
#include "core/openmp.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "igla/error.hpp"
#include "igla/ternary.hpp"

#ifdef IGLA_HAVE_FAISS
#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexFlat.h>
#endif

namespace igla::cli {

#ifdef IGLA_HAVE_FAISS
namespace {

// OpenBLAS has its own thread pool: give it the same thread count as everyone else.
void set_blas_threads(int threads) {
  using Fn = void (*)(int);
  if (auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  omp_set_num_threads(threads);
}

std::vector<float> unit_rows(const std::vector<int8_t>& t, size_t n, uint32_t dims) {
  std::vector<float> f(n * dims);
  for (size_t i = 0; i < n; ++i) {
    float nn = 0;
    for (uint32_t d = 0; d < dims; ++d) nn += float(t[i * dims + d] != 0);
    const float inv = nn > 0 ? 1.0f / std::sqrt(nn) : 0.0f;
    for (uint32_t d = 0; d < dims; ++d) f[i * dims + d] = float(t[i * dims + d]) * inv;
  }
  return f;
}

// Both bitplanes as one binary code of 2 * 64 * W bits.
std::vector<uint8_t> binary_codes(const std::vector<int8_t>& t, size_t n, uint32_t dims) {
  const uint32_t W = plane_words(dims);
  std::vector<uint8_t> codes(n * W * 16);
  std::vector<uint64_t> row(2 * W);
  for (size_t i = 0; i < n; ++i) {
    pack_row({t.data() + i * dims, dims}, row);
    std::memcpy(codes.data() + i * W * 16, row.data(), W * 16);
  }
  return codes;
}

// One FAISS flat index (float or binary) with its prepared queries.
template <class IndexT, class Code, class Dist>
class FaissFlat final : public Peer {
 public:
  FaissFlat(std::string name, IndexT index, const std::vector<Code>& data, size_t n, std::vector<Code> queries,
            int threads)
      : name_(std::move(name)), index_(std::move(index)), queries_(std::move(queries)), threads_(threads) {
    index_.add(static_cast<int64_t>(n), data.data());
  }
  std::string name() const override { return name_; }
  void search(size_t nq, size_t k, std::vector<int64_t>& labels) override {
    set_blas_threads(threads_);
    labels.resize(nq * k);
    dist_.resize(nq * k);
    index_.search(static_cast<int64_t>(nq), queries_.data(), static_cast<int64_t>(k), dist_.data(),
                  labels.data());
  }

 private:
  std::string name_;
  IndexT index_;
  std::vector<Code> queries_;
  std::vector<Dist> dist_;
  int threads_;
};

}  // namespace

bool peers_available() { return true; }

std::string peers_note() {
  const char* ct = std::getenv("OPENBLAS_CORETYPE");
  return std::string("FAISS (Debian libfaiss-dev) on OpenBLAS") + (ct ? std::string(", OPENBLAS_CORETYPE=") + ct : "");
}

std::unique_ptr<Peer> make_faiss_flat_ip(const std::vector<int8_t>& v, size_t n, const std::vector<int8_t>& q,
                                         size_t nq, uint32_t dims, int threads) {
  return std::make_unique<FaissFlat<faiss::IndexFlatIP, float, float>>(
      "faiss IndexFlatIP (float32)", faiss::IndexFlatIP(dims), unit_rows(v, n, dims), n, unit_rows(q, nq, dims),
      threads);
}
std::unique_ptr<Peer> make_faiss_binary(const std::vector<int8_t>& v, size_t n, const std::vector<int8_t>& q,
                                        size_t nq, uint32_t dims, int threads) {
  return std::make_unique<FaissFlat<faiss::IndexBinaryFlat, uint8_t, int32_t>>(
      "faiss IndexBinaryFlat (Hamming)", faiss::IndexBinaryFlat(static_cast<int>(plane_words(dims) * 128)),
      binary_codes(v, n, dims), n, binary_codes(q, nq, dims), threads);
}

#else

bool peers_available() { return false; }
std::string peers_note() { return "FAISS not built in (apt-get install libfaiss-dev, then rebuild)"; }
std::unique_ptr<Peer> make_faiss_flat_ip(const std::vector<int8_t>&, size_t, const std::vector<int8_t>&, size_t,
                                         uint32_t, int) {
  throw Error("igla was built without FAISS");
}
std::unique_ptr<Peer> make_faiss_binary(const std::vector<int8_t>&, size_t, const std::vector<int8_t>&, size_t,
                                        uint32_t, int) {
  throw Error("igla was built without FAISS");
}

#endif

}  // namespace igla::cli
