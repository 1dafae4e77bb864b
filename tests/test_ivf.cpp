// The IVF index over ternary codes (include/igla/ivf.hpp): recall on clustered data, exactness
// with every list probed, deterministic builds, the sections' round trip and their checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <array>
#include <cstdio>
#include <fstream>
#include <sys/wait.h>

#include "igla/ivf.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"
#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"
#include "expect_results.hpp"
#include "test_util.hpp"

namespace igla {
namespace {

using testing_util::TempDir;
using testing_util::error_of;

using testing_util::clustered;

std::shared_ptr<const Index> clustered_index(size_t n = 3000, uint32_t dims = 64) {
  QuantParams q;
  q.rerank = Rerank::Int8;
  return std::make_shared<const Index>(Index::build(clustered(n, dims, 7), q, true));
}

IvfParams small_params(uint32_t lists = 24) {
  IvfParams p;
  p.lists = lists;
  p.iterations = 8;
  return p;
}

std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (const kernels::Kernel* k : kernels::all_kernels())
    if (k->supported()) names.push_back(k->name);
  return names;
}

void expect_same(const SearchResults& a, const SearchResults& b, const std::string& what) {
  igla::testing_util::expect_same_results(a, b, what);
}

TEST(Ivf, BuildIsDeterministicAndCoversEveryWord) {
  const auto ix = clustered_index();
  IvfParams p = small_params();
  p.threads = 1;
  const IvfIndex a = IvfIndex::build(*ix, p);
  p.threads = 2;
  const IvfIndex b = IvfIndex::build(*ix, p);
  EXPECT_EQ(a.lists(), 24u);
  EXPECT_EQ(a.source(), IvfSource::Float32);
  const auto sa = a.sections(), sb = b.sections();
  ASSERT_EQ(sa.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(sa[i].bytes == sb[i].bytes) << sa[i].tag << " differs between builds";
  const auto assign = a.assignment();
  for (uint32_t l : assign) ASSERT_LT(l, a.lists());
  size_t total = 0;
  for (uint32_t l = 0; l < a.lists(); ++l) {
    total += a.list_size(l);
    EXPECT_EQ(a.offset(l) % kIvfAlign, 0u);
  }
  EXPECT_EQ(total, ix->size());
  // A different seed gives different lists (the seed is used).
  p.seed = 99;
  EXPECT_NE(IvfIndex::build(*ix, p).assignment(), assign);
}

TEST(Ivf, RecallFloorOnClusteredData) {
  const auto ix = clustered_index();
  const auto ivf = std::make_shared<const IvfIndex>(IvfIndex::build(*ix, small_params()));
  SearcherOptions o;
  o.rerank = false;
  const auto exact = make_searcher(ix, o);
  const auto approx = make_ivf_searcher(ix, o, ivf);
  EXPECT_FALSE(approx->capabilities().exact);
  QueryBuilder b(*ix);
  for (uint32_t i = 0; i < 300; ++i) b.word(i * 7);
  const QueryBatch batch = b.take();
  SearchParams p;
  p.k = 10;
  p.candidates = 0;
  const SearchResults truth = exact->search(batch, p);
  auto recall = [&](uint32_t nprobe) {
    p.nprobe = nprobe;
    const SearchResults r = approx->search(batch, p);
    size_t hit = 0;
    for (size_t q = 0; q < batch.size(); ++q)
      for (const Hit& h : r.of(q))
        for (const Hit& t : truth.of(q)) hit += h.id == t.id;
    return double(hit) / double(batch.size() * p.k);
  };
  const double r1 = recall(1), r4 = recall(4), r24 = recall(24);
  EXPECT_GE(r4, 0.90) << "nprobe 4 of 24 lists on 40 tight clusters";
  EXPECT_GE(r4, r1);
  EXPECT_EQ(r24, 1.0);
}

// Every list probed: exactly the exact search's hits, scores and order (ties by word id), on
// every kernel, for one-term, multi-term and 3CosMul queries, k beyond the kernel lists,
// exclusions and --limit.
TEST(Ivf, NprobeAllEqualsExactSearch) {
  const auto ix = clustered_index(1500, 64);  // 64 dims: many tied scores
  const auto ivf = std::make_shared<const IvfIndex>(IvfIndex::build(*ix, small_params(16)));
  for (const std::string& kname : kernel_names()) {
    SearcherOptions o;
    o.rerank = false;
    o.cpu.kernel = kname;
    o.cpu.threads = 2;
    const auto exact = make_searcher(ix, o);
    const auto approx = make_ivf_searcher(ix, o, ivf);
    QueryBuilder words(*ix);
    for (uint32_t i = 0; i < 200; ++i) words.word(i * 5 % 1500);
    QueryBuilder add(*ix);
    QueryBuilder mul(*ix, Combine::CosMul);
    for (uint32_t i = 0; i < 40; ++i) {
      add.analogy(i, i + 100, i + 200, AnalogyMode::Add);
      mul.analogy(i, i + 100, i + 200, AnalogyMode::Mul);
      const uint32_t pos[] = {i, i + 300}, neg[] = {i + 600};
      add.most_similar(pos, neg);
    }
    for (const QueryBatch* batch : {&words.batch(), &add.batch(), &mul.batch()})
      for (size_t k : {1, 10, 50, 70, 200})
        for (size_t limit : {size_t{0}, size_t{700}}) {
          SearchParams p;
          p.k = k;
          p.candidates = 0;
          p.limit = limit;
          p.nprobe = ivf->lists();
          const std::string what = kname + " k=" + std::to_string(k) + " limit=" + std::to_string(limit) +
                                   " combine=" + std::to_string(int(batch->combine)) +
                                   " queries=" + std::to_string(batch->size());
          expect_same(approx->search(*batch, p), exact->search(*batch, p), what);
          p.nprobe = ~0u;  // more than the lists: all of them
          expect_same(approx->search(*batch, p), exact->search(*batch, p), what + " nprobe>L");
        }
  }
}

TEST(Ivf, OneQueryAndBatchAgree) {
  const auto ix = clustered_index();
  const auto ivf = std::make_shared<const IvfIndex>(IvfIndex::build(*ix, small_params()));
  SearcherOptions o;
  o.rerank = false;
  const auto s = make_ivf_searcher(ix, o, ivf);
  SearchParams p;
  p.nprobe = 3;
  testing_util::expect_one_at_a_time_as_batched(*s, *s, *ix, testing_util::strided_words(50, 11), p);
}

TEST(Ivf, SectionsRoundTripThroughTheFile) {
  TempDir dir;
  const auto ix = clustered_index();
  const IvfIndex built = IvfIndex::build(*ix, small_params());
  ix->save(dir.file("ivf.igla"), built.sections());
  const auto opened = open_index(dir.file("ivf.igla"));
  ASSERT_TRUE(has_ivf_sections(*opened));
  EXPECT_FALSE(has_ivf_sections(*ix));
  const IvfIndex parsed = IvfIndex::from_index(*opened);
  EXPECT_EQ(parsed.assignment(), built.assignment());
  EXPECT_EQ(ivf_of(*opened)->lists(), built.lists());  // the cached lists are the file's
  // The registered backend finds the sections, and the rerank stage wraps it.
  register_ivf_backend();
  SearcherOptions o;
  o.backend = "ivf";
  const auto s = make_searcher(opened, o);
  QueryBuilder b(*opened);
  b.word(5);
  SearchParams p;
  p.nprobe = 4;
  const SearchResults r = s->search(b.batch(), p);
  ASSERT_EQ(r.count[0], 10u);
  EXPECT_NE(r.of(0)[0].id, 5u);
}

TEST(Ivf, CorruptOrForeignSectionsAreRefused) {
  TempDir dir;
  const auto ix = clustered_index();
  const IvfIndex built = IvfIndex::build(*ix, small_params());
  ix->save(dir.file("ivf.igla"), built.sections());
  // A flipped byte in the lists' section: the checksum refuses the file at open.
  ASSERT_TRUE(igla::testing_util::flip_section_byte(dir.file("ivf.igla"), "IVFW", 100, 0x10));
  EXPECT_NE(error_of([&] { Index::open(dir.file("ivf.igla")); }), "");
  // Bytes that pass the checksum but not the structure (a section rewritten by another tool):
  // refused by the parser, naming what is wrong.
  auto sections = built.sections();
  auto meta = sections[0].bytes, words = sections[1].bytes;
  auto parse = [&](const std::vector<std::byte>& m, const std::vector<std::byte>& w) {
    kernels::AlignedArray<uint64_t> am((m.size() + 7) / 8), aw((w.size() + 7) / 8);
    std::memcpy(am.data(), m.data(), m.size());
    std::memcpy(aw.data(), w.data(), w.size());
    return error_of([&] {
      IvfIndex::parse(*ix, {reinterpret_cast<const std::byte*>(am.data()), m.size()},
                      {reinterpret_cast<const std::byte*>(aw.data()), w.size()});
    });
  };
  EXPECT_EQ(parse(meta, words), "");
  auto bad_offsets = meta;
  bad_offsets[64 + 4] = std::byte{3};  // list 1 starts off alignment
  EXPECT_NE(parse(bad_offsets, words).find("list"), std::string::npos);
  auto bad_ids = words;
  std::memcpy(bad_ids.data(), bad_ids.data() + 4, 4);  // position 0 holds position 1's word too
  EXPECT_NE(parse(meta, bad_ids).find("twice"), std::string::npos);
  auto bad_magic = meta;
  bad_magic[0] = std::byte{0};
  EXPECT_NE(parse(bad_magic, words).find("magic"), std::string::npos);
  EXPECT_NE(parse(meta, {words.begin(), words.end() - 64}).find("IVFW"), std::string::npos);
  // Lists of another index.
  const auto other = clustered_index(2000);
  EXPECT_NE(error_of([&] { IvfIndex::parse(*other, built.sections()[0].bytes, built.sections()[1].bytes); }), "");
  EXPECT_NE(error_of([&] { IvfIndex::from_index(*ix); }).find("no IVF sections"), std::string::npos);
}

TEST(Ivf, BadParametersAreErrors) {
  const auto ix = clustered_index(100, 64);
  IvfParams p;
  p.lists = 101;
  EXPECT_NE(error_of([&] { IvfIndex::build(*ix, p); }).find("101 lists"), std::string::npos);
}

// The CLI: `convert --ivf`, `build-ivf`, and `--device ivf` with every list probed giving the
// exact command's output.
std::pair<int, std::string> cli(const std::string& args, const std::string& home) {
  const std::string cmd = "IGLA_HOME='" + home + "' " + IGLA_CLI_PATH + " " + args + " 2>&1";
  return igla::testing_util::run_shell(cmd);
}

TEST(Ivf, CliBuildAndSearch) {
  TempDir dir;
  const FloatVectors v = clustered(400, 16, 3);
  testing_util::write_vectors_text(dir.file("v.txt"), v);
  auto r = cli("convert " + dir.file("v.txt") + " " + dir.file("a.igla") + " --ivf 8", dir.path.string());
  ASSERT_EQ(r.first, 0) << r.second;
  EXPECT_NE(r.second.find("IVF: 8 lists"), std::string::npos) << r.second;
  r = cli("convert " + dir.file("v.txt") + " " + dir.file("b.igla"), dir.path.string());
  ASSERT_EQ(r.first, 0) << r.second;
  r = cli("build-ivf " + dir.file("b.igla") + " --lists 8", dir.path.string());
  ASSERT_EQ(r.first, 0) << r.second;
  r = cli("info " + dir.file("b.igla"), dir.path.string());
  EXPECT_NE(r.second.find("IVFW"), std::string::npos) << r.second;
  for (const char* ix : {"a.igla", "b.igla"}) {
    const auto exact = cli("nearest w7 -k 5 --index " + dir.file(ix), dir.path.string());
    const auto all = cli("nearest w7 -k 5 --device ivf --nprobe 8 --index " + dir.file(ix), dir.path.string());
    ASSERT_EQ(exact.first, 0) << exact.second;
    EXPECT_EQ(all.second, exact.second) << ix;
    const auto some = cli("nearest w7 -k 5 --device ivf --nprobe 1 --index " + dir.file(ix), dir.path.string());
    EXPECT_EQ(some.first, 0) << some.second;
  }
  r = cli("build-ivf " + dir.file("b.igla") + " --lists 401", dir.path.string());
  EXPECT_EQ(r.first, 1);
  EXPECT_NE(r.second.find("401 lists"), std::string::npos) << r.second;
}

}  // namespace
}  // namespace igla
