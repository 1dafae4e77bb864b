// igla internal: a bounded top-k list with a running threshold (the worst kept score), so the
// scan rejects almost every word with one compare. Ties go to the lower id, as everywhere.
#pragma once

#include <algorithm>
#include <limits>
#include <span>
#include <vector>

#include "igla/search.hpp"

namespace igla {

class TopK {
 public:
  // Up to this k the list is kept sorted and a new hit is inserted from the back: candidates
  // that pass the threshold mostly land near the end, so that is a few predictable moves where
  // a binary heap costs ~2 log k unpredictable compares (measured: the heap was 7% of a batched
  // search at k = 10). Larger k use a heap.
  static constexpr size_t kSortedMax = 32;

  void reset(size_t k) {
    k_ = k;
    v_.clear();
    v_.reserve(k);
  }
  // Scores at or below this cannot enter (words arrive in ascending id order within one scan,
  // so an equal score would lose the tie).
  float threshold() const {
    if (v_.size() < k_) return -std::numeric_limits<float>::infinity();
    return k_ <= kSortedMax ? v_.back().score : v_.front().score;
  }
  void push(Hit h) {
    if (k_ == 0) return;
    if (k_ <= kSortedMax) {
      if (v_.size() == k_) {
        if (!better(h, v_.back())) return;
        v_.pop_back();
      }
      v_.push_back(h);
      for (size_t i = v_.size() - 1; i > 0 && better(h, v_[i - 1]); --i) std::swap(v_[i], v_[i - 1]);
    } else if (v_.size() < k_) {
      v_.push_back(h);
      std::push_heap(v_.begin(), v_.end(), Better{});  // front = worst kept
    } else if (better(h, v_.front())) {
      std::pop_heap(v_.begin(), v_.end(), Better{});
      v_.back() = h;
      std::push_heap(v_.begin(), v_.end(), Better{});
    }
  }
  // The kept hits, in no particular order.
  std::span<const Hit> items() const { return v_; }

 private:
  // A function object, not the function pointer `better`: the heap algorithms inline it.
  struct Better {
    bool operator()(const Hit& a, const Hit& b) const { return better(a, b); }
  };
  size_t k_ = 0;
  std::vector<Hit> v_;
};

}  // namespace igla
