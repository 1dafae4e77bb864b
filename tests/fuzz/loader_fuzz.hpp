// igla fuzz targets: the body of every loader target. A load either throws igla::Error (a clear
// message naming the file) or returns vectors that keep every invariant; when it succeeds, a load
// with `limit` must return exactly the first rows of the full load. The bytes go to the loaders
// as an in-memory copy (MappedFile's second constructor): the same parsing as a mapped file, with
// ASan watching the exact end of the input, and no file system call per input.
#pragma once

#include <cstring>

#include "core/loaders_internal.hpp"
#include "fuzz_common.hpp"
#include "igla/error.hpp"

namespace igla::fuzz {

inline int fuzz_loader(const uint8_t* data, size_t size, VectorFormat format) {
  const std::string path = "fuzz-input";
  std::unique_ptr<loaders::MappedFile> file;
  try {
    file = std::make_unique<loaders::MappedFile>(path, std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const Error&) {
    IGLA_FUZZ_CHECK(size == 0);
    return 0;
  }
  LoadOptions opts;
  opts.format = format;
  FloatVectors full;
  try {
    full = loaders::load_mapped(*file, opts);
  } catch (const Error& e) {
    IGLA_FUZZ_CHECK(std::strncmp(e.what(), path.c_str(), path.size()) == 0);  // names the file
    return 0;
  }
  check_vectors(full);
  opts.limit = full.size() / 2 + 1;
  FloatVectors part;
  try {
    part = loaders::load_mapped(*file, opts);
  } catch (const Error&) {
    IGLA_FUZZ_CHECK(!"a file that loads whole must load with a limit");
  }
  check_vectors(part);
  IGLA_FUZZ_CHECK(part.size() == opts.limit && part.dims == full.dims);
  for (size_t i = 0; i < part.size(); ++i) IGLA_FUZZ_CHECK(part.words[i] == full.words[i]);
  IGLA_FUZZ_CHECK(std::memcmp(part.data.data(), full.data.data(), part.data.size() * sizeof(float)) == 0);
  return 0;
}

}  // namespace igla::fuzz
