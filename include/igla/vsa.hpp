// igla: vector-symbolic operations on ternary vectors (the seed's VSA algebra).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace igla::vsa {

// Elementwise product: binding. bind(a, b) is dissimilar to both; bind(bind(a, b), b) recovers a
// wherever b is non-zero.
std::vector<int8_t> bind(std::span<const int8_t> a, std::span<const int8_t> b);
// Majority vote per dimension: sign of the sum, ties (including all-zero) to 0.
std::vector<int8_t> bundle(std::span<const std::span<const int8_t>> vs);
// Cyclic shift by `shift` positions (negative shifts left): encodes order or role.
std::vector<int8_t> permute(std::span<const int8_t> a, int64_t shift);

}  // namespace igla::vsa
