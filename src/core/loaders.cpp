// igla: float vector loaders -- format names, detection, dispatch and the shared helpers.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/loaders_internal.hpp"

namespace igla {
namespace loaders {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "", std::string("cannot open the file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail(path, "", std::string("cannot read the file: ") + std::strerror(err));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    fail(path, "", "empty file: no vectors to read");
  }
  // Reserve file + padding as zero pages, then map the file over the front of it: the pages
  // past the file's last one stay readable zeros (a plain file map would fault there).
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  mapped_ = (size_ + kPadding + page - 1) / page * page;
  void* area = ::mmap(nullptr, mapped_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* p = area == MAP_FAILED ? MAP_FAILED
                               : ::mmap(area, size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) {
    if (area != MAP_FAILED) ::munmap(area, mapped_);
    fail(path, "", std::string("cannot map the file: ") + std::strerror(err));
  }
  ::madvise(p, size_, MADV_SEQUENTIAL);  // one front-to-back scan: read ahead aggressively
  data_ = static_cast<const char*>(p);
}

MappedFile::MappedFile(const std::string& path, std::string_view bytes) : path_(path) {
  if (bytes.empty()) fail(path, "", "empty file: no vectors to read");
  owned_ = std::make_unique<char[]>(bytes.size() + kPadding);  // value-initialized: zero padding
  std::memcpy(owned_.get(), bytes.data(), bytes.size());
  data_ = owned_.get();
  size_ = bytes.size();
}

MappedFile::~MappedFile() {
  if (data_ && !owned_) ::munmap(const_cast<char*>(data_), mapped_);
}

void prefault(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);  // best effort
#else
  (void)p;
  (void)bytes;
#endif
}

void fail(const std::string& path, const std::string& where, const std::string& what) {
  throw Error(path + ": " + (where.empty() ? "" : where + ": ") + what);
}

std::string quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += s.size() > kMax ? "'..." : "'";
  return out;
}

const char* parse_float(std::string_view tok, float& out) {
  const char* b = tok.data();
  const char* e = b + tok.size();
  if (b != e && *b == '+' && e - b > 1 && b[1] != '-') ++b;  // from_chars rejects a leading '+'
  auto [ptr, ec] = std::from_chars(b, e, out);
  if (ptr != e || b == e) return "is not a number";
  if (ec == std::errc::result_out_of_range) {
    // Underflow (e.g. 1e-50) is a legitimate tiny value; overflow is not.
    double d = 0;
    std::from_chars(b, e, d);
    if (!(std::fabs(d) < 1.0)) return "is out of float range";
    out = static_cast<float>(d);
    return nullptr;
  }
  if (ec != std::errc()) return "is not a number";
  if (std::isnan(out)) return "is NaN";
  if (std::isinf(out)) return "is Inf (infinite)";
  return nullptr;
}

std::string bad_value(std::string_view tok, const char* problem) {
  return std::string(problem) + ": " + quote(tok) + "; every value must be a finite number";
}

void parse_header(std::string_view line, const std::string& path, const std::string& where,
                  uint64_t& count, uint32_t& dims) {
  auto next_token = [&line]() {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) return std::string_view();
    size_t e = std::min(line.find_first_of(" \t", b), line.size());
    std::string_view t = line.substr(b, e - b);
    line.remove_prefix(e);
    return t;
  };
  auto number = [&](std::string_view tok, const char* what, uint64_t max) {
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ptr != tok.data() + tok.size() || ec != std::errc())
      fail(path, where, std::string("header ") + what + " is not a number: " + quote(tok) +
                            " (expected a 'count dims' header line)");
    if (v == 0) fail(path, where, std::string("header ") + what + " is zero");
    if (v > max) fail(path, where, std::string("header ") + what + " is too large: " + quote(tok));
    return v;
  };
  count = number(next_token(), "count", UINT32_MAX);
  dims = static_cast<uint32_t>(number(next_token(), "dims", kMaxDims));
  if (!next_token().empty())
    fail(path, where, "header has more than two fields (expected 'count dims')");
}

