// The in-memory index: word lookup and per-word accessors over the verified image. The file
// format is in index_file.cpp (read, write) and index_verify.cpp (checks); building in
// index_build.cpp; suggestions in suggest.cpp.
#include <cmath>

#include "core/index_image.hpp"

namespace igla {

std::string_view Index::word(size_t id) const {
  return {word_bytes_ + word_offsets_[id], word_offsets_[id + 1] - word_offsets_[id]};
}

std::optional<uint32_t> Index::find(std::string_view w) const {
  const uint32_t* end = sorted_ids_ + size();
  const uint32_t* it = std::lower_bound(sorted_ids_, end, w, [&](uint32_t id, std::string_view x) { return word(id) < x; });
  if (it != end && word(*it) == w) return *it;
  return std::nullopt;
}

std::vector<int8_t> Index::trits(size_t id) const {
  std::vector<int8_t> t(dims());
  unpack_from_blocks(view_.codes, id, dims(), t);
  return t;
}

uint32_t Index::nnz(size_t id) const {
  const float nrm = view_.norms[id];
  return static_cast<uint32_t>(std::lround(nrm * nrm));
}

double Index::nonzero_fraction() const {
  double total = 0;
  for (size_t i = 0; i < size(); ++i) total += nnz(i);
  return total / (static_cast<double>(size()) * dims());
}

FloatVectors Index::to_float_vectors(size_t limit) const {
  if (!has_float())
    image::fail(path_, "has no float32 vectors (it was built without keeping them, `igla convert --keep-float`): "
                       "convert the original vector file instead");
  const size_t n = limit ? std::min(limit, size()) : size();
  const auto f = float_vectors();
  FloatVectors v;
  v.dims = float_dims();
  v.words.reserve(n);
  for (size_t i = 0; i < n; ++i) v.words.emplace_back(word(i));
  v.data.assign(f.begin(), f.begin() + static_cast<long>(n * v.dims));
  return v;
}

}  // namespace igla
