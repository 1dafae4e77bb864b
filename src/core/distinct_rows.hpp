// Distinct rows of a byte matrix: which rows repeat, and one copy of each (the CUDA mt path's
// shared-terms scan scores each distinct query term once; batches of analogies repeat their words).
// Thread-safety: a pure function of its arguments.
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla {

// rows: n rows of `width` bytes. Writes index[i] = the position of row i among the distinct rows
// (in order of first appearance) and copies each distinct row once into `distinct` (room for
// max_distinct rows). Returns the number of distinct rows, or 0 when there are more than
// max_distinct (index and distinct then hold partial results) or n is 0.
size_t distinct_rows(const int8_t* rows, size_t n, size_t width, uint32_t* index, int8_t* distinct,
                     size_t max_distinct);

}  // namespace igla
