// igla Python module: the binding of igla._igla.KeyedVectorsBase (KeyedVectorsCore, kv_core.cpp).
#include "keyed_vectors.hpp"

#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "arrays.hpp"
#include "igla/error.hpp"

namespace igla::py_binding {

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
