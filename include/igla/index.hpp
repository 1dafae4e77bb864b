// igla: the .igla index file and the in-memory index built on it.
//
// File layout (little-endian), see src/core/index_format.hpp for the structs:
//   header (64 bytes): magic "IGLAIDX\n", format version, code dims, word count, quantization
//                      method and threshold factor, float dims (0: same as code dims), section
//                      count, XXH3-64 of the header and section table
//   section table:     per section a four-character tag, offset, size and XXH3-64 of its bytes
//   sections, each 64-byte aligned:
//     VOCB  word byte offsets (u32[n+1]) then the UTF-8 words back to back
//     VSRT  word ids sorted by their bytes (u32[n]): lookup by binary search, nothing built at open
//     CODE  ternary codes in the blocked layout of ternary.hpp
//     NORM  float norm[n_padded] = sqrt(nnz), then float inv_norm[n_padded]
//     F32V  optional float32 vectors (n * float dims), kept for evaluation (`igla eval --float`)
//     XFRM  optional float -> code transform (centered and rotated modes; absent = seed):
//           u32 method, in dims, out dims, words fitted on; u64 seed, reserved; then float
//           mean[in], scale[in], rotation[out][in] (only when rotated)
//     RRI8  optional rerank rows, int8: float scale[float dims] (zero-padded to 64 bytes), then
//           int8 rows[n][float dims] of the unit vectors, row = round(unit / scale)
//     RF16  optional rerank rows, IEEE float16 unit vectors [n][float dims]
//     other tags: extra sections (ExtraSection below), kept and verified, read by their owners
// Thread-safety: an Index is immutable once opened or built; any number of threads may read it
// at once (derived() included). Share it as std::shared_ptr<const Index> (open_index()).
// The file is mmap'd; CODE, NORM, the vocabulary and the rerank rows are used in place, never
// copied. Writes go to a temporary file that is renamed into place (never in place: see below).
//
// What is verified when (a byte that can change an answer is verified before it is used; the
// checks are in src/core/index_verify.cpp, the user-visible behaviour in docs/RELIABILITY-index.md):
//   at open, before open() returns (the flags of the table do not change this):
//     - header: magic, version, XXH3 of header + table, dims (1 to 2^20), float dims (at most
//       2^20), words (1 to 2^32 - 16), quantization method, threshold factor (finite, 0 to 100),
//       reserved bytes zero; table: at most 64 sections, unique tags, known flags, 64-byte
//       aligned sections tiling the file (zero padding only, nothing after the last);
//     - the XXH3 checksum of every section but F32V: VOCB, VSRT, CODE, NORM, XFRM, RRI8, RF16
//       and every extra section;
//     - contents: vocabulary offsets increasing (no empty word); VSRT ids in range with their
//       words strictly ascending (no duplicates); codes canonical (sign bits only on non-zero
//       trits, nothing past dims, padding words zero); every norm and inverse norm equal to the
//       value derived from its code; XFRM matching the header, all finite; RRI8 scales positive
//       and finite; RF16 rows without NaN or infinity.
//   on first use: F32V (float32 vectors, read only by evaluation and re-conversion): checksum
//     and finite values, when float_vectors() / to_float_vectors() first runs (once per index,
//     thread-safe).
//   verify_all() (`igla info --verify`): every section's checksum again, F32V included.
// Measured on the 341,479-word GloVe index (int8 rerank rows, 51 MiB): see
// docs/RELIABILITY-index.md for open times, warm and cold.
//
// Thread safety: an Index is immutable once open() or build() returns: any number of threads
// may call its const members at once (share it as std::shared_ptr<const Index>).
// float_vectors() verifies F32V once under a lock. The mapping stays valid while the Index
// lives: a file must never be overwritten in place while an index of it is open (truncating
// it kills readers with SIGBUS); save() and `igla convert` only ever rename a new file over
// the old one, which readers that mapped the old one do not notice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/ternary.hpp"
#include "igla/vectors.hpp"

