// bench-ann's saved truth (--save-truth / --truth): a run on an index without float32 vectors,
// given the truth of a run on the same words with them, measures the same recall; a truth file
// for other words, another k or with bad lines is refused with its name (and line).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <tuple>
#include <vector>

#include "cli_fixture.hpp"

namespace {

using igla::testing_util::CliRun;
using igla::testing_util::run_cli;

class CliBenchAnnTruth : public ::testing::Test {
 protected:
  igla::testing_util::TempDir dir;
  std::string with_float, without_float, truth;

  void SetUp() override {
    const igla::FloatVectors v = igla::testing_util::clustered(1500, 24, 11);
    igla::testing_util::write_vectors_text(dir.file("v.txt"), v);
    with_float = dir.file("f.igla");
    without_float = dir.file("nf.igla");
    truth = dir.file("truth.txt");
    for (const auto& [out, extra] : {std::pair{with_float, " --keep-float"}, std::pair{without_float, ""}}) {
      const CliRun r = run_cli("convert " + dir.file("v.txt") + " " + out + extra, dir.path);
      ASSERT_EQ(r.code, 0) << r.out;
    }
  }

  // "method params" -> "recall_f recall_t" of the vocabulary rows a run printed.
  static std::map<std::string, std::string> recalls(const std::string& out) {
    std::map<std::string, std::string> m;
    const std::regex row(R"(^\s+vocabulary\s+(.+?)\s{2,}(\S+(?: c=\d+)?)\s+recall@10 float (\S+) ternary (\S+))");
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      std::smatch s;
      if (std::regex_search(line, s, row)) m[s[1].str() + " " + s[2].str()] = s[3].str() + " " + s[4].str();
    }
    return m;
  }

  std::string common() const {
    return " --heldout 0 --nprobe 2,all --candidates 20 --int8-candidates 10 --no-graph --no-peers --csv '' "
           "--threads 2 --one-queries 5";
  }
};

TEST_F(CliBenchAnnTruth, SavedTruthGivesTheSameRecallWithoutFloatVectors) {
  const CliRun a = run_cli("bench-ann --index " + with_float + " --queries 300 --query-range 0" + common() +
                               " --save-truth " + truth,
                           dir.path, 120);
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_NE(a.out.find("truth: wrote"), std::string::npos) << a.out;
  const CliRun b = run_cli("bench-ann --index " + without_float + common() + " --truth " + truth, dir.path, 120);
  ASSERT_EQ(b.code, 0) << b.out;
  const auto ra = recalls(a.out), rb = recalls(b.out);
  ASSERT_TRUE(ra.count("igla exact c=50")) << a.out;
  // The exact search and every list probed do not depend on how the lists were built (on the
  // float32 vectors in a, on the rerank rows in b): the same queries and truth give the same recall.
  const std::regex lists_re(R"(igla IVF: (\d+) lists)");
  std::smatch la, lb;
  ASSERT_TRUE(std::regex_search(a.out, la, lists_re)) << a.out;
  ASSERT_TRUE(std::regex_search(b.out, lb, lists_re)) << b.out;
  ASSERT_EQ(la[1].str(), lb[1].str());
  const std::string all = "nprobe=" + la[1].str();
  for (const std::string& key : std::vector<std::string>{"igla exact c=50", "igla ivf " + all + " c=20", "igla ivf ternary " + all,
                                "igla ivf-int8 " + all + " c=10"}) {
    ASSERT_TRUE(ra.count(key) && rb.count(key)) << key << "\n" << a.out << "\n" << b.out;
    EXPECT_EQ(ra.at(key), rb.at(key)) << key;
  }
  EXPECT_NE(b.out.find("lists on the rerank rows"), std::string::npos) << b.out;
}

TEST_F(CliBenchAnnTruth, RefusesWhatItCannotMeasure) {
  const CliRun a = run_cli("bench-ann --index " + with_float + " --queries 200" + common() + " --save-truth " + truth,
                           dir.path, 120);
  ASSERT_EQ(a.code, 0) << a.out;
  struct Case {
    std::string args, says;
  };
  const std::string c = " --no-graph --no-peers --csv '' --threads 2";
  for (const Case& k : std::vector<Case>{
           {"--index " + without_float + " --truth " + truth + c, "add --heldout 0"},
           {"--index " + without_float + " --heldout 0 --truth " + truth + " --no-graph --csv ''", "add --no-peers"},
           {"--index " + without_float + " --heldout 0 --truth " + truth + c + " --ivf-rows residual", "float32"},
           {"--index " + without_float + " --heldout 0" + c, "no float32 vectors"},
           {"--index " + with_float + " --queries 200 --save-truth " + dir.file("t2.txt") + c, "add --heldout 0"},
       }) {
    const CliRun r = run_cli("bench-ann " + k.args, dir.path, 60);
    EXPECT_NE(r.code, 0) << k.args << "\n" << r.out;
    EXPECT_NE(r.out.find(k.says), std::string::npos) << k.args << "\n" << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("t2.txt")));
}

TEST_F(CliBenchAnnTruth, RefusesATruthFileForOtherWordsOrWithBadLines) {
  const CliRun a = run_cli("bench-ann --index " + with_float + " --queries 150" + common() + " --save-truth " + truth,
                           dir.path, 120);
  ASSERT_EQ(a.code, 0) << a.out;
  std::string text;
  {
    std::ifstream f(truth);
    std::stringstream s;
    s << f.rdbuf();
    text = s.str();
  }
  // Another index: the first 1,400 words only.
  const std::string fewer = dir.file("fewer.igla");
  ASSERT_EQ(run_cli("convert " + dir.file("v.txt") + " " + fewer + " --limit 1400", dir.path).code, 0);
  const std::string c = " --heldout 0 --no-graph --no-peers --csv '' --threads 2 --truth ";
  CliRun r = run_cli("bench-ann --index " + fewer + c + truth, dir.path, 60);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(truth + ":2: saved for other words"), std::string::npos) << r.out;
  // Damaged copies: each names the file and the line.
  const size_t line5 = text.find('\n', text.find("queries")) + 1;
  const std::string bad_id = text.substr(0, line5) + "999999" + text.substr(text.find(' ', line5));
  const std::string extra = text.substr(0, text.find('\n', line5)) + " 7" + text.substr(text.find('\n', line5));
  const std::string cut = text.substr(0, text.size() / 2);
  std::string k5 = text;
  k5.replace(k5.find("\nk 10\n"), 6, "\nk 5\n");
  for (const auto& [name, body, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"bad_id.txt", bad_id, ":5: id 999999 outside"},
           {"extra.txt", extra, ":5: more than the query id"},
           {"cut.txt", cut, "ends early"},
           {"cut_line.txt", text.substr(0, text.rfind('\n', text.size() / 2) + 1), "the file ends early"},
           {"k5.txt", k5, ":3: saved for k = 5, this run has k = 10"},
           {"magic.txt", "hello\n" + text, ":1: not a bench-ann truth file"}}) {
    igla::testing_util::write_text(dir.file(name), body);
    r = run_cli("bench-ann --index " + without_float + c + dir.file(name), dir.path, 60);
    EXPECT_NE(r.code, 0) << name;
    const std::string where = dir.file(name) + (says[0] == ':' ? says : ":");  // the file, and the line where known
    EXPECT_NE(r.out.find(where), std::string::npos) << name << "\n" << r.out;
    EXPECT_NE(r.out.find(says), std::string::npos) << name << "\n" << r.out;
  }
}

}  // namespace
