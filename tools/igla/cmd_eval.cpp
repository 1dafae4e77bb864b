// `igla eval analogies|similarity`: intrinsic evaluation on the ternary codes or the float32 vectors.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/backends.hpp"
#include "cuda_env.hpp"
#include "json_out.hpp"
#include "igla/error.hpp"
#include "igla/eval.hpp"

namespace igla::cli {
namespace {

std::string percent(size_t correct, size_t answered) {
  return answered ? fmt::format("{:.1f}%", 100.0 * double(correct) / double(answered)) : std::string("n/a");
}

nlohmann::json score_json(size_t correct, size_t answered) {
  return {{"correct", correct}, {"answered", answered},
          {"accuracy", answered ? double(correct) / double(answered) : 0.0}};
}

// Evaluation always folds case (no --lower) and prints one JSON object with --json.
void adjust_options(CLI::App* cmd) {
  cmd->remove_option(cmd->get_option("--lower"));
  cmd->get_option("--json")->description("Print one JSON object instead of text");
}

// What is evaluated and what it costs per word: with --float the float32 rows (F32V); otherwise
// what search reads (codes, norms, transform, rerank rows). The vocabulary, the same for every
// mode, is left out of both.
struct Method {
  std::string name;
  double bytes_per_word = 0;
};

Method describe(const Index& ix, const Engine& e, bool use_float, size_t candidates) {
  uint64_t f32 = 0, search = 0;
  for (const auto& s : ix.sections()) {
    if (s.tag == "F32V") f32 += s.size;
    if (s.tag == "CODE" || s.tag == "NORM" || s.tag == "XFRM" || s.tag == "RRI8" || s.tag == "RF16") search += s.size;
  }
  const double n = double(ix.size());
  if (use_float) return {"float32", double(f32) / n};
  std::string name = fmt::format("{} f={:g}, {} dims", quantization_name(ix.quant()), ix.quant().threshold_factor,
                                 ix.dims());
  if (e.reranks({.candidates = candidates}))
    name += fmt::format(", {} rerank of {} candidates", rerank_name(ix.rerank()), candidates);
  return {name, double(search) / n};
}

nlohmann::json method_json(const Index& ix, const Engine& e, bool use_float, size_t candidates) {
  const Method m = describe(ix, e, use_float, candidates);
  const bool reranks = !use_float && e.reranks({.candidates = candidates});
  return {{"quantization", use_float ? "float32" : quantization_name(ix.quant())},
          {"threshold_factor", ix.quant().threshold_factor},
          {"code_dims", ix.dims()},
          {"rerank", reranks ? rerank_name(ix.rerank()) : "none"},
          {"candidates", reranks ? candidates : 0},
          {"bytes_per_word", m.bytes_per_word},
          {"description", m.name}};
}

// --float needs the float32 vectors, which indexes keep only when built with --keep-float: say
// exactly how to get them.
void require_float(const Index& ix, const SearchOptions& opt) {
  if (ix.has_float()) return;
  const std::string path = opt.index_path();
  const std::string how = opt.index.empty() || path == default_index_path()
                              ? std::string("igla fetch-glove --force --keep-float")
                              : fmt::format("igla convert VECTORS {} --keep-float", path);
  throw Error(fmt::format("{} has no float32 vectors (an index keeps them only when built with --keep-float): "
                          "rebuild it with `{}`{}",
                          path, how, how.find("convert") != std::string::npos ? " (VECTORS: the original vector file)" : ""));
}

// The engine both evaluations run: the index opened (k, candidates capped), floats required
// with --float.
Engine open_engine(SearchOptions& opt, bool use_float) {
  const auto ix = opt.open_index();
  if (use_float) require_float(*ix, opt);
  return opt.engine(ix);
}

void add_analogies(CLI::App* eval) {
  struct Args {
    SearchOptions opt;
    std::string file, mode = "add";
    size_t restrict_vocab = 30000, batch = AnalogyEvalOptions{}.batch;
    int64_t warm_up = -1;  // -1: 20,480 questions on --device cuda or cuda-ivf, none elsewhere
    bool use_float = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = eval->add_subcommand("analogies",
                                   "Google analogy test (questions-words.txt): top-1 accuracy per section, "
                                   "semantic, syntactic and total");
  cmd->add_option("file", a->file, "Questions file (': section' lines, then 'a b c d')")->required();
  cmd->add_option("--restrict", a->restrict_vocab,
                  "Only questions whose words are among the first N words, answers too (0: all; default 30000)")
      ->check(whole_number(0, UINT32_MAX));
  cmd->add_option("--mode", a->mode, "clamp, add (3CosAdd, default) or mul (3CosMul)")
      ->check(CLI::IsMember({"clamp", "add", "mul"}));
  cmd->add_flag("--float", a->use_float, "Exact float32 cosine on the vectors kept in the index (clamp counts as add)");
  cmd->add_option("--batch", a->batch, "Questions per search call")->check(whole_number(1, 1u << 20));
  cmd->add_option("--warm-up", a->warm_up,
                  "Synthetic questions searched before the clock starts, so that the time is the searcher's "
                  "warm rate (a GPU searcher's first calls size its buffers; the index's map of lower-cased words is "
                  "made too); 0: measure it cold "
                  "[default: 20480 with --device cuda or cuda-ivf (a head of 4,096 and a batch of 16,384, as the Google set's 19,544 are searched), else 0]")
      ->check(whole_number(0, 1u << 20));
  a->opt.add_to(cmd, false);
  a->opt.add_candidates(cmd);
  adjust_options(cmd);
  cmd->callback([a] {
    const Engine e = open_engine(a->opt, a->use_float);
    const Index& ix = e.index();
    const AnalogyEvalOptions o{.restrict_vocab = a->restrict_vocab, .mode = parse_analogy_mode(a->mode),
                               .use_float = a->use_float, .batch = a->batch, .candidates = a->opt.candidates,
                               .threads = a->opt.threads,
                               .warm_up = a->warm_up >= 0               ? static_cast<size_t>(a->warm_up)
                                          : a->opt.device.rfind("cuda", 0) == 0 ? size_t{20480}
                                                                    : size_t{0}};
    const AnalogyReport r = eval_analogies(e, a->file, o);
    const std::string how = a->use_float ? fmt::format("float32 {}", o.mode == AnalogyMode::Mul ? "mul" : "add")
                                         : fmt::format("ternary {}, {}", a->mode, e.searcher().name());
    const double qps = r.seconds > 0 ? double(r.answered) / r.seconds : 0.0;
    if (a->opt.json) {
      nlohmann::json secs = nlohmann::json::array();
      for (const auto& s : r.sections) {
        auto j = score_json(s.correct, s.answered);
        j["name"] = s.name, j["syntactic"] = s.syntactic, j["skipped"] = s.skipped;
        secs.push_back(j);
      }
      auto total = score_json(r.correct, r.answered);
      total["skipped"] = r.skipped;
      fmt::print("{}\n", json_text(nlohmann::json{{"file", a->file},
                                        {"mode", a->use_float && o.mode == AnalogyMode::Clamp ? "add" : a->mode},
                                        {"float", a->use_float},
                                        {"restrict", a->restrict_vocab},
                                        {"method", method_json(ix, e, a->use_float, a->opt.candidates)},
                                        {"backend", how},
                                        {"sections", secs},
                                        {"semantic", score_json(r.sem_correct, r.sem_answered)},
                                        {"syntactic", score_json(r.syn_correct, r.syn_answered)},
                                        {"total", total},
                                        {"seconds", r.seconds},
                                        {"warm_up_seconds", r.warm_up_seconds},
                                        {"questions_per_second", qps}}
                             ));
      return;
    }
    if (a->use_float && o.mode == AnalogyMode::Clamp)
      fmt::print(stderr, "note: clamp has no float32 form; evaluating 3CosAdd\n");
    for (const auto& s : r.sections)
      fmt::print("{}: {} ({}/{}), {} skipped\n", s.name, percent(s.correct, s.answered), s.correct, s.answered,
                 s.skipped);
    fmt::print("semantic: {} ({}/{})\n", percent(r.sem_correct, r.sem_answered), r.sem_correct, r.sem_answered);
    fmt::print("syntactic: {} ({}/{})\n", percent(r.syn_correct, r.syn_answered), r.syn_correct, r.syn_answered);
    fmt::print("skipped: {} of {} questions (a word outside the first {} words)\n", r.skipped,
               r.answered + r.skipped, a->restrict_vocab ? std::min(a->restrict_vocab, ix.size()) : ix.size());
    std::fflush(stdout);  // keep the time line ahead of the total on a terminal
    fmt::print(stderr,
               "time: {:.3f} s, {:.0f} questions/s ({}); read {:.1f} ms, words {:.1f} ms, "
               "waiting for batches {:.1f} ms, searching {:.1f} ms (the first call {:.1f}), scoring {:.1f} ms{}\n",
               r.seconds, qps, how, r.read_seconds * 1e3, r.lookup_seconds * 1e3, r.wait_build_seconds * 1e3,
               r.search_seconds * 1e3, r.first_search_seconds * 1e3, r.score_seconds * 1e3,
               o.warm_up ? fmt::format("; before it, a warm-up of {} questions {:.1f} ms", o.warm_up,
                                       r.warm_up_seconds * 1e3)
                         : std::string());
    if (cli::cuda_report_requested()) fmt::print(stderr, "{}", cuda_report(e.searcher()));
    const Method m = describe(ix, e, a->use_float, a->opt.candidates);
    fmt::print("method: {}, {:.1f} bytes per word\n", m.name, m.bytes_per_word);
    fmt::print("total: {} ({}/{})\n", percent(r.correct, r.answered), r.correct, r.answered);
  });
}

void add_similarity_eval(CLI::App* eval) {
  struct Args {
    SearchOptions opt;
    std::string file;
    bool use_float = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = eval->add_subcommand("similarity",
                                   "Word-pair similarity (e.g. WordSim-353): Spearman and Pearson correlation of "
                                   "cosine with human scores");
  cmd->add_option("file", a->file, "'w1,w2,score' CSV (header allowed) or 'w1 w2 score' lines")->required();
  cmd->add_flag("--float", a->use_float, "Cosine of the float32 vectors kept in the index");
  a->opt.add_to(cmd, false);
  a->opt.add_candidates(cmd);
  adjust_options(cmd);
  cmd->callback([a] {
    const Engine e = open_engine(a->opt, a->use_float);
    const Index& ix = e.index();
    const SimilarityReport r = eval_similarity(e, a->file, a->use_float, a->opt.candidates);
    // A correlation needs two pairs with varying scores: never print nan as a result.
    if (!std::isfinite(r.spearman) || !std::isfinite(r.pearson))
      throw Error(fmt::format("{}: no correlation can be computed from {} word pair{} found in the index ({} out of "
                              "vocabulary){}",
                              a->file, r.pairs, r.pairs == 1 ? "" : "s", r.oov,
                              r.pairs >= 2 ? ": the human or the model scores are all equal" : ": at least 2 are needed"));
    if (a->opt.json) {
      fmt::print("{}\n", json_text(nlohmann::json{{"file", a->file},
                                        {"float", a->use_float},
                                        {"method", method_json(ix, e, a->use_float, a->opt.candidates)},
                                        {"spearman", r.spearman},
                                        {"pearson", r.pearson},
                                        {"pairs", r.pairs},
                                        {"oov", r.oov}}
                             ));
      return;
    }
    fmt::print("spearman: {:.3f}\npearson: {:.3f}\npairs: {} (oov {})\n", r.spearman, r.pearson, r.pairs, r.oov);
    const Method m = describe(ix, e, a->use_float, a->opt.candidates);
    fmt::print("method: {}, {:.1f} bytes per word\n", m.name, m.bytes_per_word);
  });
}

void add_eval(CLI::App& app) {
  auto* eval = app.add_subcommand("eval", "Intrinsic evaluation: analogies (Google) and word-pair similarity");
  eval->require_subcommand(1);
  add_analogies(eval);
  add_similarity_eval(eval);
}

const Command reg(50, add_eval);

}  // namespace
}  // namespace igla::cli
