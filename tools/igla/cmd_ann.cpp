// `igla build-ivf` and `igla bench-ann`: the IVF index over ternary codes (include/igla/ivf.hpp)
// and its measurement against hnswlib and FAISS, same vectors, queries, k and threads, same run.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "ann/kmeans.hpp"
#include "core/backends.hpp"
#include "ann_peers.hpp"
#include "ann_truth.hpp"
#include "cli.hpp"
#include "igla/error.hpp"
#include "igla/final_rerank.hpp"
#include "igla/graph.hpp"
#include "igla/ivf.hpp"
#include "igla/ivf_residual.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"

namespace igla::cli {

GraphIndex build_graph_with_progress(const Index& ix, const GraphParams& p);  // cmd_graph.cpp

// `igla convert --ivf L` and `igla build-ivf`: the lists of `ix`, with a progress bar and a report line.
IvfIndex build_ivf_with_progress(const Index& ix, uint32_t lists, int threads) {
  IvfParams p;
  p.lists = lists;
  p.threads = threads;
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar(fmt::format("k-means, {} lists", lists ? lists : default_ivf_lists(ix.size())), "iterations");
  IvfIndex ivf = IvfIndex::build(ix, p, bar.callback());
  bar.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint32_t lo = ~0u, hi = 0;
  for (uint32_t l = 0; l < ivf.lists(); ++l) {
    lo = std::min(lo, ivf.list_size(l));
    hi = std::max(hi, ivf.list_size(l));
  }
  fmt::print(stderr, "IVF: {} lists (sizes {}..{}) on the {}, {:.1f} bytes per word, built in {:.1f}s\n", ivf.lists(), lo,
             hi, ivf_source_name(ivf.source()), ivf.bytes_per_word(), s);
  return ivf;
}

// `igla build-ivf --residual` and `igla convert --ivf-residual`: the residual rows of `ivf`'s lists.
IvfResidualRows build_residual_with_report(const Index& ix, const IvfIndex& ivf, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  IvfResidualRows r = IvfResidualRows::build(ix, ivf, threads);
  fmt::print(stderr, "IVF residual rows: {:.1f} bytes per word read by the search, built in {:.1f}s\n",
             r.bytes_per_word(ivf), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }
constexpr int kReps = 3;  // timings per setting; the best is reported
SearchResults& one_result() {
  static SearchResults r;
  return r;
}

std::vector<uint32_t> parse_list(const std::string& s, const char* what, bool zero_ok = false) {
  std::vector<uint32_t> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) {
    if (t == "all") {
      v.push_back(~0u);
      continue;
    }
    try {
      size_t used = 0;
      const unsigned long x = std::stoul(t, &used);
      if (used != t.size() || (x == 0 && !zero_ok) || x > 0xFFFFFFF0ul) throw std::invalid_argument(t);
      v.push_back(static_cast<uint32_t>(x));
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: '{}' is not a positive number (a comma-separated list is expected)", what, t));
    }
  }
  return v;
}

void add_build_ivf(CLI::App& app) {
  // `--device ivf` of every search command (the library's registry lists the built-in backends;
  // this adds the IVF one before any command runs).
  register_ivf_backend();
  struct Args {
    std::string index, output;
    uint32_t lists = 0;
    int threads = 0;
    bool residual = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("build-ivf",
                                 "Add IVF lists (approximate search: --backend ivf, --nprobe) to an index: spherical "
                                 "k-means on its float32 vectors (else rerank rows, else codes), written as the "
                                 "IVFM / IVFW sections");
  cmd->add_option("index", a->index, "Index (.igla) to read")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->output, "Index to write (default: the input, replaced atomically)");
  cmd->add_option("--lists", a->lists, "Number of lists L (default: about 2 sqrt(words))")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "Threads for the k-means passes (default: all cores)");
  cmd->add_flag("--residual", a->residual,
                "Also store each word's int8 row as its residual to its list's centroid (section IVFR; "
                "--device ivf-int8 then scans those rows: more recall where neighbours are close together; "
                "needs float centroids: an index with float32 vectors or rerank rows)");
  cmd->callback([a] {
    const Index ix = Index::open(a->index);
    const IvfIndex ivf = build_ivf_with_progress(ix, a->lists, a->threads);
    auto sections = ivf.sections();
    if (a->residual) sections.push_back(build_residual_with_report(ix, ivf, a->threads).section());
    const std::string out = a->output.empty() ? a->index : a->output;
    ix.save(out, sections);
    fmt::print(stderr, "wrote {}\n", out);
  });
}

// ---- bench-ann --------------------------------------------------------------------------------

struct BenchArgs {
  std::string index, synthetic, csv = "ann_bench.csv";
  size_t queries = 2000, heldout = 10000, one_queries = 500, k = 10, query_range = 30000;
  int threads = 0, efc = 200;
  uint32_t lists = 0;
  std::string nprobes = "1,2,4,8,16,32,64,128,all", candidates = "50,200", efs = "10,20,40,80,160,320", ms = "16,32";
  std::string int8_candidates = "10,20,40";
  std::string graph_ms = "12", graph_efs, graph_candidates = "10";
  uint32_t graph_efc = 100;
  std::string graph_keeps = std::to_string(GraphParams{}.keep_nearest);
  std::string final_rerank = "none";  // rows the graph / ivf-int8 candidates are finally rescored on
  std::string ivf_rows = "int8";      // IVF-int8 rows: int8 (the index's), residual (IVFR), or both
  std::string cache;                  // directory of built indexes reused between runs ('' none)
  std::string device = "cpu";         // cuda: also igla's exact CUDA search and the CUDA IVF searcher
  std::string save_truth, truth;      // the vocabulary queries' float32 truth, written / read (ann_truth.hpp)
  bool no_peers = false, no_faiss = false, no_faiss_hnsw = false, no_ivf_ternary = false, no_ivf = false, no_graph = false;
  uint64_t seed = 42;
};

