// `igla convert`: GloVe / word2vec / fastText / wink JSON vectors -> a .igla index.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli.hpp"
#include "convert_common.hpp"
#include "igla/error.hpp"

namespace igla::cli {

void convert_file(const std::string& input, const std::string& output, const ConvertOptions& o) {
  if (!(o.threshold_factor >= 0.0f) || o.threshold_factor > 100.0f)
    throw Error(fmt::format("--threshold-factor must be in [0, 100], got {}", o.threshold_factor));
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions lo;
  lo.format = o.format == VectorFormat::Auto ? detect_format(input) : o.format;
  lo.limit = o.limit;
  ProgressBar read_bar(fmt::format("reading {} ({})", std::filesystem::path(input).filename().string(),
                                   format_name(lo.format)),
                       lo.format == VectorFormat::WinkJson ? "words" : "bytes");
  lo.progress = read_bar.callback();
  const FloatVectors v = load_vectors(input, lo);
  read_bar.finish();

  ProgressBar q_bar("quantizing", "words");
  const Index ix = Index::build(v, {.method = Quantization::Seed, .threshold_factor = o.threshold_factor}, o.keep_float,
                                q_bar.callback());
  q_bar.finish();
  ix.save(output);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr,
             "wrote {}: {} words x {} dims, {:.1f}% non-zero trits (threshold factor {}), {}{}, in {:.1f}s\n", output,
             ix.size(), ix.dims(), 100.0 * ix.nonzero_fraction(), o.threshold_factor, human_bytes(ix.file_size()),
             o.keep_float ? " (float32 vectors kept for `eval --float`)" : "", secs);
}

namespace {

void add_convert(CLI::App& app) {
  struct Args {
    std::string input, output, format = "auto";
    ConvertOptions o;
    bool no_float = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("convert", "Convert a vector file (GloVe, word2vec text/binary, fastText .vec, wink "
                                            "JSON) into a .igla index");
  cmd->add_option("input", a->input, "Vector file")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", a->output, "Index to write (.igla); written atomically")->required();
  cmd->add_option("--format", a->format, "auto, glove, word2vec, word2vec-bin, fasttext or wink (default: auto)")
      ->check(CLI::IsMember({"auto", "glove", "word2vec", "word2vec-bin", "word2vec-binary", "fasttext", "wink",
                             "wink-json"}));
  cmd->add_option("--limit", a->o.limit, "Keep only the first N words (the most frequent, in these formats)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threshold-factor", a->o.threshold_factor,
                  "Quantization: trit = sign(x) where |x| > f * mean|x| (default: 0.5)");
  cmd->add_flag("--no-float", a->no_float, "Do not keep the float32 vectors (smaller index; no `eval --float`)");
  cmd->callback([a] {
    a->o.format = parse_format(a->format);
    a->o.keep_float = !a->no_float;
    convert_file(a->input, a->output, a->o);
  });
}

const Command reg(10, add_convert);

}  // namespace
}  // namespace igla::cli
