// igla: a graph index (HNSW-style) over the index's int8 rerank rows, for one-query latency.
//
// What it is: the layered proximity graph of HNSW (Malkov & Yashunin; hnswlib is the reference
// implementation, read, not copied): every word is a node of layer 0, a geometrically shrinking
// random subset also of layers 1, 2, ...; each node keeps up to M links per upper layer and up to
// M0 = 2M on layer 0, chosen by HNSW's neighbour-selection heuristic. Distances are int8 dot
// products: the index's own int8 rerank rows (RRI8, read in place, nothing copied) against the
// float query quantized to int8 with the rows' per-dimension scales folded in (so the integer dot
// is proportional to the float query times the decoded row). The graph adds only links: the
// search reads one 100-byte row per distance at 100 dims, where hnswlib reads a 400-byte float row.
//
// Search (make_graph_searcher, backend "graph"): a beam search of breadth ef + exclusions
// (SearchParams::ef, 0: kDefaultGraphEfWords or kDefaultGraphEf, below) on layer 0, entered at the query's own words when it
// has any (its excluded words: a word query's word, an analogy's or a sum's inputs; the query is
// made of their vectors, so they lie next to it), and at the end of HNSW's greedy descent through
// the upper layers when it has none or none of them is near it (cosine under 0.5: words excluded
// for another reason). It keeps a per-thread visited bit set (cleared word by word after each query)
// and prefetches the rows and links of a node's unvisited neighbours before scoring them. Of the
// nodes scored, the best max(SearchParams::candidates, k) (+ exclusions) by the int8 score are
// rescored (the beam keeps the best ef of them; when that is fewer, every scored node is ranked) with the rerank stage's own arithmetic (rerank_score on the decoded row), the query's
// excluded words dropped, and the best k returned: the scores are exactly the scores the rerank
// stage gives those words. With ef and candidates >= the number of words every node reachable
// from the entry points is rescored (tests check that this is the rerank stage's exact answer on
// a small set; reachability of every node is not guaranteed in general, as in HNSW).
//
// Layer-0 links (round 5): each node keeps its keep_nearest (default 12) nearest candidates as
// links first, then HNSW's heuristic picks the rest among the others (a candidate is dropped when
// a kept link is nearer to it than the node is, with the slack alpha), and with `fill` the slots
// the heuristic left free take the nearest candidates it dropped: every node ends with m0 links,
// its nearest words among them. A word query enters at its own node, whose links then hold most of
// its answer: it needs a breadth of 1-4 where HNSW's heuristic alone needed 16-24 for the same
// recall (BENCHMARKS.md, round 5); the heuristic's links still serve the navigation.
//
// Build (GraphIndex::build): nodes are inserted in word-id order, in batches (ParlayANN's
// prefix-doubling idea: a batch is at most ~2% of the nodes already in the graph, and at most
// 2,048): each batch's nodes search the graph as it was when the batch began (in parallel,
// read-only), then their links and the reverse links are written grouped by target node, each
// target's updates in insertion order. Levels come from a hash of (seed, word id). So the graph is
// a function of the index's rows and the parameters alone: the same bytes for a fixed seed
// whatever the thread count.
//
// Storage: the optional section GRPH of the .igla file (checksummed and verified at open like
// every section, then its structure checked by parse: counts, link targets, levels, entry point),
// written by `igla build-graph INDEX`. An index without it behaves as before; the "graph" backend
// then builds the graph in memory with default parameters (once per index, cached).
// Thread-safety: a GraphIndex is immutable once built or parsed; any number of threads may search
// it at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/vectors.hpp"