VectorFormat sniff_format(std::string_view s, const std::string& path) {
  s = s.substr(0, 1 << 16);
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);  // UTF-8 BOM
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) fail(path, "", "empty file: only whitespace");
  if (s[b] == '{') return VectorFormat::WinkJson;

  // A first line of exactly two unsigned integers is a word2vec header.
  s.remove_prefix(s.find_first_not_of("\r\n"));  // blank lines before it
  size_t nl = s.find('\n');
  std::string_view first = s.substr(0, nl);
  int fields = 0;
  bool digits = true;
  for (size_t i = 0; i < first.size();) {
    size_t e = std::min(first.find_first_of(" \t\r", i), first.size());
    if (e > i) {
      ++fields;
      digits = digits && std::all_of(first.begin() + i, first.begin() + e,
                                     [](char c) { return c >= '0' && c <= '9'; });
    }
    i = e + 1;
  }
  if (fields != 2 || !digits) return VectorFormat::Glove;
  if (nl == std::string_view::npos) return VectorFormat::Word2VecText;  // header only: fails later

  // Text rows continue "word 0.123 ..."; binary rows continue "word " + raw float32 bytes.
  std::string_view rest = s.substr(nl + 1);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos) return VectorFormat::Word2VecText;
  std::string_view after = rest.substr(sp + 1, 64);
  if (size_t e = after.find('\n'); e != std::string_view::npos)
    after = after.substr(0, e);  // this row only: the next word may be anything
  bool numeric = !after.empty() && std::all_of(after.begin(), after.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c != '\0' && std::strchr("+-.eE \t\r", c) != nullptr);
  });
  return numeric ? VectorFormat::Word2VecText : VectorFormat::Word2VecBinary;
}

}  // namespace loaders

VectorFormat parse_format(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "auto") return VectorFormat::Auto;
  if (n == "glove") return VectorFormat::Glove;
  if (n == "word2vec" || n == "word2vec-text") return VectorFormat::Word2VecText;
  if (n == "word2vec-bin" || n == "word2vec-binary") return VectorFormat::Word2VecBinary;
  if (n == "fasttext") return VectorFormat::FastText;
  if (n == "wink" || n == "wink-json") return VectorFormat::WinkJson;
  throw Error("unknown vector format '" + std::string(name) +
              "' (expected auto, glove, word2vec, word2vec-bin, fasttext or wink)");
}

const char* format_name(VectorFormat f) {
  switch (f) {
    case VectorFormat::Auto: return "auto";
    case VectorFormat::Glove: return "glove";
    case VectorFormat::Word2VecText: return "word2vec";
    case VectorFormat::Word2VecBinary: return "word2vec-bin";
    case VectorFormat::FastText: return "fasttext";
    case VectorFormat::WinkJson: return "wink";
  }
  return "unknown";
}

VectorFormat detect_format(const std::string& path) {
  loaders::MappedFile f(path);
  return loaders::sniff_format(f.view(), path);
}

FloatVectors load_vectors(const std::string& path, const LoadOptions& opts) {
  return loaders::load_mapped(loaders::MappedFile(path), opts);
}

FloatVectors loaders::load_mapped(const MappedFile& f, const LoadOptions& opts) {
  const std::string& path = f.path();
  VectorFormat fmt = opts.format;
  if (fmt == VectorFormat::Auto) fmt = loaders::sniff_format(f.view(), path);
  switch (fmt) {
    case VectorFormat::Glove: return loaders::load_text(f, false, opts);
    case VectorFormat::Word2VecText:
    case VectorFormat::FastText: return loaders::load_text(f, true, opts);
    case VectorFormat::Word2VecBinary: return loaders::load_word2vec_bin(f, opts);
    case VectorFormat::WinkJson: return loaders::load_wink_json(f, opts);
    case VectorFormat::Auto: break;
  }
  throw Error(path + ": unsupported vector format");
}

}  // namespace igla
