// igla: the .igla index file and the in-memory index built on it.
//
// File layout (little-endian), see src/core/index_format.hpp for the structs:
//   header (64 bytes): magic "IGLAIDX\n", format version, dims, word count, quantization
//                      parameters, section count, XXH3-64 of the header and section table
//   section table:     per section a four-character tag, offset, size and XXH3-64 of its bytes
//   sections, each 64-byte aligned:
//     VOCB  word byte offsets (u32[n+1]) then the UTF-8 words back to back
//     VSRT  word ids sorted by their bytes (u32[n]): lookup by binary search, nothing built at open
//     CODE  ternary codes in the blocked layout of ternary.hpp
//     NORM  float norm[n_padded] = sqrt(nnz), then float inv_norm[n_padded]
//     F32V  optional float32 vectors (n * dims), kept for evaluation (`igla eval --float`)
// The file is mmap'd; CODE, NORM and the vocabulary are used in place, never copied. Required
// sections are checked against their checksum at open; optional large ones when first read in full
// and by `igla info`: every section is verified before it is used. Writes go to a temporary file that is renamed into place.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "igla/ternary.hpp"
#include "igla/vectors.hpp"

namespace igla {

enum class Quantization : uint32_t { Seed = 0 };

struct QuantParams {
  Quantization method = Quantization::Seed;
  float threshold_factor = kDefaultThresholdFactor;
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

struct Section;

class Index {
 public:
  // Opens and validates a .igla file (mmap). Throws Error on a missing, truncated or corrupt
  // file, naming the path and the problem.
  static Index open(const std::string& path);
  // Builds an index in memory from float vectors (quantizing each one).
  static Index build(const FloatVectors& vectors, const QuantParams& q, bool keep_float,
                     const Progress& progress = {});

  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  // Writes atomically (temporary file + rename); nothing is left behind on failure.
  void save(const std::string& path) const;

  uint32_t dims() const { return view_.dims; }
  size_t size() const { return view_.n_words; }
  const QuantParams& quant() const { return quant_; }
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
  // The float32 vectors kept for evaluation; verifies their checksum on first use.
  std::span<const float> float_vectors() const;

  struct SectionInfo {
    std::string tag;
    uint64_t offset, size, checksum;
  };
  std::vector<SectionInfo> sections() const;
  void verify_all() const;  // checks every section's checksum; throws Error on mismatch
  uint64_t file_size() const;

 private:
  Index();
  static void parse_image(Index& ix, const std::string& path);
  struct Storage;
  std::unique_ptr<Storage> storage_;
  std::string path_;
  QuantParams quant_;
  CodesView view_;
  const uint32_t* word_offsets_ = nullptr;
  const char* word_bytes_ = nullptr;
  const uint32_t* sorted_ids_ = nullptr;
  const float* float_data_ = nullptr;
  mutable bool float_verified_ = false;
};

// Default location of indexes and downloads: $IGLA_HOME, else ~/.cache/igla.
std::string igla_home();
std::string default_index_path();  // igla_home() + "/glove-100d.igla"

}  // namespace igla
