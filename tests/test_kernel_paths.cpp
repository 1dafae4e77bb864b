// Every kernel entry point (dots, scan_cosine, scan_topk, scan_sum_topk), called directly on its
// own code layout, against plain int8 dot products and combine_score: odd dims (around the
// AVX2 kernel's 16-dim plane words and its 124-dim int8 chunks), vocabularies that are not a
// multiple of any block, query counts that leave every remainder pass, lists up to
// FusedTopK::kMax, tiles with word offsets, extreme dots (every dim +-1).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <bit>
#include <cmath>

#include "igla/search.hpp"
#include "igla/ternary.hpp"
#include "kernels/kernel.hpp"
#include "kernels/layout.hpp"
#include "test_util.hpp"

using namespace igla;

namespace {

struct Fixture {
  uint32_t dims;
  size_t n;
  std::vector<int8_t> trits;    // n * dims
  std::vector<uint64_t> codes;  // the index layout
  std::vector<float> inv;       // padded with zeros
  CodesView view() const { return {dims, plane_words(dims), n, codes.data(), inv.data(), inv.data()}; }
};

Fixture make_fixture(size_t n, uint32_t dims, std::vector<int8_t> trits) {
  Fixture f{dims, n, std::move(trits), std::vector<uint64_t>(code_words(n, dims), 0), std::vector<float>(n + 64, 0)};
  for (size_t i = 0; i < n; ++i) {
    const std::span<const int8_t> t(f.trits.data() + i * dims, dims);
    pack_into_blocks(t, i, f.codes.data());
    f.inv[i] = inv_norm_from_nnz(count_nonzero(t));
  }
  return f;
}

int32_t ref_dot(const int8_t* a, const int8_t* b, uint32_t dims) {
  int32_t d = 0;
  for (uint32_t i = 0; i < dims; ++i) d += int32_t{a[i]} * int32_t{b[i]};
  return d;
}

std::vector<uint64_t> pack_rows(const std::vector<int8_t>& q, size_t nq, uint32_t dims) {
  const uint32_t W = plane_words(dims);
  std::vector<uint64_t> rows(nq * 2 * W);
  for (size_t i = 0; i < nq; ++i) pack_row({q.data() + i * dims, dims}, {rows.data() + i * 2 * W, 2 * W});
  return rows;
}

// The top k of scores s[0..n) in the one order (score descending, then id ascending).
std::vector<Hit> ref_top(const std::vector<float>& s, size_t k) {
  std::vector<Hit> h;
  for (size_t i = 0; i < s.size(); ++i) h.push_back({static_cast<uint32_t>(i), s[i]});
  std::sort(h.begin(), h.end(), better);
  h.resize(std::min(k, h.size()));
  return h;
}

void expect_list(const std::vector<Hit>& ref, const kernels::FusedTopK& l, const std::string& what) {
  ASSERT_EQ(l.n, ref.size()) << what;
  for (uint32_t i = 0; i < l.n; ++i) {
    ASSERT_EQ(l.id[i], ref[i].id) << what << " rank " << i;
    ASSERT_EQ(std::bit_cast<uint32_t>(l.score[i]), std::bit_cast<uint32_t>(ref[i].score)) << what << " rank " << i;
  }
}

// A kernel's layout of a fixture, and the blocks of its tiles.
struct Layout {
  const kernels::Kernel& k;
  uint32_t bw, W;
  size_t nblocks;
  kernels::AlignedArray<uint64_t> blocks;
  std::vector<float> inv;  // padded to whole blocks
  Layout(const kernels::Kernel& kern, const Fixture& f)
      : k(kern), bw(kern.block_words), W(kernels::layout_plane_words(f.dims, bw)), nblocks((f.n + bw - 1) / bw),
        blocks(kernels::to_block_layout(f.view(), bw)), inv(nblocks * bw, 0.0f) {
    std::copy(f.inv.begin(), f.inv.begin() + static_cast<long>(f.n), inv.begin());
  }
  const uint64_t* tile(size_t b) const { return blocks.data() + b * W * 16; }
};

void check_kernel(const kernels::Kernel& kern, const Fixture& f, const std::vector<int8_t>& q, size_t nq,
                  std::mt19937_64& rng, const std::string& what0) {
  const Layout L(kern, f);
  const auto rows = pack_rows(q, nq, f.dims);
  std::vector<int32_t> dot(nq * f.n);
  for (size_t i = 0; i < nq; ++i)
    for (size_t j = 0; j < f.n; ++j) dot[i * f.n + j] = ref_dot(q.data() + i * f.dims, f.trits.data() + j * f.dims, f.dims);
  std::uniform_real_distribution<float> wd(0.05f, 1.5f);
  std::vector<float> w(nq);
  for (auto& x : w) x = wd(rng);
  auto score = [&](size_t i, size_t j) { return combine_score(Combine::Sum, &dot[i * f.n + j], &w[i], 1, f.inv[j]); };

  // dots: every word of every block (padding words dot 0).
  {
    const size_t stride = L.nblocks * L.bw;
    std::vector<int32_t> out(nq * stride, -7);
    kern.dots(L.blocks.data(), L.nblocks, L.W, rows.data(), nq, out.data(), stride);
    for (size_t i = 0; i < nq; ++i)
      for (size_t j = 0; j < stride; ++j)
        ASSERT_EQ(out[i * stride + j], j < f.n ? dot[i * f.n + j] : 0) << what0 << " dots q " << i << " word " << j;
  }
  // scan_cosine: at least every word above the threshold, each with its exact score.
  {
    std::vector<float> thr(nq);
    for (size_t i = 0; i < nq; ++i) thr[i] = f.n > 3 ? score(i, rng() % f.n) : -1.0f;
    std::vector<kernels::Candidate> out(nq * L.nblocks * L.bw);
    std::vector<int32_t> scratch(nq * L.nblocks * L.bw);
    const size_t m = kern.scan_cosine(L.blocks.data(), L.nblocks, L.W, rows.data(), nq, w.data(), thr.data(),
                                      L.inv.data(), f.n, out.data(), scratch.data());
    std::vector<size_t> above(nq, 0), emitted_above(nq, 0);
    for (size_t i = 0; i < nq; ++i)
      for (size_t j = 0; j < f.n; ++j) above[i] += score(i, j) > thr[i];
    for (size_t c = 0; c < m; ++c) {
      const auto& x = out[c];
      ASSERT_LT(x.query, nq) << what0;
      ASSERT_LT(x.word, f.n) << what0;
      ASSERT_EQ(std::bit_cast<uint32_t>(x.score), std::bit_cast<uint32_t>(score(x.query, x.word))) << what0;
      emitted_above[x.query] += x.score > thr[x.query];
    }
    ASSERT_EQ(emitted_above, above) << what0 << " scan_cosine";
  }
  if (!kern.scan_topk) return;
  // scan_topk over tiles of 3 blocks (lists carried across calls, ids offset by the tile).
  for (size_t k : {size_t{1}, size_t{10}, size_t{64}}) {
    std::vector<kernels::FusedTopK> lists(nq);
    for (auto& l : lists) l.reset(static_cast<uint32_t>(k));
    for (size_t b = 0; b < L.nblocks; b += 3) {
      const size_t nb = std::min<size_t>(3, L.nblocks - b), w0 = b * L.bw;
      kern.scan_topk(L.tile(b), nb, L.W, rows.data(), nq, w.data(), L.inv.data() + w0, std::min(nb * L.bw, f.n - w0),
                     static_cast<uint32_t>(w0), lists.data());
    }
    for (size_t i = 0; i < nq; ++i) {
      std::vector<float> s(f.n);
      for (size_t j = 0; j < f.n; ++j) s[j] = score(i, j);
      expect_list(ref_top(s, k), lists[i], what0 + " scan_topk k=" + std::to_string(k) + " q " + std::to_string(i));
    }
  }
  // scan_sum_topk: queries of 1 to 4 terms (terms are the rows in order), weights of any sign.
  std::vector<uint32_t> offsets{0};
  std::vector<float> sw;
  std::uniform_real_distribution<float> swd(-1.5f, 1.5f);
  while (offsets.back() < nq) offsets.push_back(std::min<uint32_t>(static_cast<uint32_t>(nq), offsets.back() + 1 + rng() % 4));
  for (size_t t = 0; t < nq; ++t) sw.push_back(swd(rng));
  const size_t ns = offsets.size() - 1;
  for (size_t k : {size_t{1}, size_t{13}, size_t{64}}) {
    std::vector<kernels::FusedTopK> lists(ns);
    for (auto& l : lists) l.reset(static_cast<uint32_t>(k));
    const size_t limit = f.n > 40 ? f.n - 5 : f.n;  // words past a --limit inside the last block
    for (size_t b = 0; b * L.bw < limit; b += 2) {
      const size_t nb = std::min<size_t>(2, L.nblocks - b), w0 = b * L.bw;
      kern.scan_sum_topk(L.tile(b), nb, L.W, rows.data(), offsets.data(), ns, sw.data(), L.inv.data() + w0,
                         std::min(nb * L.bw, limit - w0), static_cast<uint32_t>(w0), lists.data());
    }
    for (size_t i = 0; i < ns; ++i) {
      std::vector<float> s(limit);
      std::vector<int32_t> d(offsets[i + 1] - offsets[i]);
      for (size_t j = 0; j < limit; ++j) {
        for (size_t t = 0; t < d.size(); ++t) d[t] = dot[(offsets[i] + t) * f.n + j];
        s[j] = combine_score(Combine::Sum, d.data(), sw.data() + offsets[i], d.size(), f.inv[j]);
      }
      expect_list(ref_top(s, k), lists[i], what0 + " scan_sum_topk k=" + std::to_string(k) + " q " + std::to_string(i));
    }
  }
}

}  // namespace

