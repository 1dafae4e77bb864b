// The graph index (include/igla/graph.hpp): its int8 dot against a plain loop, recall on
// clustered data, the exact rerank answer at full breadth, build determinism, the GRPH section
// (round trip, corruption refused), concurrent searches, the registered backend and its fallback.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "ann/int8_dot.hpp"
#include "igla/graph.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"
#include "expect_results.hpp"
#include "test_util.hpp"

namespace igla {
namespace {

using testing_util::error_of;
using testing_util::TempDir;

// 61 float dims: not a multiple of 4 or 64 (the masked tail of the VNNI dot).
std::shared_ptr<const Index> index8(size_t n = 2000, uint32_t dims = 61, Rerank r = Rerank::Int8) {
  QuantParams q;
  q.rerank = r;
  return std::make_shared<const Index>(Index::build(testing_util::clustered(n, dims, 11), q, true));
}

GraphParams small_params(int threads = 2) {
  GraphParams p;
  p.m = 8;
  p.ef_construction = 64;
  p.threads = threads;
  return p;
}

std::shared_ptr<const GraphIndex> graph_of_small(const Index& ix, int threads = 2) {
  return std::make_shared<const GraphIndex>(GraphIndex::build(ix, small_params(threads)));
}

void expect_same(const SearchResults& a, const SearchResults& b, const std::string& what) {
  igla::testing_util::expect_same_results(a, b, what);
}

TEST(GraphDot, FastDotEqualsPlainReferenceOnOddDims) {
  std::mt19937_64 rng(7);
  for (size_t dims : {1, 3, 61, 63, 64, 65, 100, 127, 129, 300}) {
    for (int trial = 0; trial < 20; ++trial) {
      // The row is exactly `dims` bytes long (heap-allocated alone), so a read past it would be caught by ASan.
      std::vector<int8_t> row(dims);
      std::vector<int8_t> q(ann::padded_dims(dims), 0);
      for (size_t d = 0; d < dims; ++d) {
        row[d] = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
        q[d] = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
      }
      if (trial == 0) {  // the extremes
        std::fill(row.begin(), row.end(), int8_t{-127});
        std::fill(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(dims), int8_t{-127});
      }
      int64_t plain = 0;
      for (size_t d = 0; d < dims; ++d) plain += int64_t{row[d]} * q[d];
      const int32_t bias = ann::query_bias(q.data(), dims);
      ASSERT_EQ(ann::dot_i8_scalar(row.data(), q.data(), bias, dims), plain) << "dims " << dims;
      if (ann::dot_i8_vnni_available()) {
        ASSERT_EQ(ann::dot_i8_vnni(row.data(), q.data(), bias, dims), plain) << "dims " << dims;
      }
    }
  }
  if (!ann::dot_i8_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI here: the plain loop alone was checked";
}

// Word queries enter layer 0 at their own word; vector queries (no excluded words) through the
// upper layers' greedy descent; a vector query excluding a word far from it through both: every
// path holds the floor.
TEST(Graph, RecallFloorAgainstExactRerank) {
  const auto ix = index8();
  const auto g = graph_of_small(*ix);
  const auto exact = make_searcher(ix);
  const auto s = make_graph_searcher(ix, {}, g);
  QueryBuilder words(*ix), vectors(*ix), far(*ix);
  const FloatVectors fv = ix->to_float_vectors();
  std::vector<float> x;
  for (uint32_t i = 0; i < 300; ++i) {
    words.word(i * 6);
    const auto r = fv.row(i * 6 + 1);
    x.insert(x.end(), r.begin(), r.end());
    // a vector query excluding a word far from it: not an entry to rely on (the descent runs too)
    const auto xs = std::span<const float>(r.data(), r.size());
    uint32_t worst = 0;
    float lo = 1e30f;
    for (uint32_t w = 0; w < ix->size(); w += 7) {
      float dot = 0;
      for (size_t d = 0; d < r.size(); ++d) dot += xs[d] * fv.row(w)[d];
      if (dot < lo) lo = dot, worst = w;
    }
    const uint32_t excl[] = {worst};
    far.vectors(xs, 1, excl);
  }
  vectors.vectors(x, 300);
  for (const QueryBatch* b : {&words.batch(), &vectors.batch(), &far.batch()}) {
    const std::string what = b == &words.batch() ? "word queries" : b == &vectors.batch() ? "vector queries" : "far exclusion";
    SearchParams tp;
    tp.candidates = ix->size();
    const SearchResults truth = exact->search(*b, tp);
    auto recall = [&](uint32_t ef) {
      SearchParams p;
      p.ef = ef;
      p.candidates = 10;
      const SearchResults r = s->search(*b, p);
      size_t hit = 0;
      for (size_t q = 0; q < b->size(); ++q)
        for (const Hit& h : r.of(q))
          for (const Hit& t : truth.of(q)) hit += h.id == t.id;
      return double(hit) / double(b->size() * p.k);
    };
    const double r10 = recall(10), r64 = recall(64);
    EXPECT_GE(r10, 0.85) << what << ", ef 10";
    EXPECT_GE(r64, 0.97) << what << ", ef 64";
    EXPECT_GE(r64, r10) << what;
  }
}

// With ef >= the words, every node reachable from the entry is scored; with every one a
// candidate the answer is the rerank stage's over every word: same ids, same score bits.
TEST(Graph, FullBreadthGivesTheExactRerankAnswer) {
  const auto ix = index8();
  const auto g = graph_of_small(*ix);
  igla::testing_util::expect_full_breadth_is_exact_rerank(
      ix, [&](const SearcherOptions& o) { return make_graph_searcher(ix, o, g); },
      [&](SearchParams& p) { p.ef = static_cast<uint32_t>(ix->size()); });
}

TEST(Graph, BuildIsDeterministicWhateverTheThreads) {
  const auto ix = index8(1500);
  const GraphIndex a = GraphIndex::build(*ix, small_params(1));
  const GraphIndex b = GraphIndex::build(*ix, small_params(2));
  const GraphIndex c = GraphIndex::build(*ix, small_params(3));
  EXPECT_EQ(a.section().bytes, b.section().bytes) << "1 vs 2 threads";
  EXPECT_EQ(a.section().bytes, c.section().bytes) << "1 vs 3 threads";
  GraphParams other = small_params(2);
  other.seed = 99;
  EXPECT_NE(GraphIndex::build(*ix, other).section().bytes, a.section().bytes) << "another seed, other levels";
  // Every node has links, and none links to itself.
  for (uint32_t v = 0; v < a.size(); ++v) {
    const auto l = a.links(v);
    ASSERT_FALSE(l.empty()) << "node " << v;
    ASSERT_LE(l.size(), a.m0());
    for (uint32_t x : l) ASSERT_NE(x, v);
  }
  EXPECT_EQ(a.link_bytes(), 3u);
  EXPECT_GT(a.max_level(), 0u);
}

TEST(Graph, SectionRoundTripsAndCorruptionIsRefused) {
  TempDir dir;
  const auto ix = index8();
  const auto built = graph_of_small(*ix);
  const std::vector<ExtraSection> sec{built->section()};
  ix->save(dir.file("g.igla"), sec);
  {
    const auto opened = open_index(dir.file("g.igla"));
    ASSERT_TRUE(has_graph_section(*opened));
    const GraphIndex g = GraphIndex::from_index(*opened);
    EXPECT_EQ(g.section().bytes, sec[0].bytes);
    // The "graph" backend over the file uses its section: the answers of the graph built here.
    QueryBuilder b(*opened);
    for (uint32_t i = 0; i < 40; ++i) b.word(i * 7);
    SearchParams p;
    p.ef = 20;
    expect_same(make_graph_searcher(opened, {})->search(b.batch(), p),
                make_graph_searcher(ix, {}, built)->search(b.batch(), p), "file vs memory");
  }
  EXPECT_FALSE(has_graph_section(*ix));
  // A flipped byte in the section: the checksum refuses the file at open, naming the section.
  ASSERT_TRUE(igla::testing_util::flip_section_byte(dir.file("g.igla"), "GRPH", 300, 0x10));
  const std::string open_err = error_of([&] { Index::open(dir.file("g.igla")); });
  EXPECT_NE(open_err.find("GRPH"), std::string::npos) << open_err;
  // Bytes that pass the checksum but not the structure: refused by the parser, naming what is wrong.
  auto refused = [&](std::vector<std::byte> bytes) {
    const std::vector<ExtraSection> s{{"GRPH", std::move(bytes)}};
    const auto with = std::make_shared<const Index>(ix->with_extra_sections(s));
    return error_of([&] { make_graph_searcher(with, {}); });
  };
  auto bytes = sec[0].bytes;
  EXPECT_EQ(refused(bytes), "");
  {
    auto b = bytes;
    b[0] = std::byte{0};  // magic
    EXPECT_NE(refused(b).find("magic"), std::string::npos);
  }
  {
    auto b = bytes;
    b[128] = std::byte{200};  // node 0's layer-0 count, beyond m0
    EXPECT_NE(refused(b).find("layer-0 links"), std::string::npos) << refused(b);
  }
  {
    auto b = bytes;
    const size_t links0 = (128 + ix->size() + 63) / 64 * 64;
    std::memset(b.data() + links0, 0xff, 3);  // node 0's first link: out of range
    EXPECT_NE(refused(b).find("out of range"), std::string::npos) << refused(b);
  }
  {
    auto b = bytes;
    b[72] = std::byte{7};  // the header's fill flag
    EXPECT_NE(refused(b).find("build parameters"), std::string::npos) << refused(b);
  }
  {
    auto b = bytes;
    b.resize(b.size() - 64);
    EXPECT_NE(refused(b).find("expected"), std::string::npos) << refused(b);
  }
  // A graph built for another index.
  const auto other = std::make_shared<const Index>(index8(1999)->with_extra_sections(sec));
  const std::string foreign = error_of([&] { make_graph_searcher(other, {}); });
  EXPECT_NE(foreign.find("built for"), std::string::npos) << foreign;
}

TEST(Graph, ConcurrentSearchesEqualSerialOnes) {
  const auto ix = index8();
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto s = make_graph_searcher(ix, o, graph_of_small(*ix));
  std::vector<QueryBatch> batches;
  std::vector<SearchParams> params;
  for (uint32_t i = 0; i < 64; ++i) {
    QueryBuilder b(*ix);
    for (uint32_t j = 0; j <= i % 5; ++j) b.word((i * 37 + j * 11) % 2000);  // batches of 1 to 5 queries
    batches.push_back(b.take());
    SearchParams p;
    p.ef = 8 + i % 4 * 16;
    p.k = 1 + i % 12;
    params.push_back(p);
  }
  std::vector<SearchResults> serial;
  for (size_t i = 0; i < batches.size(); ++i) serial.push_back(s->search(batches[i], params[i]));
  std::vector<SearchResults> par(batches.size());
  std::vector<std::thread> th;
  for (int t = 0; t < 4; ++t)
    th.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = static_cast<size_t>(t); i < batches.size(); i += 4) par[i] = s->search(batches[i], params[i]);
    });
  for (auto& t : th) t.join();
  for (size_t i = 0; i < batches.size(); ++i) expect_same(par[i], serial[i], "batch " + std::to_string(i));
  // One query at a time equals the same query in a batch, and the query word is excluded.
  SearchParams p;
  p.ef = 24;
  testing_util::expect_one_at_a_time_as_batched(*s, *s, *ix, testing_util::strided_words(40, 13), p);
}

