// Building, parsing and writing the IVF lists (include/igla/ivf.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ann/ivf_format.hpp"
#include "ann/kmeans.hpp"
#include "igla/error.hpp"
#include "igla/ivf.hpp"
#include "kernels/layout.hpp"

namespace igla {

using ann::IvfHeader;
using ann::IvfMetaLayout;
using ann::IvfWordsLayout;

namespace {

// What the IVFM header records beyond its constants.
struct MetaFields {
  uint32_t lists, dims, float_dims;
  IvfSource source;
  uint32_t iterations;
  size_t n_words, positions;
  uint64_t seed;
};

// The start of IVFM, shared by both writers (IvfIndex::build and sections()): the header, then
// the list offsets (lists + 1) and sizes (lists) at their places in `ml`.
void write_meta_head(uint8_t* m, const IvfMetaLayout& ml, const MetaFields& f, const uint32_t* offsets,
                     const uint32_t* sizes) {
  IvfHeader h{};
  h.magic = ann::kIvfMagic;
  h.version = kIvfFormatVersion;
  h.lists = f.lists;
  h.dims = f.dims;
  h.float_dims = f.float_dims;
  h.source = static_cast<uint32_t>(f.source);
  h.iterations = f.iterations;
  h.align = kIvfAlign;
  h.n_words = f.n_words;
  h.positions = f.positions;
  h.seed = f.seed;
  std::memcpy(m, &h, sizeof h);
  std::memcpy(m + ml.offsets, offsets, 4 * (size_t{f.lists} + 1));
  std::memcpy(m + ml.sizes, sizes, 4 * size_t{f.lists});
}

}  // namespace

struct IvfIndex::Owned {
  kernels::AlignedArray<uint64_t> meta, words;  // the two sections' bytes
  size_t meta_bytes = 0, words_bytes = 0;
};

IvfIndex::IvfIndex() = default;
IvfIndex::IvfIndex(IvfIndex&&) noexcept = default;
IvfIndex& IvfIndex::operator=(IvfIndex&&) noexcept = default;
IvfIndex::~IvfIndex() = default;

const char* ivf_source_name(IvfSource s) {
  switch (s) {
    case IvfSource::Float32: return "float32 vectors";
    case IvfSource::RerankRows: return "rerank rows";
    case IvfSource::Trits: return "ternary codes";
  }
  return "?";
}

// 2 sqrt(n), kept by measurement (BENCHMARKS.md, "IVF-int8 round 4", 2026-12-04): after the
// per-query list choice got cheaper, 2,302 lists (4 sqrt(n)) on GloVe-100d needed nprobe 48 for
// the recall 1,151 lists reach at 32-48, ran no faster batched in the same half hour, needed twice
// nprobe on held-out words, and took 4x the k-means time. The default nprobe stays L / 32.
uint32_t default_ivf_lists(size_t n) {
  const double l = 2.0 * std::sqrt(static_cast<double>(n));
  return static_cast<uint32_t>(std::clamp(l, 1.0, static_cast<double>(std::max<size_t>(n, 1))));
}

// GloVe-100d, 1,151 lists, rerank of the default 50 candidates (BENCHMARKS.md, 2026-12-04): recall@10
// against float32 0.885 at nprobe 32, 0.896 at 64, 0.901 for the exact scan; L / 32 is within
// 0.02 of the exact scan's recall at about 1/30 of its words.
uint32_t default_nprobe(uint32_t lists) { return std::clamp<uint32_t>(lists / 32, 1, lists ? lists : 1); }

CodesView IvfIndex::codes() const {
  CodesView v;
  v.dims = dims_;
  v.W = plane_words(dims_);
  v.n_words = positions_;
  v.codes = codes_;
  v.inv_norms = inv_norms_;
  v.norms = nullptr;
  return v;
}

std::vector<uint32_t> IvfIndex::assignment() const {
  std::vector<uint32_t> a(n_words_, ~0u);
  for (uint32_t l = 0; l < lists_; ++l)
    for (uint32_t p = offsets_[l]; p < offsets_[l] + sizes_[l]; ++p) a[ids_[p]] = l;
  return a;
}

double IvfIndex::bytes_per_word() const {
  const double per_pos = 2.0 * 8 * plane_words(dims_) + 4 + 4;
  const double fixed = 4.0 * lists_ * (dims_ + float_dims_ + 2);
  return n_words_ ? (per_pos * static_cast<double>(positions_) + fixed) / static_cast<double>(n_words_) : 0.0;
}

IvfIndex IvfIndex::build(const Index& ix, const IvfParams& p, const Progress& progress) {
  const size_t n = ix.size();
  if (n == 0) throw Error("build-ivf: the index has no words");
  const uint32_t L = p.lists ? p.lists : default_ivf_lists(n);
  if (L > n)
    throw Error("build-ivf: " + std::to_string(L) + " lists for " + std::to_string(n) + " words (at most one list per word)");
  const uint32_t dims = ix.dims();

  // The points k-means runs on: unit float vectors, else rerank rows, else the trits.
  IvfSource src = ix.has_float() ? IvfSource::Float32 : ix.rerank() != Rerank::None ? IvfSource::RerankRows : IvfSource::Trits;
  const size_t d = src == IvfSource::Trits ? dims : ix.float_dims();
  std::vector<float> x(n * d);
  if (src == IvfSource::Float32) {
    const auto f = ix.float_vectors();
    std::copy(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n * d), x.begin());
  }
  ann::parallel_chunks(n, 4096, p.threads, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      float* r = x.data() + i * d;
      if (src == IvfSource::RerankRows) ix.rerank_row(i, {r, d});
      if (src == IvfSource::Trits) {
        const auto t = ix.trits(i);
        for (size_t k = 0; k < d; ++k) r[k] = t[k];
      }
      double s = 0;
      for (size_t k = 0; k < d; ++k) s += double(r[k]) * r[k];
      if (s > 0) {
        const float inv = static_cast<float>(1.0 / std::sqrt(s));
        for (size_t k = 0; k < d; ++k) r[k] *= inv;
      }
    }
  });
  const uint64_t steps = uint64_t{p.iterations} + 1;
  if (progress) progress(0, steps);
  ann::KMeansResult km = ann::spherical_kmeans(x.data(), n, d, L, p.iterations, size_t{L} * p.train_per_list, p.seed,
                                               p.threads, [&](uint32_t it) {
                                                 if (progress) progress(it, steps);
                                               });
  x = {};

  // Lists in order, each word's position ascending by word id within its list.
  std::vector<uint32_t> sizes(L, 0), offsets(size_t{L} + 1, 0);
  for (uint32_t a : km.assign) ++sizes[a];
  for (uint32_t l = 0; l < L; ++l) offsets[l + 1] = static_cast<uint32_t>(offsets[l] + (sizes[l] + kIvfAlign - 1) / kIvfAlign * kIvfAlign);
  const size_t positions = offsets[L];
  if (positions > 0xFFFFFFF0ull) throw Error("build-ivf: too many words for 32-bit positions");
  const uint32_t fd = src == IvfSource::Trits ? 0 : static_cast<uint32_t>(d);

  IvfIndex r;
  r.own_ = std::make_unique<Owned>();
  const IvfMetaLayout ml(L, dims, fd);
  const IvfWordsLayout wl(positions, code_words(positions, dims));
  r.own_->meta = kernels::AlignedArray<uint64_t>(ml.total / 8);
  r.own_->words = kernels::AlignedArray<uint64_t>(wl.total / 8);
  r.own_->meta_bytes = ml.total;
  r.own_->words_bytes = wl.total;
  auto* mb = reinterpret_cast<uint8_t*>(r.own_->meta.data());
  auto* wb = reinterpret_cast<uint8_t*>(r.own_->words.data());

  write_meta_head(mb, ml, {L, dims, fd, src, p.iterations, n, positions, p.seed}, offsets.data(), sizes.data());

  auto* ids = reinterpret_cast<uint32_t*>(wb + wl.ids);
  auto* codes = reinterpret_cast<uint64_t*>(wb + wl.codes);
  auto* inv = reinterpret_cast<float*>(wb + wl.inv_norms);
  std::fill(ids, ids + positions, ~0u);
  std::vector<uint32_t> fill(offsets.begin(), offsets.end() - 1);
  std::vector<double> csum(size_t{L} * dims, 0.0);
  const CodesView& cv = ix.codes();
  std::vector<int8_t> t(dims);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t l = km.assign[i], pos = fill[l]++;
    ids[pos] = static_cast<uint32_t>(i);
    unpack_from_blocks(cv.codes, i, dims, t);
    pack_into_blocks(t, pos, codes);
    inv[pos] = cv.inv_norms[i];
    double* c = &csum[size_t{l} * dims];
    const float w = cv.inv_norms[i];  // mean of the unit ternary vectors
    for (uint32_t k = 0; k < dims; ++k) c[k] += t[k] * w;
  }
  auto* cc = reinterpret_cast<float*>(mb + ml.code_centroids);
  for (uint32_t l = 0; l < L; ++l) {
    double s = 0;
    for (uint32_t k = 0; k < dims; ++k) s += csum[size_t{l} * dims + k] * csum[size_t{l} * dims + k];
    const double inv_s = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
    for (uint32_t k = 0; k < dims; ++k) cc[size_t{l} * dims + k] = static_cast<float>(csum[size_t{l} * dims + k] * inv_s);
  }
  if (fd) std::memcpy(mb + ml.float_centroids, km.centroids.data(), 4 * km.centroids.size());
  if (progress) progress(steps, steps);

  IvfIndex parsed = parse(ix, {reinterpret_cast<const std::byte*>(mb), ml.total},
                          {reinterpret_cast<const std::byte*>(wb), wl.total});
  parsed.own_ = std::move(r.own_);
  return parsed;
}

