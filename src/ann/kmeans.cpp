// Spherical k-means for the IVF lists (see kmeans.hpp).
#include "ann/kmeans.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <thread>

namespace igla::ann {
namespace {

constexpr size_t kRows = 4, kCols = 32;  // a tile of dots kept in registers

// Compiled for each x86 instruction set and picked at load time; one build elsewhere (AArch64:
// NEON is the baseline, and GCC knows no such target names there).
#if defined(__x86_64__)
#define IGLA_DOT_TILE_CLONES [[gnu::target_clones("avx512f", "avx2", "default")]]
#else
#define IGLA_DOT_TILE_CLONES
#endif

IGLA_DOT_TILE_CLONES
void dot_tile(const float* x, size_t nx, size_t d, const float* ct, size_t nc, size_t j0, float* out) {
  float acc[kRows][kCols] = {};
  const size_t nj = std::min(kCols, nc - j0);
  if (nx == kRows && nj == kCols) {
    for (size_t k = 0; k < d; ++k) {
      const float* cr = ct + k * nc + j0;
      for (size_t i = 0; i < kRows; ++i) {
        const float xv = x[i * d + k];
        for (size_t j = 0; j < kCols; ++j) acc[i][j] += xv * cr[j];
      }
    }
  } else {
    for (size_t k = 0; k < d; ++k) {
      const float* cr = ct + k * nc + j0;
      for (size_t i = 0; i < nx; ++i) {
        const float xv = x[i * d + k];
        for (size_t j = 0; j < nj; ++j) acc[i][j] += xv * cr[j];
      }
    }
  }
  for (size_t i = 0; i < nx; ++i)
    for (size_t j = 0; j < nj; ++j) out[i * nc + j0 + j] = acc[i][j];
}

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void normalize(float* v, size_t d) {
  double s = 0;
  for (size_t k = 0; k < d; ++k) s += double(v[k]) * v[k];
  if (s <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t k = 0; k < d; ++k) v[k] *= inv;
}

// Best centroid (largest dot, lower index on ties) of each point, with its dot.
void assign_points(const float* x, size_t n, size_t d, const std::vector<float>& ct, size_t L, int threads,
                   uint32_t* best, float* best_dot) {
  constexpr size_t kChunk = 64;
  parallel_chunks(n, kChunk, threads, [&](size_t b, size_t e) {
    std::vector<float> s((e - b) * L);
    dot_rows(x + b * d, e - b, ct.data(), L, d, s.data());
    for (size_t i = b; i < e; ++i) {
      const float* r = s.data() + (i - b) * L;
      const size_t j = static_cast<size_t>(std::max_element(r, r + L) - r);  // first of equals
      best[i] = static_cast<uint32_t>(j);
      if (best_dot) best_dot[i] = r[j];
    }
  });
}

}  // namespace

// Column panels outside, row tiles inside: a panel of kCols centroids (d x kCols floats, 12.8 KB at
// d = 100) stays in L1 while every row tile of x meets it, where rows outside streamed all nc
// centroids (2.5 MB at 6,324 lists) from L3 once per kRows rows. Each dot is the same sum in the
// same order either way.
void dot_rows(const float* x, size_t nx, const float* ct, size_t nc, size_t d, float* out) {
  for (size_t j = 0; j < nc; j += kCols)
    for (size_t i = 0; i < nx; i += kRows) dot_tile(x + i * d, std::min(kRows, nx - i), d, ct, nc, j, out + i * nc);
}

std::vector<float> transpose(const float* c, size_t nc, size_t d) {
  std::vector<float> t(nc * d);
  for (size_t j = 0; j < nc; ++j)
    for (size_t k = 0; k < d; ++k) t[k * nc + j] = c[j * d + k];
  return t;
}

void top_indices(const float* s, size_t n, size_t m, uint32_t* out) {
  m = std::min(m, n);
  auto better = [&](uint32_t a, uint32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
  if (m * 8 < n) {  // a running sorted list: n compares, few inserts
    size_t have = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (have == m && !better(i, out[m - 1])) continue;
      size_t p = have < m ? have++ : m - 1;
      while (p > 0 && better(i, out[p - 1])) {
        out[p] = out[p - 1];
        --p;
      }
      out[p] = i;
    }
    return;
  }
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), better);
  std::copy(idx.begin(), idx.begin() + m, out);
}