// The registered backend (`--device graph`) is this searcher; 3CosMul and --limit go to the
// exact scan and the rerank stage.
TEST(Graph, RegisteredBackendAndFallback) {
  const auto ix = index8();
  register_graph_backend();
  SearcherOptions o;
  o.cpu.threads = 2;
  const auto direct = make_graph_searcher(ix, o);
  o.backend = "graph";
  const auto reg = make_searcher(ix, o);
  EXPECT_EQ(reg->name(), direct->name());
  EXPECT_TRUE(reg->capabilities().reranks);
  QueryBuilder words(*ix), mul(*ix, Combine::CosMul);
  for (uint32_t i = 0; i < 30; ++i) {
    words.word(i * 5);
    mul.analogy(i, i + 100, i + 200, AnalogyMode::Mul);
  }
  SearchParams p;
  expect_same(reg->search(words.batch(), p), direct->search(words.batch(), p), "registered");
  const auto ref = make_searcher(ix, SearcherOptions{});
  expect_same(direct->search(mul.batch(), p), ref->search(mul.batch(), p), "3CosMul");
  p.limit = 700;
  expect_same(direct->search(words.batch(), p), ref->search(words.batch(), p), "limit");
}

TEST(Graph, NeedsInt8RerankRows) {
  const auto f16 = index8(500, 61, Rerank::F16);
  EXPECT_NE(error_of([&] { GraphIndex::build(*f16); }).find("int8"), std::string::npos);
  EXPECT_NE(error_of([&] { make_graph_searcher(f16, {}); }).find("int8"), std::string::npos);
  GraphParams p;
  p.m = 1;
  EXPECT_NE(error_of([&] { GraphIndex::build(*index8(300), p); }).find("m = 1"), std::string::npos);
}

