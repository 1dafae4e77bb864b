// igla internal: the search of one layer of the graph index (include/igla/graph.hpp), shared by
// its build and its searcher: HNSW's greedy descent and its beam search of breadth ef.
// Scores are int32 dot products, higher is nearer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace igla::ann {

struct GraphCand {
  int32_t s;
  uint32_t id;
};
// Nearer first; equal scores to the lower id (a strict order: the walk is deterministic).
inline bool nearer(const GraphCand& a, const GraphCand& b) { return a.s > b.s || (a.s == b.s && a.id < b.id); }

// Visited marks tagged by an epoch: begin() starts a query by moving to the next epoch, so the
// tags are cleared only when the 16-bit epoch wraps (once every 65,535 queries).
class Visited {
 public:
  void begin(size_t n) {
    if (tag_.size() < n) tag_.resize(n, 0);
    if (++epoch_ == 0) {
      std::fill(tag_.begin(), tag_.end(), uint16_t{0});
      epoch_ = 1;
    }
  }
  bool test_and_set(uint32_t v) {
    if (tag_[v] == epoch_) return true;
    tag_[v] = epoch_;
    return false;
  }
  const uint16_t* tag_address(uint32_t v) const { return tag_.data() + v; }

 private:
  std::vector<uint16_t> tag_;
  uint16_t epoch_ = 0;
};

// Greedy descent on one upper layer from `cur`: move to the best neighbour while it is nearer.
// links(v, buf) writes v's links on this layer to buf and returns how many; score(v) is v's score.
template <class Links, class Score>
GraphCand greedy(GraphCand cur, Links&& links, Score&& score, uint32_t* buf) {
  for (bool moved = true; moved;) {
    moved = false;
    const size_t c = links(cur.id, buf);
    for (size_t i = 0; i < c; ++i) {
      const GraphCand n{score(buf[i]), buf[i]};
      if (nearer(n, cur)) {
        cur = n;
        moved = true;
      }
    }
  }
  return cur;
}

// Beam search of breadth ef from `entries` (already scored): `top` ends holding the best ef nodes
// found (a heap; sort it with `nearer`). The neighbours of an expanded node are filtered by the
// visited set first, their rows prefetched together (prefetch(v)), then scored, so their memory
// loads overlap; the links of the next node to expand are prefetched (prefetch_links(v)) while the
// current one's neighbours are scored. vis.begin() must have been called for this search.
template <class Links, class Score, class Prefetch, class PrefetchLinks>
void beam(size_t ef, const std::vector<GraphCand>& entries, Links&& links, Score&& score, Prefetch&& prefetch,
          PrefetchLinks&& prefetch_links, Visited& vis, std::vector<GraphCand>& top, std::vector<GraphCand>& cand,
          uint32_t* buf, uint32_t* fresh) {
  auto worse_on_top = [](const GraphCand& a, const GraphCand& b) { return nearer(a, b); };  // top: worst first
  auto best_on_top = [](const GraphCand& a, const GraphCand& b) { return nearer(b, a); };   // cand: best first
  top.clear();
  cand.clear();
  for (const GraphCand& e : entries) {
    if (vis.test_and_set(e.id)) continue;
    cand.push_back(e);
    std::push_heap(cand.begin(), cand.end(), best_on_top);
    top.push_back(e);
    std::push_heap(top.begin(), top.end(), worse_on_top);
    if (top.size() > ef) {
      std::pop_heap(top.begin(), top.end(), worse_on_top);
      top.pop_back();
    }
  }
  while (!cand.empty()) {
    const GraphCand c = cand.front();
    if (top.size() >= ef && nearer(top.front(), c)) break;  // the nearest unexpanded is worse than all ef kept
    std::pop_heap(cand.begin(), cand.end(), best_on_top);
    cand.pop_back();
    const size_t nl = links(c.id, buf);
    for (size_t i = 0; i < nl; ++i) __builtin_prefetch(vis.tag_address(buf[i]));
    size_t m = 0;
    for (size_t i = 0; i < nl; ++i)
      if (!vis.test_and_set(buf[i])) {
        prefetch(buf[i]);
        fresh[m++] = buf[i];
      }
    if (!cand.empty()) prefetch_links(cand.front().id);
    for (size_t i = 0; i < m; ++i) {
      const GraphCand n{score(fresh[i]), fresh[i]};
      if (top.size() < ef || nearer(n, top.front())) {
        cand.push_back(n);
        std::push_heap(cand.begin(), cand.end(), best_on_top);
        top.push_back(n);
        std::push_heap(top.begin(), top.end(), worse_on_top);
        if (top.size() > ef) {
          std::pop_heap(top.begin(), top.end(), worse_on_top);
          top.pop_back();
        }
      }
    }
  }
}

}  // namespace igla::ann
