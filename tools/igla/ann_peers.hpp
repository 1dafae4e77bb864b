// igla bench-ann: the approximate-search peers measured beside igla's IVF in the same run:
// hnswlib (header-only, when found at build time) and FAISS IndexHNSWFlat / IndexIVFFlat (when
// FAISS was found). Float32 unit vectors, inner product (= cosine). Nothing here is part of the
// library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace igla::cli {

class AnnPeer {
 public:
  virtual ~AnnPeer() = default;
  virtual std::string name() const = 0;       // "hnswlib M=16 efC=200"
  virtual std::string knob() const = 0;       // "ef" or "nprobe"
  virtual double bytes_per_vector() const = 0;
  // Top k labels of nq queries (nq x d floats, unit) with search breadth `param` (ef or nprobe),
  // on `threads` threads (1: the calling thread alone). labels: nq x k (-1 where fewer).
  virtual void search(const float* q, size_t nq, size_t k, int param, int threads, std::vector<int64_t>& labels) = 0;
  // Writes the built index to `path` (bench-ann --cache); peers that cannot throw Error.
  virtual void save(const std::string& path) const;
};

bool have_hnswlib();
bool have_faiss_ann();

// Builders: x is n x d unit float vectors (row-major); threads for the build.
// `load`: a file written by save() for the same vectors and parameters, read instead of building.
std::unique_ptr<AnnPeer> make_hnswlib(const std::vector<float>& x, size_t n, size_t d, int M, int ef_construction,
                                      int threads, const std::string& load = "");
std::unique_ptr<AnnPeer> make_faiss_hnsw(const std::vector<float>& x, size_t n, size_t d, int M, int ef_construction,
                                         int threads);
std::unique_ptr<AnnPeer> make_faiss_ivf(const std::vector<float>& x, size_t n, size_t d, int nlist, int threads);

}  // namespace igla::cli