TEST(KernelPaths, EveryEntryPointMatchesPlainDots) {
  std::mt19937_64 rng(151);
  // 16: one AVX2 plane word; 124/125: one int8 chunk of the AVX2 kernel and one past it.
  for (uint32_t dims : {1u, 4u, 15u, 16u, 17u, 63u, 64u, 65u, 100u, 124u, 125u, 128u, 300u, 301u, 777u})
    for (size_t n : {size_t{1}, size_t{31}, size_t{33}, size_t{95}, size_t{257}}) {
      if (dims > 301 && n > 95) continue;
      const Fixture f = make_fixture(n, dims, igla::testing_util::random_trits(n * dims, rng, 0.6));
      for (size_t nq : {size_t{1}, size_t{7}, size_t{8}, size_t{15}}) {
        const auto q = igla::testing_util::random_trits(nq * dims, rng, 0.6);
        for (const auto* k : kernels::all_kernels())
          if (k->supported())
            check_kernel(*k, f, q, nq, rng,
                         std::string(k->name) + " dims=" + std::to_string(dims) + " n=" + std::to_string(n) +
                             " nq=" + std::to_string(nq));
      }
    }
}

TEST(KernelPaths, ExtremeDotsDoNotOverflow) {
  // Words and queries of all +1 or all -1: every product the same sign, |dot| = dims (the
  // AVX2 kernel's int8 sums reach +-124 per chunk, its int16 sums +-32764; 32800 takes its
  // int32 path).
  std::mt19937_64 rng(5);
  for (uint32_t dims : {124u, 125u, 300u, 2100u, 32800u}) {
    const size_t n = 70;
    std::vector<int8_t> t(n * dims);
    for (size_t i = 0; i < n; ++i) std::fill_n(t.begin() + static_cast<long>(i * dims), dims, int8_t(i % 2 ? 1 : -1));
    const Fixture f = make_fixture(n, dims, t);
    std::vector<int8_t> q(9 * dims);
    for (size_t i = 0; i < 9; ++i) std::fill_n(q.begin() + static_cast<long>(i * dims), dims, int8_t(i % 3 ? -1 : 1));
    for (const auto* k : kernels::all_kernels())
      if (k->supported()) check_kernel(*k, f, q, 9, rng, std::string(k->name) + " extreme dims=" + std::to_string(dims));
  }
}

