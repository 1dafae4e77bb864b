// Shared helpers for the tests: random data with a fixed seed, temporary directories.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/vectors.hpp"

namespace igla::testing_util {

// The default index as the CLI finds it: $IGLA_HOME/glove-100d.igla, $IGLA_HOME defaulting to
// ~/.cache/igla.
inline std::string default_index_path() {
  const char* h = std::getenv("IGLA_HOME");
  const char* home = std::getenv("HOME");
  const std::string dir = h && *h ? std::string(h) : std::string(home && *home ? home : "/tmp") + "/.cache/igla";
  return dir + "/" + kDefaultIndexName;
}

// The real GloVe index ($IGLA_HOME/glove-100d.igla, from igla fetch-glove) and the Google analogy
// questions (data/ in the repository). `missing` is why a real-data test skips, empty when both are there.
struct RealData {
  std::string index = default_index_path();
  std::string questions = IGLA_SOURCE_DIR "/data/questions-words.txt";
  std::string missing() const {
    if (!std::filesystem::exists(index)) return "no index at " + index + " (set IGLA_HOME)";
    if (!std::filesystem::exists(questions)) return "no questions file at " + questions;
    return {};
  }
};

// Random trits with a given fraction of non-zeros.
inline std::vector<int8_t> random_trits(size_t n, std::mt19937_64& rng, double nonzero = 0.6) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int8_t> t(n);
  for (auto& x : t) {
    const double r = u(rng);
    x = r < nonzero / 2 ? int8_t{-1} : (r < nonzero ? int8_t{1} : int8_t{0});
  }
  return t;
}

inline FloatVectors random_vectors(size_t n, uint32_t dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  FloatVectors v;
  v.dims = dims;
  for (size_t i = 0; i < n; ++i) v.words.push_back(std::string("w").append(std::to_string(i)));
  v.data.resize(n * dims);
  for (auto& x : v.data) x = g(rng);
  return v;
}

// The message of the igla::Error that f throws ("" if none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Runs a shell command line; returns its exit code (-1 if it did not exit) and what it printed
// (the caller adds 2>&1 to take stderr too). The CLI tests start igla through it.
inline std::pair<int, std::string> run_shell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A file's bytes, and writing bytes to a file (replacing it): the hostile-input tests edit indexes.
inline std::vector<char> read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
inline void write_all(const std::string& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}
inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
// The vectors as a GloVe-style text file (word, then its values), for the CLI's convert.
inline void write_vectors_text(const std::string& path, const FloatVectors& v) {
  std::ofstream f(path);
  for (size_t i = 0; i < v.size(); ++i) {
    f << v.words[i];
    for (float x : v.row(i)) f << ' ' << x;
    f << '\n';
  }
}

// Flips the bits `mask` of the byte `offset` bytes into section `tag` of the index file at `path`
// (the corruption the section-checksum tests feed the reader). False where the file has no such
// section (the caller asserts it).
inline bool flip_section_byte(const std::string& path, const std::string& tag, uint64_t offset, char mask) {
  uint64_t at = 0;
  bool found = false;
  {
    const Index ix = Index::open(path);  // closed before the file is rewritten
    for (const auto& s : ix.sections())
      if (s.tag == tag) at = s.offset + offset, found = true;
  }
  if (!found) return false;
  std::vector<char> bytes = read_all(path);
  bytes.at(at) ^= mask;
  write_all(path, bytes);
  return true;
}

// A tiny GloVe file where king - man + woman lands on queen (the CLI tests convert it).
inline std::string tiny_glove() {
  return "man 1 0 0 0.1 0.2 -0.1\n"
         "woman 0 1 0 0.1 0.2 -0.1\n"
         "king 1 0 1 0.1 -0.3 0.2\n"
         "queen 0 1 1 0.1 -0.3 0.2\n"
         "apple -1 -1 -1 0.5 0.5 0.5\n"
         "pear -1 -1 0 0.5 0.5 0.4\n"
         "car 0.3 -1 0.2 -1 0 0\n";
}

// A Gaussian mixture: 40 centres, points scattered around them (fixed seed): the IVF tests' data.
inline FloatVectors clustered(size_t n, uint32_t dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const size_t c = 40;
  std::vector<float> centres(c * dims);
  for (auto& x : centres) x = g(rng);
  FloatVectors v;
  v.dims = dims;
  v.data.resize(n * dims);
  for (size_t i = 0; i < n; ++i) {
    v.words.push_back(std::string("w").append(std::to_string(i)));  // GCC 12 warns falsely (-Wrestrict) on "w" + ...
    const size_t cl = rng() % c;
    for (uint32_t k = 0; k < dims; ++k) v.data[i * dims + k] = centres[cl * dims + k] + 0.5f * g(rng);
  }
  return v;
}

// A fresh directory under the system temp dir, removed when the object goes away.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("igla-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace igla::testing_util