void parallel_chunks(size_t n, size_t chunk, int threads, const std::function<void(size_t, size_t)>& fn) {
  const size_t nchunks = (n + chunk - 1) / chunk;
  size_t t = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  t = std::min(t, nchunks);
  if (t <= 1) {
    for (size_t c = 0; c < nchunks; ++c) fn(c * chunk, std::min(n, (c + 1) * chunk));
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t c; (c = next.fetch_add(1)) < nchunks;) fn(c * chunk, std::min(n, (c + 1) * chunk));
  };
  std::vector<std::thread> pool;
  for (size_t i = 1; i < t; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
}

KMeansResult spherical_kmeans(const float* x, size_t n, size_t d, uint32_t L, uint32_t iterations, size_t train,
                              uint64_t seed, int threads, const std::function<void(uint32_t)>& on_iteration) {
  KMeansResult r;
  // The training sample: a seeded partial Fisher-Yates shuffle, kept in ascending order.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  train = std::clamp<size_t>(train, L, n);
  uint64_t st = seed;
  for (size_t i = 0; i < train; ++i) std::swap(order[i], order[i + splitmix(st) % (n - i)]);
  std::vector<uint32_t> sample(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(train));
  // Initial centroids: the first L of the shuffle (distinct points).
  r.centroids.resize(size_t{L} * d);
  for (uint32_t j = 0; j < L; ++j) std::copy(x + size_t{sample[j]} * d, x + size_t{sample[j] + 1} * d, &r.centroids[j * d]);
  std::sort(sample.begin(), sample.end());
  std::vector<float> xs(train * d);
  for (size_t i = 0; i < train; ++i) std::copy(x + size_t{sample[i]} * d, x + size_t{sample[i] + 1} * d, &xs[i * d]);

  std::vector<uint32_t> a(train);
  std::vector<float> ad(train);
  std::vector<double> sum(size_t{L} * d);
  std::vector<uint32_t> count(L);
  for (uint32_t it = 0; it < iterations; ++it) {
    assign_points(xs.data(), train, d, transpose(r.centroids.data(), L, d), L, threads, a.data(), ad.data());
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0u);
    for (size_t i = 0; i < train; ++i) {
      ++count[a[i]];
      double* s = &sum[size_t{a[i]} * d];
      for (size_t k = 0; k < d; ++k) s[k] += xs[i * d + k];
    }
    // Emptied lists take the points worst served by their centroid (lowest dot, lower index first).
    std::vector<uint32_t> worst;
    for (uint32_t j = 0, w = 0; j < L; ++j) {
      if (count[j]) {
        for (size_t k = 0; k < d; ++k) r.centroids[j * d + k] = static_cast<float>(sum[j * d + k]);
        normalize(&r.centroids[j * d], d);
        continue;
      }
      if (worst.empty()) {
        worst.resize(train);
        std::iota(worst.begin(), worst.end(), 0u);
        std::stable_sort(worst.begin(), worst.end(), [&](uint32_t p, uint32_t q) { return ad[p] < ad[q]; });
      }
      const uint32_t p = worst[w++ % train];
      std::copy(&xs[p * d], &xs[(p + 1) * d], &r.centroids[j * d]);
    }
    if (on_iteration) on_iteration(it + 1);
  }
  r.assign.resize(n);
  assign_points(x, n, d, transpose(r.centroids.data(), L, d), L, threads, r.assign.data(), nullptr);
  return r;
}

}  // namespace igla::ann