TEST(KernelPaths, ThirtyTwoWordLayoutHoldsEveryTritWhereTheKernelReadsIt) {
  // The AVX2 kernel's layout (kernels/layout.hpp): byte ((b * W16 + j) * 4 + s) * 32 + lane holds
  // dims 16 j + 4 s + i of word 32 b + lane, nz at bit 2 i and sign at bit 2 i + 1.
  std::mt19937_64 rng(8);
  for (uint32_t dims : {1u, 15u, 16u, 17u, 64u, 65u, 300u}) {
    const size_t n = 70;  // three blocks of 32, the last one partly padding
    const Fixture f = make_fixture(n, dims, igla::testing_util::random_trits(n * dims, rng));
    const auto out = kernels::to_block_layout(f.view(), 32);
    const uint32_t W16 = kernels::layout_plane_words(dims, 32);
    ASSERT_EQ(W16, (dims + 15) / 16);
    ASSERT_EQ(out.size(), 3 * W16 * 16);
    const auto* bytes = reinterpret_cast<const uint8_t*>(out.data());
    for (size_t i = 0; i < 96; ++i)
      for (uint32_t d = 0; d < W16 * 16; ++d) {
        const uint8_t b = bytes[((i / 32 * W16 + d / 16) * 4 + d % 16 / 4) * 32 + i % 32];
        const bool nz = (b >> (2 * (d % 4))) & 1, neg = (b >> (2 * (d % 4) + 1)) & 1;
        const int8_t t = i < n && d < dims ? f.trits[i * dims + d] : 0;  // padding words and dims are zero
        ASSERT_EQ(nz, t != 0) << "dims " << dims << " word " << i << " dim " << d;
        ASSERT_EQ(neg, t < 0) << "dims " << dims << " word " << i << " dim " << d;
      }
  }
}

