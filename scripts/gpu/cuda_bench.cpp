// igla_cuda_bench: checks the CUDA searcher against the int8 reference on one data set and times
// it at several batch sizes through the public batch API (host buffers in, hits out: every
// transfer counted). Writes one TSV row per measurement and, with --dump, the data set for
// scripts/gpu/torch_baseline.py so torch runs on the same vectors and queries.
//
//   igla_cuda_bench --name rand-100k-300 --n 100000 --dims 300 --batches 1,64,1024,8192,65536
//   igla_cuda_bench --name glove-341k-100 --index glove.igla ...
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cudaProfiler.h>  // the driver API: igla holds its own static CUDA runtime

#include "core/backends.hpp"
#include "core/rerank.hpp"
#include "cuda_env.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/ternary.hpp"

using namespace igla;
using clock_type = std::chrono::steady_clock;

namespace {

struct Args {
  std::string name = "rand", index, dump, out;
  size_t n = 100000;
  uint32_t dims = 300;
  std::vector<size_t> batches{1, 64, 1024, 8192, 65536};
  size_t k = 10;
  size_t check = 64;      // queries checked against the reference
  size_t singles = 3000;  // one-query searches timed in sequence
  double seconds = 1.0;   // per batched measurement
  bool compare_paths = true;
  bool analogies = true;  // the rerank section's 3CosAdd rows
  bool rerank = false;    // with --index: the two-stage search (rerank rows) timed and checked
  size_t profile_candidates = SIZE_MAX;  // the rerank section's call profiled (none by default)
};

struct Data {
  uint32_t dims = 0;
  size_t n = 0;
  std::vector<int8_t> trits;  // n * dims
  std::vector<uint64_t> codes;
  std::vector<float> norms;  // norm[np], inv[np]
  std::shared_ptr<const Index> index;
  CodesView view() const {
    if (index) return index->codes();
    const size_t np = padded_words(n);
    return {dims, plane_words(dims), n, codes.data(), norms.data(), norms.data() + np};
  }
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Trits with the real vectors' density: about 69% non-zero, signs even.
void generate(Data& d, size_t n, uint32_t dims, uint64_t seed) {
  d.n = n;
  d.dims = dims;
  d.trits.resize(n * dims);
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < static_cast<long long>(n); ++i) {
    uint64_t s = seed ^ (static_cast<uint64_t>(i) * 0x2545f4914f6cdd1dull);
    int8_t* row = d.trits.data() + static_cast<size_t>(i) * dims;
    uint64_t r = 0;
    int left = 0;
    for (uint32_t j = 0; j < dims; ++j) {
      if (left == 0) {
        r = splitmix(s);
        left = 4;
      }
      const uint32_t b = r & 0xffff;
      r >>= 16;
      --left;
      const uint32_t u = b % 100;
      row[j] = u < 35 ? int8_t{-1} : (u < 69 ? int8_t{1} : int8_t{0});
    }
  }
  const size_t np = padded_words(n);
  const uint32_t W = plane_words(dims);
  d.codes.assign(code_words(n, dims), 0);
  d.norms.assign(2 * np, 0.0f);
#pragma omp parallel for schedule(static)
  for (long long b = 0; b < static_cast<long long>(np / 8); ++b) {
    for (size_t lane = 0; lane < 8; ++lane) {
      const size_t i = static_cast<size_t>(b) * 8 + lane;
      if (i >= n) break;
      uint32_t nnz = 0;
      for (uint32_t dd = 0; dd < dims; ++dd) {
        const int8_t t = d.trits[i * dims + dd];
        if (!t) continue;
        ++nnz;
        const size_t base = (static_cast<size_t>(b) * W + dd / 64) * 16 + lane;
        d.codes[base] |= uint64_t{1} << (dd % 64);
        if (t < 0) d.codes[base + 8] |= uint64_t{1} << (dd % 64);
      }
      d.norms[i] = std::sqrt(static_cast<float>(nnz));
      d.norms[np + i] = inv_norm_from_nnz(nnz);
    }
  }
}

void load(Data& d, const std::string& path) {
  d.index = open_index(path);
  const CodesView v = d.index->codes();
  d.n = v.n_words;
  d.dims = v.dims;
  d.trits.resize(d.n * d.dims);
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < static_cast<long long>(d.n); ++i) {
    const size_t b = static_cast<size_t>(i) / 8, lane = static_cast<size_t>(i) % 8;
    for (uint32_t dd = 0; dd < d.dims; ++dd) {
      const size_t base = (b * v.W + dd / 64) * 16 + lane;
      const bool nz = (v.codes[base] >> (dd % 64)) & 1, sg = (v.codes[base + 8] >> (dd % 64)) & 1;
      d.trits[static_cast<size_t>(i) * d.dims + dd] = nz ? (sg ? int8_t{-1} : int8_t{1}) : int8_t{0};
    }
  }
}