namespace igla {

// How float vectors become codes. Every method ends in the seed's threshold (quantize_seed);
// Centered first subtracts the mean vector of the frequent words and scales each dimension to
// unit variance; Rotated then multiplies by a random orthogonal D x float-dims matrix (D above the
// float dims: the hyperdimensional expansion; below: the top principal directions, rotated).
enum class Quantization : uint32_t { Seed = 0, Centered = 1, Rotated = 2 };
// Vectors kept beside the codes for the exact second stage of a two-stage search.
enum class Rerank : uint32_t { None = 0, Int8 = 1, F16 = 2 };

inline constexpr uint32_t kDefaultFitWords = 30000;

struct QuantParams {
  Quantization method = Quantization::Seed;
  float threshold_factor = kDefaultThresholdFactor;
  uint32_t code_dims = 0;     // Rotated: ternary dims D (0: the float dims rounded up to a
                              // multiple of 64, which the 64-bit planes store at no extra cost)
  uint64_t seed = 0x5eed;     // Rotated: the rotation's random seed
  bool scale_dims = true;     // Centered / Rotated: per-dimension scaling after centering
  // Centered / Rotated: fit mean, scale (and PCA) on the first N words, the frequent ones in
  // GloVe / word2vec order (0: all). The rare tail's vectors are noisy and pull the mean away.
  uint32_t fit_words = kDefaultFitWords;
  Rerank rerank = Rerank::None;  // rows stored for the exact second stage (RRI8 / RF16)
};

// The threshold factor each method defaults to (measured on GloVe-100d, docs/ACCURACY.md).
float default_threshold_factor(Quantization m);

// "seed", "centered", "rotated" or "rotated:D" into method and code dims (threshold unchanged).
void parse_quantization(std::string_view spec, QuantParams& q);  // throws Error
std::string quantization_name(const QuantParams& q);             // the inverse: "rotated:512"
Rerank parse_rerank(std::string_view name);                      // "none" | "int8" | "f16"
const char* rerank_name(Rerank r);

// The float -> code transform as stored (views into the index): y = R ((x - mean) * scale), then
// the seed threshold on y. Seed indexes have no mean, scale or rotation (y = x).
struct Transform {
  Quantization method = Quantization::Seed;
  uint32_t in_dims = 0, out_dims = 0;
  float threshold_factor = kDefaultThresholdFactor;
  uint64_t seed = 0;
  std::span<const float> mean, scale;  // in_dims each, or empty
  std::span<const float> rotation;     // out_dims x in_dims, row-major, or empty

  void apply(std::span<const float> x, std::span<float> y) const;         // y has out_dims
  void quantize(std::span<const float> x, std::span<int8_t> trits) const;  // trits has out_dims
};

// What search kernels need: a non-owning view of the codes and norms.
struct CodesView {
  uint32_t dims = 0;
  uint32_t W = 0;            // plane_words(dims)
  size_t n_words = 0;        // real words (the arrays are padded to a multiple of kBlockWords)
  const uint64_t* codes = nullptr;
  const float* norms = nullptr;
  const float* inv_norms = nullptr;
};

// An optional extra section of the .igla file, beside the core sections above: a tag of 1 to 4
// printable ASCII characters other than the core tags, and its bytes. Used by index types built
// on the flat index (e.g. an approximate IVF index stores its centroids and lists this way).
// Readers keep sections with tags they do not know and verify their XXH3 checksum at open, so
// an extra section is never read unverified; a file with extra sections stays a valid index for
// readers that ignore them. Each section starts 64-byte aligned in the file (and in memory).
struct ExtraSection {
  std::string tag;
  std::vector<std::byte> bytes;
};


class Index {
 public:
  // Opens and verifies a .igla file (mmap; see "What is verified when" above). Throws Error on a
  // missing, truncated, corrupt or non-regular file (a FIFO or device is refused without
  // blocking), naming the path, the section and the problem.
  static Index open(const std::string& path);
  // Builds an index in memory from float vectors: fits q's transform (mean, scale, rotation) to
  // them, quantizes each one, and adds the float32 vectors and rerank rows when asked.
  static Index build(const FloatVectors& vectors, const QuantParams& q, bool keep_float,
                     const Progress& progress = {});

  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  // Writes atomically: PATH.tmp.XXXXXX, then rename(2); nothing is left behind on failure (and
  // on SIGINT / SIGTERM in a program that calls remove_pending_temp_files(), igla/temp_files.hpp).
  // A symlink at `path` has its target replaced (the link stays); a device node, FIFO, socket or
  // directory at `path`, or a dangling symlink, is refused. `extra`
  // adds extra sections or replaces those of the same tag (in place in the section order; new
  // ones after the others); every other section is written as it is. Throws Error for a bad
  // tag (empty, longer than 4, not printable ASCII, a core tag, given twice), before any file
  // is touched.
  void save(const std::string& path, std::span<const ExtraSection> extra = {}) const;
  // The same index with `extra` added or replaced as in save(), in memory (path() empty).
  Index with_extra_sections(std::span<const ExtraSection> extra) const;
  // The bytes of the extra section `tag` (verified at open), or empty when there is none (or
  // `tag` names a core section: those are read through the accessors below). A view into the
  // index: valid while it lives; 64-byte aligned.
  std::span<const std::byte> extra_section(std::string_view tag) const;