namespace igla {

inline constexpr uint32_t kGraphFormatVersion = 1;
// Layer-0 breadth when SearchParams::ef is 0, for queries that descend the upper layers (no words
// to enter at) or a graph without kept nearest links: at least k (GloVe-100d, M=12, vocabulary
// queries: recall@10 vs float32 0.958-0.963, against 0.952-0.957 at 16 and 0.963-0.967 at 24;
// BENCHMARKS.md, round 4).
inline constexpr uint32_t kDefaultGraphEf = 20;
// ... and for queries entered at their words on a graph that keeps each node's nearest words
// (GraphParams::keep_nearest > 0): at least k / 4 (GloVe-100d, M=12, keep 12, k = 10: recall@10 vs
// float32 0.967, against 0.962 at 1 and 0.972 at 4; BENCHMARKS.md, round 5).
inline constexpr uint32_t kDefaultGraphEfWords = 2;

struct GraphParams {
  uint32_t m = 12;                 // links per node on the upper layers; layer 0 keeps up to 2 m
  uint32_t m0 = 0;                 // links per node on layer 0 (0: 2 m); at most 255
  uint32_t ef_construction = 100;  // beam breadth while inserting
  float alpha = 1.0f;              // pruning slack: a candidate is dropped when alpha * (its distance to a kept
                                   // link) < its distance to the node (1: HNSW's heuristic; > 1 keeps more links)
  bool fill = true;                // layer 0: slots the heuristic leaves free get the nearest candidates it dropped
  uint32_t keep_nearest = 12;      // layer 0: the nearest this many candidates are kept before the heuristic runs
                                   // (at most m0 / 2: a graph of nearest links alone navigates poorly)
                                   // (0: HNSW's heuristic alone, as graphs built before round 5)
  uint64_t seed = 0x9a4f5eedULL;   // node levels
  int threads = 0;                 // build threads (0: all cores); never changes the result
};

class GraphIndex {
 public:
  // Builds the graph over `ix`'s int8 rerank rows (Rerank::Int8 needed; throws Error otherwise,
  // or for m outside 2..127). `progress` gets (words inserted, words) calls.
  static GraphIndex build(const Index& ix, const GraphParams& p = {}, const Progress& progress = {});
  // Parses the section's bytes (a view: it must outlive the GraphIndex) and checks them against
  // `ix` (words, dims) and themselves (counts, link targets, levels, entry): throws Error naming
  // what is wrong.
  static GraphIndex parse(const Index& ix, std::span<const std::byte> bytes);
  // The index's GRPH section, parsed (a view into the index); throws Error when absent or wrong.
  static GraphIndex from_index(const Index& ix);
  // The section for the file: {"GRPH", bytes} (Index::save(path, {section()})).
  ExtraSection section() const;

  size_t size() const { return n_; }
  uint32_t dims() const { return dims_; }  // the rows' (float) dims
  uint32_t m() const { return m_; }
  uint32_t m0() const { return m0_; }
  uint32_t link_bytes() const { return link_bytes_; }  // 3 (under 2^24 words) or 4
  uint32_t max_level() const { return max_level_; }
  uint32_t entry() const { return entry_; }
  uint32_t ef_construction() const { return efc_; }
  uint64_t seed() const { return seed_; }
  uint32_t keep_nearest() const { return keep_nearest_; }  // 0 in sections written before it existed
  bool fill() const { return fill_; }
  float alpha() const { return alpha_; }
  size_t upper_nodes() const { return n_upper_; }

  // Node v's layer-0 links, and its links on layer l >= 1 (empty when v is not on layer l).
  std::vector<uint32_t> links(uint32_t v, uint32_t level = 0) const;
  // Bytes the graph adds per word (links, counts, upper layers), without the int8 row.
  double link_bytes_per_word() const;

  GraphIndex(GraphIndex&&) noexcept;
  GraphIndex& operator=(GraphIndex&&) noexcept;
  ~GraphIndex();

 private:
  GraphIndex();
  friend struct GraphAccess;
  struct Owned;
  std::unique_ptr<Owned> own_;  // built in memory: the views below point into it
  size_t n_ = 0, n_upper_ = 0, upper_words_ = 0;
  uint32_t dims_ = 0, m_ = 0, m0_ = 0, link_bytes_ = 4, max_level_ = 0, entry_ = 0, efc_ = 0, keep_nearest_ = 0;
  bool fill_ = false;
  float alpha_ = 1.0f;
  uint64_t seed_ = 0;
  const uint8_t* counts0_ = nullptr;      // n: layer-0 link counts
  const uint8_t* links0_ = nullptr;       // n * m0 links of link_bytes each (+ 4 bytes slack)
  const uint32_t* upper_ids_ = nullptr;   // n_upper node ids on layer >= 1, ascending
  const uint32_t* upper_off_ = nullptr;   // n_upper + 1 offsets into upper_links (u32 words)
  const uint32_t* upper_links_ = nullptr; // per upper node, per level 1..L: count, then m links
};

// The graph searcher over `index` and `graph` (nullptr: the index's GRPH section when it has
// one, else a graph built in memory with default GraphParams and cached in the index). Needs int8
// rerank rows. Uses opts.cpu.threads for batches (queries are independent: one per thread at a
// time) and opts.cpu.kernel ("scalar" forces the plain int8 dot; same answers). Sum queries with a
// float form are its own; a batch with a query without one, 3CosMul, or a `limit` goes to the
// exact CPU scan + rerank stage instead. Reranks itself: do not wrap it in make_rerank_stage.
// Thread-safety: search() is const and reentrant (per-thread scratch only): any number of threads
// may search one searcher at once and get the answers of serial calls.
std::shared_ptr<const Searcher> make_graph_searcher(std::shared_ptr<const Index> index, const SearcherOptions& opts,
                                                    std::shared_ptr<const GraphIndex> graph = nullptr);

// The index's graph: parsed from GRPH, else built with default parameters; cached in the index.
std::shared_ptr<const GraphIndex> graph_of(const Index& index);
bool has_graph_section(const Index& index);

// Adds the "graph" backend (make_graph_searcher over the index's own graph) to the registry.
void register_graph_backend();

}  // namespace igla
