// igla Python module: building indexes, from numpy arrays (igla.convert, igla.from_keyed_vectors)
// or from vector files (igla.convert_file: the steps of `igla convert`), with progress reported
// to a Python callable.
#include "build_index.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <fstream>
#include <unordered_set>

#include "arrays.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/vectors.hpp"

namespace igla::py_binding {

namespace {

QuantParams quant_params(const std::string& quantization, const py::object& threshold_factor,
                         const std::string& rerank, uint32_t fit_words) {
  QuantParams q;
  parse_quantization(quantization, q);
  q.threshold_factor = threshold_factor.is_none() ? default_threshold_factor(q.method) : threshold_factor.cast<float>();
  if (!(q.threshold_factor >= 0.0f) || q.threshold_factor > 100.0f)
    throw py::value_error("threshold_factor must be in [0, 100], got " + std::to_string(q.threshold_factor));
  q.rerank = parse_rerank(rerank);
  q.fit_words = fit_words;
  return q;
}

// A Progress that calls `fn(stage, done, total)` with the GIL, from any thread. A Python error in
// `fn` (Ctrl-C) is kept, later calls are skipped, and rethrow() raises it once the work is done:
// the callback runs inside OpenMP regions, which no exception may leave.
class PyProgress {
 public:
  PyProgress(py::object fn, std::string stage) : fn_(std::move(fn)), stage_(std::move(stage)) {}
  Progress callback() {
    if (fn_.is_none()) return {};
    return [this](uint64_t done, uint64_t total) {
      py::gil_scoped_acquire gil;
      if (error_) return;
      try {
        fn_(stage_, done, total);
      } catch (py::error_already_set& e) {
        error_ = std::make_unique<py::error_already_set>(std::move(e));
      }
    };
  }
  void rethrow() {
    if (error_) throw *error_;
  }

 private:
  py::object fn_;
  std::string stage_;
  std::unique_ptr<py::error_already_set> error_;
};

bool is_index_file(const std::string& path) {
  char magic[8] = {};
  std::ifstream(path, std::ios::binary).read(magic, 8);
  return std::string_view(magic, 8) == std::string_view("IGLAIDX\n", 8);
}

void build_and_save(const FloatVectors& v, const QuantParams& q, bool keep_float, const std::string& path,
                    const py::object& progress) {
  PyProgress bar(progress, "quantizing");
  {
    py::gil_scoped_release nogil;
    const Index ix = Index::build(v, q, keep_float, bar.callback());
    ix.save(path);
  }
  bar.rethrow();
}

}  // namespace

void bind_build(py::module_& m) {
  m.def("_convert", [](const py::object& vectors, const py::object& words, const std::string& path,
                       const std::string& quantization, const py::object& threshold_factor, const std::string& rerank,
                       bool keep_float, uint32_t fit_words, const py::object& progress) {
        if (!py::isinstance<py::array>(vectors) || py::reinterpret_borrow<py::array>(vectors).ndim() != 2)
          throw py::value_error("vectors must be a 2-D numpy array (n words, dims)");
        const auto arr = py::reinterpret_borrow<py::array>(vectors);
        const size_t d = static_cast<size_t>(arr.shape(1));
        auto x = float_rows(vectors, d, "vectors");
        if (py::isinstance<py::str>(words)) throw py::type_error("words must be a list of str, got a single str");
        FloatVectors v;
        v.words = words.cast<std::vector<std::string>>();
        const size_t n = static_cast<size_t>(x.shape(0));
        if (v.words.size() != n)
          throw py::value_error("words has " + std::to_string(v.words.size()) + " entries but vectors has " +
                                std::to_string(n) + " rows");
        if (d == 0 || n == 0) throw py::value_error("vectors must have at least one row and one column");
        const QuantParams q = quant_params(quantization, threshold_factor, rerank, fit_words);
        v.dims = static_cast<uint32_t>(d);
        v.data.assign(x.data(), x.data() + n * d);
        for (size_t i = 0; i < n * d; ++i)
          if (!std::isfinite(v.data[i]))
            throw py::value_error("vectors[" + std::to_string(i / d) + ", " + std::to_string(i % d) + "] (word '" +
                                  v.words[i / d] + "') is " + std::to_string(v.data[i]) + ", not a finite number");
        build_and_save(v, q, keep_float, path, progress);
      },
      py::arg("vectors"), py::arg("words"), py::arg("path"), py::arg("quantization"), py::arg("threshold_factor"),
      py::arg("rerank"), py::arg("keep_float"), py::arg("fit_words"), py::arg("progress"));

  m.def("_convert_file", [](const std::string& input, const std::string& output, const std::string& format,
                            size_t limit, const std::string& quantization, const py::object& threshold_factor,
                            const std::string& rerank, bool keep_float, uint32_t fit_words, const py::object& progress) {
        const QuantParams q = quant_params(quantization, threshold_factor, rerank, fit_words);
        const VectorFormat f = parse_format(format);
        FloatVectors v;
        if (f == VectorFormat::Auto && is_index_file(input)) {
          py::gil_scoped_release nogil;
          v = Index::open(input).to_float_vectors(limit);
        } else {
          LoadOptions lo;
          lo.format = f == VectorFormat::Auto ? detect_format(input) : f;
          lo.limit = limit;
          PyProgress bar(progress, std::string("reading (") + format_name(lo.format) + ")");
          lo.progress = bar.callback();
          {
            py::gil_scoped_release nogil;
            v = load_vectors(input, lo);
          }
          bar.rethrow();
        }
        build_and_save(v, q, keep_float, output, progress);
      },
      py::arg("input"), py::arg("output"), py::arg("format"), py::arg("limit"), py::arg("quantization"),
      py::arg("threshold_factor"), py::arg("rerank"), py::arg("keep_float"), py::arg("fit_words"), py::arg("progress"));
}

}  // namespace igla::py_binding
