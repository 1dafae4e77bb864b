// igla fuzz targets: shared pieces. Each target gets the fuzzer's bytes as a file (the loaders and
// Index::open read paths, and the file path is what users hit), held in a memfd so no disk is used.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "igla/vectors.hpp"

namespace igla::fuzz {

// One in-memory file per process, rewritten with each input; path() names it for open().
class MemFile {
 public:
  MemFile() : fd_(memfd_create("igla-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& set(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

// A broken invariant is a bug even when nothing crashed: report it and abort so libFuzzer keeps
// the input.
#define IGLA_FUZZ_CHECK(cond)                                                 \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "igla fuzz: invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

// What every successful load must satisfy: the shape, finite values, non-empty unique words.
inline void check_vectors(const FloatVectors& v) {
  IGLA_FUZZ_CHECK(v.dims > 0);
  IGLA_FUZZ_CHECK(!v.words.empty());
  IGLA_FUZZ_CHECK(v.data.size() == v.words.size() * size_t{v.dims});
  for (float x : v.data) IGLA_FUZZ_CHECK(x == x && x - x == 0);  // finite
  for (const auto& w : v.words) IGLA_FUZZ_CHECK(!w.empty());
}

}  // namespace igla::fuzz
