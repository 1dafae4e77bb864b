// igla Python module: checks on the numpy arrays and lists handed in, with the message a numpy
// user expects (what was given, what is needed), raised before any search starts.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace igla::py_binding {

namespace py = pybind11;

// A C-contiguous float32 (n, dims) view of `obj` (a copy only when `obj` is a float32 array that
// is not C-contiguous). Throws TypeError for another dtype or a non-array, ValueError for a wrong
// shape. A 1-D array of `dims` values is taken as one row when `allow_1d`.
py::array_t<float, py::array::c_style> float_rows(const py::handle& obj, size_t dims, const char* name,
                                                  bool allow_1d = false);

// Word ids as a C-contiguous uint32 (n, cols) array (cols = 0: 1-D): any integer dtype, each id
// checked against `vocab`. Throws TypeError / ValueError / IndexError.
py::array_t<uint32_t, py::array::c_style> id_rows(const py::handle& obj, size_t cols, size_t vocab, const char* name);

// The result arrays of a FAISS-style search: scores (n, k) float32 and ids (n, k) int64, -inf
// and -1 where a query has fewer than k answers.
struct ResultArrays {
  py::array_t<float> scores;
  py::array_t<int64_t> ids;
  ResultArrays(size_t n, size_t k);
  py::tuple tuple() const { return py::make_tuple(scores, ids); }
};

}  // namespace igla::py_binding
