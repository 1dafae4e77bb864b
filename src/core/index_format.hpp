// igla internal: the on-disk structs of the .igla format (documented in include/igla/index.hpp).
// Every multi-byte field is little-endian; the structs are read in place from the mmap'd file.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace igla::format {

inline constexpr char kMagic[8] = {'I', 'G', 'L', 'A', 'I', 'D', 'X', '\n'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kAlign = 64;
inline constexpr uint32_t kMaxSections = 64;  // a reader refuses more

struct Header {               // 64 bytes at offset 0
  char magic[8];
  uint32_t version;
  uint32_t n_sections;
  uint64_t n_words;
  uint32_t dims;
  uint32_t quant_method;      // igla::Quantization
  float threshold_factor;
  uint32_t float_dims;        // dims of the float vectors (F32V, XFRM input, rerank rows); 0: = dims
  uint64_t meta_checksum;     // XXH3-64 of this header (this field zeroed) and the section table
  uint8_t reserved[16];
};
static_assert(sizeof(Header) == 64);

struct SectionEntry {         // n_sections of these follow the header
  char tag[4];
  uint32_t flags;             // kLazy: checked when first read in full, not at open
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;          // XXH3-64 of the section's bytes
};
static_assert(sizeof(SectionEntry) == 32);

inline constexpr uint32_t kLazy = 1;

struct XfrmHeader {           // XFRM starts with this, then float mean[in], scale[in], rotation[out][in]
  uint32_t method;            // igla::Quantization, equal to the header's
  uint32_t in_dims;           // = the header's float dims
  uint32_t out_dims;          // = the header's (code) dims
  uint32_t fit_words;         // mean, scale and PCA were fitted on the first fit_words words
  uint64_t seed;              // the rotation's seed (informational: the matrix itself is stored)
  uint64_t reserved1;
};
static_assert(sizeof(XfrmHeader) == 32);

constexpr uint64_t align_up(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

inline std::string tag_string(const char t[4]) { return std::string(t, strnlen(t, 4)); }

}  // namespace igla::format
