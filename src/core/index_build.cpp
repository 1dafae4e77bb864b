// Building an index in memory from float vectors: the vocabulary tables, the transform fit,
// quantization into the blocked codes, norms, rerank rows, and the sections laid out as a file
// image (then parsed and verified exactly as a file read from disk).
#include <cmath>
#include <numeric>

#include "core/index_image.hpp"
#include "core/rerank.hpp"
#include "core/transform.hpp"

namespace igla {

namespace {

struct SectionBlob {
  std::string tag;
  uint32_t flags;
  std::vector<char> bytes;
};

template <class T>
std::vector<char> as_bytes(const std::vector<T>& v) {
  std::vector<char> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// The input as a hostile file may give it: sizes in range, every value finite.
void check_input(const FloatVectors& v) {
  const size_t n = v.size();
  const uint32_t dims = v.dims;
  if (dims == 0) throw Error("cannot build an index of 0-dimensional vectors");
  if (dims > format::kMaxDims)
    throw Error("cannot build an index of " + std::to_string(dims) + "-dimensional vectors (at most " +
                std::to_string(format::kMaxDims) + ")");
  if (n == 0) throw Error("cannot build an index of an empty vocabulary");
  if (n > format::kMaxWords) throw Error("too many words for one index (2^32 at most)");
  if (v.data.size() != n * dims) throw Error("vector data does not match words x dims");
  for (size_t i = 0; i < n; ++i)
    for (uint32_t d = 0; d < dims; ++d)
      if (!std::isfinite(v.data[i * dims + d]))
        throw Error("the vector of word '" + v.words[i] + "' (entry " + std::to_string(i + 1) + ") holds " +
                    (std::isnan(v.data[i * dims + d]) ? "NaN" : "infinity") + " in dim " + std::to_string(d + 1));
}

}  // namespace

Index Index::build(const FloatVectors& v, const QuantParams& q, bool keep_float, const Progress& progress) {
  check_input(v);
  const size_t n = v.size();
  const uint32_t dims = v.dims;

  // Words: offsets and bytes, then the ids sorted by bytes (duplicates found here).
  std::vector<uint32_t> offsets(n + 1, 0);
  std::string bytes;
  for (size_t i = 0; i < n; ++i) {
    if (v.words[i].empty()) throw Error("word " + std::to_string(i) + " is empty");
    bytes += v.words[i];
    if (bytes.size() > UINT32_MAX) throw Error("vocabulary text larger than 4 GiB");
    offsets[i + 1] = static_cast<uint32_t>(bytes.size());
  }
  std::vector<uint32_t> sorted(n);
  std::iota(sorted.begin(), sorted.end(), 0u);
  std::sort(sorted.begin(), sorted.end(), [&](uint32_t a, uint32_t b) {
    return std::string_view(v.words[a]) < std::string_view(v.words[b]) || (v.words[a] == v.words[b] && a < b);
  });
  for (size_t i = 1; i < n; ++i)
    if (v.words[sorted[i]] == v.words[sorted[i - 1]])
      throw Error("duplicate word '" + v.words[sorted[i]] + "' (entries " + std::to_string(sorted[i - 1]) + " and " +
                  std::to_string(sorted[i]) + ")");

  if (q.method != Quantization::Rotated && q.code_dims && q.code_dims != dims)
    throw Error("only the rotated quantization changes the number of dims");
  if (q.code_dims > format::kMaxDims)
    throw Error("at most " + std::to_string(format::kMaxDims) + " code dims, asked for " + std::to_string(q.code_dims));
  if (!std::isfinite(q.threshold_factor) || q.threshold_factor < 0.0f || q.threshold_factor > format::kMaxThresholdFactor)
    throw Error("threshold factor must be a number from 0 to " +
                std::to_string(static_cast<int>(format::kMaxThresholdFactor)) + ", got " +
                std::to_string(q.threshold_factor));
  const FittedTransform fit = fit_transform(v, q);
  const Transform xf = fit.view(q);
  const uint32_t cdims = fit.out_dims;

  // Codes and norms, quantized in parallel.
  const size_t np = padded_words(n);
  std::vector<uint64_t> codes(code_words(n, cdims), 0);
  std::vector<float> norms(2 * np, 0.0f);  // norm[np] then inv_norm[np]
  const long chunk = 4096;
  const long n_chunks = static_cast<long>((n + chunk - 1) / chunk);
  long done = 0;
#pragma omp parallel for schedule(dynamic, 1)
  for (long c = 0; c < n_chunks; ++c) {
    std::vector<int8_t> t(cdims);
    std::vector<float> y(cdims);
    for (size_t i = static_cast<size_t>(c * chunk); i < std::min(n, static_cast<size_t>((c + 1) * chunk)); ++i) {
      xf.apply(v.row(i), y);
      quantize_seed(y, q.threshold_factor, t);
      pack_into_blocks(t, i, codes.data());
      const uint32_t nnz = count_nonzero(t);
      norms[i] = std::sqrt(static_cast<float>(nnz));
      norms[np + i] = inv_norm_from_nnz(nnz);
    }
    if (progress) {
#pragma omp critical
      progress(static_cast<uint64_t>(++done) * chunk > n ? n : static_cast<uint64_t>(done) * chunk, n);
    }
  }

  std::vector<SectionBlob> blobs;
  std::vector<char> vocb = as_bytes(offsets);
  vocb.insert(vocb.end(), bytes.begin(), bytes.end());
  blobs.push_back({"VOCB", 0, std::move(vocb)});
  blobs.push_back({"VSRT", 0, as_bytes(sorted)});
  blobs.push_back({"CODE", 0, as_bytes(codes)});
  blobs.push_back({"NORM", 0, as_bytes(norms)});
  if (keep_float) blobs.push_back({"F32V", format::kLazy, as_bytes(v.data)});
  if (q.method != Quantization::Seed) {
    format::XfrmHeader xh{};
    xh.method = static_cast<uint32_t>(q.method);
    xh.in_dims = dims;
    xh.out_dims = cdims;
    xh.seed = q.seed;
    xh.fit_words = static_cast<uint32_t>(q.fit_words ? std::min<size_t>(q.fit_words, n) : n);
    std::vector<char> x(sizeof xh);
    std::memcpy(x.data(), &xh, sizeof xh);
    for (const auto* part : {&fit.mean, &fit.scale, &fit.rotation}) {
      const auto b = as_bytes(*part);
      x.insert(x.end(), b.begin(), b.end());
    }
    blobs.push_back({"XFRM", 0, std::move(x)});
  }
  if (q.rerank != Rerank::None)
    blobs.push_back({q.rerank == Rerank::Int8 ? "RRI8" : "RF16", 0, encode_rerank_rows(v, q.rerank)});

  format::Header h{};
  std::memcpy(h.magic, format::kMagic, 8);
  h.version = format::kVersion;
  h.n_words = n;
  h.dims = cdims;
  h.float_dims = dims;
  h.quant_method = static_cast<uint32_t>(q.method);
  h.threshold_factor = q.threshold_factor;

  std::vector<image::Piece> pieces;
  for (const auto& b : blobs) pieces.push_back({b.tag, b.flags, b.bytes.data(), b.bytes.size()});
  Index ix;
  ix.storage_->size = image::assemble(image::lay_out(h, pieces), pieces, ix.storage_->owned);
  ix.storage_->data = ix.storage_->owned.get();
  parse_image(ix, "");
  return ix;
}

}  // namespace igla
