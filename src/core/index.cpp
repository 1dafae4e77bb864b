// The .igla index: building, saving (atomically), opening (mmap, validated) and word lookup.
#include "igla/index.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/index_format.hpp"
#include "core/rerank.hpp"
#include "core/transform.hpp"
#include "igla/error.hpp"

namespace igla {

namespace fs = std::filesystem;
using format::Header;
using format::SectionEntry;

// The file image: either a read-only mapping of the file or bytes built in memory. Both are
// parsed by the same code, so a freshly built index behaves exactly like a loaded one.
struct Index::Storage {
  const char* data = nullptr;
  size_t size = 0;
  void* map = nullptr;
  std::unique_ptr<char, decltype(&std::free)> owned{nullptr, &std::free};  // 64-byte aligned, as a mapping is
  std::vector<SectionEntry> table;
  ~Storage() {
    if (map) munmap(map, size);
  }
};

namespace {

uint64_t checksum(const void* p, size_t n) { return XXH3_64bits(p, n); }

// Covers every header field as well as the table, so no flipped byte goes unnoticed.
uint64_t meta_checksum(Header h, const SectionEntry* table, size_t n) {
  h.meta_checksum = 0;
  std::vector<char> buf(sizeof h + n * sizeof(SectionEntry));
  std::memcpy(buf.data(), &h, sizeof h);
  std::memcpy(buf.data() + sizeof h, table, n * sizeof(SectionEntry));
  return checksum(buf.data(), buf.size());
}

struct SectionBlob {
  std::string tag;
  uint32_t flags;
  std::vector<char> bytes;
};

template <class T>
std::vector<char> as_bytes(const std::vector<T>& v) {
  std::vector<char> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// One section to lay out: its tag, flags and bytes (owned elsewhere).
struct Piece {
  std::string tag;
  uint32_t flags;
  const char* data;
  size_t size;
};

// Header and section table for pieces laid out in order, each 64-byte aligned; `end` is the
// file size (the last section's end).
struct Layout {
  Header h;
  std::vector<SectionEntry> table;
  uint64_t end = 0;
};

Layout lay_out(const Header& h0, const std::vector<Piece>& pieces) {
  Layout l;
  l.h = h0;
  l.h.n_sections = static_cast<uint32_t>(pieces.size());
  l.table.resize(pieces.size());
  uint64_t off = sizeof(Header) + pieces.size() * sizeof(SectionEntry);
  for (size_t i = 0; i < pieces.size(); ++i) {
    off = format::align_up(off);
    SectionEntry& e = l.table[i];
    std::memset(&e, 0, sizeof e);
    std::memcpy(e.tag, pieces[i].tag.data(), std::min<size_t>(4, pieces[i].tag.size()));
    e.flags = pieces[i].flags;
    e.offset = off;
    e.size = pieces[i].size;
    e.checksum = checksum(pieces[i].data, pieces[i].size);
    off += pieces[i].size;
  }
  l.end = off;
  l.h.meta_checksum = meta_checksum(l.h, l.table.data(), l.table.size());
  return l;
}

// Copies a laid-out image into one 64-byte aligned allocation; returns its size.
size_t assemble(const Layout& l, const std::vector<Piece>& pieces, std::unique_ptr<char, decltype(&std::free)>& out) {
  const size_t alloc = format::align_up(l.end);
  out.reset(static_cast<char*>(std::aligned_alloc(format::kAlign, alloc)));
  if (!out) throw Error("out of memory building an index of " + std::to_string(l.end) + " bytes");
  char* img = out.get();
  std::memset(img, 0, alloc);
  std::memcpy(img, &l.h, sizeof l.h);
  std::memcpy(img + sizeof l.h, l.table.data(), l.table.size() * sizeof(SectionEntry));
  for (size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].size) std::memcpy(img + l.table[i].offset, pieces[i].data, pieces[i].size);
  return l.end;
}

// The tags of the core format: everything else is an extra section (kept, verified, not read).
constexpr std::string_view kCoreTags[] = {"VOCB", "VSRT", "CODE", "NORM", "F32V", "XFRM", "RRI8", "RF16"};
bool is_core_tag(std::string_view t) { return std::find(std::begin(kCoreTags), std::end(kCoreTags), t) != std::end(kCoreTags); }

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error((path.empty() ? std::string("index") : path) + ": " + what);
}

size_t edit_distance(std::string_view a, std::string_view b, size_t cap) {
  if (a.size() > b.size() + cap || b.size() > a.size() + cap) return cap + 1;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    size_t row_min = cur[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min > cap) return cap + 1;
    std::swap(prev, cur);
  }
  return prev[b.size()];
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
  if (size < sizeof xh) fail(path, "corrupt: section XFRM too small");
  std::memcpy(&xh, x, sizeof xh);
  const bool rotated = t.method == Quantization::Rotated;
  if (xh.method != h.quant_method || xh.in_dims != fd || xh.out_dims != h.dims || (!rotated && fd != h.dims))
    fail(path, "corrupt: section XFRM does not match the header (method or dims)");
  const uint64_t floats = 2 * uint64_t{fd} + (rotated ? uint64_t{fd} * h.dims : 0);
  if (size != sizeof xh + floats * 4)
    fail(path, "corrupt: section XFRM has " + std::to_string(size) + " bytes, expected " +
                   std::to_string(sizeof xh + floats * 4));
  const float* f = reinterpret_cast<const float*>(x + sizeof xh);
  for (uint64_t i = 0; i < floats; ++i)
    if (!std::isfinite(f[i])) fail(path, "corrupt: section XFRM holds a non-finite number");
  t.seed = xh.seed;
  t.mean = {f, fd};
  t.scale = {f + fd, fd};
  if (rotated) t.rotation = {f + 2 * fd, size_t{fd} * h.dims};
  q.seed = xh.seed;
  q.fit_words = xh.fit_words;
  q.code_dims = rotated ? h.dims : 0;
  return t;
}

