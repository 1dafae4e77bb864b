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

// Visited marks: one bit per node (n / 8 bytes: 43 KB at 341K words, which stays in the L1/L2
// caches where a 16-bit tag per node would take 683 KB), and the list of the 64-bit words a
// search set, so that begin() clears only those (a few hundred stores, not n / 8 bytes).
class Visited {
 public:
  void begin(size_t n) {
    for (uint32_t w : touched_) bits_[w] = 0;
    touched_.clear();
    if (bits_.size() < (n + 63) / 64) bits_.resize((n + 63) / 64, 0);
  }
  bool test_and_set(uint32_t v) {
    uint64_t& w = bits_[v >> 6];
    const uint64_t b = uint64_t{1} << (v & 63);
    if (w & b) return true;
    if (w == 0) touched_.push_back(v >> 6);
    w |= b;
    return false;
  }
  const uint64_t* tag_address(uint32_t v) const { return bits_.data() + (v >> 6); }

 private:
  std::vector<uint64_t> bits_;
  std::vector<uint32_t> touched_;
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
// loads overlap; their links are prefetched too (prefetch_links(v)), for when one of them is
// expanded (the link load is one of the walk's two largest stalls in perf; prefetching the next
// node's links instead, or a node's when it enters the candidates, measured the same within noise).
// vis.begin() must have been called for this search. `seen`, when given, gets every node scored
// (the entries included), for callers that want more results than the breadth ef keeps.
template <class Links, class Score, class Prefetch, class PrefetchLinks>
void beam(size_t ef, const std::vector<GraphCand>& entries, Links&& links, Score&& score, Prefetch&& prefetch,
          PrefetchLinks&& prefetch_links, Visited& vis, std::vector<GraphCand>& top, std::vector<GraphCand>& cand,
          uint32_t* buf, uint32_t* fresh, std::vector<GraphCand>* seen = nullptr) {
  auto worse_on_top = [](const GraphCand& a, const GraphCand& b) { return nearer(a, b); };  // top: worst first
  auto best_on_top = [](const GraphCand& a, const GraphCand& b) { return nearer(b, a); };   // cand: best first
  top.clear();
  cand.clear();
  if (seen) seen->clear();
  for (const GraphCand& e : entries) {
    if (vis.test_and_set(e.id)) continue;
    if (seen) seen->push_back(e);
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
        prefetch_links(buf[i]);
        fresh[m++] = buf[i];
      }
    for (size_t i = 0; i < m; ++i) {
      const GraphCand n{score(fresh[i]), fresh[i]};
      if (seen) seen->push_back(n);
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
