// `igla convert`: GloVe / word2vec / fastText / wink JSON vectors -> a .igla index.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "cli.hpp"
#include "convert_common.hpp"
#include "core/index_format.hpp"
#include "igla/error.hpp"

namespace igla::cli {

void add_quantization_options(CLI::App* cmd, ConvertOptions& o) {
  cmd->add_option("--quantization", o.quantization,
                  "seed: threshold each vector as it is; centered: subtract the frequent words' mean vector and "
                  "scale each dimension first; rotated[:D]: centered, then a random orthogonal map to D ternary "
                  "dims (default D: the float dims rounded up to a multiple of 64) (default: " +
                      o.quantization + ")");
  cmd->add_option("--threshold-factor", o.threshold_factor,
                  "trit = sign(y) where |y| > f * mean|y|, f from 0 to 100 (default: seed 0.5, centered and rotated 0.7)")
      ->check(real_number(0, 100));
  cmd->add_option("--rerank", o.rerank,
                  "Unit vectors kept beside the codes for the exact second stage of the search: none, int8 "
                  "(1 byte per dim) or f16 (2 bytes per dim) (default: " +
                      o.rerank + ")")
      ->check(CLI::IsMember({"none", "int8", "f16"}));
}

void add_keep_float_flags(CLI::App* cmd, bool& keep_float, bool& no_float) {
  cmd->add_flag("--keep-float", keep_float,
                "Also keep the float32 vectors (4 bytes per dim per word, ~130 MiB for GloVe 100d) for "
                "`eval --float` and re-conversion; queries never read them");
  // The default since float32 vectors became opt-in; still accepted so old scripts keep working.
  cmd->add_flag("--no-float", no_float, "")->group("");
  cmd->get_option("--keep-float")->excludes(cmd->get_option("--no-float"));
}

QuantParams quant_params(const ConvertOptions& o) {
  QuantParams q;
  parse_quantization(o.quantization, q);
  q.threshold_factor = o.threshold_factor < 0 ? default_threshold_factor(q.method) : o.threshold_factor;  // -1: unset
  if (!(q.threshold_factor >= 0.0f) || q.threshold_factor > 100.0f)
    throw Error(fmt::format("--threshold-factor must be in [0, 100], got {}", o.threshold_factor));
  q.rerank = parse_rerank(o.rerank);
  return q;
}

namespace {
bool is_index(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;  // a pipe: never peek (or block) here
  char magic[8] = {};
  std::ifstream(path, std::ios::binary).read(magic, 8);
  return std::equal(magic, magic + 8, format::kMagic);
}
}  // namespace

void convert_file(const std::string& input, const std::string& output, const ConvertOptions& o) {
  const QuantParams q = quant_params(o);  // bad options fail before the file is read
  if (o.ivf_residual && o.ivf_lists < 0) throw Error("convert: --ivf-residual needs --ivf L");
  const auto t0 = std::chrono::steady_clock::now();
  FloatVectors v;
  if (o.format == VectorFormat::Auto && is_index(input)) {  // re-quantize from the kept float32 vectors
    v = Index::open(input).to_float_vectors(o.limit);
  } else {
    LoadOptions lo;
    lo.format = o.format == VectorFormat::Auto ? detect_format(input) : o.format;
    lo.limit = o.limit;
    ProgressBar read_bar(fmt::format("reading {} ({})", std::filesystem::path(input).filename().string(),
                                     format_name(lo.format)),
                         lo.format == VectorFormat::WinkJson ? "words" : "bytes");
    lo.progress = read_bar.callback();
    v = load_vectors(input, lo);
    read_bar.finish();
  }

  ProgressBar q_bar("quantizing", "words");
  const Index ix = Index::build(v, q, o.keep_float, q_bar.callback());
  q_bar.finish();
  std::vector<ExtraSection> extra;
  if (o.ivf_lists >= 0) {
    const IvfIndex ivf = build_ivf_with_progress(ix, static_cast<uint32_t>(o.ivf_lists), 0);
    extra = ivf.sections();
    if (o.ivf_residual) extra.push_back(build_residual_with_report(ix, ivf, 0).section());
  }
  ix.save(output, extra);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr,
             "wrote {}: {} words x {} dims, {} codes of {} trits, {:.1f}% non-zero trits (threshold factor {}){}, "
             "{}{}, in {:.1f}s\n",
             output, ix.size(), ix.float_dims(), quantization_name(q), ix.dims(), 100.0 * ix.nonzero_fraction(),
             q.threshold_factor, q.rerank == Rerank::None ? "" : fmt::format(", {} rerank rows", rerank_name(q.rerank)),
             human_bytes(ix.file_size()), o.keep_float ? " (float32 vectors kept: --keep-float)" : "", secs);
}

namespace {

void add_convert(CLI::App& app) {
  struct Args {
    std::string input, output, format = "auto";
    ConvertOptions o;
    bool keep_float = false, no_float = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("convert", "Convert a vector file (GloVe, word2vec text/binary, fastText .vec, wink "
                                            "JSON, or an index holding float32 vectors) into a .igla index");
  cmd->add_option("input", a->input, "Vector file")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", a->output, "Index to write (.igla); written atomically")->required();
  cmd->add_option("--format", a->format, "auto, glove, word2vec, word2vec-bin, fasttext or wink (default: auto)")
      ->check(CLI::IsMember({"auto", "glove", "word2vec", "word2vec-bin", "word2vec-binary", "fasttext", "wink",
                             "wink-json"}));
  cmd->add_option("--limit", a->o.limit, "Keep only the first N words (the most frequent, in these formats)")
      ->check(whole_number(0, UINT32_MAX));
  add_quantization_options(cmd, a->o);
  cmd->add_option("--ivf", a->o.ivf_lists,
                  "Add IVF lists for approximate search (--device ivf): L lists, 0 for the default (about 2 sqrt(words))")
      ->check(whole_number(0, uint64_t{1} << 30));
  cmd->add_flag("--ivf-residual", a->o.ivf_residual,
                "With --ivf: also store the IVF-int8 rows as residuals to their list centroids (see build-ivf --residual)");
  add_keep_float_flags(cmd, a->keep_float, a->no_float);
  cmd->callback([a] {
    a->o.format = parse_format(a->format);
    a->o.keep_float = a->keep_float;
    convert_file(a->input, a->output, a->o);
  });
}

const Command reg(10, add_convert);

}  // namespace
}  // namespace igla::cli
