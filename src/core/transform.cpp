// The quantization modes: their names, fitting the transform to a vocabulary, applying it.
#include "core/transform.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <string>

#include "core/fdot.hpp"
#include "igla/error.hpp"

namespace igla {

float default_threshold_factor(Quantization m) {
  switch (m) {
    case Quantization::Seed: return kDefaultThresholdFactor;
    case Quantization::Centered: return 0.7f;
    case Quantization::Rotated: return 0.7f;
  }
  return kDefaultThresholdFactor;
}

void parse_quantization(std::string_view spec, QuantParams& q) {
  const std::string_view name = spec.substr(0, spec.find(':'));
  const std::string_view arg = name.size() < spec.size() ? spec.substr(name.size() + 1) : std::string_view();
  auto bad = [&](const std::string& why) {
    throw Error("bad quantization '" + std::string(spec) + "': " + why +
                " (expected seed, centered, rotated or rotated:D, e.g. rotated:512)");
  };
  if (name == "seed" || name == "centered") {
    if (name.size() != spec.size()) bad("only rotated takes a dimension");
    q.method = name == "seed" ? Quantization::Seed : Quantization::Centered;
    q.code_dims = 0;
    return;
  }
  if (name != "rotated") bad("unknown method");
  q.method = Quantization::Rotated;
  q.code_dims = 0;
  if (name.size() == spec.size()) return;
  uint32_t d = 0;
  const auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), d);
  if (ec != std::errc() || p != arg.data() + arg.size() || d == 0 || d > 65536)
    bad("D must be a whole number of dims from 1 to 65536");
  q.code_dims = d;
}

std::string quantization_name(const QuantParams& q) {
  switch (q.method) {
    case Quantization::Seed: return "seed";
    case Quantization::Centered: return "centered";
    case Quantization::Rotated: return q.code_dims ? "rotated:" + std::to_string(q.code_dims) : "rotated";
  }
  return "?";
}

Rerank parse_rerank(std::string_view name) {
  if (name == "none") return Rerank::None;
  if (name == "int8") return Rerank::Int8;
  if (name == "f16") return Rerank::F16;
  throw Error("unknown rerank storage '" + std::string(name) + "' (expected none, int8 or f16)");
}

const char* rerank_name(Rerank r) {
  switch (r) {
    case Rerank::None: return "none";
    case Rerank::Int8: return "int8";
    case Rerank::F16: return "f16";
  }
  return "?";
}

void Transform::apply(std::span<const float> x, std::span<float> y) const {
  if (x.size() != in_dims)
    throw Error("transform: vector of " + std::to_string(x.size()) + " dims, expected " + std::to_string(in_dims));
  if (y.size() != out_dims) throw Error("transform: output of " + std::to_string(y.size()) + " dims");
  if (mean.empty()) {  // seed: the identity
    std::copy(x.begin(), x.end(), y.begin());
    return;
  }
  float buf[512];
  std::vector<float> big;
  float* c = in_dims <= 512 ? buf : (big.resize(in_dims), big.data());
  for (uint32_t d = 0; d < in_dims; ++d) c[d] = (x[d] - mean[d]) * scale[d];
  if (rotation.empty()) {
    std::copy(c, c + in_dims, y.begin());
    return;
  }
  for (uint32_t r = 0; r < out_dims; ++r) y[r] = fdot(rotation.data() + size_t{r} * in_dims, c, in_dims);
}

void Transform::quantize(std::span<const float> x, std::span<int8_t> trits) const {
  std::vector<float> y(out_dims);
  apply(x, y);
  quantize_seed(y, threshold_factor, trits);
}

Transform FittedTransform::view(const QuantParams& q) const {
  Transform t;
  t.method = q.method;
  t.in_dims = in_dims;
  t.out_dims = out_dims;
  t.threshold_factor = q.threshold_factor;
  t.seed = q.seed;
  t.mean = mean;
  t.scale = scale;
  t.rotation = rotation;
  return t;
}

