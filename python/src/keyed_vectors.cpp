#include "keyed_vectors.hpp"

#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "arrays.hpp"
#include "igla/error.hpp"

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

namespace {

using Core = KeyedVectorsCore;

size_t opt_size(const py::object& o, size_t dflt) { return o.is_none() ? dflt : o.cast<size_t>(); }
long opt_candidates(const py::object& o) {
  if (o.is_none()) return -1;
  const long c = o.cast<long>();
  if (c < 0) throw py::value_error("candidates must be >= 0 (0: ternary scores only), got " + std::to_string(c));
  return c;
}
void check_k(size_t k) {
  if (k == 0) throw py::value_error("k must be >= 1");
}

py::list hit_list(const std::vector<WordHit>& hits) {
  py::list out(hits.size());
  for (size_t i = 0; i < hits.size(); ++i)
    out[i] = py::make_tuple(py::str(hits[i].word), py::float_(static_cast<double>(hits[i].score)));
  return out;
}

// Copies `r` into the (n, k) result arrays (GIL not needed: raw pointers taken beforehand).
void fill(const SearchResults& r, size_t n, size_t k, float* scores, int64_t* ids) {
  for (size_t q = 0; q < n; ++q) {
    const size_t c = q < r.count.size() ? r.count[q] : 0;
    const Hit* h = r.hits.data() + q * r.k;
    for (size_t j = 0; j < k; ++j) {
      scores[q * k + j] = j < c ? h[j].score : -std::numeric_limits<float>::infinity();
      ids[q * k + j] = j < c ? static_cast<int64_t>(h[j].id) : -1;
    }
  }
}

// Runs `search` (which fills a SearchResults) without the GIL and returns (scores, ids).
template <class F>
py::tuple batch(size_t n, size_t k, F&& search) {
  ResultArrays out(n, k);
  float* s = out.scores.mutable_data();
  int64_t* i = out.ids.mutable_data();
  {
    py::gil_scoped_release nogil;
    const SearchResults r = search();
    fill(r, n, k, s, i);
  }
  return out.tuple();
}

// gensim's has_index_for: a known word, or an int that is a valid index.
bool has_key(const Core& c, const py::object& key) {
  if (py::isinstance<py::str>(key)) return c.contains(key.cast<std::string>());
  if (py::isinstance<py::int_>(key) || py::hasattr(key, "__index__")) {
    if (py::isinstance<py::bool_>(key)) return false;
    const auto idx = py::reinterpret_steal<py::int_>(PyNumber_Index(key.ptr()));
    if (!idx) {
      PyErr_Clear();
      return false;
    }
    const long long i = idx.cast<long long>();
    return i >= 0 && static_cast<size_t>(i) < c.size();
  }
  return false;
}

std::vector<std::string> word_list(const py::handle& words, const char* name) {
  if (py::isinstance<py::str>(words))
    throw py::type_error(std::string(name) + " must be a list of words, got a single str");
  return words.cast<std::vector<std::string>>();
}

// Seconds the last most_similar / similarity call of this thread spent in the C++ call itself
// (python -m igla.bench subtracts it from the call's wall time: the binding's own overhead).
thread_local double t_last_cpp_seconds = 0;

template <class Clock = std::chrono::steady_clock>
double seconds_since(typename Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

void bind_keyed_vectors(py::module_& m) {
  py::class_<Core, std::shared_ptr<Core>>(m, "KeyedVectorsBase", R"doc(
The search core of igla.KeyedVectors (use igla.load() or igla.KeyedVectors(path)).
Immutable; every search releases the GIL, and any number of threads may use one object at once.)doc")
      .def(py::init([](const std::string& path, const std::string& device, int threads, size_t candidates,
                       bool lower) {
             py::gil_scoped_release nogil;
             return std::make_shared<Core>(path, device, threads, candidates, lower);
           }),
           py::arg("path"), py::arg("device") = "cpu", py::arg("threads") = 0,
           py::arg("candidates") = kDefaultCandidates, py::arg("lower") = false)

      // ---- vocabulary
      .def("__len__", &Core::size)
      .def("__contains__", &has_key)
      .def("has_index_for", &has_key,
           "True for a word of the vocabulary or a word id in range (gensim's has_index_for).")
      .def("get_index", [](const Core& c, const py::object& key, const py::object& dflt) -> py::object {
        if (py::isinstance<py::int_>(key)) {
          const long long i = key.cast<long long>();
          if (i >= 0 && static_cast<size_t>(i) < c.size()) return py::int_(i);
        } else if (py::isinstance<py::str>(key)) {
          const auto w = key.cast<std::string>();
          if (!dflt.is_none() && !c.contains(w)) return dflt;
          return py::int_(c.id(w));  // throws KeyError naming the closest words
        }
        if (!dflt.is_none()) return dflt;
        throw py::key_error("key " + py::repr(key).cast<std::string>() + " not present");
      }, py::arg("key"), py::arg("default") = py::none(),
         "Word id of `key` (a word, or an id already); KeyError naming the closest words if unknown, "
         "unless `default` is given.")
      .def("_all_keys", [](const Core& c) {
        py::list out(c.size());
        for (size_t i = 0; i < c.size(); ++i) {
          const std::string_view w = c.index().word(i);
          out[i] = py::str(w.data(), w.size());
        }
        return out;
      })
      .def("to_keys", [](const Core& c, const py::object& ids) -> py::object {
        auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(ids);
        if (!a) throw py::type_error("to_keys: ids must be an integer array");
        auto key = [&](int64_t i) -> py::object {
          if (i < 0) return py::none();
          if (static_cast<size_t>(i) >= c.size())
            throw py::index_error("word id " + std::to_string(i) + " is out of range [0, " + std::to_string(c.size()) + ")");
          const std::string_view w = c.index().word(static_cast<size_t>(i));
          return py::str(w.data(), w.size());
        };
        if (a.ndim() == 0) return key(*a.data());
        if (a.ndim() == 1) {
          py::list out(a.shape(0));
          for (py::ssize_t i = 0; i < a.shape(0); ++i) out[i] = key(a.data()[i]);
          return out;
        }
        if (a.ndim() != 2) throw py::value_error("to_keys: ids must be 1-D or 2-D");
        py::list rows(a.shape(0));
        for (py::ssize_t r = 0; r < a.shape(0); ++r) {
          py::list row(a.shape(1));
          for (py::ssize_t j = 0; j < a.shape(1); ++j) row[j] = key(a.data()[r * a.shape(1) + j]);
          rows[r] = row;
        }
        return rows;
      }, py::arg("ids"), "Words of word ids (a (n, k) array from search() gives n lists; -1 gives None).")

      // ---- what the index is
      .def_property_readonly("vector_size", [](const Core& c) { return c.index().float_dims(); },
                             "Dimensions of the float vectors (gensim's vector_size).")
      .def_property_readonly("code_dims", [](const Core& c) { return c.index().dims(); }, "Ternary code dimensions.")
      .def_property_readonly("candidates", &Core::candidates,
                             "Ternary candidates rescored per query by default (0: ternary scores only).")
      .def_property_readonly("device", &Core::device)
      .def_property_readonly("path", [](const Core& c) { return c.index().path(); })
      .def("info", [](const Core& c) {
        const Index& ix = c.index();
        py::dict d;
        d["path"] = ix.path();
        d["words"] = ix.size();
        d["float_dims"] = ix.float_dims();
        d["code_dims"] = ix.dims();
        d["quantization"] = quantization_name(ix.quant());
        d["threshold_factor"] = ix.quant().threshold_factor;
        d["rerank"] = rerank_name(ix.rerank());
        d["float32"] = ix.has_float();
        d["file_bytes"] = ix.file_size();
        d["searcher"] = c.engine().searcher().name();
        d["candidates"] = c.candidates();
        return d;
      }, "What the index holds and which searcher answers (a dict).")

      // ---- vectors
      .def("get_vector", [](const Core& c, const py::object& key, bool norm) {
        const uint32_t id = py::isinstance<py::str>(key) ? c.id(key.cast<std::string>()) : [&] {
          const long long i = key.cast<long long>();
          if (i < 0 || static_cast<size_t>(i) >= c.size())
            throw py::key_error("word id " + std::to_string(i) + " is out of range [0, " + std::to_string(c.size()) + ")");
          return static_cast<uint32_t>(i);
        }();
        py::array_t<float> out(static_cast<py::ssize_t>(c.index().float_dims()));
        c.float_vector(id, norm, out.mutable_data());
        return out;
      }, py::arg("key"), py::arg("norm") = false, R"doc(
The float vector of a word (or word id): the float32 vector kept in the index (unit length when
norm=True), else its rerank row (a unit vector, int8 or float16 precision). KeyError when unknown.)doc")
      .def("_float32_vectors", [](const py::object& self) -> py::object {
        const Core& c = self.cast<const Core&>();
        if (!c.index().has_float()) return py::none();
        std::span<const float> v;
        {
          py::gil_scoped_release nogil;
          v = c.index().float_vectors();  // checks the section's checksum on first use
        }
        const auto n = static_cast<py::ssize_t>(c.size()), d = static_cast<py::ssize_t>(c.index().float_dims());
        py::array_t<float> a({n, d}, {d * py::ssize_t(sizeof(float)), py::ssize_t(sizeof(float))}, v.data(), self);
        py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        return a;
      }, "The float32 vectors kept in the index, (n, vector_size), read-only and not copied; None without them.")
      .def("_rerank_vectors", [](const Core& c) {
        const Index& ix = c.index();
        if (ix.rerank() == Rerank::None) throw Error("the index has no rerank rows");
        const size_t n = ix.size(), d = ix.float_dims();
        py::array_t<float> a({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)});
        float* out = a.mutable_data();
        py::gil_scoped_release nogil;
        for (size_t i = 0; i < n; ++i) ix.rerank_row(i, std::span<float>(out + i * d, d));
        return a;
      }, "The rerank rows decoded to float32 unit vectors, (n, vector_size) (a new array).")

      // ---- one query over words
      .def("similarity", [](const Core& c, const std::string& w1, const std::string& w2) {
        py::gil_scoped_release nogil;
        const auto t0 = std::chrono::steady_clock::now();
        const float sim = c.similarity(c.id(w1), c.id(w2));
        t_last_cpp_seconds = seconds_since(t0);
        return sim;
      }, py::arg("w1"), py::arg("w2"), R"doc(
Cosine similarity of two words: on their rerank rows when the index has them (and candidates > 0),
else on their ternary codes; with device="float", on the float32 vectors. KeyError naming the closest known words for an unknown word.)doc")
      .def("most_similar", [](const py::object& self, const py::object& positive, const py::object& negative,
                              const py::object& topn, const py::object& clip_start, const py::object& clip_end,
                              const py::object& restrict_vocab, const py::object& indexer) -> py::object {
        // Fast path, all in C++: words only, an int topn. Everything else: igla.KeyedVectors._most_similar_py.
        const Core& c = self.cast<const Core&>();
        const bool int_topn = PyLong_CheckExact(topn.ptr());
        if (int_topn && indexer.is_none() && (clip_start.is_none() || (PyLong_CheckExact(clip_start.ptr()) && clip_start.cast<long long>() == 0))) {
          const long long n = topn.cast<long long>();
          if (n < 1) return py::list();
          auto limit_of = [](const py::object& o) { return o.is_none() ? size_t{0} : o.cast<size_t>(); };
          const size_t limit = !restrict_vocab.is_none() && restrict_vocab.cast<bool>() ? limit_of(restrict_vocab)
                                                                                         : limit_of(clip_end);
          auto words = [](const py::object& o, std::vector<std::string>& out) {  // None, a str, or a list of str
            if (o.is_none()) return true;
            if (PyUnicode_CheckExact(o.ptr())) return out.push_back(o.cast<std::string>()), true;
            if (!PyList_CheckExact(o.ptr()) && !PyTuple_CheckExact(o.ptr())) return false;
            for (const auto& item : o) {
              if (!PyUnicode_CheckExact(item.ptr())) return false;
              out.push_back(item.cast<std::string>());
            }
            return true;
          };
          std::vector<std::string> pos, neg;
          if (words(positive, pos) && words(negative, neg) && !(pos.empty() && neg.empty()) &&
              ((pos.size() == 1 && neg.empty()) || !c.exact())) {
            std::vector<WordHit> hits;
            {
              py::gil_scoped_release nogil;
              const auto t0 = std::chrono::steady_clock::now();
              const SearchParams p = c.params(static_cast<size_t>(n), limit);
              hits = pos.size() == 1 && neg.empty() ? c.engine().nearest(pos[0], p) : c.engine().most_similar(pos, neg, p);
              t_last_cpp_seconds = seconds_since(t0);
            }
            return hit_list(hits);
          }
        }
        return self.attr("_most_similar_py")(positive, negative, topn, clip_start, clip_end, restrict_vocab, indexer);
      }, py::arg("positive") = py::none(), py::arg("negative") = py::none(), py::arg("topn") = 10,
         py::arg("clip_start") = 0, py::arg("clip_end") = py::none(), py::arg("restrict_vocab") = py::none(),
         py::arg("indexer") = py::none(), R"doc(
The topn words closest to the mean of the positive words' unit vectors minus the negative ones'
(gensim's most_similar): a list of (word, cosine), the inputs excluded.

positive / negative: a word, or a list of words, word ids, float vectors, or (key, weight) tuples.
restrict_vocab (or clip_end): consider only the first N words. topn=None returns the cosines of
every word (numpy over kv.vectors). Words go to the C++ search in one call (ternary scan, the top
`candidates` rescored on the rerank rows, GIL released); vectors and weights are combined into
one weighted query. Unknown words raise igla.UnknownWordError (a KeyError) naming the closest ones.)doc")
      .def("_nearest", [](const Core& c, const std::string& word, size_t topn, size_t restrict_vocab) {
        std::vector<WordHit> hits;
        {
          py::gil_scoped_release nogil;
          hits = c.engine().nearest(word, c.params(topn, restrict_vocab));
        }
        return hit_list(hits);
      })
      .def("_most_similar", [](const Core& c, const std::vector<std::string>& pos, const std::vector<std::string>& neg,
                               size_t topn, size_t restrict_vocab) {
        std::vector<WordHit> hits;
        {
          py::gil_scoped_release nogil;
          hits = c.engine().most_similar(pos, neg, c.params(topn, restrict_vocab));
        }
        return hit_list(hits);
      })
      .def("_most_similar_terms", [](const Core& c, const std::vector<uint32_t>& ids, const std::vector<float>& id_w,
                                     const py::object& vecs, const std::vector<float>& vec_w,
                                     const std::vector<uint32_t>& exclude, size_t topn, size_t restrict_vocab) {
        const size_t d = c.index().float_dims();
        py::array_t<float, py::array::c_style> v = vecs.is_none()
            ? py::array_t<float, py::array::c_style>(std::vector<py::ssize_t>{0, static_cast<py::ssize_t>(d)})
            : float_rows(vecs, d, "vector", true);
        if (ids.size() != id_w.size() || static_cast<size_t>(v.shape(0)) != vec_w.size())
          throw py::value_error("_most_similar_terms: one weight per word and per vector");
        for (uint32_t id : ids)
          if (id >= c.size()) throw py::index_error("word id " + std::to_string(id) + " is out of range");
        for (py::ssize_t i = 0; i < v.size(); ++i)
          if (!std::isfinite(v.data()[i]))
            throw py::value_error("vector " + std::to_string(i / static_cast<py::ssize_t>(d)) +
                                  " holds a value that is not a finite number");
        std::vector<WordHit> hits;
        {
          py::gil_scoped_release nogil;
          hits = c.most_similar_terms(ids, id_w, std::span<const float>(v.data(), v.size()), vec_w, exclude,
                                      c.params(topn, restrict_vocab));
        }
        return hit_list(hits);
      })
      .def("_analogy", [](const Core& c, const std::string& a, const std::string& b, const std::string& w,
                          const std::string& mode, size_t topn, size_t restrict_vocab) {
        const AnalogyMode m = parse_analogy_mode(mode);
        std::vector<WordHit> hits;
        {
          py::gil_scoped_release nogil;
          hits = c.engine().analogy(a, b, w, m, c.params(topn, restrict_vocab));
        }
        return hit_list(hits);
      })
      .def("_doesnt_match", [](const Core& c, const std::vector<std::string>& words) {
        py::gil_scoped_release nogil;
        return c.doesnt_match(words);
      })

      // ---- batches (FAISS's shape: scores, ids = kv.search(x, k))
      .def("search", [](const Core& c, const py::object& x, size_t k, const py::object& candidates,
                        const py::object& restrict_vocab) {
        check_k(k);
        auto a = float_rows(x, c.index().float_dims(), "x");
        const size_t n = static_cast<size_t>(a.shape(0));
        const SearchParams p = c.params(k, opt_size(restrict_vocab, 0), opt_candidates(candidates));
        const float* data = a.data();
        return batch(n, k, [&] { return c.engine().nearest_vectors(std::span<const float>(data, n * c.index().float_dims()), n, p); });
      }, py::arg("x"), py::arg("k") = 10, py::arg("candidates") = py::none(), py::arg("restrict_vocab") = py::none(),
         R"doc(
Nearest words of n float vectors, FAISS-style: scores, ids = kv.search(x, k).

x: float32 array (n, vector_size) (a 1-D array is not accepted: use x[None, :]); quantized as the
index was, searched in one call (GIL released), the top `candidates` rescored on the rerank rows.
Returns scores (n, k) float32 (cosines, best first) and ids (n, k) int64 (-1 / -inf where fewer
than k words qualify). kv.to_keys(ids) gives the words.)doc")
      .def("search_ids", [](const Core& c, const py::object& ids, size_t k, const py::object& candidates,
                            const py::object& restrict_vocab) {
        check_k(k);
        auto a = id_rows(ids, 0, c.size(), "ids");
        const size_t n = static_cast<size_t>(a.shape(0));
        const SearchParams p = c.params(k, opt_size(restrict_vocab, 0), opt_candidates(candidates));
        const uint32_t* d = a.data();
        return batch(n, k, [&] { return c.engine().nearest(std::span<const uint32_t>(d, n), p); });
      }, py::arg("ids"), py::arg("k") = 10, py::arg("candidates") = py::none(), py::arg("restrict_vocab") = py::none(),
         "Nearest words of words given by id (each word excluded from its own answers): (scores, ids).")
      .def("search_words", [](const Core& c, const py::object& words, size_t k, const py::object& candidates,
                              const py::object& restrict_vocab) {
        check_k(k);
        const auto w = word_list(words, "words");
        const SearchParams p = c.params(k, opt_size(restrict_vocab, 0), opt_candidates(candidates));
        std::vector<uint32_t> ids;
        return batch(w.size(), k, [&] {
          ids = c.ids(w);
          return c.engine().nearest(std::span<const uint32_t>(ids), p);
        });
      }, py::arg("words"), py::arg("k") = 10, py::arg("candidates") = py::none(), py::arg("restrict_vocab") = py::none(),
         "Nearest words of each word of a list (itself excluded), one search call: (scores, ids) arrays (n, k).")
      .def("analogies", [](const Core& c, const py::object& a, const py::object& b, const py::object& cc, size_t k,
                           const std::string& mode, const py::object& candidates, const py::object& restrict_vocab) {
        check_k(k);
        const auto wa = word_list(a, "a"), wb = word_list(b, "b"), wc = word_list(cc, "c");
        if (wa.size() != wb.size() || wa.size() != wc.size())
          throw py::value_error("analogies: a, b and c must have the same length, got " + std::to_string(wa.size()) +
                                ", " + std::to_string(wb.size()) + " and " + std::to_string(wc.size()));
        const AnalogyMode m = parse_analogy_mode(mode);
        const SearchParams p = c.params(k, opt_size(restrict_vocab, 0), opt_candidates(candidates));
        std::vector<std::array<uint32_t, 3>> abc(wa.size());
        return batch(wa.size(), k, [&] {
          for (size_t i = 0; i < wa.size(); ++i) abc[i] = {c.id(wa[i]), c.id(wb[i]), c.id(wc[i])};
          return c.engine().analogies(abc, m, p);
        });
      }, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("k") = 10, py::arg("mode") = "add",
         py::arg("candidates") = py::none(), py::arg("restrict_vocab") = py::none(), R"doc(
Analogies "a[i] is to b[i] as c[i] is to ?" (b - a + c) for lists of words, one search call; the
inputs are excluded. mode: "add" (3CosAdd, gensim's most_similar), "mul" (3CosMul) or "clamp".
Returns (scores, ids) arrays (n, k).)doc")
      .def("analogies_ids", [](const Core& c, const py::object& abc_ids, size_t k, const std::string& mode,
                               const py::object& candidates, const py::object& restrict_vocab) {
        check_k(k);
        auto a = id_rows(abc_ids, 3, c.size(), "abc");
        const size_t n = static_cast<size_t>(a.shape(0));
        const AnalogyMode m = parse_analogy_mode(mode);
        const SearchParams p = c.params(k, opt_size(restrict_vocab, 0), opt_candidates(candidates));
        const auto* d = reinterpret_cast<const std::array<uint32_t, 3>*>(a.data());
        return batch(n, k, [&] { return c.engine().analogies(std::span<const std::array<uint32_t, 3>>(d, n), m, p); });
      }, py::arg("abc"), py::arg("k") = 10, py::arg("mode") = "add", py::arg("candidates") = py::none(),
         py::arg("restrict_vocab") = py::none(), "Analogies over word ids, an (n, 3) integer array of a, b, c: (scores, ids).")
      .def("similarities", [](const Core& c, const py::object& w1, const py::object& w2) {
        const auto a = word_list(w1, "w1"), b = word_list(w2, "w2");
        if (a.size() != b.size())
          throw py::value_error("similarities: w1 and w2 must have the same length, got " + std::to_string(a.size()) +
                                " and " + std::to_string(b.size()));
        py::array_t<float> out(static_cast<py::ssize_t>(a.size()));
        float* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          for (size_t i = 0; i < a.size(); ++i) o[i] = c.similarity(c.id(a[i]), c.id(b[i]));
        }
        return out;
      }, py::arg("w1"), py::arg("w2"), "Cosine similarity of each pair (w1[i], w2[i]): a float32 array.")

      // ---- timing of the C++ calls themselves, for python -m igla.bench (seconds per call)
      .def_static("_last_cpp_seconds", [] { return t_last_cpp_seconds; },
                  "Seconds this thread's last most_similar / similarity call spent inside the C++ call.")
      .def("_time_cpp_search", [](const Core& c, const py::object& x, size_t k, int reps) {
        auto a = float_rows(x, c.index().float_dims(), "x");
        const size_t n = static_cast<size_t>(a.shape(0));
        const SearchParams p = c.params(k);
        const std::span<const float> xs(a.data(), n * c.index().float_dims());
        py::gil_scoped_release nogil;
        SearchResults r;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) r = c.engine().nearest_vectors(xs, n, p);
        return seconds_since(t0) / reps;
      })
      .def("_time_cpp_similarity", [](const Core& c, const std::string& a, const std::string& b, int reps) {
        py::gil_scoped_release nogil;
        const auto t0 = std::chrono::steady_clock::now();
        volatile float sink = 0;
        for (int i = 0; i < reps; ++i) sink = c.engine().similarity(a, b, c.params(1));
        (void)sink;
        return seconds_since(t0) / reps;
      })
      .def("_time_cpp_most_similar", [](const Core& c, const std::string& w, size_t topn, int reps,
                                        size_t restrict_vocab) {
        py::gil_scoped_release nogil;
        const auto t0 = std::chrono::steady_clock::now();
        size_t sink = 0;
        for (int i = 0; i < reps; ++i) sink += c.engine().nearest(w, c.params(topn, restrict_vocab)).size();
        return sink ? seconds_since(t0) / reps : 0.0;
      }, py::arg("word"), py::arg("topn"), py::arg("reps"), py::arg("restrict_vocab") = 0);
}

}  // namespace igla::py_binding
