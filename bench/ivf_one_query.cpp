// igla_ivf_one_query: the IVF-int8 searcher's one-query rate on an index that has IVF sections
// (e.g. bench-ann's --cache file), a tighter measure than bench-ann's 500 singles x 3: a loop of
// `words` one-word searches (random database words, fixed seed, each word excluded from its own
// answer), best of `passes` passes, plus a digest of every answer (ids and score bits) so that two
// binaries can be checked to answer the same. perf can be pointed at it (`perf record -- ...`).
//
//   igla_ivf_one_query INDEX [--nprobe N] [--candidates C] [--words W] [--passes P] [--seed S]
//                            [--threads T] [--kernel K]
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "igla/index.hpp"
#include "igla/ivf.hpp"
#include "igla/queries.hpp"
#include "igla/search.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s INDEX [--nprobe N] [--candidates C] [--words W] [--passes P] [--seed S] [--threads T] [--kernel K]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  igla::SearchParams p;
  p.k = 10;
  p.nprobe = 4;
  p.candidates = 15;
  size_t words = 1000, passes = 80;
  uint64_t seed = 7;
  igla::SearcherOptions opts;
  opts.cpu.threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--nprobe") p.nprobe = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--candidates") p.candidates = std::stoul(v);
    else if (a == "--words") words = std::stoul(v);
    else if (a == "--passes") passes = std::stoul(v);
    else if (a == "--seed") seed = std::stoull(v);
    else if (a == "--threads") opts.cpu.threads = std::stoi(v);
    else if (a == "--kernel") opts.cpu.kernel = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    auto ix = std::make_shared<const igla::Index>(igla::Index::open(path));
    auto s = igla::make_ivf8_searcher(ix, opts);
    const auto form = ix->has_float() ? igla::FloatForm::Float32 : igla::FloatForm::Rows;
    std::mt19937_64 rng(seed);
    std::vector<igla::QueryBatch> singles;
    for (size_t i = 0; i < words; ++i) {
      igla::QueryBuilder b(*ix, igla::Combine::Sum, form);
      b.word(static_cast<uint32_t>(rng() % ix->size()));
      singles.push_back(b.take());
    }
    igla::SearchResults r;
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (const auto& q : singles) {  // the answers (and a warm-up pass)
      s->search(q, p, r);
      XXH3_64bits_update(st, r.count.data(), 4 * r.count.size());
      XXH3_64bits_update(st, r.hits.data(), sizeof(igla::Hit) * r.count[0]);
    }
    const uint64_t digest = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    // Wall time, and this thread's CPU time (a one-query search runs on the caller's thread):
    // on a shared machine the second leaves out the time another process held the core.
    auto cpu_now = [] {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    };
    double best = 0, best_cpu = 0;
    for (size_t pass = 0; pass < passes; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_now();
      for (const auto& q : singles) s->search(q, p, r);
      const double cpu = cpu_now() - c0;
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, double(singles.size()) / sec);
      best_cpu = std::max(best_cpu, double(singles.size()) / cpu);
    }
    std::printf("%s nprobe=%u c=%zu words=%zu passes=%zu best_qps=%.0f best_cpu_qps=%.0f digest=%016llx\n",
                s->name().c_str(), p.nprobe, p.candidates, words, passes, best, best_cpu,
                static_cast<unsigned long long>(digest));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
