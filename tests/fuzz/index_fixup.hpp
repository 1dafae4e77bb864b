// igla fuzz: recomputes an index file's section checksums and header checksum over its (mutated)
// bytes, when its section table is readable, so that mutations reach the parsing behind them.
// Used by fuzz_index.cpp and by the regression test that replays its corpus
// (tests/test_hostile_inputs.cpp).
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/index_format.hpp"

namespace igla::fuzz {

inline void fix_checksums(std::vector<uint8_t>& f) {
  using namespace igla::format;
  if (f.size() < sizeof(Header)) return;
  Header h;
  std::memcpy(&h, f.data(), sizeof h);
  if (h.n_sections == 0 || h.n_sections > 64) return;
  const size_t table_end = sizeof(Header) + size_t{h.n_sections} * sizeof(SectionEntry);
  if (f.size() < table_end) return;
  std::vector<SectionEntry> table(h.n_sections);
  std::memcpy(table.data(), f.data() + sizeof h, table.size() * sizeof(SectionEntry));
  for (auto& e : table)
    if (e.offset <= f.size() && e.size <= f.size() - e.offset) e.checksum = XXH3_64bits(f.data() + e.offset, e.size);
  h.meta_checksum = 0;
  std::vector<uint8_t> meta(sizeof h + table.size() * sizeof(SectionEntry));
  std::memcpy(meta.data(), &h, sizeof h);
  std::memcpy(meta.data() + sizeof h, table.data(), table.size() * sizeof(SectionEntry));
  h.meta_checksum = XXH3_64bits(meta.data(), meta.size());
  std::memcpy(f.data(), &h, sizeof h);
  std::memcpy(f.data() + sizeof h, table.data(), table.size() * sizeof(SectionEntry));
}


}  // namespace igla::fuzz
