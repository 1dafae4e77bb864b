// `igla bench`: the seed report's throughput tables on this machine, with FAISS measured beside
// igla in the same run, on the same data, queries, k and threads.
#include <fmt/format.h>
#include "core/openmp.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "bench_notes.hpp"
#include "bench_peers.hpp"
#include "cli.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla::cli {
namespace {

using clock_type = std::chrono::steady_clock;

struct Args {
  std::vector<size_t> vocabs, dims;
  size_t k = 10;
  int threads = 0;
  size_t batch = 0;  // 0: by size
  double seconds = 0.4;
  bool no_peers = false, no_real = false;
  std::string kernel, index;
};

struct Data {
  uint32_t dims;
  size_t n;
  std::vector<int8_t> vocab;  // n * dims trits
  std::shared_ptr<const Index> index;
};

// Trits with the real vectors' density (about 69% non-zero at the seed's threshold).
std::vector<int8_t> random_trits(size_t count, std::mt19937_64& rng) {
  std::vector<int8_t> t(count);
  for (auto& x : t) {
    const uint64_t r = rng() % 100;
    x = r < 35 ? int8_t{-1} : (r < 69 ? int8_t{1} : int8_t{0});
  }
  return t;
}

void pack(Data& d) {
  if (!d.index) d.index = index_of_trits(d.vocab, d.n, d.dims);
}

// The ternary backend alone (no rerank stage): what the random-data rows time.
std::shared_ptr<const Searcher> ternary_searcher(std::shared_ptr<const Index> ix, const Args& a, int threads) {
  SearcherOptions o;
  o.cpu = {.threads = threads, .kernel = a.kernel};
  o.rerank = false;
  return make_searcher(std::move(ix), o);
}

// Runs `fn(batch)` repeatedly for at least `seconds`; returns queries per second.
template <class F>
double measure(double seconds, size_t per_call, F&& fn) {
  fn();  // warm-up: page faults, thread pool start
  size_t calls = 0;
  const auto t0 = clock_type::now();
  double el = 0;
  do {
    fn();
    ++calls;
    el = std::chrono::duration<double>(clock_type::now() - t0).count();
  } while (el < seconds);
  return double(calls * per_call) / el;
}

struct Row {
  std::string label;
  size_t n;
  uint32_t dims;
  size_t batch;
  double batched = 0, single = 0, faiss_ip = 0, faiss_ip_single = 0, faiss_bin = 0;
  double agree = -1;  // fraction of igla's top-k also in FAISS IndexFlatIP's top-k
};

Row run_config(const std::string& label, const Data& d, const std::vector<int8_t>& queries, size_t nq,
               const Args& a, int threads) {
  Row r{label, d.n, d.dims, nq};
  auto s = ternary_searcher(d.index, a, threads);
  QueryBatch batch(d.dims);
  for (size_t q = 0; q < nq; ++q) batch.add_nearest({queries.data() + q * d.dims, d.dims});
  SearchResults res;
  r.batched = measure(a.seconds, nq, [&] { s->search(batch, {.k = a.k}, res); });
  // One query at a time: each a batch of one, back to back.
  std::vector<QueryBatch> singles;
  for (size_t q = 0; q < std::min<size_t>(nq, 256); ++q) {
    singles.emplace_back(d.dims);
    singles.back().add_nearest({queries.data() + q * d.dims, d.dims});
  }
  SearchResults one;
  size_t next = 0;
  r.single = measure(a.seconds, 1, [&] { s->search(singles[next++ % singles.size()], {.k = a.k}, one); });

  if (!a.no_peers && peers_available()) {
    auto ip = make_faiss_flat_ip(d.vocab, d.n, queries, nq, d.dims, threads);
    std::vector<int64_t> labels;
    r.faiss_ip = measure(a.seconds, nq, [&] { ip->search(nq, a.k, labels); });
    // Exactness check against the float peer: every igla hit that is not tied (within float
    // rounding) with the k-th must be in FAISS's top k too.
    size_t found = 0, total = 0;
    for (size_t q = 0; q < nq; ++q) {
      const auto hits = res.of(q);
      if (hits.empty()) continue;
      const float kth = hits.back().score;
      for (const Hit& h : hits) {
        if (h.score <= kth + 1e-5f) continue;
        ++total;
        const auto first = labels.begin() + static_cast<long>(q * a.k), last = first + static_cast<long>(a.k);
        found += std::find(first, last, int64_t{h.id}) != last;
      }
    }
    r.agree = total ? double(found) / double(total) : 1.0;
    size_t qi = 0;
    auto ip1 = make_faiss_flat_ip(d.vocab, d.n, std::vector<int8_t>(queries.begin(), queries.begin() + d.dims), 1,
                                  d.dims, threads);
    r.faiss_ip_single = measure(a.seconds, 1, [&] { ip1->search(1, a.k, labels), ++qi; });
    auto bin = make_faiss_binary(d.vocab, d.n, queries, nq, d.dims, threads);
    r.faiss_bin = measure(a.seconds, nq, [&] { bin->search(nq, a.k, labels); });
  }
  return r;
}

std::string qps(double v);

// The default index as users query it: vocabulary words as queries (each excluded from its own
// answer), the rerank stage over 50 candidates, k = 10; batched (one call) and one at a time.
void print_user_rows(const std::shared_ptr<const Index>& ix, const Args& a, int threads) {
  SearchOptions so;
  so.threads = threads;
  so.kernel = a.kernel;
  const Engine e = so.engine(ix);
  const size_t nq = std::min<size_t>(a.batch ? a.batch : 4096, ix->size());
  std::vector<uint32_t> ids(nq);
  for (size_t i = 0; i < nq; ++i) ids[i] = static_cast<uint32_t>((i * 7919) % ix->size());
  const SearchParams p{.k = a.k, .candidates = kDefaultCandidates};
  const double b = measure(a.seconds, nq, [&] { e.nearest(ids, p); });
  size_t next = 0;
  const double one = measure(a.seconds, 1, [&] { e.nearest(std::span(&ids[next++ % nq], 1), p); });
  fmt::print("as users query it ({}: word queries, {} of {} candidates, k={}): batched {} q/s ({} queries per "
             "call), one at a time {} q/s\n",
             e.searcher().name(), e.reranks(p) ? "rerank" : "no rerank rows, ternary", kDefaultCandidates, a.k,
             qps(b), nq, qps(one));
}

std::string qps(double v) { return v <= 0 ? "-" : v >= 1e6 ? fmt::format("{:.2f}M", v / 1e6) : fmt::format("{:.0f}", v); }

void print_row(const Row& r) {
  const double ns_word = r.batched > 0 ? 1e9 / r.batched / double(r.n) : 0;
  const double ns_word1 = r.single > 0 ? 1e9 / r.single / double(r.n) : 0;
  fmt::print("{:<10} {:>8} {:>5} {:>5} | {:>9} {:>6.3f} {:>8} {:>6.3f} | {:>9} {:>9} {:>9} | {:>6} {:>6} | {}\n",
             r.label, r.n, r.dims, r.batch, qps(r.batched), ns_word, qps(r.single), ns_word1, qps(r.faiss_ip),
             qps(r.faiss_ip_single),
             qps(r.faiss_bin), r.faiss_ip > 0 ? fmt::format("{:.1f}x", r.batched / r.faiss_ip) : "-",
             r.faiss_ip_single > 0 ? fmt::format("{:.1f}x", r.single / r.faiss_ip_single) : "-",
             r.agree >= 0 ? fmt::format("{:.4f}", r.agree) : "-");
  std::fflush(stdout);
}

void add_bench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench", "Throughput of exact top-k search, one query at a time and batched, with FAISS IndexFlatIP and "
               "IndexBinaryFlat measured beside it (random ternary data, fixed seed; plus the real GloVe index)");
  cmd->add_option("--vocab", a->vocabs, "Vocabulary sizes (default: 1000 5000 10000 25000 50000 100000 1000000)")
      ->delimiter(',');
  cmd->add_option("--dims", a->dims, "Dimensions (default: 32 64 128 300)")->delimiter(',');
  cmd->add_option("-k,--k", a->k, "Results per query")->check(whole_number(1, 1024));
  cmd->add_option("--threads", a->threads, "Threads for igla and the peers (default: all cores)")
      ->check(whole_number(0, static_cast<uint64_t>(max_threads())));
  cmd->add_option("--batch", a->batch, "Queries per batch (default: by size, at most 4096)")
      ->check(whole_number(0, 1u << 20));
  cmd->add_option("--seconds", a->seconds, "Minimum time per measurement")->check(real_number(0.001, 3600));
  cmd->add_option("--kernel", a->kernel, "CPU kernel (default: best this CPU runs)");
  cmd->add_option("--index", a->index, "Real index for the last row (default: $IGLA_HOME/glove-100d.igla)");
  cmd->add_flag("--no-peers", a->no_peers, "Skip FAISS");
  cmd->add_flag("--no-real", a->no_real, "Skip the real-index row");
  cmd->callback([a] {
    const bool custom = !a->vocabs.empty() || !a->dims.empty();
    if (a->vocabs.empty()) a->vocabs = {1000, 5000, 10000, 25000, 50000, 100000, 1000000};
    if (a->dims.empty()) a->dims = {32, 64, 128, 300};
    const KernelChoice kc = kernel_choice(a->kernel);
    a->kernel = kc.name;  // every searcher below runs the kernel the note names
    const int threads = a->threads > 0 ? a->threads : omp_get_num_procs();
    auto probe = ternary_searcher(index_of_trits(std::vector<int8_t>(64, 1), 1, 64), *a, threads);
    fmt::print("igla bench: {}, k={} | queries/s; b = batched, 1q = one query at a time; ns/w/q = ns per word "
               "per query; xIP = igla / FAISS IndexFlatIP; exact vs IP = share of igla's untied hits in FAISS's "
               "top k\npeers: {}\n{}\n{}\n",
               probe->name(), a->k, peers_note(), kc.note, clock_note());
    fmt::print("{:<10} {:>8} {:>5} {:>5} | {:>9} {:>6} {:>8} {:>6} | {:>9} {:>9} {:>9} | {:>6} {:>6} | {}\n", "data",
               "words", "dims", "batch", "igla b", "ns/w/q", "igla 1q", "ns/w/q", "faissIP b", "faissIP 1q",
               "faissBin b", "xIP b", "xIP 1q", "exact vs IP");
    std::mt19937_64 rng(20261125);
    Row last{};
    for (size_t dims : a->dims)
      for (size_t n : a->vocabs) {
        if (dims == 0 || n == 0) throw Error("--vocab and --dims must be positive");
        Data d{static_cast<uint32_t>(dims), n, random_trits(n * dims, rng), {}};
        pack(d);
        // Same work per measurement everywhere: about 3e10 trit products per batch, 64..4096 queries.
        const size_t nq = a->batch ? a->batch : std::clamp<size_t>(size_t(3e10 / double(n * dims)) / 64 * 64, 64, 4096);
        const auto queries = random_trits(nq * dims, rng);
        last = run_config("random", d, queries, nq, *a, threads);
        print_row(last);
      }
    const std::string real = a->index.empty() ? default_index_path() : a->index;
    if (!a->no_real && !custom && std::filesystem::exists(real)) {
      const auto ix = open_index(real);
      Data d{ix->dims(), ix->size(), {}, ix};
      d.vocab.resize(ix->size() * ix->dims());
      for (size_t i = 0; i < ix->size(); ++i) {
        const auto t = ix->trits(i);
        std::copy(t.begin(), t.end(), d.vocab.begin() + i * ix->dims());
      }
      const size_t nq = a->batch ? a->batch : 1024;
      std::vector<int8_t> queries(d.vocab.begin() + 1000 * d.dims, d.vocab.begin() + (1000 + nq) * d.dims);
      print_row(run_config("glove-100d", d, queries, nq, *a, threads));
      print_user_rows(ix, *a, threads);
    }
    if (custom && a->vocabs.size() == 1 && a->dims.size() == 1)
      fmt::print("summary: batched_qps={:.0f} single_qps={:.0f} faiss_flatip_qps={:.0f} ratio={:.1f}\n", last.batched,
                 last.single, last.faiss_ip, last.faiss_ip > 0 ? last.batched / last.faiss_ip : 0.0);
  });
}

const Command reg(60, add_bench);

}  // namespace
}  // namespace igla::cli
