// igla internal: a bounded top-k heap with a running threshold (the worst kept score), so the
// scan rejects almost every word with one compare. Ties go to the lower id, as everywhere.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "igla/search.hpp"

namespace igla {

class TopK {
 public:
  void reset(size_t k) {
    k_ = k;
    heap_.clear();
    heap_.reserve(k);
  }
  // Scores at or below this cannot enter (words arrive in ascending id order within one scan,
  // so an equal score would lose the tie).
  float threshold() const {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score;
  }
  void push(Hit h) {
    if (k_ == 0) return;
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), better);  // front = worst kept
    } else if (better(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  const std::vector<Hit>& items() const { return heap_; }

 private:
  size_t k_ = 0;
  std::vector<Hit> heap_;
};

}  // namespace igla
