// libFuzzer target: the wink_json loader (load_vectors with --format forced). See loader_fuzz.hpp.
#include "loader_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return igla::fuzz::fuzz_loader(data, size, igla::VectorFormat::WinkJson);
}