// Layer 0 filled (GraphParams::fill): the slots HNSW's heuristic leaves free hold the nearest
// candidates it dropped, so nearly every node has m0 links; the pruning slack alpha keeps more
// links than the heuristic; m0 apart from 2m. Each build is the same whatever the threads.
TEST(Graph, FillAlphaAndM0BuildDeterministicGraphs) {
  const auto ix = index8(1500);
  auto degree = [](const GraphIndex& g) {
    size_t total = 0, full = 0;
    for (uint32_t v = 0; v < g.size(); ++v) {
      const auto l = g.links(v);
      EXPECT_LE(l.size(), g.m0());
      for (uint32_t x : l) EXPECT_NE(x, v);
      total += l.size();
      full += l.size() == g.m0();
    }
    return std::pair{double(total) / double(g.size()), double(full) / double(g.size())};
  };
  GraphParams plain = small_params(2);
  plain.fill = false;
  plain.keep_nearest = 0;
  GraphParams fill = plain, alpha = plain, m0 = small_params(2);
  fill.fill = true;
  alpha.alpha = 1.3f;
  m0.m0 = 11;
  EXPECT_TRUE(m0.fill && m0.keep_nearest == 12) << "the defaults";
  const GraphIndex gp = GraphIndex::build(*ix, plain), gf = GraphIndex::build(*ix, fill);
  const GraphIndex ga = GraphIndex::build(*ix, alpha), gm = GraphIndex::build(*ix, m0);
  const auto [dp, fp] = degree(gp);
  const auto [df, ff] = degree(gf);
  const auto [da, fa] = degree(ga);
  EXPECT_LT(fp, 0.9) << "the heuristic alone leaves slots free (avg degree " << dp << ")";
  EXPECT_GE(ff, 0.99) << "filled (avg degree " << df << ")";
  EXPECT_GT(da, dp) << "alpha > 1 keeps more links";
  EXPECT_EQ(gm.m0(), 11u);
  EXPECT_EQ(gm.m(), 8u);
  degree(gm);
  EXPECT_FALSE(gp.fill());
  EXPECT_EQ(gp.keep_nearest(), 0u);
  EXPECT_TRUE(gf.fill());
  EXPECT_FLOAT_EQ(ga.alpha(), 1.3f);
  EXPECT_EQ(gm.keep_nearest(), 5u) << "at most half the layer-0 links";
  const GraphIndex gd = GraphIndex::build(*ix, small_params(2));
  EXPECT_EQ(gd.keep_nearest(), 8u) << "m0 = 16: at most 8";
  // Kept nearest: each node's links include its nearest words (by the build's own int8 score: the
  // first links are its nearest candidates, so its single nearest other word is almost always one).
  {
    const auto exact = make_searcher(ix);
    QueryBuilder b(*ix);
    for (uint32_t v = 0; v < 300; ++v) b.word(v * 5);
    SearchParams sp;
    sp.k = 1;
    sp.candidates = ix->size();
    const SearchResults r = exact->search(b.batch(), sp);
    size_t linked = 0, linked_plain = 0;
    for (uint32_t i = 0; i < 300; ++i) {
      const auto l = gd.links(i * 5), lp = gp.links(i * 5);
      linked += std::find(l.begin(), l.end(), r.of(i)[0].id) != l.end();
      linked_plain += std::find(lp.begin(), lp.end(), r.of(i)[0].id) != lp.end();
    }
    EXPECT_GE(linked, 290u) << "of 300 nodes link to their nearest word (heuristic alone: " << linked_plain << ")";

  }
  for (const GraphParams& p : {fill, alpha, m0}) {
    GraphParams one = p, three = p;
    one.threads = 1;
    three.threads = 3;
    EXPECT_EQ(GraphIndex::build(*ix, one).section().bytes, GraphIndex::build(*ix, three).section().bytes)
        << "fill " << p.fill << " alpha " << p.alpha << " m0 " << p.m0;
  }
  // The sections parse back (m0 = 11 is not 2 m) and search.
  for (const GraphIndex* g : {&gf, &ga, &gm}) {
    const std::vector<ExtraSection> sec{g->section()};
    const auto with = std::make_shared<const Index>(ix->with_extra_sections(sec));
    EXPECT_EQ(GraphIndex::from_index(*with).section().bytes, sec[0].bytes);
  }
  GraphParams bad = plain;
  bad.m0 = 1;
  EXPECT_NE(error_of([&] { GraphIndex::build(*ix, bad); }).find("m0 = 1"), std::string::npos);
  bad.m0 = 256;
  EXPECT_NE(error_of([&] { GraphIndex::build(*ix, bad); }).find("m0 = 256"), std::string::npos);
  bad = plain;
  bad.keep_nearest = 300;
  EXPECT_NE(error_of([&] { GraphIndex::build(*ix, bad); }).find("keep-nearest = 300"), std::string::npos);
  bad = plain;
  bad.alpha = 0.5f;
  EXPECT_NE(error_of([&] { GraphIndex::build(*ix, bad); }).find("alpha"), std::string::npos);
}

