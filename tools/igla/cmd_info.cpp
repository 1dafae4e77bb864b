// `igla info`: what an index holds.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "index_info.hpp"
#include "json_out.hpp"
#include "core/index_format.hpp"

namespace igla::cli {
namespace {

void add_info(CLI::App& app) {
  struct Args {
    std::string index;
    bool json = false, verify = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("info", "Print what an index holds (dims, words, quantization, sections)");
  cmd->add_option("index", a->index, "Index file (default: $IGLA_HOME/glove-100d.igla)");
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->add_flag("--verify", a->verify,
                "Also check the sections queries never read (the float32 vectors): opening checks all the others");
  cmd->callback([a] {
    SearchOptions so;
    so.index = a->index;
    const auto t0 = std::chrono::steady_clock::now();
    const auto ixp = so.open_index();
    const Index& ix = *ixp;
    const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (a->verify) ix.verify_all();  // every section's checksum again, F32V's values too
    if (a->json) {
      nlohmann::json j = server::index_info_json(ix);  // the description GET /v1/info serves
      j["checksums_ok"] = true;
      j["verified"] = a->verify ? "every section" : "every section but F32V (at open)";
      j["open_ms"] = open_ms;
      fmt::print("{}\n", json_text(j, 2));
      return;
    }
    const double nzf = ix.nonzero_fraction();
    const double query_bytes = server::query_bytes_per_word(ix);
    fmt::print("index:          {}\n", so.index_path());
    fmt::print("format version: {}\n", format::kVersion);
    fmt::print("words:          {}\n", ix.size());
    fmt::print("dims:           {} ({} x 64-bit words per bitplane, 2 bitplanes)\n", ix.dims(), ix.codes().W);
    const char* how = ix.quant().method == Quantization::Seed       ? "x"
                      : ix.quant().method == Quantization::Centered ? "y = (x - mean) * scale"
                                                                    : "y = R (x - mean) * scale";
    fmt::print("quantization:   {}, {}{}, trit = sign(y) where |y| > {} x mean|y|\n", quantization_name(ix.quant()),
               ix.quant().method == Quantization::Seed ? "y = " : "", how, ix.quant().threshold_factor);
    if (ix.float_dims() != ix.dims()) fmt::print("float dims:     {}\n", ix.float_dims());
    fmt::print("rerank rows:    {}\n", ix.rerank() == Rerank::None
                                           ? std::string("none (ternary scores only)")
                                           : fmt::format("{} (two-stage search)", rerank_name(ix.rerank())));
    fmt::print("non-zero trits: {:.2f}%\n", 100.0 * nzf);
    fmt::print("float32 kept:   {}\n", ix.has_float() ? "yes (eval --float; queries never read them)"
                                                       : "no (built without --keep-float; no eval --float)");
    fmt::print("file size:      {} (opened in {:.1f} ms: mmap + checks of every section queries read)\n",
               human_bytes(ix.file_size()), open_ms);
    fmt::print("bytes per word queries read: {:.0f} (codes {}, norms 8{})\n", query_bytes, 2 * ix.codes().W * 8,
               ix.rerank() == Rerank::None ? std::string()
                                           : fmt::format(", {} rerank row {}", rerank_name(ix.rerank()),
                                                         query_bytes - 2.0 * ix.codes().W * 8 - 8));
    fmt::print("bytes per word in the file: {:.1f} (sections below)\n", double(ix.file_size()) / double(ix.size()));
    for (auto& s : ix.sections()) fmt::print("  section {:4}  {:>10}  at {}\n", s.tag, human_bytes(s.size), s.offset);
    fmt::print("first words:    ");
    for (size_t i = 0; i < std::min<size_t>(10, ix.size()); ++i) fmt::print("{}{}", i ? " " : "", ix.word(i));
    fmt::print("\n");
    if (a->verify)
      fmt::print("checksums:      all {} sections OK\n", ix.sections().size());
    else
      fmt::print("checksums:      all sections queries read OK (at open){}\n",
                 ix.has_float() ? "; --verify also checks F32V" : "");
  });
}

const Command reg(30, add_info);

}  // namespace
}  // namespace igla::cli
