// igla bench: the peers measured beside igla in the same run (FAISS, when it was found at build
// time). Nothing here is part of the library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace igla::cli {

// A flat index of a peer library, searched exactly like igla: batch of queries, top-k.
class Peer {
 public:
  virtual ~Peer() = default;
  virtual std::string name() const = 0;
  // labels: nq * k
  virtual void search(size_t nq, size_t k, std::vector<int64_t>& labels) = 0;
};

bool peers_available();  // false when igla was built without FAISS
std::string peers_note();  // BLAS/threads setup, for the bench header

// FAISS IndexFlatIP over the trits as unit-normalized float32 (inner product = cosine).
// `vocab`, `queries`: row-major trits.
std::unique_ptr<Peer> make_faiss_flat_ip(const std::vector<int8_t>& vocab, size_t n, const std::vector<int8_t>& queries,
                                         size_t nq, uint32_t dims, int threads);
// FAISS IndexBinaryFlat (Hamming distance) over the same 2-bit codes (nz and sign planes as bits):
// not the same metric, the same bytes per word — the fastest exact scan FAISS offers on them.
std::unique_ptr<Peer> make_faiss_binary(const std::vector<int8_t>& vocab, size_t n, const std::vector<int8_t>& queries,
                                        size_t nq, uint32_t dims, int threads);

}  // namespace igla::cli