// A breadth ef under k: the beam keeps ef nodes, the rows rescored are the best of every node it
// scored, so a word query still gets k answers; with every scored node a candidate they are the
// exact rerank scores of those nodes, and a larger ef never scores fewer.
TEST(Graph, BreadthUnderKStillAnswersK) {
  const auto ix = index8();
  GraphParams p = small_params(2);
  p.fill = true;
  const auto g = std::make_shared<const GraphIndex>(GraphIndex::build(*ix, p));
  const auto s = make_graph_searcher(ix, {}, g);
  const auto exact = make_searcher(ix);
  QueryBuilder words(*ix);
  for (uint32_t i = 0; i < 200; ++i) words.word(i * 9 + 4);
  SearchParams tp;
  tp.candidates = ix->size();
  const SearchResults truth = exact->search(words.batch(), tp);
  double prev = 0;
  for (uint32_t ef : {1u, 2u, 4u, 10u, 40u}) {
    SearchParams sp;
    sp.ef = ef;
    sp.candidates = 10;
    const SearchResults r = s->search(words.batch(), sp);
    size_t hit = 0;
    for (size_t q = 0; q < words.batch().size(); ++q) {
      ASSERT_EQ(r.count[q], sp.k) << "ef " << ef << " query " << q;
      for (const Hit& h : r.of(q)) {
        EXPECT_NE(h.id, q * 9 + 4) << "the query word is excluded";
        for (const Hit& t : truth.of(q)) hit += h.id == t.id;
      }
    }
    const double rec = double(hit) / double(words.batch().size() * sp.k);
    EXPECT_GE(rec, prev - 0.01) << "ef " << ef;
    prev = rec;
    if (ef == 1) {
      EXPECT_GE(rec, 0.6) << "one expansion beyond the word";
    }
    if (ef == 40) {
      EXPECT_GE(rec, 0.97);
    }
  }
  // Default breadth (ef 0): 2 for word queries on a graph with kept nearest links, 20 on one
  // without (a section built before them reads keep_nearest 0).
  {
    GraphParams old_p = small_params(2);
    old_p.fill = false;
    old_p.keep_nearest = 0;
    const auto old_s = make_graph_searcher(ix, {}, std::make_shared<const GraphIndex>(GraphIndex::build(*ix, old_p)));
    SearchParams d, e20, e2;
    e20.ef = kDefaultGraphEf;
    e2.ef = kDefaultGraphEfWords;
    expect_same(old_s->search(words.batch(), d), old_s->search(words.batch(), e20), "old graph: default ef 20");
    expect_same(s->search(words.batch(), d), s->search(words.batch(), e2), "kept links: default ef 2");
  }
  // Every answer's score is the exact rerank score of that word (same bits as the exact search).
  SearchParams sp;
  sp.ef = 2;
  sp.candidates = 1000;
  const SearchResults r = s->search(words.batch(), sp);
  for (size_t q = 0; q < words.batch().size(); ++q)
    for (const Hit& h : r.of(q))
      for (const Hit& t : truth.of(q))
        if (h.id == t.id) {
          EXPECT_EQ(h.score, t.score) << "query " << q << " word " << h.id;
        }
}

