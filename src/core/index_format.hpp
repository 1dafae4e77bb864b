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
inline constexpr uint32_t kMaxDims = 1u << 20;  // code and float dims, as the loaders accept
inline constexpr uint64_t kMaxWords = (uint64_t{1} << 32) - 16;  // word ids are u32 (padded to 8)
inline constexpr float kMaxThresholdFactor = 100.0f;  // as `igla convert` accepts

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
  uint32_t flags;             // kLazy or 0 (see below)
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;          // XXH3-64 of the section's bytes
};
static_assert(sizeof(SectionEntry) == 32);

// Written on F32V: "verified when first read in full, not at open". Readers do not trust it:
// they decide by tag what is verified when (every section at open but F32V), so a flag set on
// CODE by an edit skips nothing. Other bits are refused.
inline constexpr uint32_t kLazy = 1;
inline constexpr uint32_t kKnownFlags = kLazy;

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