// A Gaussian mixture: N(0, 1) centres (n / 1000 of them, sizes skewed), points = centre + noise
// whose scale decays over the dimensions (0.8 (k + 1)^-0.6), so that, as in real embeddings, a
// few directions carry most of the variance and nearest neighbours mean something (isotropic
// noise in 100 dims makes every point of a cluster about equally near).
FloatVectors synthetic_vectors(size_t n, uint32_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto gauss = [&] {  // Box-Muller on the engine's raw bits: the same numbers on every platform
    const double u1 = (double(rng() >> 11) + 0.5) * 0x1.0p-53, u2 = double(rng() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  const size_t c = std::max<size_t>(16, n / 1000);
  std::vector<float> centres(c * d), scale(d);
  for (auto& x : centres) x = gauss();
  for (uint32_t k = 0; k < d; ++k) scale[k] = 0.8f * static_cast<float>(std::pow(double(k + 1), -0.6));
  FloatVectors v;
  v.dims = d;
  v.words.resize(n);
  v.data.resize(n * d);
  for (size_t i = 0; i < n; ++i) {
    v.words[i] = "s" + std::to_string(i);
    const size_t cl = static_cast<size_t>(double(c) * std::pow(double(rng() >> 11) * 0x1.0p-53, 2.0));  // denser first
    for (uint32_t k = 0; k < d; ++k) v.data[i * d + k] = centres[std::min(cl, c - 1) * d + k] + scale[k] * gauss();
  }
  return v;
}

void normalize_rows(std::vector<float>& x, size_t d) {
  for (size_t i = 0; i < x.size() / d; ++i) {
    double s = 0;
    for (size_t k = 0; k < d; ++k) s += double(x[i * d + k]) * x[i * d + k];
    const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
    for (size_t k = 0; k < d; ++k) x[i * d + k] *= inv;
  }
}

// The database transposed in blocks of kTruthBlock rows (d x kTruthBlock each, zero-padded), so
// that a block's columns stay in cache while a chunk of queries is scored against it.
constexpr size_t kTruthBlock = 4096;
std::vector<float> blocked_transpose(const std::vector<float>& x, size_t n, size_t d) {
  const size_t nb = (n + kTruthBlock - 1) / kTruthBlock;
  std::vector<float> t(nb * kTruthBlock * d, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    float* blk = t.data() + (i / kTruthBlock) * kTruthBlock * d;
    for (size_t k = 0; k < d; ++k) blk[k * kTruthBlock + i % kTruthBlock] = x[i * d + k];
  }
  return t;
}

// Exact float32 cosine top k of each query row (unit rows), `self[i]` excluded (~0u: none);
// ties to the lower id.
std::vector<uint32_t> float_truth(const std::vector<float>& xtb, size_t n, size_t d, const std::vector<float>& q,
                                  const std::vector<uint32_t>& self, size_t k, int threads) {
  const size_t nq = q.size() / d, nb = (n + kTruthBlock - 1) / kTruthBlock;
  std::vector<uint32_t> t(nq * k);
  ann::parallel_chunks(nq, 32, threads, [&](size_t b, size_t e) {
    std::vector<float> s((e - b) * kTruthBlock);
    std::vector<Hit> best((e - b) * k, Hit{~0u, -INFINITY});
    for (size_t blk = 0; blk < nb; ++blk) {
      ann::dot_rows(q.data() + b * d, e - b, xtb.data() + blk * kTruthBlock * d, kTruthBlock, d, s.data());
      const size_t j0 = blk * kTruthBlock, j1 = std::min(n, j0 + kTruthBlock);
      for (size_t i = b; i < e; ++i) {
        Hit* h = best.data() + (i - b) * k;
        const float* si = s.data() + (i - b) * kTruthBlock;
        for (size_t j = j0; j < j1; ++j) {
          const float v = si[j - j0];
          if (v <= h[k - 1].score || j == self[i]) continue;  // ids ascend: an equal score loses
          size_t p = k - 1;
          while (p > 0 && v > h[p - 1].score) {
            h[p] = h[p - 1];
            --p;
          }
          h[p] = {static_cast<uint32_t>(j), v};
        }
      }
    }
    for (size_t i = b; i < e; ++i)
      for (size_t j = 0; j < k; ++j) t[i * k + j] = best[(i - b) * k + j].id;
  });
  return t;
}

double recall(const SearchResults& r, const std::vector<uint32_t>& truth, size_t k) {
  size_t hit = 0;
  const size_t nq = r.count.size();
  for (size_t q = 0; q < nq; ++q)
    for (const Hit& h : r.of(q))
      if (std::find(truth.begin() + static_cast<std::ptrdiff_t>(q * k), truth.begin() + static_cast<std::ptrdiff_t>((q + 1) * k),
                    h.id) != truth.begin() + static_cast<std::ptrdiff_t>((q + 1) * k))
        ++hit;
  return nq ? double(hit) / double(nq * k) : 0.0;
}

double recall_labels(const std::vector<int64_t>& labels, size_t kk, const std::vector<uint32_t>& self,
                     const std::vector<uint32_t>& truth, size_t k) {
  size_t hit = 0;
  const size_t nq = labels.size() / kk;
  for (size_t q = 0; q < nq; ++q) {
    size_t taken = 0;
    for (size_t j = 0; j < kk && taken < k; ++j) {
      const int64_t l = labels[q * kk + j];
      if (l < 0 || static_cast<uint32_t>(l) == self[q]) continue;
      ++taken;
      if (std::find(truth.begin() + static_cast<std::ptrdiff_t>(q * k), truth.begin() + static_cast<std::ptrdiff_t>((q + 1) * k),
                    static_cast<uint32_t>(l)) != truth.begin() + static_cast<std::ptrdiff_t>((q + 1) * k))
        ++hit;
    }
  }
  return nq ? double(hit) / double(nq * k) : 0.0;
}

struct Row {
  std::string set, method, params, mode;
  double recall_f = -1, recall_t = -1, qps = 0, bpv = 0, build_s = 0;
};

struct QuerySet {
  std::string name;
  QueryBatch batch;                  // all queries
  std::vector<QueryBatch> singles;   // the first few, one per batch
  // The same queries with the words' float32 vectors as their float form (vocabulary words: the
  // batch above takes their int8 rows, which would cap a final f16/f32 rerank); empty: the same.
  QueryBatch batch_f32;
  std::vector<QueryBatch> singles_f32;
  std::vector<float> unit;           // float32 unit queries (peers, truth)
  std::vector<uint32_t> self;        // word excluded per query (~0u: none)
  std::vector<uint32_t> truth_f, truth_t;
};

QueryBatch slice(const QueryBatch& b, size_t q) {
  QueryBatch s(b.dims, b.combine);
  const uint32_t t0 = b.term_offsets[q], t1 = b.term_offsets[q + 1];
  std::vector<std::span<const int8_t>> terms;
  std::vector<std::span<const float>> fterms;
  for (uint32_t t = t0; t < t1; ++t) {
    terms.emplace_back(b.trits.data() + size_t{t} * b.dims, b.dims);
    if (b.float_dims) fterms.emplace_back(b.float_terms.data() + size_t{t} * b.float_dims, b.float_dims);
  }
  const std::span<const uint32_t> ex(b.exclude.data() + b.exclude_offsets[q], b.exclude_offsets[q + 1] - b.exclude_offsets[q]);
  const std::span<const float> w(b.weights.data() + t0, t1 - t0);
  if (b.float_dims && q < b.has_float.size() && b.has_float[q])
    s.add_query(terms, w, fterms, {b.float_weights.data() + t0, t1 - t0}, ex);
  else
    s.add_query(terms, w, ex);
  return s;
}

// Batched q/s (all threads, one call per pass) and recall; one-query q/s on the first singles.
void measure_igla(const Searcher& s, const QuerySet& qs0, const SearchParams& p, Row& batched, Row& single,
                  bool float32_queries = false) {
  QuerySet view;  // the float32-form queries, when asked for and made
  const bool swap = float32_queries && qs0.batch_f32.size() > 0;
  if (swap) {
    view.batch = qs0.batch_f32;
    view.singles = qs0.singles_f32;
    view.truth_f = qs0.truth_f;
    view.truth_t = qs0.truth_t;
  }
  const QuerySet& qs = swap ? view : qs0;
  SearchResults r;
  s.search(qs.singles.front(), p, r);  // warm-up (derived layouts, pages)
  // The best of three timings: the machine is shared, and a slow pass measures the neighbours.
  for (int rep = 0; rep < kReps; ++rep) {
    auto t0 = clock_type::now();
    size_t passes = 0;
    do {
      s.search(qs.batch, p, r);
      ++passes;
    } while (since(t0) < 0.15);
    batched.qps = std::max(batched.qps, double(passes * qs.batch.size()) / since(t0));
    t0 = clock_type::now();
    for (const auto& b : qs.singles) s.search(b, p, one_result());
    single.qps = std::max(single.qps, double(qs.singles.size()) / since(t0));
  }
  batched.recall_f = recall(r, qs.truth_f, p.k);
  batched.recall_t = recall(r, qs.truth_t, p.k);
  single.recall_f = batched.recall_f;
  single.recall_t = batched.recall_t;
}

void measure_peer(AnnPeer& peer, const QuerySet& qs, size_t d, size_t k, int param, int threads, size_t n_single,
                  Row& batched, Row& single) {
  const size_t nq = qs.self.size(), kk = k + (qs.self[0] != ~0u ? 1 : 0);
  std::vector<int64_t> labels, one;
  for (int rep = 0; rep < kReps; ++rep) {
    auto t0 = clock_type::now();
    size_t passes = 0;
    do {
      peer.search(qs.unit.data(), nq, kk, param, threads, labels);
      ++passes;
    } while (since(t0) < 0.15);
    batched.qps = std::max(batched.qps, double(passes * nq) / since(t0));
    t0 = clock_type::now();
    for (size_t i = 0; i < n_single; ++i) peer.search(qs.unit.data() + i * d, 1, kk, param, 1, one);
    single.qps = std::max(single.qps, double(n_single) / since(t0));
  }
  batched.recall_f = recall_labels(labels, kk, qs.self, qs.truth_f, k);
  batched.recall_t = recall_labels(labels, kk, qs.self, qs.truth_t, k);
  single.recall_f = batched.recall_f;
  single.recall_t = batched.recall_t;
}

void bench_ann(const BenchArgs& a) {
  if (a.device == "cuda") {  // say so before the truths and builds, not after
    std::string why;
    if (!cuda_available(&why)) throw Error("bench-ann --device cuda: " + why);
  }
  const int threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const size_t k = a.k;
  // --truth: the words of an index without float32 vectors, the queries and float32 truth of a
  // --save-truth run on the same words; no held-out set, no peers (they need the vectors).
  const bool from_truth = !a.truth.empty();
  if ((from_truth || !a.save_truth.empty()) && a.heldout)
    throw Error(std::string(from_truth ? "--truth" : "--save-truth") +
                ": the saved truth is over every word of the index (no held-out words); add --heldout 0");
  if (from_truth && !a.save_truth.empty()) throw Error("--truth and --save-truth: one or the other");
  if (from_truth && !a.synthetic.empty()) throw Error("--truth goes with --index (the words it was saved for)");
  if (from_truth && !a.no_peers) throw Error("--truth: the peers need the float32 vectors; add --no-peers");
  // ---- data: the index's float32 vectors, or a synthetic mixture ----
  FloatVectors all;
  QuantParams qp;
  std::string data_name;
  std::shared_ptr<const Index> truth_ix;  // --truth: the index, as it is
  if (from_truth) {
    const std::string path = a.index.empty() ? default_index_path() : a.index;
    truth_ix = open_index(path);
    all.dims = truth_ix->float_dims();  // no vectors: the database is the index itself
    data_name = fmt::format("{} ({} words x {}; float32 truth from {})", std::filesystem::path(path).filename().string(),
                            truth_ix->size(), all.dims, a.truth);
  } else if (!a.synthetic.empty()) {
    const auto nd = parse_list(a.synthetic, "--synthetic");
    if (nd.size() != 2) throw Error("--synthetic takes N,D (e.g. 1000000,100)");
    all = synthetic_vectors(nd[0], nd[1], a.seed);
    parse_quantization("rotated", qp);
    qp.threshold_factor = default_threshold_factor(qp.method);
    qp.rerank = Rerank::Int8;
    data_name = fmt::format("synthetic {}x{} (Gaussian mixture, seed {})", nd[0], nd[1], a.seed);
  } else {
    const std::string path = a.index.empty() ? default_index_path() : a.index;
    const Index src = Index::open(path);
    if (!src.has_float())
      throw Error(path + " holds no float32 vectors, which bench-ann needs for its float truth and peers: build one "
                         "with `igla convert <vectors or npm tarball> OUT.igla --keep-float`, then --index OUT.igla (or give the "
                         "float32 truth of such an index: --truth)");
    all = src.to_float_vectors();
    qp = src.quant();
    if (qp.rerank == Rerank::None) qp.rerank = Rerank::Int8;
    data_name = fmt::format("{} ({} words x {})", std::filesystem::path(path).filename().string(), all.size(), all.dims);
  }
  const size_t d = all.dims, n_all = all.size();
  if (!from_truth && a.heldout + a.queries + 100 > n_all) throw Error("bench-ann: too few vectors for the query sets");
  // ---- held-out words leave the database (ann-benchmarks); vocabulary queries are database words ----
  std::mt19937_64 rng(a.seed);
  std::vector<uint32_t> perm(n_all);
  std::iota(perm.begin(), perm.end(), 0u);
  for (size_t i = 0; i < a.heldout; ++i) std::swap(perm[i], perm[i + rng() % (n_all - i)]);
  std::vector<uint8_t> held(n_all, 0);
  for (size_t i = 0; i < a.heldout; ++i) held[perm[i]] = 1;
  FloatVectors db;
  db.dims = all.dims;
  std::vector<float> held_x;
  for (size_t i = 0; i < n_all; ++i) {
    auto r = all.row(i);
    if (held[i]) {
      held_x.insert(held_x.end(), r.begin(), r.end());
    } else {
      db.words.push_back(std::move(all.words[i]));
      db.data.insert(db.data.end(), r.begin(), r.end());
    }
  }
  all = {};
  const size_t n = from_truth ? truth_ix->size() : db.size();
  fmt::print("bench-ann: {}; database {} words (the {} held-out words removed), k = {}, {} threads\n", data_name, n,
             a.heldout, k, threads);
  // --cache: the igla index (with its IVF sections) and hnswlib's graph of an earlier run with the
  // same data and parameters are read instead of built; their build times are the recorded ones.
  std::string cache_key, data_key;  // data_key: the data alone (the peers' files)
  if (!a.cache.empty() && from_truth) fmt::print("cache: not used with --truth (the index is read as it is)\n");
  if (!a.cache.empty() && !from_truth) {
    std::filesystem::create_directories(a.cache);
    const std::string what = fmt::format("{}|n={}|heldout={}|seed={}|lists={}|quant={}|{}", data_name, n, a.heldout,
                                         a.seed, a.lists, quantization_name(qp), rerank_name(qp.rerank));
    cache_key = fmt::format("{:016x}", std::hash<std::string>{}(what));
    data_key = fmt::format("{:016x}", std::hash<std::string>{}(
                                           fmt::format("{}|n={}|heldout={}|seed={}", data_name, n, a.heldout, a.seed)));
    fmt::print("cache: {}/igla-{}.* ({}), peers: *-{}.*\n", a.cache, cache_key, what, data_key);
  }
  auto cache_file = [&](const std::string& stem, const std::string& ext) {
    const bool peer = stem.rfind("igla", 0) != 0;  // the peers' files do not depend on igla's parameters
    return (std::filesystem::path(a.cache) / (stem + "-" + (peer ? data_key : cache_key) + ext)).string();
  };
  auto read_seconds = [](const std::string& path, size_t i) {
    std::ifstream f(path);
    double v = -1;
    for (size_t j = 0; j <= i && (f >> v); ++j) {
    }
    return v;
  };
  auto t0 = clock_type::now();
  std::shared_ptr<const Index> ix;
  double quant_s = 0, cached_ivf_s = -1, cached_res_s = -1;
  const bool ix_cached = !cache_key.empty() && std::filesystem::exists(cache_file("igla", ".igla"));
  if (from_truth) {
    ix = truth_ix;
  } else if (ix_cached) {
    ix = open_index(cache_file("igla", ".igla"));
    quant_s = read_seconds(cache_file("igla", ".times"), 0);
    cached_ivf_s = read_seconds(cache_file("igla", ".times"), 1);
    cached_res_s = read_seconds(cache_file("igla", ".times"), 2);
    fmt::print("igla index read from the cache in {:.1f}s (built in {:.1f}s)\n", since(t0), quant_s);
  } else {
    ix = std::make_shared<const Index>(Index::build(db, qp, true));  // float32 kept: the IVF fits on it
    quant_s = since(t0);
  }
  std::vector<float> xdb = std::move(db.data);
  db = {};
  normalize_rows(xdb, d);
  std::vector<float> held_unit = held_x;  // the builder gets the raw vectors: the transform's mean is in their scale
  normalize_rows(held_unit, d);

  // Final rerank rows for the graph and ivf-int8 rows ("none" measures them as they are).
  std::vector<FinalRows> finals;  // the non-none ones
  bool final_none = false;
  {
    std::string rest = a.final_rerank;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const FinalRows f = parse_final_rows(rest.substr(0, comma));
      if (f == FinalRows::None)
        final_none = true;
      else
        finals.push_back(f);
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    }
  }
  // ---- query sets and truths ----
  bool rows_int8 = false, rows_residual = false;
  {
    std::stringstream ss(a.ivf_rows);
    for (std::string t; std::getline(ss, t, ',');) {
      if (t == "int8")
        rows_int8 = true;
      else if (t == "residual")
        rows_residual = true;
      else
        throw Error("--ivf-rows: '" + t + "' is not int8 or residual");
    }
  }
  const bool need_f32 = !finals.empty() || rows_residual;
  if (need_f32 && from_truth)
    throw Error("--truth: --final-rerank f16/f32 and --ivf-rows residual need the float32 vectors");
  SavedTruth saved;
  if (from_truth) saved = load_truth(a.truth, *ix, k);
  std::vector<QuerySet> sets(a.heldout ? 2 : 1);
  {
    QuerySet& v = sets[0];
    v.name = "vocabulary";
    QueryBuilder b(*ix), b32(*ix, Combine::Sum, need_f32 ? FloatForm::Float32 : FloatForm::Auto);
    const size_t nq = from_truth ? saved.queries.size() : a.queries;
    for (size_t i = 0; i < nq; ++i) {
      const uint32_t id = from_truth ? saved.queries[i]
                                     : static_cast<uint32_t>(rng() % (a.query_range ? std::min(a.query_range, n) : n));
      b.word(id);
      if (need_f32) b32.word(id);
      v.self.push_back(id);
      if (!from_truth)
        v.unit.insert(v.unit.end(), xdb.begin() + static_cast<std::ptrdiff_t>(size_t{id} * d),
                      xdb.begin() + static_cast<std::ptrdiff_t>((size_t{id} + 1) * d));
    }
    v.batch = b.take();
    if (need_f32) v.batch_f32 = b32.take();
    if (a.heldout) {
      QuerySet& h = sets[1];
      h.name = "held-out";
      QueryBuilder hb(*ix);
      hb.vectors(held_x, a.heldout);
      h.batch = hb.take();
      h.unit = std::move(held_unit);
      h.self.assign(a.heldout, ~0u);
    }
  }
  t0 = clock_type::now();
  if (from_truth) {
    sets[0].truth_f = std::move(saved.truth);
  } else {
    const std::vector<float> xtb = blocked_transpose(xdb, n, d);
    for (auto& s : sets) s.truth_f = float_truth(xtb, n, d, s.unit, s.self, k, threads);
  }
  if (!a.save_truth.empty()) {
    save_truth(a.save_truth, *ix, k, {sets[0].self, sets[0].truth_f});
    fmt::print("truth: wrote {} ({} vocabulary queries; read back by --truth on an index of the same words)\n",
               a.save_truth, sets[0].self.size());
  }
  SearcherOptions so;
  so.cpu.threads = threads;
  so.rerank = false;
  const auto exact_ternary = make_searcher(ix, so);
  SearchParams tp;
  tp.k = k;
  tp.candidates = 0;
  for (auto& s : sets) {
    const SearchResults r = exact_ternary->search(s.batch, tp);
    s.truth_t.resize(s.batch.size() * k, ~0u);
    for (size_t q = 0; q < r.count.size(); ++q)
      for (size_t j = 0; j < r.count[q]; ++j) s.truth_t[q * k + j] = r.of(q)[j].id;
    for (size_t i = 0; i < std::min(a.one_queries, s.batch.size()); ++i) s.singles.push_back(slice(s.batch, i));
    if (s.batch_f32.size() > 0)
      for (size_t i = 0; i < std::min(a.one_queries, s.batch_f32.size()); ++i)
        s.singles_f32.push_back(slice(s.batch_f32, i));
  }
  fmt::print("truths ({}; exact igla ternary) in {:.1f}s\n",
             from_truth ? "exact float32 cosine read from " + a.truth : std::string("exact float32 cosine"), since(t0));

  std::vector<Row> rows;
  // The CSV grows row by row, so a long run interrupted still leaves what it measured.
  std::ofstream csv;
  if (!a.csv.empty()) {
    csv.open(a.csv);
    csv << "data,set,method,params,mode,threads,recall_float,recall_ternary,qps,bytes_per_vector,build_s\n";
    if (!csv) throw Error("cannot write " + a.csv);
  }
  auto add = [&](const QuerySet& s, std::string method, std::string params, Row b, Row one, double bpv, double build) {
    for (Row* r : {&b, &one}) {
      r->set = s.name;
      r->method = method;
      r->params = params;
      r->bpv = bpv;
      r->build_s = build;
    }
    b.mode = fmt::format("batched x{}", threads);
    one.mode = "one query";
    fmt::print("  {:<11} {:<26} {:<16} recall@{} float {:.3f} ternary {:.3f}  batched {:>9.0f} q/s  one query {:>8.0f} q/s\n",
               s.name, method, params, k, b.recall_f, b.recall_t, b.qps, one.qps);
    std::fflush(stdout);
    for (const Row* r : {&b, &one})
      if (csv.is_open())
        csv << fmt::format("\"{}\",{},{},{},{},{},{:.4f},{:.4f},{:.1f},{:.1f},{:.2f}\n", data_name, r->set, r->method,
                           r->params, r->mode, threads, r->recall_f, r->recall_t, r->qps, r->bpv, r->build_s)
            << std::flush;
    rows.push_back(b);
    rows.push_back(one);
  };
  const double rerank_bpv = ix->rerank() == Rerank::F16 ? 2.0 * d : double(d);
  const double flat_bpv = 2.0 * 8 * plane_words(ix->dims()) + 8;  // codes, norm and inverse norm
  const auto cands = parse_list(a.candidates, "--candidates");

  // ---- igla exact (the flat scan, default settings), on the CPU or (backend "cuda") the GPU ----
  auto measure_exact = [&](const std::string& label, const std::string& backend) {
    SearcherOptions eo;
    eo.backend = backend;
    eo.cpu.threads = threads;
    const auto exact = make_searcher(ix, eo);
    fmt::print("{}: {}\n", label, exact->name());
    for (const auto& s : sets) {
      SearchParams p;
      p.k = k;
      Row b, one;
      measure_igla(*exact, s, p, b, one);
      add(s, label, fmt::format("c={}", p.candidates), b, one, flat_bpv + rerank_bpv, quant_s);
    }
  };
  measure_exact("igla exact", SearcherOptions{}.backend);
  // ---- igla graph: HNSW-style over the int8 rerank rows ----
  if (ix->rerank() == Rerank::Int8 && !a.no_graph)
    for (uint32_t m : parse_list(a.graph_ms, "--graph-m"))
      for (uint32_t keep : parse_list(a.graph_keeps, "--graph-keep-nearest", true)) {
      GraphParams gp;
      gp.m = m;
      gp.ef_construction = a.graph_efc;
      gp.keep_nearest = keep;
      gp.fill = keep > 0;  // 0: HNSW's heuristic alone (the graph of rounds 3-4)
      gp.threads = threads;
      t0 = clock_type::now();
      auto g = std::make_shared<const GraphIndex>(build_graph_with_progress(*ix, gp));
      const double g_s = since(t0);
      SearcherOptions go;
      go.cpu.threads = threads;
      const auto gs = make_graph_searcher(ix, go, g);
      // What its search reads per word: the int8 row and the links (layer 0, counts, upper layers).
      const double bpv = double(d) + g->link_bytes_per_word();
      const std::string method = fmt::format("igla graph M={} efC={} keep={}", m, a.graph_efc, g->keep_nearest());
      fmt::print("{}: {}, built in {:.1f}s on {} threads (+ {:.1f}s quantization), {:.0f} bytes per vector\n", method,
                 gs->name(), g_s, threads, quant_s, bpv);
      std::vector<std::shared_ptr<const Searcher>> gs_final;
      for (FinalRows f : finals) {
        t0 = clock_type::now();
        gs_final.push_back(make_final_rerank_stage(gs, ix, f, threads));
        fmt::print("  {} (final rows made in {:.2f}s, + {:.0f} bytes per vector)\n", gs_final.back()->name(), since(t0),
                   final_rows_bytes_per_word(*ix, f));
      }
      for (const auto& s : sets)
        for (uint32_t ef : parse_list(a.graph_efs.empty() ? a.efs : a.graph_efs, "--graph-ef"))
          for (uint32_t c : parse_list(a.graph_candidates, "--graph-candidates")) {
            SearchParams p;
            p.k = k;
            p.ef = ef;
            p.candidates = c;
            if (final_none) {
              Row b, one;
              measure_igla(*gs, s, p, b, one);
              add(s, method, fmt::format("ef={} c={}", ef, c), b, one, bpv, g_s + quant_s);
            }
            for (size_t f = 0; f < finals.size(); ++f) {
              Row b, one;
              measure_igla(*gs_final[f], s, p, b, one, true);
              add(s, method + " + " + final_rows_name(finals[f]), fmt::format("ef={} c={}", ef, c), b, one,
                  bpv + final_rows_bytes_per_word(*ix, finals[f]), g_s + quant_s);
            }
          }
    }
  // ---- igla IVF ----
  t0 = clock_type::now();
  IvfParams ip;
  ip.lists = a.lists;
  ip.threads = threads;
  std::shared_ptr<const IvfIndex> ivf;
  std::shared_ptr<const IvfResidualRows> res_rows;
  double ivf_s = 0, res_s = 0;
  bool ivf_from_index = false;  // --truth: build-ivf's lists, build time not known here
  if (!a.no_ivf && ix_cached && has_ivf_sections(*ix) && cached_ivf_s >= 0) {
    ivf = ivf_of(*ix);
    ivf_s = cached_ivf_s;
    fmt::print("igla IVF read from the cache ({:.1f}s)\n", since(t0));
  } else if (!a.no_ivf && from_truth && has_ivf_sections(*ix)) {
    ivf = ivf_of(*ix);
    ivf_from_index = true;
    fmt::print("igla IVF: the index's own lists (igla build-ivf), read in {:.1f}s\n", since(t0));
  } else if (!a.no_ivf) {
    ivf = std::make_shared<const IvfIndex>(IvfIndex::build(*ix, ip));
    ivf_s = since(t0);
  }
  if (ivf && rows_residual) {
    if (ix_cached && has_ivf_residual_section(*ix) && cached_res_s >= 0) {
      res_rows = ivf_residual_of(*ix);
      res_s = cached_res_s;
    } else {
      t0 = clock_type::now();
      res_rows = std::make_shared<const IvfResidualRows>(IvfResidualRows::build(*ix, *ivf, threads));
      res_s = since(t0);
    }
    fmt::print("igla IVF residual rows: built in {:.1f}s, {:.1f} bytes per vector read\n", res_s,
               res_rows->bytes_per_word(*ivf));
  }
  if (!cache_key.empty() && ivf && (!ix_cached || !has_ivf_sections(*ix) || (res_rows && !has_ivf_residual_section(*ix)))) {
    auto sections = ivf->sections();
    if (res_rows) sections.push_back(res_rows->section());
    ix->save(cache_file("igla", ".igla"), sections);
    std::ofstream(cache_file("igla", ".times")) << fmt::format("{} {} {}\n", quant_s, ivf_s, res_rows ? res_s : -1.0);
    fmt::print("cache: wrote {}\n", cache_file("igla", ".igla"));
  }
  if (ivf && !ivf_from_index)
    fmt::print("igla IVF: {} lists on the {}, built in {:.1f}s (+ {:.1f}s quantization)\n", ivf->lists(),
               ivf_source_name(ivf->source()), ivf_s, quant_s);
  // The sweep of a ternary IVF searcher over nprobe: each nprobe x candidates through `reranked`
  // (those `fits` keeps), then the ternary stage alone through `ternary`, rows named label and
  // label + " ternary".
  auto sweep_ivf = [&](const Searcher& reranked, const Searcher& ternary, const std::string& label, auto fits) {
    for (const auto& s : sets)
      for (uint32_t np : parse_list(a.nprobes, "--nprobe")) {
        np = std::min(np, ivf->lists());
        for (uint32_t c : cands) {
          if (!fits(s, c)) continue;
          SearchParams p;
          p.k = k;
          p.nprobe = np;
          p.candidates = c;
          Row b, one;
          measure_igla(reranked, s, p, b, one);
          add(s, label, fmt::format("nprobe={} c={}", np, c), b, one, ivf->bytes_per_word() + rerank_bpv,
              ivf_s + quant_s);
        }
        SearchParams p;
        p.k = k;
        p.nprobe = np;
        p.candidates = 0;
        Row b, one;
        measure_igla(ternary, s, p, b, one);
        add(s, label + " ternary", fmt::format("nprobe={}", np), b, one, ivf->bytes_per_word(), ivf_s + quant_s);
        if (np == ivf->lists()) break;
      }
  };
  if (ivf && !a.no_ivf_ternary) {
    SearcherOptions io;
    io.cpu.threads = threads;
    const auto base = make_ivf_searcher(ix, io, ivf);
    const auto reranked = make_rerank_stage(base, ix, threads);
    sweep_ivf(*reranked, *base, "igla ivf", [](const QuerySet&, uint32_t) { return true; });
  }
  // ---- on the GPU (--device cuda): the exact CUDA search and the CUDA IVF searcher over the same lists ----
  if (a.device == "cuda") {
    measure_exact("cuda exact", "cuda");
    SearcherOptions co;
    co.backend = "cuda";
    co.cpu.threads = threads;
    if (ivf) {
      const auto civf = make_cuda_ivf_searcher(ix, co, ivf);
      fmt::print("cuda ivf: {}\n", civf->name());
      // Past k + candidates + exclusions = 64 a query leaves the tensor-core lists for the CPU route.
      sweep_ivf(*civf, *civf, "cuda ivf", [&](const QuerySet& s, uint32_t c) {
        return std::max<size_t>(c, k) + (s.self[0] != ~0u ? 1 : 0) <= 64;
      });
      const std::string rep = cuda_report(*civf);
      if (!rep.empty()) fmt::print("{}", rep);
      if (std::any_of(cands.begin(), cands.end(), [&](uint32_t c) { return std::max<size_t>(c, k) + 1 > 64; }))
        fmt::print("cuda ivf: candidates past 63 (k + candidates + exclusions > 64) not measured: they take the CPU "
                   "route\n");
    }
  }
  // ---- igla IVF-int8: the same lists holding the int8 rerank rows, scanned with an int8 query ----
  if (ivf && res_rows && ix->rerank() == Rerank::Int8) {
    SearcherOptions io;
    io.cpu.threads = threads;
    const auto rs = make_ivf_residual_searcher(ix, io, ivf, res_rows);
    fmt::print("igla IVF-int8 residual: {}\n", rs->name());
    const double bpv = res_rows->bytes_per_word(*ivf);
    for (const auto& s : sets)
      for (uint32_t np : parse_list(a.nprobes, "--nprobe")) {
        np = std::min(np, ivf->lists());
        for (uint32_t c : parse_list(a.int8_candidates, "--int8-candidates")) {
          SearchParams p;
          p.k = k;
          p.nprobe = np;
          p.candidates = c;
          Row b, one;
          measure_igla(*rs, s, p, b, one, true);
          add(s, "igla ivf-int8 residual", fmt::format("nprobe={} c={}", np, c), b, one, bpv, ivf_s + quant_s + res_s);
        }
        if (np == ivf->lists()) break;
      }
  }
  if (ivf && rows_int8 && ix->rerank() == Rerank::Int8) {
    SearcherOptions io;
    io.cpu.threads = threads;
    t0 = clock_type::now();
    const auto ivf8 = make_ivf8_searcher(ix, io, ivf);
    const double lay_s = since(t0);
    fmt::print("igla IVF-int8: {} (rows laid out in {:.2f}s)\n", ivf8->name(), lay_s);
    // What its search reads per word: the int8 row, its id and inverse norm; plus the centroids.
    const double bpv = double(d) + 8.0 + double(ivf->lists()) * 4.0 * double(d) / double(n);
    std::vector<std::shared_ptr<const Searcher>> ivf8_final;
    for (FinalRows f : finals) ivf8_final.push_back(make_final_rerank_stage(ivf8, ix, f, threads));
    for (const auto& s : sets)
      for (uint32_t np : parse_list(a.nprobes, "--nprobe")) {
        np = std::min(np, ivf->lists());
        for (uint32_t c : parse_list(a.int8_candidates, "--int8-candidates")) {
          SearchParams p;
          p.k = k;
          p.nprobe = np;
          p.candidates = c;
          if (final_none) {
            Row b, one;
            measure_igla(*ivf8, s, p, b, one);
            add(s, "igla ivf-int8", fmt::format("nprobe={} c={}", np, c), b, one, bpv, ivf_s + quant_s + lay_s);
          }
          for (size_t f = 0; f < finals.size(); ++f) {
            Row b, one;
            measure_igla(*ivf8_final[f], s, p, b, one, true);
            add(s, std::string("igla ivf-int8 + ") + final_rows_name(finals[f]), fmt::format("nprobe={} c={}", np, c),
                b, one, bpv + final_rows_bytes_per_word(*ix, finals[f]), ivf_s + quant_s + lay_s);
          }
        }
        if (np == ivf->lists()) break;
      }
  }
  // ---- peers ----
  if (!a.no_peers) {
    // Each peer is measured right after its build and freed before the next one is built.
    auto run_peer = [&](auto make, const std::string& cache_stem = "") {
      const auto tb = clock_type::now();
      const bool cached = !cache_stem.empty() && std::filesystem::exists(cache_file(cache_stem, ".bin"));
      std::unique_ptr<AnnPeer> peer = make(cached ? cache_file(cache_stem, ".bin") : std::string());
      double build_s = since(tb);
      if (cached) {
        fmt::print("{}: read from the cache in {:.1f}s\n", peer->name(), build_s);
        build_s = read_seconds(cache_file(cache_stem, ".times"), 0);
      } else if (!cache_stem.empty()) {
        peer->save(cache_file(cache_stem, ".bin"));
        std::ofstream(cache_file(cache_stem, ".times")) << fmt::format("{}\n", build_s);
      }
      fmt::print("{}: built in {:.1f}s on {} threads, {:.0f} bytes per vector\n", peer->name(), build_s, threads,
                 peer->bytes_per_vector());
      std::fflush(stdout);
      for (const auto& s : sets) {
        const auto params = peer->knob() == "ef" ? parse_list(a.efs, "--ef") : parse_list(a.nprobes, "--nprobe");
        for (uint32_t v : params) {
          if (peer->knob() == "nprobe" && !ivf) break;
          v = std::min<uint32_t>(v, peer->knob() == "ef" ? 100000u : ivf->lists());
          Row b, one;
          measure_peer(*peer, s, d, k, static_cast<int>(v), threads, s.singles.size(), b, one);
          add(s, peer->name(), fmt::format("{}={}", peer->knob(), v), b, one, peer->bytes_per_vector(), build_s);
          if (peer->knob() == "nprobe" && v == ivf->lists()) break;
        }
      }
    };
    if (have_hnswlib())
      for (uint32_t m : parse_list(a.ms, "--hnsw-m"))
        run_peer([&](const std::string& load) { return make_hnswlib(xdb, n, d, static_cast<int>(m), a.efc, threads, load); },
                 cache_key.empty() ? "" : fmt::format("hnswlib-M{}-efc{}-t{}", m, a.efc, threads));
    else
      fmt::print("hnswlib: not built in (apt-get install libhnswlib-dev)\n");
    if (have_faiss_ann() && !a.no_faiss) {
      if (ivf) run_peer([&](const std::string&) { return make_faiss_ivf(xdb, n, d, static_cast<int>(ivf->lists()), threads); });
      if (!a.no_faiss_hnsw) run_peer([&](const std::string&) { return make_faiss_hnsw(xdb, n, d, 32, a.efc, threads); });
    }
  }

  if (csv.is_open()) fmt::print("wrote {}\n", a.csv);
  // igla's summary row is its fastest approximate one (IVF, IVF-int8 or graph) at recall >= 0.95.
  auto best_in = [&](const std::vector<std::string>& prefixes, bool& reached, bool one_query = false) {
    const Row* pick = nullptr;
    for (const Row& r : rows) {
      const bool match = std::any_of(prefixes.begin(), prefixes.end(),
                                     [&](const std::string& p) { return r.method.rfind(p, 0) == 0; });
      if (r.set != "vocabulary" || (r.mode == "one query") != one_query || !match || r.method == "igla ivf ternary" ||
          r.method == "cuda ivf ternary")
        continue;
      if (r.recall_f >= 0.95 && (!pick || pick->recall_f < 0.95 || r.qps > pick->qps)) pick = &r;
      if (r.recall_f < 0.95 && (!pick || (pick->recall_f < 0.95 && r.recall_f > pick->recall_f))) pick = &r;
    }
    reached = pick && pick->recall_f >= 0.95;
    return pick;
  };
  auto best = [&](const std::string& prefix, bool& reached) { return best_in({prefix}, reached); };
  bool ivf_ok = false, h_ok = false, e_ok = false;
  const Row* iv = best_in({"igla ivf", "igla graph"}, ivf_ok);
  const Row* hn = best("hnswlib", h_ok);
  const Row* ex = best("igla exact", e_ok);
  if (iv && !ivf_ok) fmt::print("note: igla ivf reached recall@10 {:.3f} at most (< 0.95): its best setting is reported\n", iv->recall_f);
  if (hn && !h_ok) fmt::print("note: hnswlib reached recall@10 {:.3f} at most (< 0.95)\n", hn->recall_f);
  if (iv) fmt::print("igla's summary row: {} {} (batched)\n", iv->method, iv->params);
  if (hn) fmt::print("hnswlib's summary row: {} {} (batched)\n", hn->method, hn->params);
  // One query at a time (1 thread), the same rule: igla's fastest approximate row and hnswlib's at recall >= 0.95.
  bool i1_ok = false, h1_ok = false;
  const Row* i1 = best_in({"igla ivf", "igla graph"}, i1_ok, true);
  const Row* h1 = best_in({"hnswlib"}, h1_ok, true);
  if (i1 && h1)
    fmt::print("one query: {} {} recall={:.3f} qps={:.0f}; {} {} recall={:.3f} qps={:.0f}; ratio {:.2f}\n",
               i1->method, i1->params, i1->recall_f, i1->qps, h1->method, h1->params, h1->recall_f, h1->qps,
               h1->qps > 0 ? i1->qps / h1->qps : 0.0);
  if (a.device == "cuda") {
    bool c_ok = false, ce_ok = false;
    const Row* cv = best_in({"cuda ivf"}, c_ok);
    const Row* ce = best_in({"cuda exact"}, ce_ok);
    if (cv)
      fmt::print("cuda summary: recall={:.3f} cuda_ivf_qps={:.0f} ({} {}, batched) cuda_exact_qps={:.0f} cuda_exact_recall={:.3f}\n",
                 cv->recall_f, cv->qps, cv->method, cv->params, ce ? ce->qps : 0.0, ce ? ce->recall_f : 0.0);
  }
  fmt::print("summary: recall={:.3f} ivf_qps={:.0f} exact_qps={:.0f} hnswlib_qps={:.0f} hnswlib_recall={:.3f}\n",
             iv ? iv->recall_f : 0.0, iv ? iv->qps : 0.0, ex ? ex->qps : 0.0, hn ? hn->qps : 0.0, hn ? hn->recall_f : 0.0);
}

void add_bench_ann(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "bench-ann",
      "Recall@10 and q/s of igla's approximate searchers (IVF over ternary codes, IVF-int8, the graph index) "
      "against hnswlib and FAISS (IndexHNSWFlat, IndexIVFFlat): vocabulary-word and held-out queries, truth by "
      "exact float32 and exact ternary search");
  cmd->add_option("--index", a->index, "Index holding float32 vectors (default: the GloVe index)");
  cmd->add_option("--synthetic", a->synthetic, "N,D: a Gaussian mixture of N vectors x D dims instead (fixed seed)");
  cmd->add_option("--queries", a->queries, "Vocabulary-word queries (default: 2000)");
  cmd->add_option("--query-range", a->query_range,
                  "Vocabulary queries drawn from the first N database words (the frequent ones in GloVe order; "
                  "default: 30000; 0: all)");
  cmd->add_option("--heldout", a->heldout, "Held-out words, removed from the database and queried (default: 10000)");
  cmd->add_option("--one-queries", a->one_queries, "Queries timed one at a time (default: 500)");
  cmd->add_option("--threads", a->threads, "Threads for every method (default: all cores)");
  cmd->add_option("--lists", a->lists, "IVF lists (default: about 2 sqrt(words))");
  cmd->add_option("--nprobe", a->nprobes, "nprobe sweep, igla and FAISS IVF (default: " + a->nprobes + ")");
  cmd->add_option("--candidates", a->candidates, "rerank candidates sweep (default: " + a->candidates + ")");
  cmd->add_option("--ef", a->efs, "ef sweep of the graph peers (default: " + a->efs + ")");
  cmd->add_option("--hnsw-m", a->ms, "hnswlib M values (default: " + a->ms + ")");
  cmd->add_option("--ef-construction", a->efc, "efConstruction of the graph peers (default: 200)");
  cmd->add_option("--csv", a->csv, "CSV of every row, for scripts/plot_ann.py (default: ann_bench.csv; '' for none)");
  cmd->add_option("--int8-candidates", a->int8_candidates,
                  "rerank candidates sweep of igla IVF-int8 (default: " + a->int8_candidates + ")");
  cmd->add_flag("--no-ivf-ternary", a->no_ivf_ternary, "Skip the ternary IVF sweep (IVF-int8 and peers only)");
  cmd->add_flag("--no-ivf", a->no_ivf, "Skip igla's IVF and IVF-int8 (and FAISS IVFFlat, which uses its list count)");
  cmd->add_flag("--no-graph", a->no_graph, "Skip igla's graph index");
  cmd->add_option("--graph-m", a->graph_ms, "igla graph M values (layer 0 keeps 2M; default: " + a->graph_ms + ")");
  cmd->add_option("--graph-ef-construction", a->graph_efc, "efConstruction of igla's graph (default: 100)");
  cmd->add_option("--graph-keep-nearest", a->graph_keeps,
                  "igla graph: nearest candidates kept as layer-0 links, the rest filled, sweep (default: " +
                      a->graph_keeps + "; 0: HNSW's heuristic alone, no fill: the graph of rounds 3-4)");
  cmd->add_option("--graph-ef", a->graph_efs, "ef sweep of igla's graph (default: the --ef sweep)");
  cmd->add_option("--graph-candidates", a->graph_candidates,
                  "rows rescored exactly per query by igla's graph, sweep (default: " + a->graph_candidates + ")");
  cmd->add_option("--final-rerank", a->final_rerank,
                  "igla graph and ivf-int8: rows their candidates are finally rescored on, sweep of none, f16, f32 "
                  "(default: none; f16/f32 rows add 2/4 bytes per dim per vector beside the int8 rows the walk "
                  "reads; vocabulary queries then use the words' float32 vectors)");
  cmd->add_option("--ivf-rows", a->ivf_rows,
                  "igla IVF-int8 rows, sweep of int8 (the index's rows) and residual (each word's residual to its "
                  "list centroid, the IVFR section of build-ivf --residual; measured with float32 query forms) "
                  "(default: int8)");
  cmd->add_option("--cache", a->cache,
                  "Directory where the built igla index (with its IVF sections) and hnswlib's graph are kept and "
                  "read back by a later run with the same data and parameters (build times: the recorded ones)");
  cmd->add_option("--device", a->device,
                  "cpu, or cuda: also igla's exact CUDA search and the CUDA IVF searcher (the same lists and nprobe "
                  "sweep, candidates up to 63) on the GPU (default: cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--no-peers", a->no_peers, "igla only");
  cmd->add_option("--save-truth", a->save_truth,
                  "Write the vocabulary queries and their exact float32 top k to FILE (needs --heldout 0), for a "
                  "later run with --truth on an index of the same words without float32 vectors");
  cmd->add_option("--truth", a->truth,
                  "Queries and float32 truth from a --save-truth run on the same words: --index may then be an "
                  "index without float32 vectors (e.g. the default one on the GPU machine); needs --heldout 0 and "
                  "--no-peers; its IVF lists are built from the index's rerank rows");
  cmd->add_flag("--no-faiss", a->no_faiss, "Skip the FAISS peers");
  cmd->add_flag("--no-faiss-hnsw", a->no_faiss_hnsw, "Skip FAISS IndexHNSWFlat (the slowest build)");
  cmd->callback([a] { bench_ann(*a); });
}

const Command reg_build(12, add_build_ivf);
const Command reg_bench(95, add_bench_ann);

}  // namespace
}  // namespace igla::cli