std::span<const int8_t> row(const Data& d, size_t id) { return {d.trits.data() + id * d.dims, d.dims}; }

QueryBatch nearest_batch(const Data& d, const std::vector<uint32_t>& ids, size_t from, size_t count) {
  QueryBatch b(d.dims);
  b.trits.reserve(count * d.dims);
  for (size_t i = 0; i < count; ++i) b.add_nearest(row(d, ids[(from + i) % ids.size()]));
  return b;
}

// The reference on `threads` threads (it is single-threaded and slow): split the batch.
SearchResults reference_parallel(const Data& d, const QueryBatch& b, const SearchParams& p) {
  const size_t nq = b.size();
  const size_t T = std::max<size_t>(1, std::min<size_t>(nq, std::thread::hardware_concurrency()));
  std::vector<SearchResults> part(T);
  std::vector<std::thread> th;
  for (size_t t = 0; t < T; ++t) {
    th.emplace_back([&, t] {
      const size_t q0 = nq * t / T, q1 = nq * (t + 1) / T;
      QueryBatch s(b.dims, b.combine);
      for (size_t q = q0; q < q1; ++q) {
        std::vector<std::span<const int8_t>> terms;
        for (uint32_t x = b.term_offsets[q]; x < b.term_offsets[q + 1]; ++x)
          terms.emplace_back(b.trits.data() + size_t{x} * b.dims, b.dims);
        s.add_query(terms, std::span<const float>(b.weights.data() + b.term_offsets[q], terms.size()),
                    std::span<const uint32_t>(b.exclude.data() + b.exclude_offsets[q],
                                              b.exclude_offsets[q + 1] - b.exclude_offsets[q]));
      }
      part[t] = reference_search(d.trits, d.n, d.dims, s, p);
    });
  }
  for (auto& x : th) x.join();
  SearchResults r;
  r.k = p.k;
  for (auto& x : part) {
    r.hits.insert(r.hits.end(), x.hits.begin(), x.hits.end());
    r.count.insert(r.count.end(), x.count.begin(), x.count.end());
  }
  return r;
}

// Number of queries whose hits differ (ids, score bits, order or count).
size_t mismatches(const SearchResults& a, const SearchResults& b, std::string* first) {
  size_t bad = 0;
  if (a.k != b.k || a.count.size() != b.count.size()) return a.count.size() + 1;
  for (size_t q = 0; q < a.count.size(); ++q) {
    bool ok = a.count[q] == b.count[q];
    for (size_t i = 0; ok && i < a.count[q]; ++i) {
      const Hit x = a.hits[q * a.k + i], y = b.hits[q * b.k + i];
      ok = x.id == y.id && std::memcmp(&x.score, &y.score, 4) == 0;
      if (!ok && first && first->empty())
        *first = "query " + std::to_string(q) + " rank " + std::to_string(i) + ": want (" + std::to_string(x.id) +
                 ", " + std::to_string(x.score) + ") got (" + std::to_string(y.id) + ", " + std::to_string(y.score) +
                 ")";
    }
    if (!ok && first && first->empty()) first->assign("query " + std::to_string(q) + ": counts differ");
    bad += !ok;
  }
  return bad;
}