// The CLI: `build-graph` writes the section atomically over the input; `--device graph` with
// every word in reach and every row rescored prints the exact command's output.
TEST(Graph, CliBuildAndSearch) {
  TempDir dir;
  const FloatVectors v = testing_util::clustered(400, 16, 3);
  testing_util::write_vectors_text(dir.file("v.txt"), v);
  auto cli = [&](const std::string& args) {
    return testing_util::run_shell("IGLA_HOME='" + dir.path.string() + "' " + IGLA_CLI_PATH + " " + args + " 2>&1");
  };
  auto r = cli("convert " + dir.file("v.txt") + " " + dir.file("b.igla"));
  ASSERT_EQ(r.first, 0) << r.second;
  r = cli("build-graph " + dir.file("b.igla") + " --m 6 --ef-construction 40");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("M=6 (layer 0: 12, keep 6, filled)"), std::string::npos) << r.second;
  r = cli("info " + dir.file("b.igla"));
  EXPECT_NE(r.second.find("GRPH"), std::string::npos) << r.second;
  const auto exact = cli("nearest w7 -k 5 --candidates 400 --index " + dir.file("b.igla"));
  const auto full = cli("nearest w7 -k 5 --candidates 400 --device graph --ef 400 --index " + dir.file("b.igla"));
  ASSERT_EQ(exact.first, 0) << exact.second;
  EXPECT_EQ(full.second, exact.second);
  const auto some = cli("nearest w7 -k 5 --device graph --ef 8 --index " + dir.file("b.igla"));
  EXPECT_EQ(some.first, 0) << some.second;
  r = cli("build-graph " + dir.file("b.igla") + " --m 1");
  EXPECT_NE(r.first, 0);
  r = cli("build-graph " + dir.file("b.igla") + " --m 200");
  EXPECT_NE(r.first, 0);
  r = cli("build-graph " + dir.file("b.igla") + " --alpha 0.5");
  EXPECT_NE(r.first, 0);
  r = cli("build-graph " + dir.file("b.igla") + " --m 6 --m0 10 --alpha 1.2 --keep-nearest 3 --ef-construction 40");
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("M=6 (layer 0: 10, keep 3, filled, alpha 1.2)"), std::string::npos) << r.second;
}

}  // namespace
}  // namespace igla