// Checks the extra sections a caller adds: tags of 1-4 printable ASCII characters, not a core
// tag, each at most once.
void check_extras(std::span<const ExtraSection> extra) {
  for (size_t i = 0; i < extra.size(); ++i) {
    const std::string& t = extra[i].tag;
    if (t.empty() || t.size() > 4 ||
        !std::all_of(t.begin(), t.end(), [](char c) { return c > ' ' && c < 127; }))
      throw Error("extra section tag '" + t + "': must be 1 to 4 printable ASCII characters");
    if (is_core_tag(t)) throw Error("extra section tag '" + t + "' is a core section of the format, not an extra one");
    for (size_t j = 0; j < i; ++j)
      if (extra[j].tag == t) throw Error("extra section tag '" + t + "' given twice");
  }
}

// The sections of an image (`data`, `table`) with `extra` replacing the sections of the same tag
// (in place) or appended after them.
std::vector<Piece> pieces_with(const char* data, const std::vector<SectionEntry>& table,
                               std::span<const ExtraSection> extra) {
  check_extras(extra);
  std::vector<Piece> pieces;
  std::vector<bool> used(extra.size(), false);
  for (const auto& e : table) {
    const std::string tag = format::tag_string(e.tag);
    Piece p{tag, e.flags, data + e.offset, e.size};
    for (size_t j = 0; j < extra.size(); ++j)
      if (extra[j].tag == tag) {
        p = {tag, 0, reinterpret_cast<const char*>(extra[j].bytes.data()), extra[j].bytes.size()};
        used[j] = true;
      }
    pieces.push_back(std::move(p));
  }
  for (size_t j = 0; j < extra.size(); ++j)
    if (!used[j])
      pieces.push_back({extra[j].tag, 0, reinterpret_cast<const char*>(extra[j].bytes.data()), extra[j].bytes.size()});
  if (pieces.size() > format::kMaxSections)
    throw Error("an index holds at most " + std::to_string(format::kMaxSections) + " sections, this one would have " +
                std::to_string(pieces.size()));
  return pieces;
}

}  // namespace

Index::Index() : storage_(std::make_unique<Storage>()) {}
Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

Index Index::open(const std::string& path) {
  Index ix;
  ix.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open index: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  ix.storage_->size = static_cast<size_t>(st.st_size);
  if (ix.storage_->size > 0) {
    void* m = mmap(nullptr, ix.storage_->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("mmap failed: ") + std::strerror(errno));
    }
    ix.storage_->map = m;
    ix.storage_->data = static_cast<const char*>(m);
  }
  ::close(fd);
  parse_image(ix, path);
  return ix;
}

