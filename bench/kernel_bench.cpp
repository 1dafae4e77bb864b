// Micro-benchmarks of the CPU kernels (Google Benchmark), to see where a batched search's time
// goes: the fused scan alone (no word passes the threshold: dots + epilogue only), the same
// with candidates, and the whole searcher on one thread. Counter "ns/wq" = ns per word per query.
//
//   build/igla_kernel_bench [--benchmark_filter=avx512]
#include <benchmark/benchmark.h>

#include <cmath>
#include <limits>
#include <random>

#include "igla/index.hpp"
#include "igla/search.hpp"
#include "igla/ternary.hpp"
#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"

namespace {

using namespace igla;

// 100K x 300 random trits, 69% non-zero: the data of `igla bench`'s headline row.
struct Data {
  static constexpr size_t n = 100000;
  static constexpr uint32_t dims = 300;
  std::vector<int8_t> trits;
  std::vector<uint64_t> codes;
  std::vector<float> inv;
  Data() {
    std::mt19937_64 rng(42);
    trits.resize(n * dims);
    for (auto& t : trits) {
      const uint64_t r = rng() % 100;
      t = r < 35 ? int8_t{-1} : (r < 69 ? int8_t{1} : int8_t{0});
    }
    codes.assign(code_words(n, dims), 0);
    inv.assign(padded_words(n) + 64, 0.0f);
    for (size_t i = 0; i < n; ++i) {
      const std::span<const int8_t> t(trits.data() + i * dims, dims);
      pack_into_blocks(t, i, codes.data());
      inv[i] = inv_norm_from_nnz(count_nonzero(t));
    }
  }
  CodesView view() const { return {dims, plane_words(dims), n, codes.data(), inv.data(), inv.data()}; }
  static const Data& get() {
    static const Data d;
    return d;
  }
};

std::vector<uint64_t> query_rows(size_t nq) {
  std::mt19937_64 rng(7);
  const uint32_t W = plane_words(Data::dims);
  std::vector<uint64_t> rows(nq * 2 * W);
  std::vector<int8_t> t(Data::dims);
  for (size_t q = 0; q < nq; ++q) {
    for (auto& x : t) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
    pack_row(t, {rows.data() + q * 2 * W, 2 * W});
  }
  return rows;
}

// One kernel's fused scan over the whole vocabulary in 256 KB tiles, 48 queries per pass of the
// searcher. thr = +inf: no candidates; thr = 0.25: ~ the first tiles of a real search.
void BM_ScanCosine(benchmark::State& st, const char* kernel, float thr) {
  const auto& k = kernels::select_kernel(kernel);
  const Data& d = Data::get();
  const auto codes = kernels::to_block_layout(d.view(), k.block_words);
  const uint32_t W = kernels::layout_plane_words(Data::dims, k.block_words);
  const size_t nq = 48, tile_blocks = 256 * 1024 / (W * 128), tile_words = tile_blocks * k.block_words;
  const auto rows = query_rows(nq);
  std::vector<float> w(nq, 1.0f), th(nq, thr);
  std::vector<kernels::Candidate> out(nq * tile_words);
  std::vector<int32_t> scratch(nq * tile_words);
  const size_t nblocks = (Data::n + k.block_words - 1) / k.block_words;
  size_t cands = 0;
  for (auto _ : st)
    for (size_t b = 0; b < nblocks; b += tile_blocks) {
      const size_t nb = std::min(tile_blocks, nblocks - b), w0 = b * k.block_words;
      cands += k.scan_cosine(codes.data() + b * W * 16, nb, W, rows.data(), nq, w.data(), th.data(), d.inv.data() + w0,
                             std::min(nb * k.block_words, Data::n - w0), out.data(), scratch.data());
    }
  benchmark::DoNotOptimize(cands);
  st.counters["ns/wq"] = benchmark::Counter(static_cast<double>(st.iterations()) * nq * Data::n,
                                            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.counters["cand/q"] = static_cast<double>(cands) / static_cast<double>(st.iterations() * nq);
}

// The whole searcher, one thread, 4096 queries of k = 10 (heaps, candidates, merging included).
void BM_Searcher(benchmark::State& st, const char* kernel) {
  const Data& d = Data::get();
  std::mt19937_64 rng(7);
  QueryBatch batch(Data::dims);
  std::vector<int8_t> t(Data::dims);
  for (size_t q = 0; q < 4096; ++q) {
    for (auto& x : t) {
      const uint64_t r = rng() % 100;
      x = r < 35 ? int8_t{-1} : (r < 69 ? int8_t{1} : int8_t{0});
    }
    batch.add_nearest(t);
  }
  static const auto index = index_of_trits(d.trits, Data::n, Data::dims);
  SearcherOptions o;
  o.cpu = {.threads = 1, .kernel = kernel};
  o.rerank = false;
  auto s = make_searcher(index, o);
  SearchResults r;
  for (auto _ : st) s->search(batch, {.k = 10}, r);
  st.counters["ns/wq"] = benchmark::Counter(static_cast<double>(st.iterations()) * batch.size() * Data::n,
                                            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.counters["q/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * batch.size(),
                                          benchmark::Counter::kIsRate);
}

void register_all() {
  static const float inf = std::numeric_limits<float>::infinity();
  for (const auto* k : kernels::all_kernels()) {
    if (!k->supported()) continue;
    benchmark::RegisterBenchmark((std::string("ScanCosine/") + k->name + "/no_candidates").c_str(), BM_ScanCosine,
                                 k->name, inf)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("ScanCosine/") + k->name + "/thr0.25").c_str(), BM_ScanCosine, k->name,
                                 0.25f)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("Searcher1T/") + k->name).c_str(), BM_Searcher, k->name)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
