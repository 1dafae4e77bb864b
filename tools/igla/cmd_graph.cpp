// `igla build-graph`: the graph index (include/igla/graph.hpp) of an index, written as its GRPH
// section; and the "graph" backend of every search command's --device.
#include <fmt/format.h>

#include <chrono>
#include <vector>

#include "cli.hpp"
#include "igla/error.hpp"
#include "igla/graph.hpp"

namespace igla::cli {

// `igla build-graph` and bench-ann: the graph of `ix`, with a progress bar and a report line.
GraphIndex build_graph_with_progress(const Index& ix, const GraphParams& p) {
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar(fmt::format("graph, M={} efC={}", p.m, p.ef_construction), "words");
  GraphIndex g = GraphIndex::build(ix, p, bar.callback());
  bar.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print(stderr,
             "graph: {} words, M={} (layer 0: {}, keep {}{}{}), {} levels above layer 0 ({} nodes), {:.1f} link bytes per word "
             "(+ {} bytes of int8 row), built in {:.1f}s\n",
             g.size(), g.m(), g.m0(), g.keep_nearest(), g.fill() ? ", filled" : "",
             g.alpha() != 1.0f ? fmt::format(", alpha {:g}", g.alpha()) : std::string(), g.max_level(), g.upper_nodes(), g.link_bytes_per_word(), g.dims(), s);
  return g;
}

namespace {

void add_build_graph(CLI::App& app) {
  // `--device graph` of every search command.
  register_graph_backend();
  struct Args {
    std::string index, output;
    GraphParams p;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("build-graph",
                                 "Add a graph index (HNSW-style, over the int8 rerank rows: --device graph, --ef) to an "
                                 "index, written as its GRPH section");
  cmd->add_option("index", a->index, "Index (.igla) to read; needs int8 rerank rows")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->output, "Index to write (default: the input, replaced atomically)");
  cmd->add_option("--m", a->p.m, "Links per node on the upper layers; layer 0 keeps 2M (default: 12)")
      ->check(whole_number(2, 127));
  cmd->add_option("--m0", a->p.m0, "Links per node on layer 0 (default: 2M)")->check(whole_number(2, 255));
  cmd->add_option("--alpha", a->p.alpha, "Pruning slack, 1 to 4 (default: 1, HNSW's heuristic; more keeps more links)")
      ->check(CLI::Range(1.0, 4.0));
  cmd->add_option("--keep-nearest", a->p.keep_nearest,
                  "Layer 0: each node's nearest this many candidates are links before the heuristic picks the rest "
                  "(default: 12; 0: HNSW's heuristic alone)")
      ->check(whole_number(0, 255));
  cmd->add_flag("--no-fill{false}", a->p.fill,
                "Layer 0: leave the slots the heuristic drops free (default: filled with the nearest dropped candidates)");
  cmd->add_option("--ef-construction", a->p.ef_construction, "Beam breadth while inserting (default: 100)")
      ->check(whole_number(1, 100000));
  cmd->add_option("--seed", a->p.seed, "Seed of the node levels (default: fixed)");
  cmd->add_option("--threads", a->p.threads, "Build threads (default: all cores; the graph is the same for any count)")
      ->check(whole_number(0, 1024));
  cmd->callback([a] {
    const Index ix = Index::open(a->index);
    const GraphIndex g = build_graph_with_progress(ix, a->p);
    const std::string out = a->output.empty() ? a->index : a->output;
    const std::vector<ExtraSection> sections{g.section()};
    ix.save(out, sections);
    fmt::print(stderr, "wrote {}\n", out);
  });
}

const Command reg_build_graph(13, add_build_graph);

}  // namespace
}  // namespace igla::cli