  uint32_t dims() const { return view_.dims; }  // ternary code dims
  uint32_t float_dims() const { return float_dims_; }  // dims of the float vectors it was built from
  size_t size() const { return view_.n_words; }
  const QuantParams& quant() const { return quant_; }
  const Transform& transform() const { return xfrm_; }
  const CodesView& codes() const { return view_; }
  const std::string& path() const { return path_; }  // empty when built in memory

  std::string_view word(size_t id) const;
  std::optional<uint32_t> find(std::string_view word) const;
  // Closest known words by edit distance (frequent words first among equals), for error messages.
  std::vector<std::string> suggest(std::string_view word, size_t n = 3) const;

  std::vector<int8_t> trits(size_t id) const;  // unpacked codes of one word
  uint32_t nnz(size_t id) const;
  double nonzero_fraction() const;

  bool has_float() const { return float_data_ != nullptr; }
  // The float32 vectors kept for evaluation (empty without F32V); verifies them (checksum,
  // finite values) on first use, throwing Error when they are corrupt.
  std::span<const float> float_vectors() const;
  // The words and float32 vectors (the first `limit` words; 0: all) as built from, to build the
  // index again another way (`igla convert OLD.igla NEW.igla`). Throws Error without F32V.
  FloatVectors to_float_vectors(size_t limit = 0) const;

  Rerank rerank() const { return quant_.rerank; }
  // Word `id`'s rerank row as float (float_dims values, a unit vector up to rounding); needs rerank().
  void rerank_row(size_t id, std::span<float> out) const;
  // A hint: starts loading word `id`'s rerank row into the cache (no effect without rows or for a
  // bad id). The rerank stage issues it a few candidates ahead: rows are read at random, and a
  // miss to memory costs more than the row's arithmetic (BENCHMARKS.md, issue 16).
  void prefetch_rerank_row(size_t id) const;
  // The int8 rerank rows as stored (size() x float_dims(), row-major) and their per-dimension
  // scales (a row decodes to row[d] * scale[d]); empty unless rerank() is Int8.
  std::span<const int8_t> rerank_int8_rows() const;
  std::span<const float> rerank_int8_scales() const;

  struct SectionInfo {
    std::string tag;
    uint64_t offset, size, checksum;
  };
  std::vector<SectionInfo> sections() const;
  void verify_all() const;  // every section's checksum again, F32V included; throws Error
  uint64_t file_size() const;

  // A value derived from this index (a kernel's code layout, a device copy), made by `make` on
  // the first call with `key` and shared by every later caller: searchers over one index share
  // one copy. Thread-safe; the value lives as long as the index.
  std::shared_ptr<const void> derived(const std::string& key,
                                      const std::function<std::shared_ptr<const void>()>& make) const;

 private:
  Index();
  static void parse_image(Index& ix, const std::string& path);  // every check at open
  void verify_float_section() const;
  struct Storage;
  std::unique_ptr<Storage> storage_;
  std::string path_;
  QuantParams quant_;
  CodesView view_;
  const uint32_t* word_offsets_ = nullptr;
  const char* word_bytes_ = nullptr;
  const uint32_t* sorted_ids_ = nullptr;
  const float* float_data_ = nullptr;
  uint32_t float_dims_ = 0;
  Transform xfrm_;
  const float* rerank_scale_ = nullptr;  // RRI8's per-dimension scales
  const void* rerank_rows_ = nullptr;    // int8 or uint16 (float16) rows
  struct DerivedCache;
  std::shared_ptr<DerivedCache> derived_;  // made in the constructor; see derived()
};

// Opens `path` as a shared, immutable index (what searchers, engines and servers hold).
std::shared_ptr<const Index> open_index(const std::string& path);
// An in-memory index of n ternary vectors (n * dims values in {-1, 0, 1}) with words "w0".."w<n-1>":
// the codes are exactly these trits (seed quantization, threshold 0), no rerank rows.
std::shared_ptr<const Index> index_of_trits(std::span<const int8_t> trits, size_t n, uint32_t dims);

// The file name of the default index (GloVe 6B 100d) in the front ends' home directory
// ($IGLA_HOME, else ~/.cache/igla: the CLI and the Python module resolve it; the library reads no
// environment).
inline constexpr const char* kDefaultIndexName = "glove-100d.igla";

}  // namespace igla
