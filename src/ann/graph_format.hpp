// igla internal: the bytes of the graph section GRPH (see include/igla/graph.hpp).
//
//   GraphHeader (128 bytes)
//   u8  counts0[n]                      layer-0 link count of each node (padded to 64 bytes)
//   links0[n][m0], link_bytes each      little-endian word ids (3 bytes under 2^24 words, else 4),
//                                       unused slots zero; then 4 zero bytes of slack (a 4-byte
//                                       load of the last 3-byte link stays inside); padded to 64
//   u32 upper_ids[n_upper]              nodes on layer >= 1, ascending (padded to 64)
//   u32 upper_off[n_upper + 1]          their records in upper_links, in u32 words (padded to 64)
//   u32 upper_links[upper_words]        per upper node, per level 1..L: count, then m slots
// Every array starts 64-byte aligned within the section (sections are 64-byte aligned in the file).
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla::ann {

inline constexpr uint32_t kGraphMagic = 0x31505247;  // "GRP1"

// keep_nearest, fill and alpha record how layer 0 was built (GraphParams); sections written
// before they existed hold zeros there (read as 0, no fill, 1).
struct GraphHeader {
  uint32_t magic, version, dims, m, m0, link_bytes, max_level, entry, ef_construction, keep_nearest;
  uint64_t n, n_upper, upper_words, seed;
  uint32_t fill;
  float alpha;
  uint64_t reserved[6];
};
static_assert(sizeof(GraphHeader) == 128);

struct GraphLayout {
  size_t counts0, links0, upper_ids, upper_off, upper_links, total;
  GraphLayout(uint64_t n, uint32_t m0, uint32_t link_bytes, uint64_t n_upper, uint64_t upper_words) {
    auto pad = [](size_t b) { return (b + 63) / 64 * 64; };
    counts0 = sizeof(GraphHeader);
    links0 = pad(counts0 + n);
    upper_ids = pad(links0 + n * m0 * link_bytes + 4);
    upper_off = pad(upper_ids + 4 * n_upper);
    upper_links = pad(upper_off + 4 * (n_upper + 1));
    total = pad(upper_links + 4 * upper_words);
  }
};

}  // namespace igla::ann
