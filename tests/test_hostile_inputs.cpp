// Regression tests for issue 12 (hostile inputs): the wink JSON loader's crashes and messages,
// BOMs, trailing content, the dims limit of rotated transforms, and inputs the fuzzers found
// (tests/fuzz/corpus/*/regress-*: every such file must load or fail with an igla::Error).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "core/transform.hpp"
#include "fuzz/index_fixup.hpp"
#include "igla/engine.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/vectors.hpp"
#include "test_util.hpp"

using namespace igla;
using igla::testing_util::error_of;
using igla::testing_util::TempDir;

namespace {

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The message of loading `bytes` as `fmt`; fails the test when it loads.
std::string load_error(const std::string& bytes, VectorFormat fmt, const std::string& name = "t.json") {
  TempDir dir;
  const std::string path = write(dir, name, bytes);
  LoadOptions o;
  o.format = fmt;
  const std::string msg = error_of([&] { load_vectors(path, o); });
  EXPECT_FALSE(msg.empty()) << "loaded without an error: " << bytes.substr(0, 40);
  EXPECT_EQ(msg.rfind(path, 0), 0u) << "does not start with the file: " << msg;
  return msg;
}

void expect_has(const std::string& msg, std::initializer_list<std::string> parts) {
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "no '" << p << "' in: " << msg;
}

const char* kWink = R"({"dimensions":2,"wordIndex":3,"size":2,"words":["a","b"],"vectors":{"b":[0.5,1,1,1],"a":[1,2,1,0]}})";

}  // namespace

// Each of these segfaulted before (a null pointer in the loader's error path): any parse error.
TEST(HostileWinkJson, ParseErrorsAreErrorsWithAnOffset) {
  expect_has(load_error("{\"a", VectorFormat::Auto), {"byte offset 1", "a string that never closes"});
  expect_has(load_error("{", VectorFormat::WinkJson), {"invalid wink JSON"});
  expect_has(load_error("x", VectorFormat::WinkJson), {"invalid wink JSON"});
  expect_has(load_error(" ", VectorFormat::WinkJson), {"invalid wink JSON"});
  // Invalid UTF-8: the first bad byte's offset.
  expect_has(load_error("{\"dimensions\":2,\"words\":[\"\xC3(\"]}", VectorFormat::WinkJson),
             {"byte offset 26", "not valid UTF-8"});
  expect_has(load_error("{\"words\":[\"\xED\xA0\x80\"]}", VectorFormat::WinkJson), {"byte offset 11", "UTF-8"});
  // --format wink on a GloVe file.
  expect_has(load_error("the 0.1 0.2\nof 0.3 0.4\n", VectorFormat::WinkJson, "g.txt"), {"invalid wink JSON"});
  // A document cut anywhere: an Error every time, never a crash.
  const std::string good = kWink;
  for (size_t n = 1; n < good.size(); ++n) load_error(good.substr(0, n), VectorFormat::WinkJson);
}

TEST(HostileWinkJson, TrailingContentIsRefused) {
  TempDir dir;
  LoadOptions o;
  EXPECT_EQ(load_vectors(write(dir, "ok.json", std::string(kWink) + " \r\n\t"), o).size(), 2u);
  const std::string doc = kWink;
  expect_has(load_error(doc + "{}", VectorFormat::WinkJson),
             {"byte offset " + std::to_string(doc.size()), "content after the end of the JSON document", "'{}'"});
  expect_has(load_error(doc + "\n x", VectorFormat::WinkJson), {"byte offset " + std::to_string(doc.size() + 2)});
  expect_has(load_error(doc + "]", VectorFormat::WinkJson),
             {"byte offset " + std::to_string(doc.size()), "does not end with the '}'", "other content follows it"});
  o.limit = 1;  // also when a limit stops the reading early
  const std::string path = write(dir, "lim.json", doc + " {\"b\":1}");
  expect_has(error_of([&] { load_vectors(path, o); }),
             {"byte offset " + std::to_string(doc.size() + 1), "content after the end"});
}

TEST(HostileWinkJson, EmptyWordNamesFileAndOffset) {
  const std::string bad = R"({"dimensions":2,"wordIndex":3,"words":["a",""],"vectors":{"":[0.5,1,1,1],"a":[1,2,1,0]}})";
  expect_has(load_error(bad, VectorFormat::WinkJson),
             {"byte offset " + std::to_string(bad.find("\"\"")), "word 2 of \"words\" is the empty string"});
}

TEST(HostileLoaders, Word2VecBinaryAcceptsAUtf8BomLikeTheTextFormats) {
  TempDir dir;
  std::string bin = "2 2\n";
  const float a[2] = {1.0f, -2.0f}, b[2] = {0.5f, 3.0f};
  bin += "a ";
  bin.append(reinterpret_cast<const char*>(a), 8);
  bin += "\nb ";
  bin.append(reinterpret_cast<const char*>(b), 8);
  bin += "\n";
  const std::string path = write(dir, "bom.bin", "\xEF\xBB\xBF" + bin);
  EXPECT_EQ(detect_format(path), VectorFormat::Word2VecBinary);
  for (VectorFormat f : {VectorFormat::Auto, VectorFormat::Word2VecBinary}) {
    LoadOptions o;
    o.format = f;
    const FloatVectors v = load_vectors(path, o);
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v.words[0], "a");
    EXPECT_EQ(v.row(1)[1], 3.0f);
  }
}

