// igla: an inverted-file (IVF) index over the ternary codes: approximate search that scans only
// the lists nearest the query.
//
// Build: spherical k-means (fixed seed, deterministic for a given index and parameters) on the
// index's float32 vectors, else its rerank rows, else the trits themselves, into L lists; every
// word goes to the list of its nearest centroid (cosine). Each list's codes are copied in the
// index's blocked layout (include/igla/ternary.hpp), the lists back to back, each starting on a
// multiple of kIvfAlign words, so the CPU kernels scan a list with the same fused top-k as the
// whole vocabulary; a position -> word id table maps list-local hits back.
//
// Search (make_ivf_searcher, backend "ivf"): each query scores the L centroids (its float form
// against the float centroids when both exist, else its ternary terms against the code-space
// centroids, the mean trits of each list) and scans the best `nprobe` lists (SearchParams::nprobe,
// 0: default_nprobe()). A batch is grouped by list, so a list's codes are read once per group of
// queries that probe it. With nprobe >= L every word is scanned, and the answer is exactly the
// exact search's (scores, order and ties). The rerank stage wraps it like any searcher.
//
// Storage: the sections IVFM (header, list offsets, centroids) and IVFW (position -> word ids,
// codes, inverse norms) of the .igla file, checksummed like every section; an index without them
// behaves as before (the "ivf" backend then builds the lists in memory, once per index).
// Thread-safety: an IvfIndex is immutable once built or parsed; searches may run at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/vectors.hpp"

namespace igla {

// Lists start on a multiple of this many words, so both kernel layouts (8- and 16-word blocks)
// start a block at every list.
inline constexpr uint32_t kIvfAlign = 32;  // the widest kernel block (AVX2 fast scan: 32 words)
inline constexpr uint32_t kIvfFormatVersion = 1;

// What the centroids were fitted on.
enum class IvfSource : uint32_t { Float32 = 0, RerankRows = 1, Trits = 2 };
const char* ivf_source_name(IvfSource s);

struct IvfParams {
  uint32_t lists = 0;         // L (0: default_ivf_lists(n))
  // k-means iterations on the training sample, and its size: L x train_per_list words (all when
  // fewer), drawn by `seed`. 30 x 256 measured on GloVe-100d (BENCHMARKS.md, "IVF-int8 round 5"):
  // recall@10 +0.003-0.005 at every nprobe over 12 x 128 (the same recall with ~12% fewer rows
  // scanned) for ~2.5x the k-means time.
  uint32_t iterations = 30;
  uint32_t train_per_list = 256;
  uint64_t seed = 0x1f5eedULL;
  int threads = 0;            // threads for the assignment passes (0: all cores); never changes the result
};

// The default list count for n words (measured on GloVe-100d, BENCHMARKS.md): about 2 sqrt(n).
uint32_t default_ivf_lists(size_t n);

class IvfIndex {
 public:
  // Builds the lists of `ix` (k-means as described above). Throws Error for an empty index or
  // lists > words. `progress` gets (iteration, iterations + 1) calls.
  static IvfIndex build(const Index& ix, const IvfParams& p = {}, const Progress& progress = {});
  // Parses the two sections' bytes (views; they must outlive the IvfIndex) and checks them
  // against `ix` (dims, words, offsets, ids a permutation): throws Error naming what is wrong.
  static IvfIndex parse(const Index& ix, std::span<const std::byte> meta, std::span<const std::byte> words);
  // The index's IVF sections, parsed (views into the index); throws Error when they are absent
  // or wrong (see parse). Their checksums were verified when the index was opened.
  static IvfIndex from_index(const Index& ix);
  // The two sections for the file (Index::save(path, sections()) or with_extra_sections):
  // {"IVFM", bytes}, {"IVFW", bytes}.
  std::vector<ExtraSection> sections() const;

  uint32_t lists() const { return lists_; }
  uint32_t dims() const { return dims_; }
  uint32_t float_dims() const { return float_dims_; }  // 0: no float centroids
  size_t size() const { return n_words_; }
  size_t positions() const { return positions_; }  // padded positions of all lists
  IvfSource source() const { return source_; }
  uint64_t seed() const { return seed_; }
  uint32_t iterations() const { return iterations_; }

  // List l holds positions [offset(l), offset(l) + list_size(l)); offset(l) % kIvfAlign == 0.
  uint32_t offset(uint32_t l) const { return offsets_[l]; }
  uint32_t list_size(uint32_t l) const { return sizes_[l]; }
  std::span<const uint32_t> ids() const { return {ids_, positions_}; }  // position -> word id (~0u: padding)
  std::span<const float> code_centroids() const { return {code_centroids_, size_t{lists_} * dims_}; }
  std::span<const float> float_centroids() const { return {float_centroids_, size_t{lists_} * float_dims_}; }
  // The lists' codes as one code array of positions() words (padding words all zero).
  CodesView codes() const;
  // The list each word is in (n words), for tests and `igla info`.
  std::vector<uint32_t> assignment() const;
  // Bytes the search reads per word: codes, inverse norm, id; plus the centroids spread over n.
  double bytes_per_word() const;

