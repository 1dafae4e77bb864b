// The igla binary as the CLI tests run it: one process per command under `timeout` (a regression
// that blocks fails instead of hanging the suite), IGLA_HOME pointed at the test's directory, and
// the fixture the CLI suites share: the tiny GloVe file converted into an index.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "test_util.hpp"

namespace igla::testing_util {

struct CliRun {
  int code;         // the exit status; -1 when killed by a signal
  std::string out;  // stdout and stderr together
  double seconds;   // wall time, start-up included
};

// env: assignments put before the command (e.g. "PATH=..."), or empty.
inline CliRun run_cli(const std::string& args, const std::string& home, int timeout_s = 60,
                      const std::string& env = "") {
  const std::string cmd = env + " IGLA_HOME='" + home + "' timeout -s KILL " + std::to_string(timeout_s) + " " +
                          IGLA_CLI_PATH + " " + args + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  auto [code, out] = run_shell(cmd);
  return {code, std::move(out), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

// tiny_glove() written to DIR/v.txt and converted to DIR/v.igla (threshold factor 0.3, so the
// analogy lands on queen); convert_out keeps what convert printed.
class TinyIndexCli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string idx;
  std::string convert_out;
  void SetUp() override {
    write_text(dir.file("v.txt"), tiny_glove());
    idx = dir.file("v.igla");
    const CliRun r = run_cli("convert " + dir.file("v.txt") + " " + idx + " --threshold-factor 0.3", dir.path);
    ASSERT_EQ(r.code, 0) << r.out;
    convert_out = r.out;
  }
};

}  // namespace igla::testing_util
