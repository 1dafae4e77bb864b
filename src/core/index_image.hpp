// igla internal: the .igla file image shared by reading (index_file.cpp), verifying
// (index_verify.cpp) and building (index_build.cpp) an index: the storage behind an Index, the
// checksums, and laying sections out into an image.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/index_format.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"

namespace igla {

// The file image: either a read-only mapping of the file or bytes built in memory. Both are
// parsed and verified by the same code, so a freshly built index behaves exactly like a loaded one.
struct Index::Storage {
  const char* data = nullptr;
  size_t size = 0;
  void* map = nullptr;
  std::unique_ptr<char, decltype(&std::free)> owned{nullptr, &std::free};  // 64-byte aligned, as a mapping is
  std::vector<format::SectionEntry> table;
  // F32V is verified on first use (it is large and only evaluation reads it); any number of
  // threads may ask at once.
  std::mutex float_mu;
  std::atomic<bool> float_verified{false};
  ~Storage() {
    if (map) munmap(map, size);
  }
};

namespace image {

using format::Header;
using format::SectionEntry;

uint64_t checksum(const void* p, size_t n);  // XXH3-64
// Covers every header field as well as the table, so no flipped byte goes unnoticed.
uint64_t meta_checksum(Header h, const SectionEntry* table, size_t n);

// The tags of the core format: every other tag is an extra section (kept, verified, not read).
inline constexpr std::string_view kCoreTags[] = {"VOCB", "VSRT", "CODE", "NORM", "F32V", "XFRM", "RRI8", "RF16"};
inline bool is_core_tag(std::string_view t) {
  return std::find(std::begin(kCoreTags), std::end(kCoreTags), t) != std::end(kCoreTags);
}

// One section to lay out: its tag, flags and bytes (owned elsewhere). A section copied from an
// existing image keeps its stored checksum (`stored`), so that re-laying out a file never gives
// damaged bytes (an unverified F32V) a fresh, matching checksum.
struct Piece {
  std::string tag;
  uint32_t flags;
  const char* data;
  size_t size;
  const uint64_t* stored = nullptr;
};

// Header and section table for pieces laid out in order, each 64-byte aligned; `end` is the
// file size (the last section's end).
struct Layout {
  Header h;
  std::vector<SectionEntry> table;
  uint64_t end = 0;
};
Layout lay_out(const Header& h0, const std::vector<Piece>& pieces);

// Copies a laid-out image into one 64-byte aligned allocation; returns its size.
size_t assemble(const Layout& l, const std::vector<Piece>& pieces, std::unique_ptr<char, decltype(&std::free)>& out);

// "PATH: what" (or "index: what" for an index built in memory).
[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw Error((path.empty() ? std::string("index") : path) + ": " + what);
}

}  // namespace image
}  // namespace igla