  IvfIndex(IvfIndex&&) noexcept;
  IvfIndex& operator=(IvfIndex&&) noexcept;
  ~IvfIndex();

 private:
  IvfIndex();
  struct Owned;
  std::unique_ptr<Owned> own_;  // built in memory: the arrays below point into it
  uint32_t lists_ = 0, dims_ = 0, float_dims_ = 0, iterations_ = 0;
  size_t n_words_ = 0, positions_ = 0;
  IvfSource source_ = IvfSource::Trits;
  uint64_t seed_ = 0;
  const uint32_t* offsets_ = nullptr;  // lists + 1
  const uint32_t* sizes_ = nullptr;    // lists
  const float* code_centroids_ = nullptr;
  const float* float_centroids_ = nullptr;
  const uint32_t* ids_ = nullptr;
  const uint64_t* codes_ = nullptr;
  const float* inv_norms_ = nullptr;
};

// The nprobe a call with SearchParams::nprobe = 0 gets for `lists` lists: L / 32 (measured on
// GloVe-100d with the default 50 rerank candidates: within 0.02 of the exact scan's recall@10;
// recall >= 0.95 against float32 needs more candidates and lists, see BENCHMARKS.md).
uint32_t default_nprobe(uint32_t lists);

// An IVF searcher over `index` with `ivf` (nullptr: the index's IVF sections when it has them,
// else lists built in memory with default IvfParams and cached in the index, see Index::derived).
// Uses opts.cpu (threads, kernel). Ternary answers only: make_searcher adds the rerank stage.
std::shared_ptr<const Searcher> make_ivf_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                  std::shared_ptr<const IvfIndex> ivf = nullptr);

// The IVF-int8 searcher (FAISS IVF-SQ8's shape) over `index` and its IVF lists (nullptr: as
// make_ivf_searcher): the lists hold the index's int8 rerank rows (needs Rerank::Int8 and an IVF
// with float centroids), scanned with the query's float form quantized to int8 (AVX-512 VNNI where
// the CPU has it, else a plain loop; opts.cpu.kernel = "scalar" forces the loop, same answers).
// The probes are the nprobe centroids best by the same int8 arithmetic (the float centroids
// quantized like the rows). A batch reads each probed list once and scans it against all the
// queries probing it (threads split the lists).
// Per query the best max(candidates, k) rows by that score (plus exclusions) are rescored with the
// rerank stage's exact arithmetic on the same rows (so the scores are the rerank stage's), best k
// returned. Sum queries with a float form only; a batch with a query without one, 3CosMul, or a
// `limit` goes to the ternary IVF + rerank stage instead. The rows are laid out once, here
// (~0.1 s for GloVe's 341K words; 100 + 4 bytes per word beside the index). A batch's working
// buffers are kept between calls in a small pool (at most 8 sets, none over 64 MiB), so a warm
// searcher allocates nothing per batch. Reranks itself: do not wrap it in make_rerank_stage.
// With `ivf` nullptr and an index holding residual rows (section IVFR, `igla build-ivf --residual`,
// include/igla/ivf_residual.hpp), the searcher scans those rows instead: make_ivf_residual_searcher.
// Thread-safety: search() is const and reentrant.
std::shared_ptr<const Searcher> make_ivf8_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                   std::shared_ptr<const IvfIndex> ivf = nullptr);

// The IVF searcher on a CUDA GPU (backend "cuda-ivf"; src/cuda/ivf_searcher.cpp): the same lists
// and probes as make_ivf_searcher, each probed list's codes scanned on the tensor cores against
// the batch's queries that probe it (a batch is grouped by list), each query's best
// candidates + exclusions of its nprobe lists merged on the GPU, then rescored there on the rerank
// rows when the index has them (opts.cuda.device_rerank; capabilities().reranks). Answers equal
// make_ivf_searcher's (+ the rerank stage) at the same nprobe: same scores, order and ties. One-term
// Sum queries with k + candidates + exclusions <= 64 take the GPU; any other query goes to the CPU
// IVF searcher (same answers). Uses opts.cuda.device and opts.cpu (threads for the probes and the
// CPU route). Throws Error when the CUDA backend is not built or no GPU is usable.
std::shared_ptr<const Searcher> make_cuda_ivf_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                       std::shared_ptr<const IvfIndex> ivf = nullptr);

// The index's IVF lists: parsed from its sections, else built with default parameters; cached in
// the index (one copy per index, shared by every searcher).
std::shared_ptr<const IvfIndex> ivf_of(const Index& index);
bool has_ivf_sections(const Index& index);

// Adds the "ivf", "ivf-int8" and "cuda-ivf" backends to the registry (make_searcher,
// SearcherOptions::backend): make_ivf_searcher (with the rerank stage make_searcher adds),
// make_ivf8_searcher (which reranks itself) and make_cuda_ivf_searcher, each over the index's own
// IVF lists.
void register_ivf_backend();

}  // namespace igla
