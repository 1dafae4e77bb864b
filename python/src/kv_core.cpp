// igla Python module: KeyedVectorsCore, the C++ object behind igla.KeyedVectors (an Engine over a
// shared index, plus the float32 answers of device="float" and gensim's weighted most_similar).
#include <cmath>

#include "igla/error.hpp"
#include "keyed_vectors.hpp"

namespace igla::py_binding {

KeyedVectorsCore::KeyedVectorsCore(const std::string& path, const std::string& device, int threads,
                                   size_t candidates, bool lower)
    : device_(device), candidates_(candidates), exact_(device == "float") {
  SearcherOptions so;
  so.backend = device;
  so.cpu.threads = threads;
  EngineOptions eo;
  eo.lower = lower;
  if (exact_) eo.float_form = FloatForm::Float32;  // the float peer scores float32 queries
  engine_ = std::make_shared<const Engine>(open_index(path), so, eo);
  if (exact_ && !index().has_float())
    throw Error("device 'float' needs the float32 vectors, which " + path +
                " does not keep: build it with keep_float=True (igla convert --keep-float)");
}

namespace {
// Cosine of two float32 rows, accumulated in double.
float row_cosine(const float* a, const float* b, size_t d) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < d; ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return aa > 0 && bb > 0 ? static_cast<float>(ab / std::sqrt(aa * bb)) : 0.0f;
}
}  // namespace

float KeyedVectorsCore::similarity(uint32_t a, uint32_t b) const {
  if (!exact_) return engine_->cosine(a, b, params(1));
  const size_t d = index().float_dims();
  const float* fv = index().float_vectors().data();
  return row_cosine(fv + size_t{a} * d, fv + size_t{b} * d, d);
}

std::vector<WordHit> KeyedVectorsCore::most_similar_terms(std::span<const uint32_t> ids, std::span<const float> id_w,
                                                          std::span<const float> vecs, std::span<const float> vec_w,
                                                          std::span<const uint32_t> exclude,
                                                          const SearchParams& p) const {
  const Index& ix = index();
  const size_t d = ix.float_dims(), n_terms = ids.size() + vec_w.size();
  if (n_terms == 0) throw Error("most_similar needs at least one word or vector");
  FloatForm form = engine_->options().float_form;
  if (form == FloatForm::Auto) form = ix.rerank() != Rerank::None ? FloatForm::Rows : FloatForm::None;
  std::vector<std::vector<int8_t>> trits(n_terms, std::vector<int8_t>(ix.dims()));
  std::vector<float> w(n_terms), fw(n_terms), rows(n_terms * d);
  for (size_t i = 0; i < n_terms; ++i) {
    float* row = rows.data() + i * d;
    if (i < ids.size()) {  // a word: its codes with the cosine's weight, its rerank row or float32 vector
      trits[i] = ix.trits(ids[i]);
      w[i] = id_w[i] * ix.codes().inv_norms[ids[i]];
      fw[i] = id_w[i];
      if (form == FloatForm::Float32) {
        const float* f = ix.float_vectors().data() + size_t{ids[i]} * d;
        std::copy(f, f + d, row);
      } else if (form == FloatForm::Rows) {
        ix.rerank_row(ids[i], std::span<float>(row, d));
      }
    } else {  // a vector: quantized as the index was; it counts with its length, as in gensim's mean
      const size_t j = i - ids.size();
      const std::span<const float> x = vecs.subspan(j * d, d);
      ix.transform().quantize(x, trits[i]);
      double n2 = 0;
      for (float value : x) n2 += double(value) * value;
      const float len = static_cast<float>(std::sqrt(n2));
      w[i] = vec_w[j] * len * inv_norm_from_nnz(count_nonzero(trits[i]));
      fw[i] = vec_w[j] * len;
      std::copy(x.begin(), x.end(), row);
    }
  }
  std::vector<std::span<const int8_t>> terms(trits.begin(), trits.end());
  QueryBatch b(ix.dims(), Combine::Sum);
  double scale = 1.0;
  if (form == FloatForm::None) {
    b.add_query(terms, w, exclude);
  } else {
    std::vector<std::span<const float>> fterms(n_terms);
    std::vector<double> m(d, 0.0);  // the combined direction sum(fw_i unit_i): gensim's score is the cosine to it
    for (size_t i = 0; i < n_terms; ++i) {
      fterms[i] = std::span<const float>(rows.data() + i * d, d);
      double n2 = 0;
      for (float value : fterms[i]) n2 += double(value) * value;
      const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
      for (size_t k = 0; k < d; ++k) m[k] += fw[i] * fterms[i][k] * inv;
    }
    double m2 = 0;
    for (double value : m) m2 += value * value;
    scale = m2 > 1e-24 ? 1.0 / std::sqrt(m2) : 1.0;
    b.add_query(terms, w, fterms, fw, exclude);
  }
  SearchResults r = engine_->searcher().search(b, p);
  std::vector<WordHit> hits = engine_->to_words(r.of(0));
  if (scale != 1.0)
    for (WordHit& h : hits) h.score = static_cast<float>(h.score * scale);
  return hits;
}

