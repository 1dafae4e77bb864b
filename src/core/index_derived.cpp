// Index::derived(): values made once per index (kernel layouts, device copies) and shared.
#include "core/index_derived.hpp"

#include "igla/error.hpp"

namespace igla {

std::shared_ptr<const void> Index::derived(const std::string& key,
                                           const std::function<std::shared_ptr<const void>()>& make) const {
  std::lock_guard<std::mutex> lk(derived_->mu);
  auto it = derived_->values.find(key);
  if (it != derived_->values.end()) return it->second;
  std::shared_ptr<const void> v = make();
  derived_->values.emplace(key, v);
  return v;
}

std::shared_ptr<const Index> open_index(const std::string& path) {
  return std::make_shared<const Index>(Index::open(path));
}

}  // namespace igla

namespace igla {

std::shared_ptr<const Index> index_of_trits(std::span<const int8_t> trits, size_t n, uint32_t dims) {
  if (trits.size() != n * dims) throw Error("index_of_trits: expected n x dims values");
  FloatVectors v;
  v.dims = dims;
  v.words.reserve(n);
  for (size_t i = 0; i < n; ++i) v.words.push_back(std::string("w").append(std::to_string(i)));
  v.data.resize(trits.size());
  for (size_t i = 0; i < trits.size(); ++i) {
    if (trits[i] < -1 || trits[i] > 1) throw Error("index_of_trits: a value outside {-1, 0, 1}");
    v.data[i] = trits[i];
  }
  QuantParams q;
  q.method = Quantization::Seed;
  q.threshold_factor = 0.0f;  // |x| > 0: every non-zero trit stays, with its sign
  return std::make_shared<const Index>(Index::build(v, q, false));
}

}  // namespace igla