namespace {

// The `k` eigenvectors of the symmetric D x D matrix `a` with the largest eigenvalues, as rows
// (k x D), by cyclic Jacobi rotations (D is a word vector's dims: a few hundred at most).
std::vector<double> top_eigenvectors(std::vector<double> a, size_t D, size_t k) {
  std::vector<double> v(D * D, 0.0);  // columns: eigenvectors
  for (size_t i = 0; i < D; ++i) v[i * D + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (size_t p = 0; p < D; ++p) {
      diag += a[p * D + p] * a[p * D + p];
      for (size_t q = p + 1; q < D; ++q) off += a[p * D + q] * a[p * D + q];
    }
    if (off <= 1e-22 * diag) break;
    for (size_t p = 0; p < D; ++p)
      for (size_t q = p + 1; q < D; ++q) {
        const double apq = a[p * D + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[q * D + q] - a[p * D + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double cs = 1 / std::sqrt(t * t + 1), sn = t * cs;
        for (size_t r = 0; r < D; ++r) {  // a = J^T a J, columns then rows
          const double arp = a[r * D + p], arq = a[r * D + q];
          a[r * D + p] = cs * arp - sn * arq;
          a[r * D + q] = sn * arp + cs * arq;
        }
        for (size_t r = 0; r < D; ++r) {
          const double apr = a[p * D + r], aqr = a[q * D + r];
          a[p * D + r] = cs * apr - sn * aqr;
          a[q * D + r] = sn * apr + cs * aqr;
        }
        for (size_t r = 0; r < D; ++r) {
          const double vrp = v[r * D + p], vrq = v[r * D + q];
          v[r * D + p] = cs * vrp - sn * vrq;
          v[r * D + q] = sn * vrp + cs * vrq;
        }
      }
  }
  std::vector<size_t> order(D);
  for (size_t i = 0; i < D; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a[x * D + x] > a[y * D + y]; });
  std::vector<double> out(k * D);
  for (size_t i = 0; i < k; ++i)
    for (size_t d = 0; d < D; ++d) out[i * D + d] = v[d * D + order[i]];
  return out;
}

}  // namespace

void check_rotation_cost(uint32_t in_dims, uint32_t out_dims) {
  const std::string what = "rotated" + (out_dims ? ":" + std::to_string(out_dims) : std::string()) +
                           " on vectors of " + std::to_string(in_dims) + " dims";
  if (out_dims < in_dims) {
    if (in_dims > kMaxReducedDims)
      throw Error(what + ": reducing the dims (D < d) takes O(d^3) eigen-decomposition steps; it "
                  "is limited to d <= " + std::to_string(kMaxReducedDims) +
                  " (use rotated:D with D >= d, or --quantization centered, linear in d)");
    return;
  }
  const double work = double(in_dims) * in_dims * out_dims;
  if (work > double(kMaxRotationWork))
    throw Error(what + ": a D x d random rotation takes d*d*D = " + std::to_string(uint64_t(work)) +
                " steps; at most " + std::to_string(kMaxRotationWork) +
                " (about 10 s) are allowed (use a smaller D, or --quantization centered, linear in d)");
}

FittedTransform fit_transform(const FloatVectors& v, const QuantParams& q) {
  FittedTransform f;
  f.in_dims = v.dims;
  f.out_dims = q.method != Quantization::Rotated ? v.dims : q.code_dims ? q.code_dims : plane_words(v.dims) * 64;
  if (q.method == Quantization::Seed) return f;
  if (q.method == Quantization::Rotated) check_rotation_cost(f.in_dims, f.out_dims);
  const size_t n = q.fit_words ? std::min<size_t>(q.fit_words, v.size()) : v.size(), D = v.dims;
  std::vector<double> sum(D, 0.0), sq(D, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < D; ++d) sum[d] += v.data[i * D + d];
  f.mean.resize(D);
  for (size_t d = 0; d < D; ++d) f.mean[d] = static_cast<float>(sum[d] / double(n));
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < D; ++d) {
      const double c = double(v.data[i * D + d]) - f.mean[d];
      sq[d] += c * c;
    }
  f.scale.assign(D, 1.0f);
  if (q.scale_dims)
    for (size_t d = 0; d < D; ++d) {
      const double sd = std::sqrt(sq[d] / double(n));
      f.scale[d] = sd > 1e-12 ? static_cast<float>(1.0 / sd) : 1.0f;  // a constant dimension: left as is
    }
  if (q.method != Quantization::Rotated) return f;
  if (f.out_dims >= D) {  // an expansion keeps every direction: a plain random orthogonal map
    f.rotation = random_orthogonal(f.out_dims, f.in_dims, q.seed);
    return f;
  }
  // A reduction keeps the top principal directions (of the centered, scaled vectors), then
  // rotates them randomly so that each code dim carries a similar share of the variance.
  std::vector<double> cov(D * D, 0.0);
  std::vector<double> c(D);
  for (size_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < D; ++d) c[d] = (double(v.data[i * D + d]) - f.mean[d]) * f.scale[d];
    for (size_t a = 0; a < D; ++a)
      for (size_t b = a; b < D; ++b) cov[a * D + b] += c[a] * c[b];
  }
  for (size_t a = 0; a < D; ++a)
    for (size_t b = 0; b < a; ++b) cov[a * D + b] = cov[b * D + a];
  const std::vector<double> pcs = top_eigenvectors(cov, D, f.out_dims);
  const std::vector<float> r = random_orthogonal(f.out_dims, f.out_dims, q.seed);
  f.rotation.assign(size_t{f.out_dims} * D, 0.0f);
  for (size_t i = 0; i < f.out_dims; ++i)
    for (size_t d = 0; d < D; ++d) {
      double s = 0;
      for (size_t j = 0; j < f.out_dims; ++j) s += double(r[i * f.out_dims + j]) * pcs[j * D + d];
      f.rotation[i * D + d] = static_cast<float>(s);
    }
  return f;
}