TEST(HostileLoaders, GloveFirstRowBeyondTheDimsLimit) {
  std::string row = "w";
  for (uint32_t i = 0; i <= (1u << 20); ++i) row += " 0";
  expect_has(load_error(row + "\n", VectorFormat::Glove, "big.txt"),
             {"line 1", "1048577 values", "at most 1048576 dims"});
}

// Rotated transforms cost O(d^3): refused before any work beyond the documented limits (three
// words of 4,000 dims took ~119 s before), accepted within them.
TEST(HostileTransform, RotatedDimsLimitIsCheckedFirst) {
  FloatVectors v = igla::testing_util::random_vectors(3, 4000, 1);
  QuantParams q;
  parse_quantization("rotated", q);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { Index::build(v, q, false); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  expect_has(msg, {"rotated:4032 on vectors of 4000 dims", "d*d*D", "--quantization centered"});
  parse_quantization("rotated:64", q);  // a reduction: Jacobi on a 4000 x 4000 covariance
  expect_has(error_of([&] { Index::build(v, q, false); }), {"d <= 512", "O(d^3)"});
  v = igla::testing_util::random_vectors(3, 300, 1);
  parse_quantization("rotated:65536", q);  // 300^2 * 65536 < 2^33: allowed
  EXPECT_NO_THROW(check_rotation_cost(300, 65536));
  EXPECT_NO_THROW(check_rotation_cost(2048, 2048));
  EXPECT_NO_THROW(check_rotation_cost(512, 64));
  EXPECT_THROW(check_rotation_cost(2049, 2112), Error);
  EXPECT_THROW(check_rotation_cost(513, 64), Error);
  v = igla::testing_util::random_vectors(3, 4000, 1);
  parse_quantization("centered", q);  // linear in d: fine
  EXPECT_EQ(Index::build(v, q, false).size(), 3u);
}

// Every input the fuzzers ever crashed on (and every seed) loads or fails with an Error.
TEST(HostileLoaders, FuzzCorporaLoadOrFailCleanly) {
  const std::filesystem::path root = IGLA_SOURCE_DIR "/tests/fuzz/corpus";
  size_t files = 0;
  for (const char* target : {"glove", "word2vec_text", "word2vec_bin", "fasttext", "wink_json"}) {
    const VectorFormat f = std::string(target) == "glove"           ? VectorFormat::Glove
                           : std::string(target) == "word2vec_text" ? VectorFormat::Word2VecText
                           : std::string(target) == "word2vec_bin"  ? VectorFormat::Word2VecBinary
                           : std::string(target) == "wink_json"     ? VectorFormat::WinkJson
                                                                    : VectorFormat::Auto;
    for (const auto& e : std::filesystem::directory_iterator(root / target)) {
      LoadOptions o;
      o.format = f;
      try {
        const FloatVectors v = load_vectors(e.path().string(), o);
        EXPECT_EQ(v.data.size(), v.size() * size_t{v.dims}) << e.path();
      } catch (const Error&) {
      }
      ++files;
    }
  }
  EXPECT_GE(files, 15u);
}

// The index fuzz target's corpus, opened and queried as the target does: every file opens or
// fails with an Error. regress-word-count-overflow.igla: a header word count of 2^62 + 7 wrapped
// the vocabulary size check ((n + 1) * 4 overflowed) and the offsets were read out of bounds.
TEST(HostileIndex, FuzzCorpusOpensOrFailsCleanly) {
  const std::filesystem::path root = IGLA_SOURCE_DIR "/tests/fuzz/corpus/index";
  TempDir dir;
  size_t files = 0, opened = 0;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(bytes.empty()) << e.path();
    const bool fix = bytes[0] & 1;  // the target's mode byte
    bytes.erase(bytes.begin());
    if (fix) igla::fuzz::fix_checksums(bytes);
    const std::string path = write(dir, "i.igla", std::string(bytes.begin(), bytes.end()));
    ++files;
    const bool regress = e.path().filename() == "regress-word-count-overflow.igla";
    try {
      const auto ixp = open_index(path);
      const Index& ix = *ixp;
      EXPECT_FALSE(regress) << "opened";
      SearcherOptions so;
      so.cpu.threads = 1;
      const Engine engine(ixp, so);
      EXPECT_LE(engine.nearest(std::string(ix.word(0)), {.k = 3}).size(), 3u);
      ++opened;
    } catch (const Error& err) {
      if (regress) {
        // Refused by the header's range check (words allowed) or, past it, the vocabulary size check.
        const std::string what = err.what();
        EXPECT_TRUE(what.find("vocabulary section too small") != std::string::npos ||
                    what.find("words (1 to") != std::string::npos)
            << what;
      }
    }
  }
  EXPECT_GE(files, 11u);
  EXPECT_GE(opened, 10u);  // the seeds are valid indexes
}