// IGLA_CUDA_* from the environment (the CLI's mapping), then the path asked for.
std::shared_ptr<const Searcher> cuda_searcher(const Data& d, const std::string& path, bool device_rerank = true) {
  SearcherOptions o;
  o.backend = "cuda";
  o.cuda = cli::cuda_options_from_env();
  o.cuda.path = path;
  o.cuda.device_rerank = device_rerank;
  if (d.index) return make_cuda_searcher(d.index, o);
  return make_cuda_searcher_for_codes(d.view(), o.cuda);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

FILE* g_out = nullptr;
void row_out(const Args& a, const Data& d, const std::string& path, size_t batch, double qps, double med_s,
             const std::string& note) {
  char line[512];
  std::snprintf(line, sizeof line, "igla\t%s\t%zu\t%u\t%zu\t%s\t%zu\t%.1f\t%.3f\t%s\n", a.name.c_str(), d.n, d.dims,
                a.k, path.c_str(), batch, qps, med_s * 1e3, note.c_str());
  std::fputs(line, stdout);
  std::fflush(stdout);
  if (g_out) {
    std::fputs(line, g_out);
    std::fflush(g_out);
  }
}

std::vector<size_t> parse_list(const std::string& s) {
  std::vector<size_t> r;
  size_t p = 0;
  while (p < s.size()) {
    size_t e = s.find(',', p);
    if (e == std::string::npos) e = s.size();
    r.push_back(std::stoull(s.substr(p, e - p)));
    p = e + 1;
  }
  return r;
}

// Nearest-word queries with a float form (the word's rerank row), as the CLI builds them.
QueryBatch nearest_float_batch(const Data& d, const std::vector<uint32_t>& ids, size_t from, size_t count) {
  const Index& ix = *d.index;
  const uint32_t D = ix.float_dims();
  QueryBatch b(d.dims);
  std::vector<float> f(D);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t id = ids[(from + i) % ids.size()];
    ix.rerank_row(id, f);
    const std::span<const int8_t> t[1] = {row(d, id)};
    const float w[1] = {d.view().inv_norms[id]}, fw[1] = {1.0f};
    const std::span<const float> ft[1] = {f};
    const uint32_t ex[1] = {id};
    b.add_query(t, w, ft, fw, ex);
  }
  return b;
}

