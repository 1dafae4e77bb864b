// Every check a .igla image passes before a query reads a byte of it (Index::parse_image), and
// the deferred check of the float32 vectors. What is checked when: include/igla/index.hpp.
//
// The rule: a byte that can change an answer is verified before it is used. Checksums catch
// damage; the range and consistency checks below catch a file whose checksums were recomputed
// after an edit (or written by a buggy tool): no out-of-range id, size or count reaches a kernel,
// no NaN or infinity reaches a score, and derived data (norms) must match what it derives from.
#include <bit>
#include <cmath>

#include "core/index_image.hpp"

namespace igla {

using format::Header;
using format::SectionEntry;
using image::fail;

namespace {

std::string section_error(const std::string& tag, const std::string& what) {
  return "corrupt: section " + tag + ": " + what;
}

// The header's fields, before any size is computed from them.
void check_header(const std::string& path, const Header& h) {
  if (h.dims == 0 || h.dims > format::kMaxDims)
    fail(path, "corrupt header: " + std::to_string(h.dims) + " code dims (1 to " + std::to_string(format::kMaxDims) +
                   " allowed)");
  if (h.float_dims > format::kMaxDims)
    fail(path, "corrupt header: " + std::to_string(h.float_dims) + " float dims (at most " +
                   std::to_string(format::kMaxDims) + ")");
  if (h.n_words == 0 || h.n_words > format::kMaxWords)
    fail(path, "corrupt header: " + std::to_string(h.n_words) + " words (1 to " + std::to_string(format::kMaxWords) +
                   " allowed)");
  if (h.quant_method > static_cast<uint32_t>(Quantization::Rotated))
    fail(path, "corrupt header: unknown quantization method " + std::to_string(h.quant_method));
  if (!std::isfinite(h.threshold_factor) || h.threshold_factor < 0.0f ||
      h.threshold_factor > format::kMaxThresholdFactor)
    fail(path, "corrupt header: threshold factor " + std::to_string(h.threshold_factor) + " (a number from 0 to " +
                   std::to_string(static_cast<int>(format::kMaxThresholdFactor)) + " expected)");
  for (uint8_t b : h.reserved)
    if (b) fail(path, "corrupt header: reserved bytes are not zero");
}

// The transform of a centered or rotated index from its XFRM section (x, `size` bytes; null when
// absent), checked against the header; also fills q's rotation fields.
Transform read_transform(const std::string& path, const Header& h, uint32_t fd, const char* x, uint64_t size,
                         QuantParams& q) {
  Transform t;
  t.method = q.method;
  t.in_dims = fd;
  t.out_dims = h.dims;
  t.threshold_factor = h.threshold_factor;
  if (t.method == Quantization::Seed) {
    q.fit_words = 0;
    if (x) fail(path, "corrupt: a seed-quantized index with a transform section");
    if (fd != h.dims) fail(path, "corrupt: float dims differ from code dims without a rotation");
    return t;
  }
  if (!x) fail(path, "corrupt: missing section XFRM (the " + quantization_name(q) + " transform)");
  format::XfrmHeader xh;
  if (size < sizeof xh) fail(path, section_error("XFRM", "too small"));
  std::memcpy(&xh, x, sizeof xh);
  const bool rotated = t.method == Quantization::Rotated;
  if (xh.method != h.quant_method || xh.in_dims != fd || xh.out_dims != h.dims || (!rotated && fd != h.dims))
    fail(path, section_error("XFRM", "does not match the header (method or dims)"));
  if (xh.fit_words == 0 || xh.fit_words > h.n_words || xh.reserved1 != 0)
    fail(path, section_error("XFRM", "bad fitted word count or reserved field"));
  const uint64_t floats = 2 * uint64_t{fd} + (rotated ? uint64_t{fd} * h.dims : 0);
  if (size != sizeof xh + floats * 4)
    fail(path, section_error("XFRM", std::to_string(size) + " bytes, expected " + std::to_string(sizeof xh + floats * 4)));
  const float* f = reinterpret_cast<const float*>(x + sizeof xh);
  for (uint64_t i = 0; i < floats; ++i)
    if (!std::isfinite(f[i])) fail(path, section_error("XFRM", "holds a non-finite number (NaN or infinity)"));
  t.seed = xh.seed;
  t.mean = {f, fd};
  t.scale = {f + fd, fd};
  if (rotated) t.rotation = {f + 2 * fd, size_t{fd} * h.dims};
  q.seed = xh.seed;
  q.fit_words = xh.fit_words;
  q.code_dims = rotated ? h.dims : 0;
  return t;
}

// CODE holds canonical trits (sign bits only where nz bits are, nothing past dims, padding words
// all zero) and NORM holds exactly the norms build() derives from them.
void check_codes_and_norms(const std::string& path, const uint64_t* codes, const float* norms, size_t n, uint32_t dims) {
  const uint32_t W = plane_words(dims);
  const size_t np = padded_words(n);
  const uint64_t tail_mask = dims % 64 ? ~uint64_t{0} << (dims % 64) : 0;  // bits past dims in the last word
  for (size_t b = 0; b < block_count(n); ++b) {
    uint32_t nnz[kBlockWords] = {};
    for (uint32_t j = 0; j < W; ++j) {
      const uint64_t* g = codes + (b * W + j) * 16;
      for (uint32_t lane = 0; lane < kBlockWords; ++lane) {
        const uint64_t nz = g[lane], sign = g[8 + lane];
        const size_t word = b * kBlockWords + lane;
        if ((sign & ~nz) || (j == W - 1 && (nz & tail_mask)) || (word >= n && nz))
          fail(path, section_error("CODE", "word " + std::to_string(word) + " is not a canonical ternary code"));
        nnz[lane] += static_cast<uint32_t>(std::popcount(nz));
      }
    }
    for (uint32_t lane = 0; lane < kBlockWords; ++lane) {
      const size_t word = b * kBlockWords + lane;
      const float norm = word < n ? std::sqrt(static_cast<float>(nnz[lane])) : 0.0f;
      const float inv = word < n ? inv_norm_from_nnz(nnz[lane]) : 0.0f;
      if (std::bit_cast<uint32_t>(norms[word]) != std::bit_cast<uint32_t>(norm) ||
          std::bit_cast<uint32_t>(norms[np + word]) != std::bit_cast<uint32_t>(inv))
        fail(path, section_error("NORM", "the norm of word " + std::to_string(word) + " does not match its code"));
    }
  }
}

}  // namespace

void Index::parse_image(Index& ix, const std::string& path) {
  auto& st = *ix.storage_;
  if (st.size < sizeof(Header))
    fail(path, "truncated: the file has " + std::to_string(st.size) + " bytes, an igla header alone has 64");
  Header h;
  std::memcpy(&h, st.data, sizeof h);
  if (std::memcmp(h.magic, format::kMagic, 8) != 0) fail(path, "not an igla index (bad magic bytes)");
  if (h.version != format::kVersion)
    fail(path, "unknown index format version " + std::to_string(h.version) + " (this igla reads version " +
                   std::to_string(format::kVersion) + ")");
  if (h.n_sections == 0 || h.n_sections > format::kMaxSections)
    fail(path, "corrupt header: " + std::to_string(h.n_sections) + " sections");
  const size_t table_end = sizeof(Header) + size_t{h.n_sections} * sizeof(SectionEntry);
  if (st.size < table_end) fail(path, "truncated: the section table ends past the end of the file");
  st.table.resize(h.n_sections);
  std::memcpy(st.table.data(), st.data + sizeof(Header), h.n_sections * sizeof(SectionEntry));
  if (image::meta_checksum(h, st.table.data(), st.table.size()) != h.meta_checksum)
    fail(path, "corrupt: header checksum mismatch (the file was modified or damaged)");
  check_header(path, h);

  // The table: known flags, unique tags, aligned sections that tile the file (only zero padding
  // between them and nothing after the last, so that no byte of the file escapes a check).
  {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (size_t i = 0; i < st.table.size(); ++i) {
      const SectionEntry& e = st.table[i];
      const std::string tag = format::tag_string(e.tag);
      if (e.offset > st.size || e.size > st.size - e.offset)
        fail(path, "truncated: section " + tag + " ends at byte " + std::to_string(e.offset + e.size) +
                       " but the file has " + std::to_string(st.size) + " bytes");
      if (e.offset % format::kAlign) fail(path, section_error(tag, "misaligned"));
      if (e.flags & ~format::kKnownFlags) fail(path, section_error(tag, "unknown flags " + std::to_string(e.flags)));
      for (size_t j = 0; j < i; ++j)
        if (std::memcmp(e.tag, st.table[j].tag, 4) == 0) fail(path, section_error(tag, "appears twice"));
      spans.push_back({e.offset, e.offset + e.size});
    }
    std::sort(spans.begin(), spans.end());
    uint64_t pos = table_end;
    for (auto [b, e] : spans) {
      if (b < pos) fail(path, "corrupt: overlapping sections");
      for (uint64_t i = pos; i < b; ++i)
        if (st.data[i] != 0) fail(path, "corrupt: non-zero padding byte at offset " + std::to_string(i));
      pos = e;
    }
    if (pos != st.size) fail(path, "corrupt: " + std::to_string(st.size - pos) + " unexpected bytes after the last section");
  }

  // Checksums of every section but F32V, whatever its flags say: queries read them in place.
  // F32V (float32 vectors, often the largest section) only evaluation and re-conversion read:
  // verified on first use (float_vectors()). Extra sections (tags this reader does not know)
  // are verified here too and handed out by extra_section().
  for (const SectionEntry& e : st.table)
    if (std::memcmp(e.tag, "F32V", 4) != 0 && image::checksum(st.data + e.offset, e.size) != e.checksum)
      fail(path, "corrupt: checksum mismatch in section " + format::tag_string(e.tag) +
                     " (the file was modified or damaged)");

  const size_t n = h.n_words, np = padded_words(n);
  auto find = [&](const char* tag) -> const SectionEntry* {
    for (auto& e : st.table)
      if (std::memcmp(e.tag, tag, 4) == 0) return &e;
    return nullptr;
  };
  auto section = [&](const char* tag, bool required, uint64_t expected) -> const char* {
    const SectionEntry* e = find(tag);
    if (!e) {
      if (required) fail(path, std::string("corrupt: missing section ") + tag);
      return nullptr;
    }
    if (expected != UINT64_MAX && e->size != expected)
      fail(path, section_error(tag, std::to_string(e->size) + " bytes, expected " + std::to_string(expected)));
    return st.data + e->offset;
  };

  // VOCB: offsets from 0, strictly increasing (no empty word), ending at the section's end.
  const SectionEntry* ve = find("VOCB");
  const char* vocb = section("VOCB", true, UINT64_MAX);
  // n + 1 offsets must fit; divided, not multiplied: a huge word count must not wrap around
  // (found by tests/fuzz/fuzz_index: n = 2^62 + 7 passed the multiplied check).
  if (n >= ve->size / 4) fail(path, section_error("VOCB", "too small for " + std::to_string(n) + " words"));
  ix.word_offsets_ = reinterpret_cast<const uint32_t*>(vocb);
  ix.word_bytes_ = vocb + (n + 1) * 4;
  if (ix.word_offsets_[0] != 0 || ix.word_offsets_[n] != ve->size - (n + 1) * 4)
    fail(path, section_error("VOCB", "word offsets do not match the section size"));
  for (size_t i = 0; i < n; ++i)
    if (ix.word_offsets_[i + 1] <= ix.word_offsets_[i])
      fail(path, section_error("VOCB", "word " + std::to_string(i) + " is empty"));
  // VSRT: ids in range, their words strictly ascending (so a permutation, and no duplicate word:
  // find() answers by binary search over it).
  ix.sorted_ids_ = reinterpret_cast<const uint32_t*>(section("VSRT", true, n * 4));
  for (size_t i = 0; i < n; ++i) {
    if (ix.sorted_ids_[i] >= n) fail(path, section_error("VSRT", "word id out of range"));
    if (i && !(ix.word(ix.sorted_ids_[i - 1]) < ix.word(ix.sorted_ids_[i])))
      fail(path, section_error("VSRT", "words not in strictly ascending order at entry " + std::to_string(i)));
  }

  ix.view_.dims = h.dims;
  ix.view_.W = plane_words(h.dims);
  ix.view_.n_words = n;
  ix.view_.codes = reinterpret_cast<const uint64_t*>(section("CODE", true, code_words(n, h.dims) * 8));
  const float* norms = reinterpret_cast<const float*>(section("NORM", true, 2 * np * 4));
  ix.view_.norms = norms;
  ix.view_.inv_norms = norms + np;
  check_codes_and_norms(path, ix.view_.codes, norms, n, h.dims);

  const uint32_t fd = h.float_dims ? h.float_dims : h.dims;
  ix.float_dims_ = fd;
  ix.float_data_ = reinterpret_cast<const float*>(section("F32V", false, n * uint64_t{fd} * 4));
  ix.quant_ = {};
  ix.quant_.method = static_cast<Quantization>(h.quant_method);
  ix.quant_.threshold_factor = h.threshold_factor;
  const SectionEntry* xe = find("XFRM");
  ix.xfrm_ = read_transform(path, h, fd, section("XFRM", false, UINT64_MAX), xe ? xe->size : 0, ix.quant_);

  // Rerank rows: RRI8's scales positive and finite (its rows are int8: no NaN to hide);
  // RF16's rows hold no NaN or infinity.
  const char* i8 = section("RRI8", false, format::align_up(uint64_t{fd} * 4) + n * uint64_t{fd});
  const char* f16 = section("RF16", false, n * uint64_t{fd} * 2);
  if (i8 && f16) fail(path, "corrupt: both RRI8 and RF16 rerank sections");
  if (i8) {
    ix.quant_.rerank = Rerank::Int8;
    ix.rerank_scale_ = reinterpret_cast<const float*>(i8);
    for (uint32_t d = 0; d < fd; ++d)
      if (!(ix.rerank_scale_[d] > 0.0f) || !std::isfinite(ix.rerank_scale_[d]))
        fail(path, section_error("RRI8", "scale " + std::to_string(d) + " is not a positive finite number"));
    for (uint64_t b = uint64_t{fd} * 4; b < format::align_up(uint64_t{fd} * 4); ++b)
      if (i8[b]) fail(path, section_error("RRI8", "non-zero padding after the scales"));
    ix.rerank_rows_ = i8 + format::align_up(uint64_t{fd} * 4);
  } else if (f16) {
    ix.quant_.rerank = Rerank::F16;
    const uint16_t* rows = reinterpret_cast<const uint16_t*>(f16);
    const size_t count = n * size_t{fd};
    constexpr size_t kChunk = 4096;
    for (size_t c = 0; c < count; c += kChunk) {  // branch-free inner loop: it vectorizes
      unsigned bad = 0;
      for (size_t i = c; i < std::min(count, c + kChunk); ++i) bad |= (rows[i] & 0x7c00u) == 0x7c00u;
      if (bad)
        for (size_t i = c; i < std::min(count, c + kChunk); ++i)
          if ((rows[i] & 0x7c00u) == 0x7c00u)
            fail(path, section_error("RF16", "the row of word " + std::to_string(i / fd) + " holds NaN or infinity"));
    }
    ix.rerank_rows_ = f16;
  }
}

void Index::verify_float_section() const {
  for (const SectionEntry& e : storage_->table) {
    if (std::memcmp(e.tag, "F32V", 4) != 0) continue;
    if (image::checksum(storage_->data + e.offset, e.size) != e.checksum)
      fail(path_, "corrupt: checksum mismatch in section F32V (the file was modified or damaged)");
    const size_t count = size() * size_t{float_dims()};
    for (size_t i = 0; i < count; ++i)
      if (!std::isfinite(float_data_[i]))
        fail(path_, section_error("F32V", "the vector of word " + std::to_string(i / float_dims()) + " ('" +
                                              std::string(word(i / float_dims())) + "') holds NaN or infinity"));
  }
}

}  // namespace igla