IvfIndex IvfIndex::parse(const Index& ix, std::span<const std::byte> meta_bytes, std::span<const std::byte> words_bytes) {
  const std::span<const uint8_t> meta(reinterpret_cast<const uint8_t*>(meta_bytes.data()), meta_bytes.size());
  const std::span<const uint8_t> words(reinterpret_cast<const uint8_t*>(words_bytes.data()), words_bytes.size());
  auto bad = [](const std::string& what) { return Error("IVF sections: " + what); };
  if (meta.size() < sizeof(IvfHeader)) throw bad("IVFM is " + std::to_string(meta.size()) + " bytes, shorter than its header");
  IvfHeader h;
  std::memcpy(&h, meta.data(), sizeof h);
  if (h.magic != ann::kIvfMagic) throw bad("IVFM has a wrong magic number");
  if (h.version != kIvfFormatVersion)
    throw bad("IVFM format version " + std::to_string(h.version) + ", this igla reads " + std::to_string(kIvfFormatVersion));
  if (h.dims != ix.dims() || h.n_words != ix.size())
    throw bad("built for " + std::to_string(h.n_words) + " words x " + std::to_string(h.dims) + " dims, the index has " +
              std::to_string(ix.size()) + " x " + std::to_string(ix.dims()));
  if (h.lists == 0 || h.lists > h.n_words) throw bad(std::to_string(h.lists) + " lists for " + std::to_string(h.n_words) + " words");
  if (h.source > 2) throw bad("unknown centroid source " + std::to_string(h.source));
  if (h.align != kIvfAlign) throw bad("list alignment " + std::to_string(h.align) + ", expected " + std::to_string(kIvfAlign));
  if ((h.source == 2) != (h.float_dims == 0) || (h.float_dims && h.float_dims != ix.float_dims()))
    throw bad("float centroids of " + std::to_string(h.float_dims) + " dims do not fit the index");
  if (h.positions < h.n_words || h.positions > h.n_words + uint64_t{h.lists} * kIvfAlign)
    throw bad(std::to_string(h.positions) + " positions for " + std::to_string(h.n_words) + " words");
  const IvfMetaLayout ml(h.lists, h.dims, h.float_dims);
  if (meta.size() != ml.total) throw bad("IVFM is " + std::to_string(meta.size()) + " bytes, expected " + std::to_string(ml.total));
  const IvfWordsLayout wl(h.positions, code_words(h.positions, h.dims));
  if (words.size() != wl.total) throw bad("IVFW is " + std::to_string(words.size()) + " bytes, expected " + std::to_string(wl.total));
  if (reinterpret_cast<uintptr_t>(meta.data()) % 64 || reinterpret_cast<uintptr_t>(words.data()) % 64)
    throw bad("sections are not 64-byte aligned");

  IvfIndex r;
  r.lists_ = h.lists;
  r.dims_ = h.dims;
  r.float_dims_ = h.float_dims;
  r.iterations_ = h.iterations;
  r.n_words_ = h.n_words;
  r.positions_ = h.positions;
  r.source_ = static_cast<IvfSource>(h.source);
  r.seed_ = h.seed;
  r.offsets_ = reinterpret_cast<const uint32_t*>(meta.data() + ml.offsets);
  r.sizes_ = reinterpret_cast<const uint32_t*>(meta.data() + ml.sizes);
  r.code_centroids_ = reinterpret_cast<const float*>(meta.data() + ml.code_centroids);
  r.float_centroids_ = reinterpret_cast<const float*>(meta.data() + ml.float_centroids);
  r.ids_ = reinterpret_cast<const uint32_t*>(words.data() + wl.ids);
  r.codes_ = reinterpret_cast<const uint64_t*>(words.data() + wl.codes);
  r.inv_norms_ = reinterpret_cast<const float*>(words.data() + wl.inv_norms);

  // Lists in order, aligned, within the positions; every word at exactly one position.
  if (r.offsets_[0] != 0 || r.offsets_[h.lists] != h.positions) throw bad("list offsets do not span the positions");
  for (uint32_t l = 0; l < h.lists; ++l) {
    const uint32_t o = r.offsets_[l], e = r.offsets_[l + 1], s = r.sizes_[l];
    if (o % kIvfAlign || e < o || s > e - o || e - o - s >= kIvfAlign)
      throw bad("list " + std::to_string(l) + " has offset " + std::to_string(o) + ", size " + std::to_string(s) +
                " and next offset " + std::to_string(e));
  }
  std::vector<uint8_t> seen(h.n_words, 0);
  for (uint32_t l = 0; l < h.lists; ++l)
    for (uint32_t p = r.offsets_[l]; p < r.offsets_[l + 1]; ++p) {
      const uint32_t id = r.ids_[p];
      const bool real = p < r.offsets_[l] + r.sizes_[l];
      if (!real) {
        if (id != ~0u) throw bad("padding position " + std::to_string(p) + " holds word " + std::to_string(id));
        continue;
      }
      if (id >= h.n_words || seen[id]) throw bad("position " + std::to_string(p) + " holds word " + std::to_string(id) +
                                                 (id >= h.n_words ? " (out of range)" : " (twice)"));
      seen[id] = 1;
    }
  if (std::find(seen.begin(), seen.end(), 0) != seen.end()) throw bad("some words are in no list");
  for (size_t i = 0; i < size_t{h.lists} * (h.dims + h.float_dims); ++i) {
    const float v = i < size_t{h.lists} * h.dims ? r.code_centroids_[i] : r.float_centroids_[i - size_t{h.lists} * h.dims];
    if (!std::isfinite(v)) throw bad("a centroid holds a value that is not finite");
  }
  return r;
}

