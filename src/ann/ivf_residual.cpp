// Building, parsing and writing the residual int8 rows of the IVF (include/igla/ivf_residual.hpp).
#include "igla/ivf_residual.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "ann/int8_scan.hpp"
#include "ann/kmeans.hpp"
#include "igla/error.hpp"
#include "kernels/layout.hpp"

namespace igla {
namespace {

constexpr uint32_t kResidualMagic = 0x31525649;  // "IVR1"

struct ResidualHeader {
  uint32_t magic, version, dims, lists;
  uint64_t positions, n_words, fingerprint;
  uint64_t reserved[3];
};
static_assert(sizeof(ResidualHeader) == 64);

constexpr size_t pad64(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct ResidualLayout {
  size_t scales, steps, blocks, total;
  ResidualLayout(uint32_t dims, size_t positions) {
    scales = sizeof(ResidualHeader);
    steps = pad64(scales + 4 * size_t{dims});
    blocks = pad64(steps + 4 * positions);
    total = pad64(blocks + positions / ann::kInt8BlockRows * ((size_t{dims} + 3) / 4) * 64);
  }
};

// What ties the rows to the lists they were built for: the list offsets, the position -> word
// table and the float centroids (a rebuilt IVF with the same sizes has another fingerprint).
uint64_t fingerprint(const IvfIndex& ivf) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<uint32_t> offsets(size_t{ivf.lists()} + 1);
  for (uint32_t l = 0; l <= ivf.lists(); ++l) offsets[l] = l < ivf.lists() ? ivf.offset(l) : static_cast<uint32_t>(ivf.positions());
  XXH3_64bits_update(st, offsets.data(), 4 * offsets.size());
  XXH3_64bits_update(st, ivf.ids().data(), 4 * ivf.ids().size());
  XXH3_64bits_update(st, ivf.float_centroids().data(), 4 * ivf.float_centroids().size());
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

size_t value_offset(size_t p, uint32_t d, uint32_t G) {
  return ann::int8_row_offset(p, G) + size_t{d / 4} * 64 + d % 4;
}

}  // namespace

struct IvfResidualRows::Owned {
  kernels::AlignedArray<uint64_t> bytes;
  size_t size = 0;
};

IvfResidualRows::IvfResidualRows() = default;
IvfResidualRows::IvfResidualRows(IvfResidualRows&&) noexcept = default;
IvfResidualRows& IvfResidualRows::operator=(IvfResidualRows&&) noexcept = default;
IvfResidualRows::~IvfResidualRows() = default;

IvfResidualRows IvfResidualRows::build(const Index& ix, const IvfIndex& ivf, int threads) {
  const uint32_t D = ix.float_dims();
  if (ivf.float_dims() != D || D == 0)
    throw Error("residual rows: the IVF lists have no float centroids (fitted on " +
                std::string(ivf_source_name(ivf.source())) + ")");
  if (ivf.size() != ix.size() || ivf.dims() != ix.dims()) throw Error("residual rows: the IVF lists were built for another index");
  if (!ix.has_float() && ix.rerank() == Rerank::None)
    throw Error("residual rows: the index has neither float32 vectors nor rerank rows");
  const size_t P = ivf.positions(), G = (D + 3) / 4;
  const auto ids = ivf.ids();
  const auto cents = ivf.float_centroids();
  // Each position's list, and its residual (unit vector - centroid), in position order.
  std::vector<uint32_t> list_of(P, ~0u);
  for (uint32_t l = 0; l < ivf.lists(); ++l)
    for (uint32_t p = ivf.offset(l); p < ivf.offset(l) + ivf.list_size(l); ++p) list_of[p] = l;
  std::vector<float> res(P * D, 0.0f);
  const std::span<const float> fv = ix.has_float() ? ix.float_vectors() : std::span<const float>{};
  ann::parallel_chunks(P, 4096, threads, [&](size_t b, size_t e) {
    std::vector<float> x(D);
    for (size_t p = b; p < e; ++p) {
      if (ids[p] == ~0u) continue;
      if (!fv.empty())
        std::copy_n(fv.data() + size_t{ids[p]} * D, D, x.data());
      else
        ix.rerank_row(ids[p], {x.data(), D});
      double s = 0;
      for (uint32_t d = 0; d < D; ++d) s += double(x[d]) * x[d];
      const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
      const float* c = cents.data() + size_t{list_of[p]} * D;
      for (uint32_t d = 0; d < D; ++d) res[p * D + d] = static_cast<float>(double(x[d]) * inv) - c[d];
    }
  });
  // Per-dimension scales: the residuals' root mean square (a sum in position order: deterministic).
  std::vector<double> ss(D, 0.0);
  for (size_t p = 0; p < P; ++p)
    for (uint32_t d = 0; d < D; ++d) ss[d] += double(res[p * D + d]) * res[p * D + d];
  const ResidualLayout lay(D, P);
  IvfResidualRows r;
  r.own_ = std::make_unique<Owned>();
  r.own_->bytes = kernels::AlignedArray<uint64_t>(lay.total / 8);
  r.own_->size = lay.total;
  auto* base = reinterpret_cast<uint8_t*>(r.own_->bytes.data());
  std::memset(base, 0, lay.total);
  ResidualHeader h{};
  h.magic = kResidualMagic;
  h.version = kIvfResidualFormatVersion;
  h.dims = D;
  h.lists = ivf.lists();
  h.positions = P;
  h.n_words = ix.size();
  h.fingerprint = fingerprint(ivf);
  std::memcpy(base, &h, sizeof h);
  auto* scales = reinterpret_cast<float*>(base + lay.scales);
  const size_t n = std::max<size_t>(ix.size(), 1);
  for (uint32_t d = 0; d < D; ++d) {
    const float s = static_cast<float>(std::sqrt(ss[d] / double(n)));
    scales[d] = s > 0 && std::isfinite(s) ? s : 1.0f;
  }
  auto* steps = reinterpret_cast<float*>(base + lay.steps);
  uint8_t* blocks = base + lay.blocks;
  std::fill(blocks, blocks + P / ann::kInt8BlockRows * G * 64, uint8_t{128});
  ann::parallel_chunks(P / ann::kInt8BlockRows, 256, threads, [&](size_t b, size_t e) {
    for (size_t p = b * ann::kInt8BlockRows; p < e * ann::kInt8BlockRows; ++p) {
      if (ids[p] == ~0u) continue;
      const float* rp = res.data() + p * D;
      float m = 0.0f;
      for (uint32_t d = 0; d < D; ++d) m = std::max(m, std::fabs(rp[d] / scales[d]));
      if (!(m > 0.0f)) continue;  // a word on its centroid: step 0, values 0
      const float t = m / 127.0f;
      steps[p] = t;
      for (uint32_t d = 0; d < D; ++d) {
        const long v = std::clamp<long>(std::lround(rp[d] / scales[d] / t), -127, 127);
        blocks[value_offset(p, d, static_cast<uint32_t>(G))] = static_cast<uint8_t>(v + 128);
      }
    }
  });
  IvfResidualRows parsed = parse(ix, ivf, {reinterpret_cast<const std::byte*>(base), lay.total});
  parsed.own_ = std::move(r.own_);
  return parsed;
}

IvfResidualRows IvfResidualRows::parse(const Index& ix, const IvfIndex& ivf, std::span<const std::byte> bytes) {
  auto bad = [](const std::string& what) { return Error("IVFR section (IVF residual rows): " + what); };
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < sizeof(ResidualHeader))
    throw bad(std::to_string(bytes.size()) + " bytes, shorter than its header");
  ResidualHeader h;
  std::memcpy(&h, base, sizeof h);
  if (h.magic != kResidualMagic) throw bad("wrong magic number");
  if (h.version != kIvfResidualFormatVersion)
    throw bad("format version " + std::to_string(h.version) + ", this igla reads " +
              std::to_string(kIvfResidualFormatVersion));
  if (h.dims != ix.float_dims() || h.n_words != ix.size())
    throw bad("built for " + std::to_string(h.n_words) + " words x " + std::to_string(h.dims) +
              " float dims, the index has " + std::to_string(ix.size()) + " x " + std::to_string(ix.float_dims()));
  if (h.lists != ivf.lists() || h.positions != ivf.positions() || ivf.float_dims() != h.dims)
    throw bad("built for " + std::to_string(h.lists) + " lists of " + std::to_string(h.positions) +
              " positions, the IVF has " + std::to_string(ivf.lists()) + " of " + std::to_string(ivf.positions()));
  if (h.fingerprint != fingerprint(ivf)) throw bad("built for other IVF lists (rebuild it with `igla build-ivf --residual`)");
  const ResidualLayout lay(h.dims, h.positions);
  if (bytes.size() != lay.total) throw bad(std::to_string(bytes.size()) + " bytes, expected " + std::to_string(lay.total));
  if (reinterpret_cast<uintptr_t>(base) % 64) throw bad("not 64-byte aligned");
  IvfResidualRows r;
  r.dims_ = h.dims;
  r.positions_ = h.positions;
  r.scales_ = reinterpret_cast<const float*>(base + lay.scales);
  r.steps_ = reinterpret_cast<const float*>(base + lay.steps);
  r.blocks_ = base + lay.blocks;
  for (uint32_t d = 0; d < h.dims; ++d)
    if (!std::isfinite(r.scales_[d]) || !(r.scales_[d] > 0)) throw bad("scale of dim " + std::to_string(d) + " is not a positive finite number");
  const auto ids = ivf.ids();
  const uint32_t G = r.groups();
  for (size_t p = 0; p < h.positions; ++p) {
    const float t = r.steps_[p];
    if (!std::isfinite(t) || t < 0) throw bad("step of position " + std::to_string(p) + " is not finite or negative");
    if (ids[p] != ~0u) continue;
    if (t != 0) throw bad("padding position " + std::to_string(p) + " has a step");
    for (uint32_t d = 0; d < h.dims; ++d)
      if (r.blocks_[value_offset(p, d, G)] != 128) throw bad("padding position " + std::to_string(p) + " holds values");
  }
  return r;
}

IvfResidualRows IvfResidualRows::from_index(const Index& ix, const IvfIndex& ivf) {
  const auto s = ix.extra_section("IVFR");
  if (s.empty())
    throw Error("index " + (ix.path().empty() ? std::string("(in memory)") : ix.path()) +
                " has no IVF residual rows (build them with `igla build-ivf --residual`)");
  return parse(ix, ivf, s);
}

ExtraSection IvfResidualRows::section() const {
  const ResidualLayout lay(dims_, positions_);
  std::vector<std::byte> out(lay.total);
  // The header is rebuilt from the arrays' owner: the bytes before the scales.
  std::memcpy(out.data(), reinterpret_cast<const std::byte*>(scales_) - lay.scales, lay.total);
  return {"IVFR", std::move(out)};
}

void IvfResidualRows::decode(size_t p, const float* c, float* out) const {
  const float t = steps_[p];
  const uint32_t G = groups();
  const uint8_t* b = blocks_ + ann::int8_row_offset(p, G);
  for (uint32_t d = 0; d < dims_; ++d) {
    const int v = int{b[size_t{d / 4} * 64 + d % 4]} - 128;
    out[d] = c[d] + t * (scales_[d] * static_cast<float>(v));
  }
}

void IvfResidualRows::prefetch(size_t p) const {
  const uint32_t G = groups();
  const uint8_t* b = blocks_ + ann::int8_row_offset(p, G);
  for (uint32_t g = 0; g < G; ++g) __builtin_prefetch(b + size_t{g} * 64);
  __builtin_prefetch(steps_ + p);
}

double IvfResidualRows::bytes_per_word(const IvfIndex& ivf) const {
  const double per_pos = 4.0 * groups() + 4 + 4;  // values, step, id
  const double fixed = 4.0 * ivf.lists() * (dims_ + 1) + 4.0 * dims_;
  return ivf.size() ? (per_pos * double(positions_) + fixed) / double(ivf.size()) : 0.0;
}

bool has_ivf_residual_section(const Index& ix) { return !ix.extra_section("IVFR").empty(); }

std::shared_ptr<const IvfResidualRows> ivf_residual_of(const Index& ix) {
  if (!has_ivf_residual_section(ix)) return nullptr;
  const auto ivf = ivf_of(ix);  // (outside: derived() holds its lock while making a value)
  auto p = ix.derived("ivf/residual", [&]() -> std::shared_ptr<const void> {
    return std::make_shared<const IvfResidualRows>(IvfResidualRows::from_index(ix, *ivf));
  });
  return std::static_pointer_cast<const IvfResidualRows>(p);
}

}  // namespace igla
