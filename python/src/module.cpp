// igla._igla: the compiled half of `import igla` (pybind11). The package python/igla/ wraps it.
//
// Errors: igla::UnknownWord -> igla.UnknownWordError (a KeyError, with .word and .closest),
// any other igla::Error -> igla.Error (a ValueError); argument checks raise TypeError / ValueError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "build_index.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"
#include "igla/search.hpp"
#include "keyed_vectors.hpp"

#ifndef IGLA_VERSION
#define IGLA_VERSION "0.0.0"
#endif

namespace py = pybind11;

namespace {

PyObject* g_error = nullptr;         // igla.Error
PyObject* g_unknown_word = nullptr;  // igla.UnknownWordError

void raise_unknown_word(const igla::UnknownWord& e) {
  py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(g_unknown_word, "s", e.what()));
  if (!exc) return;  // the call set a Python error itself
  exc.attr("word") = e.word();
  exc.attr("closest") = py::cast(e.closest());
  PyErr_SetObject(g_unknown_word, exc.ptr());
}

}  // namespace

PYBIND11_MODULE(_igla, m) {
  m.doc() = "igla's compiled core: exact search over ternary word embeddings (use the igla package).";
  m.attr("__version__") = IGLA_VERSION;

  g_error = PyErr_NewExceptionWithDoc("igla.Error", "An igla failure the input caused: a bad file, option or argument.",
                                      PyExc_ValueError, nullptr);
  py::object bases = py::make_tuple(py::handle(PyExc_KeyError), py::handle(g_error));
  g_unknown_word = PyErr_NewExceptionWithDoc(
      "igla.UnknownWordError",
      "A word not in the vocabulary (a KeyError, as gensim raises): .word is the word, .closest the closest known words.",
      bases.ptr(), nullptr);
  if (!g_error || !g_unknown_word) throw py::error_already_set();
  m.attr("Error") = py::handle(g_error);
  m.attr("UnknownWordError") = py::handle(g_unknown_word);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const igla::UnknownWord& e) {
      raise_unknown_word(e);
    } catch (const igla::Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  m.def("backends", &igla::backend_names, "Names of the search backends built in (device= values).");
  m.attr("DEFAULT_INDEX_NAME") = igla::kDefaultIndexName;

  igla::py_binding::bind_keyed_vectors(m);
  igla::py_binding::bind_build(m);
}