Index Index::build(const FloatVectors& v, const QuantParams& q, bool keep_float, const Progress& progress) {
  const size_t n = v.size();
  const uint32_t dims = v.dims;
  if (dims == 0) throw Error("cannot build an index of 0-dimensional vectors");
  if (n == 0) throw Error("cannot build an index of an empty vocabulary");
  if (n >= (size_t{1} << 32) - kBlockWords) throw Error("too many words for one index (2^32 at most)");
  if (v.data.size() != n * dims) throw Error("vector data does not match words x dims");

  // Words: offsets and bytes, then the ids sorted by bytes (duplicates found here).
  std::vector<uint32_t> offsets(n + 1, 0);
  std::string bytes;
  for (size_t i = 0; i < n; ++i) {
    if (v.words[i].empty()) throw Error("word " + std::to_string(i) + " is empty");
    bytes += v.words[i];
    if (bytes.size() > UINT32_MAX) throw Error("vocabulary text larger than 4 GiB");
    offsets[i + 1] = static_cast<uint32_t>(bytes.size());
  }
  std::vector<uint32_t> sorted(n);
  std::iota(sorted.begin(), sorted.end(), 0u);
  std::sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) {
    return std::string_view(v.words[a]) < std::string_view(v.words[b]) || (v.words[a] == v.words[b] && a < b);
  });
  for (size_t i = 1; i < n; ++i)
    if (v.words[sorted[i]] == v.words[sorted[i - 1]])
      throw Error("duplicate word '" + v.words[sorted[i]] + "' (entries " + std::to_string(sorted[i - 1]) + " and " +
                  std::to_string(sorted[i]) + ")");

  if (q.method != Quantization::Rotated && q.code_dims && q.code_dims != dims)
    throw Error("only the rotated quantization changes the number of dims");
  if (!(q.threshold_factor >= 0.0f) || !std::isfinite(q.threshold_factor))
    throw Error("threshold factor must be a finite number >= 0");
  const FittedTransform fit = fit_transform(v, q);
  const Transform xf = fit.view(q);
  const uint32_t cdims = fit.out_dims;

  // Codes and norms, quantized in parallel.
  const size_t np = padded_words(n);
  std::vector<uint64_t> codes(code_words(n, cdims), 0);
  std::vector<float> norms(2 * np, 0.0f);  // norm[np] then inv_norm[np]
  const long chunk = 4096;
  const long n_chunks = static_cast<long>((n + chunk - 1) / chunk);
  long done = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (long c = 0; c < n_chunks; ++c) {
    std::vector<int8_t> t(cdims);
    std::vector<float> y(cdims);
    for (size_t i = static_cast<size_t>(c * chunk); i < std::min(n, static_cast<size_t>((c + 1) * chunk)); ++i) {
      xf.apply(v.row(i), y);
      quantize_seed(y, q.threshold_factor, t);
      pack_into_blocks(t, i, codes.data());
      const uint32_t nnz = count_nonzero(t);
      norms[i] = std::sqrt(static_cast<float>(nnz));
      norms[np + i] = inv_norm_from_nnz(nnz);
    }
    if (progress) {
#pragma omp critical
      progress(static_cast<uint64_t>(++done) * chunk > n ? n : static_cast<uint64_t>(done) * chunk, n);
    }
  }

  std::vector<SectionBlob> blobs;
  std::vector<char> vocb = as_bytes(offsets);
  vocb.insert(vocb.end(), bytes.begin(), bytes.end());
  blobs.push_back({"VOCB", 0, std::move(vocb)});
  blobs.push_back({"VSRT", 0, as_bytes(sorted)});
  blobs.push_back({"CODE", 0, as_bytes(codes)});
  blobs.push_back({"NORM", 0, as_bytes(norms)});
  if (keep_float) blobs.push_back({"F32V", format::kLazy, as_bytes(v.data)});
  if (q.method != Quantization::Seed) {
    format::XfrmHeader xh{};
    xh.method = static_cast<uint32_t>(q.method);
    xh.in_dims = dims;
    xh.out_dims = cdims;
    xh.seed = q.seed;
    xh.fit_words = static_cast<uint32_t>(q.fit_words ? std::min<size_t>(q.fit_words, n) : n);
    std::vector<char> x(sizeof xh);
    std::memcpy(x.data(), &xh, sizeof xh);
    for (const auto* part : {&fit.mean, &fit.scale, &fit.rotation}) {
      const auto b = as_bytes(*part);
      x.insert(x.end(), b.begin(), b.end());
    }
    blobs.push_back({"XFRM", 0, std::move(x)});
  }
  if (q.rerank != Rerank::None)
    blobs.push_back({q.rerank == Rerank::Int8 ? "RRI8" : "RF16", format::kLazy, encode_rerank_rows(v, q.rerank)});

  Header h{};
  std::memcpy(h.magic, format::kMagic, 8);
  h.version = format::kVersion;
  h.n_words = n;
  h.dims = cdims;
  h.float_dims = dims;
  h.quant_method = static_cast<uint32_t>(q.method);
  h.threshold_factor = q.threshold_factor;

  std::vector<Piece> pieces;
  for (const auto& b : blobs) pieces.push_back({b.tag, b.flags, b.bytes.data(), b.bytes.size()});
  Index ix;
  ix.storage_->size = assemble(lay_out(h, pieces), pieces, ix.storage_->owned);
  ix.storage_->data = ix.storage_->owned.get();
  parse_image(ix, "");
  return ix;
}

