// igla internal: the exact int8 dot product of one row with one query, the distance of the graph
// index (include/igla/graph.hpp). The query is held padded with zeros to a multiple of 64 bytes
// (padded_dims); the row is read in place (its `dims` bytes only: the AVX-512 version masks the tail).
// Integer arithmetic: every implementation returns the same int32.
#pragma once

#include <cstddef>
#include <cstdint>

namespace igla::ann {

// Bytes a query takes: dims rounded up to a multiple of 64 (the padding must be zero).
constexpr size_t padded_dims(size_t dims) { return (dims + 63) / 64 * 64; }
// The bias of query q (dims values): 128 * sum(q), since (row + 128) . q - bias = row . q.
int32_t query_bias(const int8_t* q, size_t dims);

// sum over d < dims of row[d] * q[d], q zero-padded to padded_dims(dims): the plain reference and
// the AVX-512 VNNI version (rows turned unsigned by flipping the sign bit, vpdpbusd, the bias
// subtracted).
int32_t dot_i8_scalar(const int8_t* row, const int8_t* q, int32_t bias, size_t dims);
int32_t dot_i8_vnni(const int8_t* row, const int8_t* q, int32_t bias, size_t dims);
bool dot_i8_vnni_available();

using DotI8 = int32_t (*)(const int8_t* row, const int8_t* q, int32_t bias, size_t dims);
// dot_i8_vnni where the CPU runs it and `scalar` is false, else dot_i8_scalar.
DotI8 pick_dot_i8(bool scalar);

}  // namespace igla::ann