TEST(KernelPaths, KernelChoiceIsExplained) {
  const std::string s = kernels::explain_kernel_choice("scalar", "--kernel scalar");
  EXPECT_EQ(s.rfind("kernel scalar (forced by --kernel scalar; ", 0), 0u) << s;
  const std::string best = kernels::explain_kernel_choice("auto", "");
  EXPECT_EQ(best.rfind(std::string("kernel ") + kernels::select_kernel("auto").name + " (the best this cpu runs; ", 0),
            0u)
      << best;
  EXPECT_THROW(kernels::explain_kernel_choice("sse9", "--kernel sse9"), Error);
}

TEST(KernelPaths, BenchSaysWhichKernelRanAndTheClock) {
  // `igla bench` as a reader of its output from another machine needs it: the kernel, why, and
  // a clock that is measured or says it is unknown (never the add-chain estimate).
  const std::string cmd = std::string("IGLA_KERNEL=scalar ") + IGLA_CLI_PATH +
                          " bench --vocab 200 --dims 32 --no-peers --no-real --seconds 0.01 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  ASSERT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("\nkernel scalar (forced by IGLA_KERNEL=scalar; "), std::string::npos) << out;
  const bool known = out.find("\nclock: ~") != std::string::npos, unknown = out.find("\nclock: unknown (") != std::string::npos;
  EXPECT_TRUE(known != unknown) << out;
  EXPECT_EQ(out.find("dependent-add"), std::string::npos) << out;
}
