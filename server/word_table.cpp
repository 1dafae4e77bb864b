#include "word_table.hpp"

#include <bit>

namespace igla::server {

uint64_t WordTable::hash(std::string_view w) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a final mix (the slot is the low bits)
  for (unsigned char c : w) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}

WordTable::WordTable(const Index& ix) : ix_(&ix) {
  const size_t want = std::bit_ceil(std::max<size_t>(16, 2 * ix.size()));
  slots_.assign(want, kEmpty);
  mask_ = want - 1;
  for (size_t id = 0; id < ix.size(); ++id) {
    const std::string_view w = ix.word(id);
    for (uint64_t s = hash(w) & mask_;; s = (s + 1) & mask_) {
      if (slots_[s] == kEmpty) {
        slots_[s] = static_cast<uint32_t>(id);
        break;
      }
      if (ix.word(slots_[s]) == w) {  // a repeated word: the id the binary search finds
        if (auto f = ix.find(w)) slots_[s] = *f;
        break;
      }
    }
  }
}

std::optional<uint32_t> WordTable::find(std::string_view word) const {
  if (ix_ == nullptr) return std::nullopt;
  for (uint64_t s = hash(word) & mask_;; s = (s + 1) & mask_) {
    const uint32_t id = slots_[s];
    if (id == kEmpty) return std::nullopt;
    if (ix_->word(id) == word) return id;
  }
}

}  // namespace igla::server
