// The igla binary as a user runs it: exit codes and messages for each kind of bad input, no
// partial output files, and the happy paths on a small index.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "igla/index.hpp"
#include "cli_fixture.hpp"

namespace {

using igla::testing_util::TempDir;

using igla::testing_util::CliRun;

CliRun run(const std::string& args, const std::string& home) { return igla::testing_util::run_cli(args, home); }

using igla::testing_util::tiny_glove;
void write(const std::string& path, const std::string& text) { igla::testing_util::write_text(path, text); }

class Cli : public igla::testing_util::TinyIndexCli {
 protected:
  void SetUp() override {
    TinyIndexCli::SetUp();
    ASSERT_NE(convert_out.find("7 words x 6 dims"), std::string::npos) << convert_out;
    ASSERT_NE(convert_out.find("non-zero trits"), std::string::npos) << convert_out;
  }
};

TEST_F(Cli, AnalogyNearestSimilarityWork) {
  CliRun r = run("analogy man king woman -k 1 --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, 6), "queen\t") << r.out;
  r = run("analogy man king woman -k 3 --json --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\"word\":\"queen\""), std::string::npos) << r.out;
  r = run("nearest apple -k 1 --index " + idx, dir.path);
  EXPECT_EQ(r.out.substr(0, 5), "pear\t") << r.out;
  r = run("similarity apple apple --index " + idx, dir.path);
  EXPECT_EQ(r.out, "1.000000\n");
  r = run("doesnt-match apple pear car --index " + idx, dir.path);
  EXPECT_EQ(r.out, "car\n");
  r = run("nearest APPLE --lower -k 1 --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* mode : {"clamp", "add", "mul"}) {
    r = run(std::string("analogy man king woman --time --mode ") + mode + " --index " + idx, dir.path);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("us per query"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("\nman\t"), std::string::npos) << "inputs must be excluded: " << r.out;
  }
  r = run("vsa bind king queen -k 2 --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  r = run("info " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("words:          7"), std::string::npos) << r.out;
}

TEST_F(Cli, UnknownWordNamesItAndSuggests) {
  const CliRun r = run("nearest quen --index " + idx, dir.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("unknown word 'quen'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("closest known: queen"), std::string::npos) << r.out;
}

TEST_F(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("analogy man king --index " + idx, dir.path).code, 2);
  EXPECT_EQ(run("analogy man king woman --mode sideways --index " + idx, dir.path).code, 2);
  EXPECT_EQ(run("frobnicate", dir.path).code, 2);
  const CliRun help = run("--help", dir.path);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("fetch-glove"), std::string::npos);
}

TEST_F(Cli, MissingDefaultIndexSaysHowToGetOne) {
  const CliRun r = run("nearest king", dir.file("empty-home"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("igla fetch-glove"), std::string::npos) << r.out;
  // The CLI (not the library) resolves $IGLA_HOME: the error names the default index there.
  EXPECT_NE(r.out.find(dir.file("empty-home") + "/glove-100d.igla"), std::string::npos) << r.out;
}

TEST_F(Cli, CorruptIndexIsRefused) {
  std::vector<char> bytes;
  {
    std::ifstream f(idx, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write_bytes = [&](const std::string& name, const std::vector<char>& b, size_t n) {
    std::ofstream f(dir.file(name), std::ios::binary);
    f.write(b.data(), static_cast<std::streamsize>(n));
  };
  // A flipped byte in the vocabulary (used by every command): refused at open.
  uint64_t vocb = 0;
  for (const auto& sec : igla::Index::open(idx).sections())
    if (sec.tag == "VOCB") vocb = sec.offset;
  ASSERT_GT(vocb, 0u);
  auto bad = bytes;
  bad[vocb + 20] ^= 1;
  write_bytes("bad.igla", bad, bad.size());
  CliRun r = run("nearest king --index " + dir.file("bad.igla"), dir.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("bad.igla"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checksum mismatch"), std::string::npos) << r.out;
  // Anywhere at all, the float section included: `info --verify` checks every section.
  for (size_t off : {bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    bad = bytes;
    bad[off] ^= 1;
    write_bytes("bad2.igla", bad, bad.size());
    r = run("info --verify " + dir.file("bad2.igla"), dir.path);
    EXPECT_EQ(r.code, 1) << off;
    EXPECT_NE(r.out.find("corrupt:"), std::string::npos) << off << ": " << r.out;  // checksum or padding
  }
  write_bytes("short.igla", bytes, 100);
  r = run("info " + dir.file("short.igla"), dir.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
}

TEST_F(Cli, MalformedVectorFilesFailWithoutOutput) {
  struct Case {
    const char* name;
    std::string text;
    const char* expect;  // in the message
  };
  const Case cases[] = {
      {"columns", "a 1 2 3\nb 1 2\n", "line 2"},
      {"number", "a 1 2 3\nb 1 x 3\n", "line 2"},
      {"nan", "a 1 2 3\nb 1 nan 3\n", "line 2"},
      {"inf", "a 1 2 3\nb inf 2 3\n", "line 2"},
      {"duplicate", "a 1 2 3\nb 1 2 3\na 3 2 1\n", "duplicate"},
      {"empty", "", "empty"},
  };
  for (const auto& c : cases) {
    const std::string in = dir.file(std::string(c.name) + ".txt"), out = dir.file(std::string(c.name) + ".igla");
    write(in, c.text);
    const CliRun r = run("convert " + in + " " + out + " --format glove", dir.path);
    EXPECT_NE(r.code, 0) << c.name;
    EXPECT_NE(r.out.find(in), std::string::npos) << c.name << ": " << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.name << ": " << r.out;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.name;
  }
  // No temporary files left behind either.
  for (auto& e : std::filesystem::directory_iterator(dir.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(Cli, ConvertLimitKeepsTheFirstWords) {
  const CliRun r = run("convert " + dir.file("v.txt") + " " + dir.file("l.igla") + " --limit 3", dir.path);
  ASSERT_EQ(r.code, 0) << r.out;
  const CliRun info = run("info " + dir.file("l.igla"), dir.path);
  EXPECT_NE(info.out.find("words:          3"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("man woman king\n"), std::string::npos) << info.out;
}

TEST_F(Cli, QuantizationModesRerankAndVectorQueries) {
  const std::string r_idx = dir.file("r.igla");
  CliRun r = run("convert " + dir.file("v.txt") + " " + r_idx +
                     " --quantization rotated:128 --rerank f16 --threshold-factor 0.3 --keep-float",
                 dir.path);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("7 words x 6 dims, rotated:128 codes of 128 trits"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("f16 rerank rows"), std::string::npos) << r.out;
  r = run("info " + r_idx, dir.path);
  EXPECT_NE(r.out.find("rotated:128"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rerank rows:    f16"), std::string::npos) << r.out;
  for (const char* c : {"0", "3", "50"}) {
    r = run(std::string("analogy man king woman -k 1 --candidates ") + c + " --index " + r_idx, dir.path);
    EXPECT_EQ(r.out.substr(0, 6), "queen\t") << c << ": " << r.out;
  }
  // A float vector: king's own values find king at cosine 1 (on the f16 rows).
  write(dir.file("king.txt"), "1 0 1\n0.1 -0.3 0.2\n");
  r = run("nearest --vector " + dir.file("king.txt") + " -k 1 --index " + r_idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "king\t1.000000\n");
  write(dir.file("five.txt"), "1 0 1 0.1 -0.3");
  write(dir.file("word.txt"), "1 0 x 0.1 -0.3 0.2");
  const std::pair<std::string, std::string> bad[] = {
      {"--vector " + dir.file("five.txt"), "five.txt has 5 values, the index's float vectors have 6 dims"},
      {"--vector " + dir.file("word.txt"), "value 3 ('x') is not a finite number"},
      {"--vector " + dir.file("none.txt"), "cannot open"},
      {"", "nearest takes a word, --vector FILE or --input FILE"},
  };
  for (const auto& [args, msg] : bad) {
    r = run("nearest " + args + " --index " + r_idx, dir.path);
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_NE(r.out.find(msg), std::string::npos) << args << ": " << r.out;
  }
  EXPECT_EQ(run("nearest king --vector " + dir.file("king.txt") + " --index " + r_idx, dir.path).code, 2);

  // Bad modes are refused before anything is written.
  r = run("convert " + dir.file("v.txt") + " " + dir.file("x.igla") + " --quantization rotated:0", dir.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("bad quantization 'rotated:0'"), std::string::npos) << r.out;
  EXPECT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("x.igla") + " --rerank int4", dir.path).code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.igla")));

  // An index with float32 vectors converts to another mode; one without says so.
  r = run("convert " + r_idx + " " + dir.file("s.igla") + " --quantization seed --rerank none", dir.path);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("info " + dir.file("s.igla"), dir.path);
  EXPECT_NE(r.out.find("quantization:   seed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("words:          7"), std::string::npos) << r.out;
  ASSERT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("nf.igla") + " --no-float", dir.path).code, 0);
  r = run("convert " + dir.file("nf.igla") + " " + dir.file("x.igla"), dir.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("has no float32 vectors"), std::string::npos) << r.out;

  // eval reports what it evaluated and its bytes per word.
  write(dir.file("q.txt"), ": family\nman king woman queen\n");
  r = run("eval analogies " + dir.file("q.txt") + " --index " + r_idx, dir.path);
  EXPECT_NE(r.out.find("total: 100.0% (1/1)"), std::string::npos) << r.out;
  // (--candidates 50 is capped at the 7 words of the vocabulary.)
  EXPECT_NE(r.out.find("method: rotated:128 f=0.3, 128 dims, f16 rerank of 7 candidates, "), std::string::npos)
      << r.out;
}

}  // namespace