IvfIndex IvfIndex::from_index(const Index& ix) {
  const auto m = ix.extra_section("IVFM"), w = ix.extra_section("IVFW");
  if (m.empty() || w.empty())
    throw Error("index " + (ix.path().empty() ? std::string("(in memory)") : ix.path()) +
                " has no IVF sections (build them with `igla build-ivf`)");
  return parse(ix, m, w);
}

bool has_ivf_sections(const Index& ix) { return !ix.extra_section("IVFM").empty(); }

std::shared_ptr<const IvfIndex> ivf_of(const Index& ix) {
  auto p = ix.derived("ivf/lists", [&]() -> std::shared_ptr<const void> {
    return std::make_shared<const IvfIndex>(has_ivf_sections(ix) ? IvfIndex::from_index(ix) : IvfIndex::build(ix));
  });
  return std::static_pointer_cast<const IvfIndex>(p);
}

std::vector<ExtraSection> IvfIndex::sections() const {
  const IvfMetaLayout ml(lists_, dims_, float_dims_);
  const IvfWordsLayout wl(positions_, code_words(positions_, dims_));
  // The arrays are views (built or mapped): gather them into section bytes.
  std::vector<std::byte> mv(ml.total), wv(wl.total);
  auto* m = reinterpret_cast<uint8_t*>(mv.data());
  auto* w = reinterpret_cast<uint8_t*>(wv.data());
  write_meta_head(m, ml, {lists_, dims_, float_dims_, source_, iterations_, n_words_, positions_, seed_}, offsets_,
                  sizes_);
  std::memcpy(m + ml.code_centroids, code_centroids_, 4 * size_t{lists_} * dims_);
  std::memcpy(m + ml.float_centroids, float_centroids_, 4 * size_t{lists_} * float_dims_);
  std::memcpy(w + wl.ids, ids_, 4 * positions_);
  std::memcpy(w + wl.codes, codes_, 8 * code_words(positions_, dims_));
  std::memcpy(w + wl.inv_norms, inv_norms_, 4 * positions_);
  std::vector<ExtraSection> out;
  out.push_back({"IVFM", std::move(mv)});
  out.push_back({"IVFW", std::move(wv)});
  return out;
}

}  // namespace igla