std::vector<float> random_orthogonal(uint32_t rows, uint32_t cols, uint64_t seed) {
  // Orthonormalize `m` vectors of length `len`: the columns when tall, the rows when wide.
  const bool tall = rows >= cols;
  const size_t m = tall ? cols : rows, len = tall ? rows : cols;
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (double(rng() >> 11) + 0.5) * 0x1.0p-53; };  // (0, 1)
  std::vector<double> g(m * len);
  for (size_t i = 0; i < g.size(); i += 2) {  // Box-Muller: two normals per pair of uniforms
    const double r = std::sqrt(-2.0 * std::log(uniform())), t = 2.0 * M_PI * uniform();
    g[i] = r * std::cos(t);
    if (i + 1 < g.size()) g[i + 1] = r * std::sin(t);
  }
  for (size_t i = 0; i < m; ++i) {
    double* vi = &g[i * len];
    for (int pass = 0; pass < 2; ++pass)  // the second pass removes what rounding left
      for (size_t j = 0; j < i; ++j) {
        const double* vj = &g[j * len];
        double dot = 0;
        for (size_t k = 0; k < len; ++k) dot += vi[k] * vj[k];
        for (size_t k = 0; k < len; ++k) vi[k] -= dot * vj[k];
      }
    double nrm = 0;
    for (size_t k = 0; k < len; ++k) nrm += vi[k] * vi[k];
    nrm = std::sqrt(nrm);
    if (nrm < 1e-9) throw Error("random_orthogonal: degenerate draw");  // probability ~0
    for (size_t k = 0; k < len; ++k) vi[k] /= nrm;
  }
  std::vector<float> out(size_t{rows} * cols);
  for (size_t i = 0; i < m; ++i)
    for (size_t k = 0; k < len; ++k)
      (tall ? out[k * cols + i] : out[i * cols + k]) = static_cast<float>(g[i * len + k]);
  return out;
}

}  // namespace igla