std::string KeyedVectorsCore::doesnt_match(const std::vector<std::string>& words) const {
  if (!exact_) return engine_->doesnt_match(words, params(1));
  // gensim's rank_by_centrality: the unit vector least aligned with the normalized mean of them all
  // (ties: the smaller word, as gensim's sort of (score, word) pairs gives).
  const size_t d = index().float_dims();
  const float* fv = index().float_vectors().data();
  std::vector<std::vector<double>> unit;
  std::vector<double> mean(d, 0.0);
  for (uint32_t id : ids(words)) {
    std::vector<double> u(fv + size_t{id} * d, fv + size_t{id + 1} * d);
    double n2 = 0;
    for (double v : u) n2 += v * v;
    for (double& v : u) v = n2 > 0 ? v / std::sqrt(n2) : 0.0;
    for (size_t i = 0; i < d; ++i) mean[i] += u[i];
    unit.push_back(std::move(u));
  }
  size_t worst = 0;
  double worst_dot = INFINITY;
  for (size_t w = 0; w < unit.size(); ++w) {
    double dot = 0;
    for (size_t i = 0; i < d; ++i) dot += unit[w][i] * mean[i];
    if (dot < worst_dot || (dot == worst_dot && words[w] < words[worst])) worst_dot = dot, worst = w;
  }
  return words[worst];
}

SearchParams KeyedVectorsCore::params(size_t k, size_t restrict_vocab, long candidates) const {
  SearchParams p;
  p.k = k;
  p.limit = restrict_vocab;
  p.candidates = candidates < 0 ? candidates_ : static_cast<size_t>(candidates);
  return p;
}

std::vector<uint32_t> KeyedVectorsCore::ids(const std::vector<std::string>& words) const {
  std::vector<uint32_t> out;
  out.reserve(words.size());
  for (const auto& w : words) out.push_back(engine_->id(w));
  return out;
}

void KeyedVectorsCore::float_vector(uint32_t id, bool norm, float* out) const {
  const Index& ix = index();
  const size_t d = ix.float_dims();
  if (ix.has_float()) {
    const float* row = ix.float_vectors().data() + size_t{id} * d;
    std::copy(row, row + d, out);
  } else if (ix.rerank() != Rerank::None) {
    ix.rerank_row(id, std::span<float>(out, d));
  } else {
    throw Error("the index " + (ix.path().empty() ? std::string("(built in memory)") : ix.path()) +
                " keeps neither float32 vectors nor rerank rows: build it with keep_float=True or rerank='int8'");
  }
  if (norm) {
    double s = 0;
    for (size_t i = 0; i < d; ++i) s += double(out[i]) * double(out[i]);
    if (s > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(s));
      for (size_t i = 0; i < d; ++i) out[i] *= inv;
    }
  }
}

}  // namespace igla::py_binding
