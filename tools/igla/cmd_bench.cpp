// `igla bench`: the seed report's throughput tables on this machine, with FAISS measured beside
// igla in the same run, on the same data, queries, k and threads.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

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
  std::vector<uint64_t> codes;
  std::vector<float> norms;
  CodesView view() const {
    return {dims, plane_words(dims), n, codes.data(), norms.data(), norms.data() + padded_words(n)};
  }
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
  d.codes.assign(code_words(d.n, d.dims), 0);
  d.norms.assign(2 * padded_words(d.n), 0.0f);
  for (size_t i = 0; i < d.n; ++i) {
    std::span<const int8_t> t(d.vocab.data() + i * d.dims, d.dims);
    pack_into_blocks(t, i, d.codes.data());
    const uint32_t nnz = count_nonzero(t);
    d.norms[i] = std::sqrt(float(nnz));
    d.norms[padded_words(d.n) + i] = inv_norm_from_nnz(nnz);
  }
}

// The core clock as this process sees it, from a chain of dependent integer adds (one per
// cycle on every x86 core since the P6): on a shared VM it moves with the host's load, and every
// figure of the table moves with it, so the table says what it was. 0 where not measurable.
double effective_ghz() {
#if defined(__x86_64__)
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t x = 0;
  constexpr uint64_t kIters = 20'000'000;  // 4 adds each: ~25 ms at 3 GHz
  for (uint64_t i = 0; i < kIters; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 4.0 * kIters / s / 1e9;
#else
  return 0.0;
#endif
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
  auto s = make_searcher(d.view(), {.threads = threads, .kernel = a.kernel});
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
    const int threads = a->threads > 0 ? a->threads : omp_get_num_procs();
    auto probe = make_searcher(CodesView{}, {.threads = threads, .kernel = a->kernel});
    fmt::print("igla bench: {}, k={} | queries/s; b = batched, 1q = one query at a time; ns/w/q = ns per word "
               "per query; xIP = igla / FAISS IndexFlatIP; exact vs IP = share of igla's untied hits in FAISS's "
               "top k\npeers: {}\nclock: ~{:.2f} GHz seen by this process (dependent-add chain; on a shared VM "
               "it varies with the host's load, and every figure below with it)\n",
               probe->name(), a->k, peers_note(), effective_ghz());
    fmt::print("{:<10} {:>8} {:>5} {:>5} | {:>9} {:>6} {:>8} {:>6} | {:>9} {:>9} {:>9} | {:>6} {:>6} | {}\n", "data",
               "words", "dims", "batch", "igla b", "ns/w/q", "igla 1q", "ns/w/q", "faissIP b", "faissIP 1q",
               "faissBin b", "xIP b", "xIP 1q", "exact vs IP");
    std::mt19937_64 rng(20261125);
    Row last{};
    for (size_t dims : a->dims)
      for (size_t n : a->vocabs) {
        if (dims == 0 || n == 0) throw Error("--vocab and --dims must be positive");
        Data d{static_cast<uint32_t>(dims), n, random_trits(n * dims, rng), {}, {}};
        pack(d);
        // Same work per measurement everywhere: about 3e10 trit products per batch, 64..4096 queries.
        const size_t nq = a->batch ? a->batch : std::clamp<size_t>(size_t(3e10 / double(n * dims)) / 64 * 64, 64, 4096);
        const auto queries = random_trits(nq * dims, rng);
        last = run_config("random", d, queries, nq, *a, threads);
        print_row(last);
      }
    const std::string real = a->index.empty() ? default_index_path() : a->index;
    if (!a->no_real && !custom && std::filesystem::exists(real)) {
      const Index ix = Index::open(real);
      Data d{ix.dims(), ix.size(), {}, {}, {}};
      d.vocab.resize(ix.size() * ix.dims());
      for (size_t i = 0; i < ix.size(); ++i) {
        const auto t = ix.trits(i);
        std::copy(t.begin(), t.end(), d.vocab.begin() + i * ix.dims());
      }
      pack(d);
      const size_t nq = a->batch ? a->batch : 1024;
      std::vector<int8_t> queries(d.vocab.begin() + 1000 * d.dims, d.vocab.begin() + (1000 + nq) * d.dims);
      print_row(run_config("glove-100d", d, queries, nq, *a, threads));
    }
    if (custom && a->vocabs.size() == 1 && a->dims.size() == 1)
      fmt::print("summary: batched_qps={:.0f} single_qps={:.0f} faiss_flatip_qps={:.0f} ratio={:.1f}\n", last.batched,
                 last.single, last.faiss_ip, last.faiss_ip > 0 ? last.batched / last.faiss_ip : 0.0);
  });
}

const Command reg(60, add_bench);

}  // namespace
}  // namespace igla::cli
