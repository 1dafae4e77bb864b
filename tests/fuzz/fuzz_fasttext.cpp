// libFuzzer target: fastText .vec files, read as `igla convert` reads any file by default: the
// format sniffed from the first bytes (a .vec is word2vec text, so a mutated one may be taken for
// GloVe, word2vec binary or wink JSON), then that loader. See loader_fuzz.hpp.
#include "loader_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return igla::fuzz::fuzz_loader(data, size, igla::VectorFormat::Auto);
}