// The host rerank (rerank_query, the CPU stage's arithmetic) of GPU ternary candidates, on every core.
SearchResults host_rerank(const Index& ix, const QueryBatch& b, const SearchResults& cand, size_t k) {
  SearchResults out;
  out.k = k;
  out.hits.assign(b.size() * k, Hit{0, 0.0f});
  out.count.assign(b.size(), 0);
  const size_t T = std::max<size_t>(1, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  for (size_t t = 0; t < T; ++t)
    th.emplace_back([&, t] {
      std::vector<Hit> best;
      for (size_t q = b.size() * t / T; q < b.size() * (t + 1) / T; ++q) {
        rerank_query(ix, b, q, cand.of(q), k, best);
        std::copy(best.begin(), best.end(), out.hits.begin() + static_cast<std::ptrdiff_t>(q * k));
        out.count[q] = static_cast<uint32_t>(best.size());
      }
    });
  for (auto& x : th) x.join();
  return out;
}

// The two-stage search on the index's rerank rows: device rerank against the host rerank of the
// same candidates (bit for bit), and timed: candidates 50 (device rerank), candidates 0, and the
// GPU candidates + host rerank on every core.
int rerank_section(const Args& a, const Data& d, const std::vector<uint32_t>& ids) {
  int failures = 0;
  auto s = cuda_searcher(d, "");
  for (size_t B : a.batches) {
    const QueryBatch b = nearest_float_batch(d, ids, 0, B);
    SearchParams p2;
    p2.k = a.k;
    p2.candidates = 50;
    SearchParams p0 = p2;
    p0.candidates = 0;
    SearchParams pc = p0;
    pc.k = 50;
    const SearchResults dev = s->search(b, p2);
    const SearchResults cand = s->search(b, pc);
    const SearchResults host = host_rerank(*d.index, b, cand, a.k);
    std::string first;
    const size_t bad = mismatches(host, dev, &first);
    failures += bad != 0;
    std::printf("CHECK %s rerank device vs host (%zu queries, 50 candidates): %s%s%s\n", a.name.c_str(), B,
                bad ? "FAIL " : "ok", bad ? std::to_string(bad).c_str() : "", bad ? (" first: " + first).c_str() : "");
    // Each row on a searcher of its own, so its host-time line (cuda_report) is that row's alone:
    // the untimed first call and the timed ones.
    std::shared_ptr<const Searcher> s_row;
    auto time = [&](const char* label, const std::function<void()>& f) {
      s_row = cuda_searcher(d, "");
      f();
      std::vector<double> t;
      const auto t0 = clock_type::now();
      while (t.size() < 3 ||
             (std::chrono::duration<double>(clock_type::now() - t0).count() < a.seconds && t.size() < (B == 1 ? 3000 : 100))) {
        const auto c0 = clock_type::now();
        f();
        t.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
      }
      const double m = median(t);
      row_out(a, d, label, B, static_cast<double>(B) / m, m, "median of " + std::to_string(t.size()));
      // With IGLA_CUDA_STATS: the searcher's counters so far (cumulative; this row made t.size() + 1
      // calls), so a run can difference them per row.
      std::istringstream rep(cuda_report(*s_row));
      for (std::string line; std::getline(rep, line);)
        if (line.rfind("cuda stats", 0) == 0 || line.rfind("cuda host time", 0) == 0)
          std::printf("# %s %zu, %zu calls: %s\n", label, B, t.size() + 1, line.c_str());
    };
    // --profile-candidates C: one more call at C candidates between cuProfilerStart and Stop
    // (ncu --profile-from-start off then times that call's kernels alone).
    auto profile = [&](const SearchParams& pp) {
      if (a.profile_candidates != pp.candidates) return;
      s->search(b, pp);
      cuProfilerStart();
      s->search(b, pp);
      cuProfilerStop();
    };
    profile(p2);
    profile(p0);
    time("rerank50-device", [&] { s_row->search(b, p2); });
    time("candidates0", [&] { s_row->search(b, p0); });
    if (B > 1) time("rerank50-host", [&] { host_rerank(*d.index, b, s_row->search(b, pc), a.k); });
    if (B > 1) {  // where the two-stage batch's time goes: the ternary stage alone at the rerank's list
      time("ternary-k50", [&] { s_row->search(b, pc); });  // length (K = 51) and at one within 32 (K = 22)
      SearchParams p21 = pc;
      p21.k = 21;
      time("ternary-k21", [&] { s_row->search(b, p21); });
    }
  }
  // 3CosAdd analogies as `igla eval analogies` builds them (b - a + c, the three excluded), the
  // size of the Google set, in one call and in eval's batches of 4096 (--no-analogies: skipped).
  if (a.analogies) {
    const uint32_t D = d.index->float_dims();
    QueryBatch b(d.dims);
    std::vector<float> fa(D), fb(D), fc(D);
    uint64_t st = 4242;
    for (size_t i = 0; i < 19544; ++i) {
      const uint32_t x = splitmix(st) % 30000, y = splitmix(st) % 30000, z = splitmix(st) % 30000;
      d.index->rerank_row(x, fa);
      d.index->rerank_row(y, fb);
      d.index->rerank_row(z, fc);
      const auto inv = [&](uint32_t id) { return d.view().inv_norms[id]; };
      const std::span<const int8_t> t[3] = {row(d, y), row(d, x), row(d, z)};
      const float w[3] = {inv(y), -inv(x), inv(z)}, fw[3] = {1.0f, -1.0f, 1.0f};
      const std::span<const float> ft[3] = {fb, fa, fc};
      const uint32_t ex[3] = {x, y, z};
      b.add_query(t, w, ft, fw, ex);
    }
    SearchParams p2;
    p2.k = a.k;
    SearchParams p0 = p2;
    p0.candidates = 0;
    SearchParams pc = p0;
    pc.k = 50;
    const SearchResults dev = s->search(b, p2);
    const SearchResults host = host_rerank(*d.index, b, s->search(b, pc), a.k);
    std::string first;
    const size_t bad = mismatches(host, dev, &first);
    failures += bad != 0;
    std::printf("CHECK %s 3cosadd rerank device vs host (%zu queries): %s%s%s\n", a.name.c_str(), b.size(),
                bad ? "FAIL " : "ok", bad ? std::to_string(bad).c_str() : "", bad ? (" first: " + first).c_str() : "");
    for (const SearchParams* pp : {&p2, &p0}) {
      const char* label = pp->candidates ? "3cosadd-rerank50" : "3cosadd-candidates0";
      s->search(b, *pp);
      std::vector<double> t;
      for (int r = 0; r < 5; ++r) {
        const auto c0 = clock_type::now();
        s->search(b, *pp);
        t.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
      }
      row_out(a, d, label, b.size(), static_cast<double>(b.size()) / median(t), median(t), "median of 5, one call");
    }
    // The same on the popc path (the several-term path before the mt path) and forced mt, same answers.
    for (const char* path : {"popc", "mt"}) {
      const auto sp = cuda_searcher(d, path);
      const SearchResults got = sp->search(b, p2);
      std::string first2;
      const size_t bad2 = mismatches(dev, got, &first2);
      failures += bad2 != 0;
      std::printf("CHECK %s 3cosadd rerank path %s vs auto (%zu queries): %s%s\n", a.name.c_str(), path, b.size(),
                  bad2 ? "FAIL " : "ok", bad2 ? (" first: " + first2).c_str() : "");
      for (const SearchParams* pp : {&p2, &p0}) {
        const std::string label = std::string(pp->candidates ? "3cosadd-rerank50-" : "3cosadd-candidates0-") + path;
        std::vector<double> t;
        for (int r = 0; r < 5; ++r) {
          const auto c0 = clock_type::now();
          sp->search(b, *pp);
          t.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
        }
        row_out(a, d, label, b.size(), static_cast<double>(b.size()) / median(t), median(t), "median of 5, one call");
      }
      std::printf("%s", cuda_report(*sp).c_str());
    }
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) try {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("missing value after " + k);
      return argv[++i];
    };
    if (k == "--name") a.name = next();
    else if (k == "--index") a.index = next();
    else if (k == "--n") a.n = std::stoull(next());
    else if (k == "--dims") a.dims = static_cast<uint32_t>(std::stoul(next()));
    else if (k == "--batches") a.batches = parse_list(next());
    else if (k == "--k") a.k = std::stoull(next());
    else if (k == "--check") a.check = std::stoull(next());
    else if (k == "--singles") a.singles = std::stoull(next());
    else if (k == "--seconds") a.seconds = std::stod(next());
    else if (k == "--dump") a.dump = next();
    else if (k == "--out") a.out = next();
    else if (k == "--no-compare") a.compare_paths = false;
    else if (k == "--no-analogies") a.analogies = false;
    else if (k == "--rerank") a.rerank = true;
    else if (k == "--profile-candidates") a.profile_candidates = std::stoull(next());
    else throw Error("unknown argument " + k);
  }
  std::string why;
  if (!cuda_available(&why)) {
    std::printf("SKIP: %s\n", why.c_str());
    return 0;
  }
  if (!a.out.empty()) g_out = std::fopen(a.out.c_str(), "a");

  Data d;
  const auto tg = clock_type::now();
  if (!a.index.empty()) load(d, a.index);
  else generate(d, a.n, a.dims, 0x1917 + a.n * 31 + a.dims);
  std::printf("# %s: %zu words x %u dims (%s in %.1f s)\n", a.name.c_str(), d.n, d.dims,
              a.index.empty() ? "generated" : a.index.c_str(),
              std::chrono::duration<double>(clock_type::now() - tg).count());

  // Query pool: vocabulary words, as a nearest-neighbour service would see them.
  const size_t pool = std::max<size_t>(65536, a.singles);
  std::vector<uint32_t> ids(pool);
  {
    uint64_t s = 12345 + d.n;
    for (auto& x : ids) x = static_cast<uint32_t>(splitmix(s) % d.n);
  }
  if (!a.dump.empty()) {
    std::ofstream f(a.dump, std::ios::binary);
    const uint64_t hdr[4] = {0x31484342414c4749ull, d.n, d.dims, pool};
    f.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
    f.write(reinterpret_cast<const char*>(d.trits.data()), static_cast<std::streamsize>(d.trits.size()));
    f.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 4));
  }

  auto s_auto = cuda_searcher(d, "");
  std::printf("# device: %s\n", s_auto->name().c_str());
  SearchParams p;
  p.k = a.k;
  p.candidates = 0;  // the ternary search (the rerank section below times the two-stage one)

  // --- exactness against the reference --------------------------------------------------------
  int failures = 0;
  if (a.check) {
    std::vector<std::pair<std::string, QueryBatch>> sets;
    sets.emplace_back("nearest", nearest_batch(d, ids, 0, a.check));
    {
      QueryBatch b(d.dims);  // 3CosAdd b - a + c with the three inputs excluded
      uint64_t s = 77;
      for (size_t i = 0; i < std::max<size_t>(8, a.check / 4); ++i) {
        const uint32_t x = splitmix(s) % d.n, y = splitmix(s) % d.n, z = splitmix(s) % d.n;
        const auto inv = [&](uint32_t id) { return d.view().inv_norms[id]; };
        const std::span<const int8_t> t[3] = {row(d, y), row(d, x), row(d, z)};
        const float w[3] = {inv(y), -inv(x), inv(z)};
        const uint32_t ex[3] = {x, y, z};
        b.add_query(t, w, ex);
      }
      sets.emplace_back("3cosadd", std::move(b));
    }
    {
      QueryBatch b(d.dims, Combine::CosMul);
      uint64_t s = 78;
      for (size_t i = 0; i < std::max<size_t>(8, a.check / 8); ++i) {
        const uint32_t x = splitmix(s) % d.n, y = splitmix(s) % d.n, z = splitmix(s) % d.n;
        const auto inv = [&](uint32_t id) { return d.view().inv_norms[id]; };
        const std::span<const int8_t> t[3] = {row(d, x), row(d, y), row(d, z)};
        const float w[3] = {inv(x), inv(y), inv(z)};
        const uint32_t ex[3] = {x, y, z};
        b.add_query(t, w, ex);
      }
      sets.emplace_back("3cosmul", std::move(b));
    }
    for (auto& [label, b] : sets) {
      const auto t0 = clock_type::now();
      const SearchResults want = reference_parallel(d, b, p);
      const double ref_s = std::chrono::duration<double>(clock_type::now() - t0).count();
      for (const char* path : {"", "mma", "popc", "mt", "sort"}) {
        auto s = path[0] ? cuda_searcher(d, path) : nullptr;
        SearchResults got;
        (s ? *s : *s_auto).search(b, p, got);
        std::string first;
        const size_t bad = mismatches(want, got, &first);
        failures += bad != 0;
        std::printf("CHECK %s %s %s vs reference (%zu queries, reference %.1f s): %s%s%s\n", a.name.c_str(),
                    label.c_str(), path[0] ? path : "auto", b.size(), ref_s, bad ? "FAIL " : "ok",
                    bad ? std::to_string(bad).c_str() : "", bad ? (" first: " + first).c_str() : "");
      }
      // The same queries one at a time (the one-query route) against the same reference rows.
      {
        const size_t nq = std::min<size_t>(b.size(), 64);
        SearchResults want1, got1;
        want1.k = got1.k = want.k;
        for (size_t q = 0; q < nq; ++q) {
          QueryBatch one(b.dims, b.combine);
          std::vector<std::span<const int8_t>> terms;
          for (size_t t = b.term_offsets[q]; t < b.term_offsets[q + 1]; ++t)
            terms.emplace_back(b.trits.data() + t * b.dims, b.dims);
          one.add_query(terms,
                        std::span<const float>(b.weights).subspan(b.term_offsets[q], terms.size()),
                        std::span<const uint32_t>(b.exclude)
                            .subspan(b.exclude_offsets[q], b.exclude_offsets[q + 1] - b.exclude_offsets[q]));
          SearchResults r;
          s_auto->search(one, p, r);
          want1.count.push_back(want.count[q]);
          got1.count.push_back(r.count[0]);
          want1.hits.insert(want1.hits.end(), want.hits.begin() + static_cast<std::ptrdiff_t>(q * want.k),
                            want.hits.begin() + static_cast<std::ptrdiff_t>((q + 1) * want.k));
          got1.hits.insert(got1.hits.end(), r.hits.begin(), r.hits.end());
        }
        std::string first;
        const size_t bad = mismatches(want1, got1, &first);
        failures += bad != 0;
        std::printf("CHECK %s %s one at a time vs reference (%zu queries): %s%s%s\n", a.name.c_str(), label.c_str(), nq,
                    bad ? "FAIL " : "ok", bad ? std::to_string(bad).c_str() : "", bad ? (" first: " + first).c_str() : "");
      }
    }
    // Large batch: the paths against each other (all GPU).
    {
      const QueryBatch b = nearest_batch(d, ids, 1000, 4096);
      SearchResults x, y;
      cuda_searcher(d, "mma")->search(b, p, x);
      cuda_searcher(d, "popc")->search(b, p, y);
      std::string first;
      const size_t bad = mismatches(y, x, &first);
      failures += bad != 0;
      std::printf("CHECK %s nearest mma vs popc (4096 queries): %s %s\n", a.name.c_str(), bad ? "FAIL" : "ok",
                  first.c_str());
    }
  }

  // --- timing -----------------------------------------------------------------------------------
  for (size_t B : a.batches) {
    if (B == 1) {
      std::vector<QueryBatch> qs;
      qs.reserve(a.singles);
      for (size_t i = 0; i < a.singles; ++i) qs.push_back(nearest_batch(d, ids, 7 * i, 1));
      SearchResults r;
      for (size_t i = 0; i < std::min<size_t>(50, qs.size()); ++i) s_auto->search(qs[i], p, r);  // warm-up
      std::vector<double> lat;
      lat.reserve(qs.size());
      const auto t0 = clock_type::now();
      for (auto& q : qs) {
        const auto c0 = clock_type::now();
        s_auto->search(q, p, r);
        lat.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
      }
      const double el = std::chrono::duration<double>(clock_type::now() - t0).count();
      std::sort(lat.begin(), lat.end());
      char note[128];
      std::snprintf(note, sizeof note, "sequential; p50 %.1f us, p99 %.1f us", lat[lat.size() / 2] * 1e6,
                    lat[lat.size() * 99 / 100] * 1e6);
      row_out(a, d, "auto", 1, static_cast<double>(qs.size()) / el, el / static_cast<double>(qs.size()), note);
      continue;
    }
    const QueryBatch b = nearest_batch(d, ids, 0, B);
    std::vector<std::string> paths{""};
    if (a.compare_paths && B <= 8192) paths = {"", "mma", "popc"};
    for (const std::string& path : paths) {
      auto owned = path.empty() ? nullptr : cuda_searcher(d, path);
      const Searcher& s = owned ? *owned : *s_auto;
      SearchResults r;
      s.search(b, p, r);  // warm-up (buffers, graphs)
      std::vector<double> t;
      const auto t0 = clock_type::now();
      while (t.size() < 3 || (std::chrono::duration<double>(clock_type::now() - t0).count() < a.seconds &&
                              t.size() < 200)) {
        const auto c0 = clock_type::now();
        s.search(b, p, r);
        t.push_back(std::chrono::duration<double>(clock_type::now() - c0).count());
      }
      const double m = median(t);
      row_out(a, d, path.empty() ? "auto" : path, B, static_cast<double>(B) / m, m,
              "median of " + std::to_string(t.size()));
    }
  }
  if (a.rerank && d.index && d.index->rerank() != Rerank::None) failures += rerank_section(a, d, ids);
  const std::string rep = cuda_report(*s_auto);
  std::printf("%s", rep.c_str());
  if (g_out) std::fputs(rep.c_str(), g_out);
  if (g_out) std::fclose(g_out);
  std::printf("# %s: %d check failure(s)\n", a.name.c_str(), failures);
  return failures ? 1 : 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "igla_cuda_bench: %s\n", e.what());
  return 2;
}
