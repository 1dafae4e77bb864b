#include "arrays.hpp"

#include <limits>

namespace igla::py_binding {

namespace {

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_of(const py::handle& obj) {
  if (py::isinstance<py::array>(obj)) return py::str(py::reinterpret_borrow<py::array>(obj).dtype()).cast<std::string>();
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

}  // namespace

py::array_t<float, py::array::c_style> float_rows(const py::handle& obj, size_t dims, const char* name,
                                                  bool allow_1d) {
  if (!py::isinstance<py::array_t<float>>(obj))
    throw py::type_error(std::string(name) + " must be a float32 numpy array, got " + dtype_of(obj) +
                         " (convert it with np.asarray(x, dtype=np.float32))");
  auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw py::error_already_set();
  const bool one_row = allow_1d && a.ndim() == 1;
  if (!(a.ndim() == 2 || one_row) || static_cast<size_t>(a.shape(a.ndim() - 1)) != dims)
    throw py::value_error(std::string(name) + " must have shape (n, " + std::to_string(dims) +
                          ") (the index's float dims), got " + shape_of(a));
  if (one_row) a = a.reshape({py::ssize_t{1}, static_cast<py::ssize_t>(dims)});
  return a;
}

py::array_t<uint32_t, py::array::c_style> id_rows(const py::handle& obj, size_t cols, size_t vocab, const char* name) {
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(std::string(name) + " must be an array of word ids");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(name) + " must hold integer word ids, got dtype " + dtype_of(a));
  const bool shape_ok = cols == 0 ? a.ndim() == 1 : (a.ndim() == 2 && static_cast<size_t>(a.shape(1)) == cols);
  if (!shape_ok)
    throw py::value_error(std::string(name) + " must have shape " +
                          (cols == 0 ? std::string("(n,)") : "(n, " + std::to_string(cols) + ")") + ", got " +
                          shape_of(a));
  // Range check on int64 (negative ids are errors, not wrapped).
  auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  py::array_t<uint32_t, py::array::c_style> out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  const int64_t* src = wide.data();
  uint32_t* dst = out.mutable_data();
  for (py::ssize_t i = 0; i < wide.size(); ++i) {
    if (src[i] < 0 || static_cast<uint64_t>(src[i]) >= vocab)
      throw py::index_error(std::string(name) + ": word id " + std::to_string(src[i]) + " is out of range [0, " +
                            std::to_string(vocab) + ")");
    dst[i] = static_cast<uint32_t>(src[i]);
  }
  return out;
}

ResultArrays::ResultArrays(size_t n, size_t k)
    : scores({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)}),
      ids({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)}) {}

}  // namespace igla::py_binding
