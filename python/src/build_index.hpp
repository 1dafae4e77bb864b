// igla Python module: building indexes (igla._igla._convert, _convert_file).
#pragma once

#include <pybind11/pybind11.h>

namespace igla::py_binding {
void bind_build(pybind11::module_& m);
}  // namespace igla::py_binding
