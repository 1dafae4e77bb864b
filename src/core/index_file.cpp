// The .igla file: opening (mmap), laying out and saving (atomically), extra sections, and the
// checksums. Every check of the bytes is in index_verify.cpp; building in index_build.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include <xxhash.h>
// Debian's libxxhash picks SSE2, AVX2 or AVX-512 at run time (XXH3_64bits_dispatch, the same
// hashes). Hashing the 51 MiB a query can read is ~40% of the open time (perf), memory-bound.
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif

#include "core/atomic_file.hpp"
#include "core/index_derived.hpp"
#include "core/index_image.hpp"

namespace igla {

using format::Header;
using format::SectionEntry;
using image::fail;

namespace image {

uint64_t checksum(const void* p, size_t n) { return XXH3_64bits(p, n); }

uint64_t meta_checksum(Header h, const SectionEntry* table, size_t n) {
  h.meta_checksum = 0;
  std::vector<char> buf(sizeof h + n * sizeof(SectionEntry));
  std::memcpy(buf.data(), &h, sizeof h);
  if (n) std::memcpy(buf.data() + sizeof h, table, n * sizeof(SectionEntry));
  return checksum(buf.data(), buf.size());
}

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
    e.checksum = pieces[i].stored ? *pieces[i].stored : checksum(pieces[i].data, pieces[i].size);
    off += pieces[i].size;
  }
  l.end = off;
  l.h.meta_checksum = meta_checksum(l.h, l.table.data(), l.table.size());
  return l;
}

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

}  // namespace image

namespace {

// Checks the extra sections a caller adds: tags of 1-4 printable ASCII characters, not a core
// tag, each at most once.
void check_extras(std::span<const ExtraSection> extra) {
  for (size_t i = 0; i < extra.size(); ++i) {
    const std::string& t = extra[i].tag;
    if (t.empty() || t.size() > 4 || !std::all_of(t.begin(), t.end(), [](char c) { return c > ' ' && c < 127; }))
      throw Error("extra section tag '" + t + "': must be 1 to 4 printable ASCII characters");
    if (image::is_core_tag(t))
      throw Error("extra section tag '" + t + "' is a core section of the format, not an extra one");
    for (size_t j = 0; j < i; ++j)
      if (extra[j].tag == t) throw Error("extra section tag '" + t + "' given twice");
  }
}

// The sections of an image (`data`, `table`) with `extra` replacing the sections of the same tag
// (in place) or appended after them.
std::vector<image::Piece> pieces_with(const char* data, const std::vector<SectionEntry>& table,
                                      std::span<const ExtraSection> extra) {
  check_extras(extra);
  std::vector<image::Piece> pieces;
  std::vector<bool> used(extra.size(), false);
  for (const auto& e : table) {
    const std::string tag = format::tag_string(e.tag);
    image::Piece p{tag, e.flags, data + e.offset, e.size, &e.checksum};
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

Index::Index() : storage_(std::make_unique<Storage>()), derived_(std::make_shared<DerivedCache>()) {}
Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

Index Index::open(const std::string& path) {
  Index ix;
  ix.path_ = path;
  // A FIFO or device would block open(2) or read(2): refuse anything but a regular file first,
  // and open without blocking in case it changed in between.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, std::string("cannot open index: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "cannot open index: not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open index: ") + std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "cannot open index: not a regular file");
  }
  ix.storage_->size = static_cast<size_t>(st.st_size);
  if (ix.storage_->size > 0) {
    void* m = mmap(nullptr, ix.storage_->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      fail(path, std::string("mmap failed: ") + std::strerror(e));
    }
    ix.storage_->map = m;
    ix.storage_->data = static_cast<const char*>(m);
  }
  ::close(fd);
  parse_image(ix, path);
  return ix;
}

void Index::save(const std::string& path, std::span<const ExtraSection> extra) const {
  std::vector<image::Piece> pieces;
  image::Layout layout;
  if (!extra.empty()) {  // checked before any file is touched
    pieces = pieces_with(storage_->data, storage_->table, extra);
    Header h;
    std::memcpy(&h, storage_->data, sizeof h);
    layout = image::lay_out(h, pieces);
  }
  AtomicFile out(path);
  if (extra.empty()) {
    out.write(storage_->data, storage_->size);
  } else {
    out.write(&layout.h, sizeof layout.h);
    out.write(layout.table.data(), layout.table.size() * sizeof(SectionEntry));
    uint64_t pos = sizeof layout.h + layout.table.size() * sizeof(SectionEntry);
    for (size_t i = 0; i < pieces.size(); ++i) {
      out.write_zeros(layout.table[i].offset - pos);
      out.write(pieces[i].data, pieces[i].size);
      pos = layout.table[i].offset + pieces[i].size;
    }
  }
  out.commit();
}

Index Index::with_extra_sections(std::span<const ExtraSection> extra) const {
  const std::vector<image::Piece> pieces = pieces_with(storage_->data, storage_->table, extra);
  Header h;
  std::memcpy(&h, storage_->data, sizeof h);
  Index ix;
  ix.storage_->size = image::assemble(image::lay_out(h, pieces), pieces, ix.storage_->owned);
  ix.storage_->data = ix.storage_->owned.get();
  parse_image(ix, "");
  return ix;
}

std::span<const std::byte> Index::extra_section(std::string_view tag) const {
  if (image::is_core_tag(tag)) return {};
  for (auto& e : storage_->table)
    if (format::tag_string(e.tag) == tag) return {reinterpret_cast<const std::byte*>(storage_->data + e.offset), e.size};
  return {};
}

std::span<const float> Index::float_vectors() const {
  if (!float_data_) return {};
  if (!storage_->float_verified.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lk(storage_->float_mu);
    if (!storage_->float_verified.load(std::memory_order_relaxed)) {
      verify_float_section();
      storage_->float_verified.store(true, std::memory_order_release);
    }
  }
  return {float_data_, size() * float_dims()};
}

std::vector<Index::SectionInfo> Index::sections() const {
  std::vector<SectionInfo> out;
  for (auto& e : storage_->table) out.push_back({format::tag_string(e.tag), e.offset, e.size, e.checksum});
  return out;
}

void Index::verify_all() const {
  for (auto& e : storage_->table)
    if (image::checksum(storage_->data + e.offset, e.size) != e.checksum)
      fail(path_, "corrupt: checksum mismatch in section " + format::tag_string(e.tag) +
                      " (the file was modified or damaged)");
  if (float_data_) verify_float_section();
}

uint64_t Index::file_size() const { return storage_->size; }

}  // namespace igla