// Parses and validates the image held by `ix.storage_`; `path` names it in messages.
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
  if (h.n_sections == 0 || h.n_sections > format::kMaxSections) fail(path, "corrupt header: " + std::to_string(h.n_sections) + " sections");
  const size_t table_end = sizeof(Header) + size_t{h.n_sections} * sizeof(SectionEntry);
  if (st.size < table_end) fail(path, "truncated: the section table ends past the end of the file");
  st.table.resize(h.n_sections);
  std::memcpy(st.table.data(), st.data + sizeof(Header), h.n_sections * sizeof(SectionEntry));
  if (meta_checksum(h, st.table.data(), st.table.size()) != h.meta_checksum)
    fail(path, "corrupt: header checksum mismatch (the file was modified or damaged)");
  if (h.dims == 0 || h.n_words == 0) fail(path, "corrupt header: zero dims or words");

  // Sections must tile the file: only zero padding between them and nothing after the last,
  // so that no byte of the file escapes a check.
  {
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto& e : st.table) {
      if (e.offset > st.size || e.size > st.size - e.offset)
        fail(path, "truncated: section " + format::tag_string(e.tag) + " ends at byte " +
                       std::to_string(e.offset + e.size) + " but the file has " + std::to_string(st.size) + " bytes");
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

  // Extra sections (tags this reader does not know, e.g. an approximate index): kept, verified
  // now, handed out by extra_section().
  for (auto& e : st.table) {
    const std::string tag = format::tag_string(e.tag);
    if (is_core_tag(tag)) continue;
    if (e.offset % format::kAlign) fail(path, "corrupt: section " + tag + " is misaligned");
    if (checksum(st.data + e.offset, e.size) != e.checksum)
      fail(path, "corrupt: checksum mismatch in section " + tag + " (the file was modified or damaged)");
  }
  for (size_t i = 0; i < st.table.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (std::memcmp(st.table[i].tag, st.table[j].tag, 4) == 0)
        fail(path, "corrupt: section " + format::tag_string(st.table[i].tag) + " appears twice");

  const size_t n = h.n_words, np = padded_words(n);
  auto find = [&](const char* tag) -> const SectionEntry* {
    for (auto& e : st.table)
      if (std::memcmp(e.tag, tag, 4) == 0) return &e;
    return nullptr;
  };
  auto section = [&](const char* tag, bool required, size_t expected) -> const char* {
    const SectionEntry* e = find(tag);
    if (!e) {
      if (required) fail(path, std::string("corrupt: missing section ") + tag);
      return nullptr;
    }
    if (e->offset > st.size || e->size > st.size - e->offset)
      fail(path, std::string("truncated: section ") + tag + " ends at byte " + std::to_string(e->offset + e->size) +
                     " but the file has " + std::to_string(st.size) + " bytes");
    if (expected != SIZE_MAX && e->size != expected)
      fail(path, std::string("corrupt: section ") + tag + " has " + std::to_string(e->size) + " bytes, expected " +
                     std::to_string(expected));
    if (e->offset % format::kAlign) fail(path, std::string("corrupt: section ") + tag + " is misaligned");
    if (!(e->flags & format::kLazy) && checksum(st.data + e->offset, e->size) != e->checksum)
      fail(path, std::string("corrupt: checksum mismatch in section ") + tag + " (the file was modified or damaged)");
    return st.data + e->offset;
  };

  const char* vocb = section("VOCB", true, SIZE_MAX);
  const SectionEntry* ve = find("VOCB");
  if (ve->size < (n + 1) * 4) fail(path, "corrupt: vocabulary section too small");
  ix.word_offsets_ = reinterpret_cast<const uint32_t*>(vocb);
  ix.word_bytes_ = vocb + (n + 1) * 4;
  if (ix.word_offsets_[0] != 0 || ix.word_offsets_[n] != ve->size - (n + 1) * 4)
    fail(path, "corrupt: vocabulary offsets do not match the section size");
  for (size_t i = 0; i < n; ++i)
    if (ix.word_offsets_[i + 1] <= ix.word_offsets_[i]) fail(path, "corrupt: word " + std::to_string(i) + " is empty");
  ix.sorted_ids_ = reinterpret_cast<const uint32_t*>(section("VSRT", true, n * 4));
  for (size_t i = 0; i < n; ++i)
    if (ix.sorted_ids_[i] >= n) fail(path, "corrupt: sorted word table out of range");

  ix.view_.dims = h.dims;
  ix.view_.W = plane_words(h.dims);
  ix.view_.n_words = n;
  ix.view_.codes = reinterpret_cast<const uint64_t*>(section("CODE", true, code_words(n, h.dims) * 8));
  const float* norms = reinterpret_cast<const float*>(section("NORM", true, 2 * np * 4));
  ix.view_.norms = norms;
  ix.view_.inv_norms = norms + np;
  const uint32_t fd = h.float_dims ? h.float_dims : h.dims;
  ix.float_dims_ = fd;
  ix.float_data_ = reinterpret_cast<const float*>(section("F32V", false, n * size_t{fd} * 4));
  ix.float_verified_ = false;
  if (h.quant_method > static_cast<uint32_t>(Quantization::Rotated))
    fail(path, "unknown quantization method " + std::to_string(h.quant_method));
  ix.quant_ = {};
  ix.quant_.method = static_cast<Quantization>(h.quant_method);
  ix.quant_.threshold_factor = h.threshold_factor;
  const SectionEntry* xe = find("XFRM");
  ix.xfrm_ = read_transform(path, h, fd, section("XFRM", false, SIZE_MAX), xe ? xe->size : 0, ix.quant_);

  // Rerank rows: sizes and int8 scales now; the rows' bytes lazily (see index.hpp).
  const char* i8 = section("RRI8", false, format::align_up(size_t{fd} * 4) + n * fd);
  const char* f16 = section("RF16", false, n * size_t{fd} * 2);
  if (i8 && f16) fail(path, "corrupt: both RRI8 and RF16 rerank sections");
  if (i8) {
    ix.quant_.rerank = Rerank::Int8;
    ix.rerank_scale_ = reinterpret_cast<const float*>(i8);
    for (uint32_t d = 0; d < fd; ++d)
      if (!(ix.rerank_scale_[d] > 0.0f) || !std::isfinite(ix.rerank_scale_[d]))
        fail(path, "corrupt: RRI8 scale " + std::to_string(d) + " is not a positive number");
    ix.rerank_rows_ = i8 + format::align_up(size_t{fd} * 4);
  } else if (f16) {
    ix.quant_.rerank = Rerank::F16;
    ix.rerank_rows_ = f16;
  }
}


namespace {

void write_bytes(int fd, const char* p, size_t left, const std::function<void(const std::string&)>& abandon) {
  while (left > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(left, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      abandon(std::string("write failed: ") + std::strerror(errno));
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
}

}  // namespace

void Index::save(const std::string& path, std::span<const ExtraSection> extra) const {
  std::vector<Piece> pieces;
  Layout layout;
  if (!extra.empty()) {  // checked before any file is touched
    pieces = pieces_with(storage_->data, storage_->table, extra);
    Header h;
    std::memcpy(&h, storage_->data, sizeof h);
    layout = lay_out(h, pieces);
  }
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) fail(path, std::string("cannot create temporary file: ") + std::strerror(errno));
  const std::function<void(const std::string&)> abandon = [&](const std::string& why) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, why);
  };
  if (extra.empty()) {
    write_bytes(fd, storage_->data, storage_->size, abandon);
  } else {
    write_bytes(fd, reinterpret_cast<const char*>(&layout.h), sizeof layout.h, abandon);
    write_bytes(fd, reinterpret_cast<const char*>(layout.table.data()), layout.table.size() * sizeof(SectionEntry),
                abandon);
    uint64_t pos = sizeof layout.h + layout.table.size() * sizeof(SectionEntry);
    static const char zeros[format::kAlign] = {};
    for (size_t i = 0; i < pieces.size(); ++i) {
      write_bytes(fd, zeros, layout.table[i].offset - pos, abandon);
      write_bytes(fd, pieces[i].data, pieces[i].size, abandon);
      pos = layout.table[i].offset + pieces[i].size;
    }
  }
  if (::fsync(fd) != 0) abandon(std::string("fsync failed: ") + std::strerror(errno));
  ::fchmod(fd, 0644);
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, "close failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail(path, std::string("cannot rename temporary file into place: ") + std::strerror(e));
  }
}

