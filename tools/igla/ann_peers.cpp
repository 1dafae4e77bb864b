#include "ann_peers.hpp"

#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "igla/error.hpp"

#ifdef IGLA_HAVE_HNSWLIB
#include <hnswlib/hnswlib.h>
#endif
#ifdef IGLA_HAVE_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#endif

namespace igla::cli {
namespace {

// Runs fn(i) for i in [0, n) on `threads` threads (dynamic, in chunks).
template <class Fn>
void parallel_for(size_t n, int threads, Fn fn) {
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t b; (b = next.fetch_add(16)) < n;)
      for (size_t i = b; i < std::min(n, b + 16); ++i) fn(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

#ifdef IGLA_HAVE_HNSWLIB
class Hnswlib final : public AnnPeer {
 public:
  Hnswlib(const std::vector<float>& x, size_t n, size_t d, int M, int efc, int threads)
      : space_(d), M_(M), efc_(efc), index_(&space_, n, static_cast<size_t>(M), static_cast<size_t>(efc)), d_(d) {
    // The first point alone (hnswlib's own examples do the same before parallel inserts).
    index_.addPoint(x.data(), 0);
    parallel_for(n - 1, threads, [&](size_t i) { index_.addPoint(x.data() + (i + 1) * d, i + 1); });
  }
  // Read from a file saveIndex wrote (bench-ann --cache).
  Hnswlib(const std::string& path, size_t d, int M, int efc)
      : space_(d), M_(M), efc_(efc), index_(&space_, path), d_(d) {}
  void save(const std::string& path) const override { const_cast<hnswlib::HierarchicalNSW<float>&>(index_).saveIndex(path); }
  std::string name() const override { return "hnswlib M=" + std::to_string(M_) + " efC=" + std::to_string(efc_); }
  std::string knob() const override { return "ef"; }
  double bytes_per_vector() const override {
    double links = 0;
    const size_t n = index_.cur_element_count;
    for (size_t i = 0; i < n; ++i) links += index_.element_levels_[i] * double(index_.size_links_per_element_);
    return double(index_.size_data_per_element_) + sizeof(void*) + links / double(n);
  }
  void search(const float* q, size_t nq, size_t k, int ef, int threads, std::vector<int64_t>& labels) override {
    index_.setEf(static_cast<size_t>(ef));  // hnswlib keeps ef in the index (set before the threads start)
    labels.assign(nq * k, -1);
    parallel_for(nq, threads, [&](size_t i) {
      auto r = index_.searchKnn(q + i * d_, k);
      for (size_t j = r.size(); j-- > 0;) {
        labels[i * k + j] = static_cast<int64_t>(r.top().second);
        r.pop();
      }
    });
  }

 private:
  hnswlib::InnerProductSpace space_;
  int M_, efc_;
  hnswlib::HierarchicalNSW<float> index_;
  size_t d_;
};
#endif

#ifdef IGLA_HAVE_FAISS
void set_threads(int threads) {
  using Fn = void (*)(int);
  if (auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
  omp_set_num_threads(threads);
}

class FaissPeer final : public AnnPeer {
 public:
  FaissPeer(std::string name, std::string knob, std::unique_ptr<faiss::Index> ix, std::unique_ptr<faiss::Index> q, double bpv)
      : name_(std::move(name)), knob_(std::move(knob)), ix_(std::move(ix)), quantizer_(std::move(q)), bpv_(bpv) {}
  std::string name() const override { return name_; }
  std::string knob() const override { return knob_; }
  double bytes_per_vector() const override { return bpv_; }
  void search(const float* q, size_t nq, size_t k, int param, int threads, std::vector<int64_t>& labels) override {
    set_threads(threads);
    std::vector<float> dist(nq * k);
    labels.assign(nq * k, -1);
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(ix_.get())) {
      h->hnsw.efSearch = param;  // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW
      if (threads <= 1) {
        for (size_t i = 0; i < nq; ++i)
          h->search(1, q + i * h->d, static_cast<faiss::Index::idx_t>(k), dist.data() + i * k, labels.data() + i * k);
      } else {
        h->search(static_cast<faiss::Index::idx_t>(nq), q, static_cast<faiss::Index::idx_t>(k), dist.data(), labels.data());
      }
    } else {
      auto* iv = dynamic_cast<faiss::IndexIVF*>(ix_.get());
      faiss::SearchParametersIVF sp;
      sp.nprobe = static_cast<size_t>(param);
      if (threads <= 1) {
        for (size_t i = 0; i < nq; ++i) iv->search(1, q + i * iv->d, static_cast<faiss::Index::idx_t>(k), dist.data() + i * k, labels.data() + i * k, &sp);
      } else {
        iv->search(static_cast<faiss::Index::idx_t>(nq), q, static_cast<faiss::Index::idx_t>(k), dist.data(), labels.data(), &sp);
      }
    }
  }

 private:
  std::string name_, knob_;
  std::unique_ptr<faiss::Index> ix_, quantizer_;
  double bpv_;
};
#endif

}  // namespace

void AnnPeer::save(const std::string&) const { throw Error(name() + ": cannot be saved"); }

bool have_hnswlib() {
#ifdef IGLA_HAVE_HNSWLIB
  return true;
#else
  return false;
#endif
}

bool have_faiss_ann() {
#ifdef IGLA_HAVE_FAISS
  return true;
#else
  return false;
#endif
}

std::unique_ptr<AnnPeer> make_hnswlib([[maybe_unused]] const std::vector<float>& x, [[maybe_unused]] size_t n,
                                      [[maybe_unused]] size_t d, [[maybe_unused]] int M,
                                      [[maybe_unused]] int ef_construction, [[maybe_unused]] int threads,
                                      [[maybe_unused]] const std::string& load) {
#ifdef IGLA_HAVE_HNSWLIB
  if (!load.empty()) return std::make_unique<Hnswlib>(load, d, M, ef_construction);
  return std::make_unique<Hnswlib>(x, n, d, M, ef_construction, threads);
#else
  throw Error("igla was built without hnswlib (apt-get install libhnswlib-dev, then rebuild)");
#endif
}

std::unique_ptr<AnnPeer> make_faiss_hnsw([[maybe_unused]] const std::vector<float>& x, [[maybe_unused]] size_t n,
                                         [[maybe_unused]] size_t d, [[maybe_unused]] int M,
                                         [[maybe_unused]] int ef_construction, [[maybe_unused]] int threads) {
#ifdef IGLA_HAVE_FAISS
  set_threads(threads);
  auto ix = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(d), M, faiss::METRIC_INNER_PRODUCT);
  ix->hnsw.efConstruction = ef_construction;
  ix->add(static_cast<faiss::Index::idx_t>(n), x.data());
  const double bpv = 4.0 * double(d) + double(ix->hnsw.neighbors.size()) * sizeof(faiss::HNSW::storage_idx_t) / double(n) +
                     sizeof(size_t) + 1 + sizeof(int);  // vector, links, offset, level
  return std::make_unique<FaissPeer>("faiss HNSWFlat M=" + std::to_string(M) + " efC=" + std::to_string(ef_construction),
                                     "ef", std::move(ix), nullptr, bpv);
#else
  throw Error("igla was built without FAISS (apt-get install libfaiss-dev, then rebuild)");
#endif
}

std::unique_ptr<AnnPeer> make_faiss_ivf([[maybe_unused]] const std::vector<float>& x, [[maybe_unused]] size_t n,
                                        [[maybe_unused]] size_t d, [[maybe_unused]] int nlist,
                                        [[maybe_unused]] int threads) {
#ifdef IGLA_HAVE_FAISS
  set_threads(threads);
  auto q = std::make_unique<faiss::IndexFlatIP>(static_cast<int>(d));
  auto ix = std::make_unique<faiss::IndexIVFFlat>(q.get(), d, static_cast<size_t>(nlist), faiss::METRIC_INNER_PRODUCT);
  ix->cp.seed = 1234;
  const size_t train = std::min(n, static_cast<size_t>(nlist) * 128);  // FAISS's own cap is 256 per list
  ix->train(static_cast<faiss::Index::idx_t>(train), x.data());
  ix->add(static_cast<faiss::Index::idx_t>(n), x.data());
  const double bpv = 4.0 * double(d) + sizeof(faiss::Index::idx_t) + 4.0 * double(d) * nlist / double(n);
  return std::make_unique<FaissPeer>("faiss IVFFlat nlist=" + std::to_string(nlist), "nprobe", std::move(ix),
                                     std::move(q), bpv);
#else
  throw Error("igla was built without FAISS (apt-get install libfaiss-dev, then rebuild)");
#endif
}

}  // namespace igla::cli
