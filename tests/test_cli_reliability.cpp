// The igla binary against hostile arguments and paths (issue 12): bounded -k / --candidates /
// --threads with readable messages, no raw C++ exception text, special files refused without
// blocking, the output path rules, temporary files removed on SIGTERM, nan never printed as a
// result, and the compact default (float32 vectors only with --keep-float).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "igla/index.hpp"
#include "cli_fixture.hpp"

extern char** environ;

namespace {

using igla::testing_util::TempDir;

using igla::testing_util::CliRun;

CliRun run(const std::string& args, const std::string& home, int timeout_s = 60) {
  return igla::testing_util::run_cli(args, home, timeout_s);
}

using igla::testing_util::tiny_glove;
void write(const std::string& path, const std::string& text) { igla::testing_util::write_text(path, text); }

bool has_temp_files(const std::filesystem::path& dir) {
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  return false;
}

using CliReliability = igla::testing_util::TinyIndexCli;

// Out-of-range and unparsable numbers: exit 2 with a message naming the option and the range,
// short and readable (CLI11's own check printed DBL_MAX with 300 digits).
TEST_F(CliReliability, BadNumbersGiveReadableUsageErrors) {
  struct Case {
    std::string args, expect;
  };
  const std::string q = dir.file("q.txt");
  write(q, ": family\nman king woman queen\n");
  const Case cases[] = {
      {"nearest king -k 0", "--top: must be a whole number from 1 to 1000000000, got 0"},
      {"nearest king -k abc", "must be a whole number from 1 to 1000000000, got 'abc'"},
      {"nearest king -k -1", "must be a whole number"},
      {"nearest king -k 1e9", "got '1e9'"},
      {"nearest king -k 99999999999999999999999", "must be a whole number"},
      {"nearest king --candidates -5", "--candidates: must be a whole number from 0 to 1000000000"},
      {"nearest king --threads -1", "--threads: must be a whole number from 0 to 1024, got '-1'"},
      {"nearest king --threads 100000", "--threads: must be a whole number from 0 to 1024, got 100000"},
      {"eval analogies " + q + " --restrict -1", "--restrict: must be a whole number"},
      {"eval analogies " + q + " --batch 0", "--batch: must be a whole number from 1"},
      {"eval analogies " + q + " --warm-up -1", "--warm-up: must be a whole number from 0"},
      {"nearest king --cuda-path mtx", "--cuda-path: mtx not in {"},
      {"convert " + dir.file("v.txt") + " " + dir.file("o.igla") + " --threshold-factor -1",
       "--threshold-factor: must be a number from 0 to 100, got '-1'"},
      {"convert " + dir.file("v.txt") + " " + dir.file("o.igla") + " --threshold-factor nan", "got 'nan'"},
      {"convert " + dir.file("v.txt") + " " + dir.file("o.igla") + " --threshold-factor 1e30", "got '1e30'"},
      {"convert " + dir.file("v.txt") + " " + dir.file("o.igla") + " --limit -3", "--limit: must be a whole number"},
  };
  for (const Case& c : cases) {
    const CliRun r = run(c.args + " --index " + idx, dir.path);
    EXPECT_EQ(r.code, 2) << c.args << ": " << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << ": " << r.out;
    EXPECT_EQ(r.out.find("1797"), std::string::npos) << c.args << ": " << r.out;
    EXPECT_LT(r.out.size(), 300u) << c.args << ": " << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.igla")));
}

// Huge but valid values are capped (k and candidates at the vocabulary, threads at 4 x the
// hardware threads): fast, no allocation failure, the same answers.
TEST_F(CliReliability, HugeKCandidatesAndThreadsAreCapped) {
  CliRun r = run("nearest apple -k 1000000000 --candidates 1000000000 --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, 5), "pear\t") << r.out;
  EXPECT_LT(r.seconds, 10.0);
  size_t lines = 0;
  for (char ch : r.out) lines += ch == '\n';
  EXPECT_EQ(lines, 6u) << r.out;  // every other word, once
  r = run("analogy man king woman -k 1 --threads 1024 --index " + idx, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, 6), "queen\t") << r.out;
  EXPECT_LT(r.seconds, 10.0);
}

TEST_F(CliReliability, SpecialFilesAsIndexAreRefusedWithoutBlocking) {
  const std::string fifo = dir.file("fifo.igla");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& p : {fifo, std::string("/dev/zero"), dir.path.string()}) {
    const CliRun r = run("nearest king --index " + p, dir.path, 20);
    EXPECT_EQ(r.code, 1) << p << ": " << r.out;
    EXPECT_NE(r.out.find("not a regular file"), std::string::npos) << p << ": " << r.out;
    EXPECT_NE(r.out.find(p), std::string::npos) << r.out;
  }
}

// Output paths: device nodes, FIFOs and directories refused and left alone; a symlink's target
// replaced atomically, the link kept; a dangling symlink refused.
TEST_F(CliReliability, OutputPathRules) {
  const std::string in = dir.file("v.txt");
  const std::string fifo = dir.file("fifo.igla");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  CliRun r = run("convert " + in + " " + fifo, dir.path, 20);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a FIFO, not a regular file: refusing to replace it"), std::string::npos) << r.out;
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // /dev/full (as root this once replaced the device node); checked, never written.
  r = run("convert " + in + " /dev/full", dir.path, 20);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("/dev/full: is a character device"), std::string::npos) << r.out;
  ASSERT_EQ(stat("/dev/full", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // A symlink to an index: the target is replaced, the link stays.
  std::filesystem::create_symlink("v.igla", dir.file("link.igla"));
  r = run("convert " + in + " " + dir.file("link.igla") + " --limit 3", dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("link.igla")));
  EXPECT_EQ(igla::Index::open(idx).size(), 3u);
  std::filesystem::create_symlink("nowhere/x.igla", dir.file("dangling.igla"));
  r = run("convert " + in + " " + dir.file("dangling.igla"), dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("symlink to a missing file"), std::string::npos) << r.out;
  EXPECT_FALSE(has_temp_files(dir.path));
}

// SIGTERM (or SIGINT) while the index is being written: the process dies of the signal and its
// OUT.tmp.XXXXXX is gone; a stale one (SIGKILL) is removed by the next convert to OUT.
TEST_F(CliReliability, TemporaryFilesRemovedOnSignalAndByTheNextWrite) {
  // Big enough that writing takes a while: 30,000 words x 200 dims, float32 kept.
  const std::string in = dir.file("big.txt");
  {
    std::ofstream f(in);
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> u(-999, 999);
    for (int w = 0; w < 30000; ++w) {
      f << "w" << w;
      for (int d = 0; d < 200; ++d) f << " " << u(rng) / 1000.0;
      f << "\n";
    }
  }
  const std::filesystem::path out_dir = dir.path / "out";
  std::filesystem::create_directory(out_dir);
  const std::string out = (out_dir / "big.igla").string();
  bool caught_writing = false;
  for (int sig : {SIGTERM, SIGINT}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::filesystem::remove(out);
      // IGLA_CLI_PATH is the binary, or in a cross build the emulator's command line before it
      // (qemu-aarch64 -L ... igla): split at spaces, the first word found on PATH.
      std::vector<std::string> args;
      std::istringstream cli(IGLA_CLI_PATH);
      for (std::string word; cli >> word;) args.push_back(word);
      for (const char* a : {"convert", in.c_str(), out.c_str(), "--keep-float", "--quantization", "seed"})
        args.emplace_back(a);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
      pid_t pid = 0;
      ASSERT_EQ(posix_spawnp(&pid, args[0].c_str(), &fa, nullptr, argv.data(), environ), 0);
      posix_spawn_file_actions_destroy(&fa);
      bool seen = false;
      int status = 0;
      for (;;) {  // poll until the temporary file appears (then signal) or the process ends
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        if (!seen && has_temp_files(out_dir)) {
          seen = true;
          kill(pid, sig);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (!seen) continue;  // finished before we saw it: try again
      EXPECT_FALSE(has_temp_files(out_dir)) << "signal " << sig;  // whenever the signal landed
      // Landed after the rename (the process had finished writing): not the case under test.
      if (!WIFSIGNALED(status) || std::filesystem::exists(out)) continue;
      EXPECT_EQ(WTERMSIG(status), sig);
      caught_writing = true;
      break;
    }
  }
  EXPECT_TRUE(caught_writing) << "never caught a convert while it wrote its temporary file";
  // A stale temporary file (as SIGKILL leaves) is removed by the next write to the same output.
  write(out + ".tmp.Zz9Yy8", "partial");
  const CliRun r = run("convert " + dir.file("v.txt") + " " + out, dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(has_temp_files(out_dir));
}

TEST_F(CliReliability, SimilarityEvalNeverPrintsNan) {
  write(dir.file("one.csv"), "king,queen,8\n");
  CliRun r = run("eval similarity " + dir.file("one.csv") + " --index " + idx, dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at least 2 are needed"), std::string::npos) << r.out;
  write(dir.file("flat.csv"), "king,queen,5\napple,pear,5\nman,car,5\n");
  r = run("eval similarity " + dir.file("flat.csv") + " --index " + idx + " --json", dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scores are all equal"), std::string::npos) << r.out;
}

// float32 vectors are kept only with --keep-float; --no-float (the old opt-out) is accepted.
TEST_F(CliReliability, CompactByDefaultAndEvalFloatSaysHowToGetFloats) {
  CliRun r = run("info " + idx, dir.path);
  EXPECT_NE(r.out.find("float32 kept:   no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bytes per word queries read:"), std::string::npos) << r.out;
  write(dir.file("q.txt"), ": family\nman king woman queen\n");
  r = run("eval analogies " + dir.file("q.txt") + " --float --index " + idx, dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("rebuild it with `igla convert VECTORS " + idx + " --keep-float`"), std::string::npos)
      << r.out;
  r = run("eval similarity " + dir.file("q.txt") + " --float", dir.file("home"));  // the default index
  EXPECT_NE(r.out.find("igla fetch-glove"), std::string::npos) << r.out;

  ASSERT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("f.igla") + " --keep-float", dir.path).code, 0);
  r = run("info " + dir.file("f.igla"), dir.path);
  EXPECT_NE(r.out.find("float32 kept:   yes"), std::string::npos) << r.out;
  r = run("eval analogies " + dir.file("q.txt") + " --float --index " + dir.file("f.igla"), dir.path);
  EXPECT_EQ(r.code, 0) << r.out;
  ASSERT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("n.igla") + " --no-float", dir.path).code, 0);
  EXPECT_FALSE(igla::Index::open(dir.file("n.igla")).has_float());
  EXPECT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("x.igla") + " --no-float --keep-float", dir.path).code,
            2);
}