Index Index::with_extra_sections(std::span<const ExtraSection> extra) const {
  const std::vector<Piece> pieces = pieces_with(storage_->data, storage_->table, extra);
  Header h;
  std::memcpy(&h, storage_->data, sizeof h);
  Index ix;
  ix.storage_->size = assemble(lay_out(h, pieces), pieces, ix.storage_->owned);
  ix.storage_->data = ix.storage_->owned.get();
  parse_image(ix, "");
  ix.path_.clear();
  return ix;
}

std::span<const std::byte> Index::extra_section(std::string_view tag) const {
  if (is_core_tag(tag)) return {};
  for (auto& e : storage_->table)
    if (format::tag_string(e.tag) == tag) return {reinterpret_cast<const std::byte*>(storage_->data + e.offset), e.size};
  return {};
}

std::string_view Index::word(size_t id) const {
  return {word_bytes_ + word_offsets_[id], word_offsets_[id + 1] - word_offsets_[id]};
}

std::optional<uint32_t> Index::find(std::string_view w) const {
  const uint32_t* end = sorted_ids_ + size();
  const uint32_t* it = std::lower_bound(sorted_ids_, end, w, [&](uint32_t id, std::string_view x) { return word(id) < x; });
  if (it != end && word(*it) == w) return *it;
  return std::nullopt;
}