TEST_F(CliReliability, InfoVerifyChecksEverySection) {
  ASSERT_EQ(run("convert " + dir.file("v.txt") + " " + dir.file("f.igla") + " --keep-float", dir.path).code, 0);
  std::vector<char> bytes;
  {
    std::ifstream f(dir.file("f.igla"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  uint64_t f32 = 0;
  for (const auto& s : igla::Index::open(dir.file("f.igla")).sections())
    if (s.tag == "F32V") f32 = s.offset;
  ASSERT_GT(f32, 0u);
  bytes[f32 + 5] ^= 0x08;
  {
    std::ofstream f(dir.file("bad.igla"), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // Queries never read F32V, so opening and searching work; --verify finds the damage.
  EXPECT_EQ(run("nearest king --index " + dir.file("bad.igla"), dir.path).code, 0);
  const CliRun r = run("info --verify " + dir.file("bad.igla"), dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("checksum mismatch in section F32V"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bad.igla"), std::string::npos) << r.out;
  EXPECT_EQ(run("info --verify " + idx, dir.path).code, 0);
}

}  // namespace

TEST_F(CliReliability, VectorQueryFromADirectorySaysSo) {
  const CliRun r = run("nearest --vector " + dir.path.string() + " --index " + idx, dir.path);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a directory (--vector takes a text file"), std::string::npos) << r.out;
}