std::vector<std::string> Index::suggest(std::string_view w, size_t n) const {
  std::vector<std::pair<size_t, uint32_t>> best;  // (distance, id); ids ascend = frequent first
  size_t cap = std::max<size_t>(2, w.size() / 2);
  for (uint32_t id = 0; id < size(); ++id) {
    const size_t d = edit_distance(w, word(id), cap);
    if (d > cap) continue;
    best.push_back({d, id});
    if (best.size() > 4 * n) {
      std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first < b.first; });
      best.resize(n);
      cap = best.back().first;
    }
  }
  std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(n, best.size()); ++i) out.emplace_back(word(best[i].second));
  return out;
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

std::span<const float> Index::float_vectors() const {
  if (!float_data_) return {};
  if (!float_verified_) {
    for (auto& e : storage_->table)
      if (std::memcmp(e.tag, "F32V", 4) == 0 && checksum(storage_->data + e.offset, e.size) != e.checksum)
        fail(path_, "corrupt: checksum mismatch in section F32V (the file was modified or damaged)");
    float_verified_ = true;
  }
  return {float_data_, size() * float_dims()};
}

FloatVectors Index::to_float_vectors(size_t limit) const {
  if (!has_float())
    fail(path_, "has no float32 vectors (it was built with --no-float): convert the original vector file instead");
  const size_t n = limit ? std::min(limit, size()) : size();
  const auto f = float_vectors();
  FloatVectors v;
  v.dims = float_dims();
  v.words.reserve(n);
  for (size_t i = 0; i < n; ++i) v.words.emplace_back(word(i));
  v.data.assign(f.begin(), f.begin() + static_cast<long>(n * v.dims));
  return v;
}

std::vector<Index::SectionInfo> Index::sections() const {
  std::vector<SectionInfo> out;
  for (auto& e : storage_->table) out.push_back({format::tag_string(e.tag), e.offset, e.size, e.checksum});
  return out;
}

void Index::verify_all() const {
  for (auto& e : storage_->table)
    if (checksum(storage_->data + e.offset, e.size) != e.checksum)
      fail(path_, "corrupt: checksum mismatch in section " + format::tag_string(e.tag));
}

uint64_t Index::file_size() const { return storage_->size; }

std::string igla_home() {
  if (const char* h = std::getenv("IGLA_HOME"); h && *h) return h;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/igla";
}

std::string default_index_path() { return igla_home() + "/glove-100d.igla"; }

}  // namespace igla
