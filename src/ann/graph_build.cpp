// Building, parsing and writing the graph index (include/igla/graph.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ann/graph_format.hpp"
#include "ann/graph_walk.hpp"
#include "ann/int8_dot.hpp"
#include "ann/kmeans.hpp"
#include "igla/error.hpp"
#include "igla/graph.hpp"
#include "kernels/layout.hpp"

namespace igla {

using ann::GraphCand;
using ann::GraphHeader;
using ann::GraphLayout;

struct GraphIndex::Owned {
  kernels::AlignedArray<uint64_t> bytes;
  size_t size = 0;
};

GraphIndex::GraphIndex() = default;
GraphIndex::GraphIndex(GraphIndex&&) noexcept = default;
GraphIndex& GraphIndex::operator=(GraphIndex&&) noexcept = default;
GraphIndex::~GraphIndex() = default;

namespace {

constexpr uint32_t kMaxLevel = 15;

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// HNSW's level distribution, floor(-ln(u) / ln(m)), with u from a hash of (seed, id): a node's
// level does not depend on the order or the thread it is inserted in.
uint32_t level_of(uint64_t seed, uint64_t id, double inv_log_m) {
  const double u = (double(splitmix(seed ^ splitmix(id)) >> 11) + 0.5) * 0x1.0p-53;
  return std::min<uint32_t>(kMaxLevel, static_cast<uint32_t>(-std::log(u) * inv_log_m));
}

// The graph while it is built: u32 links, every node's records allocated up front.
struct Builder {
  size_t n = 0;
  uint32_t D = 0, Dp = 0, m = 0, m0 = 0;
  const int8_t* rows = nullptr;
  std::vector<int8_t> qf;      // each node's row as a query: row * scale^2, requantized to int8 (n x Dp)
  std::vector<int32_t> bias;   // query_bias of each qf row
  std::vector<int32_t> self;   // sim(v, v): a unit row's similarity to itself, in v's units
  double alpha = 1.0;
  bool fill = false;
  uint32_t keep_nearest = 0;
  std::vector<uint8_t> level;
  std::vector<uint8_t> cnt0;
  std::vector<uint32_t> l0;    // n x m0
  std::vector<uint32_t> up_index;  // node -> upper record index (~0u: layer 0 only)
  std::vector<uint64_t> up_base;   // upper record -> offset in up (u32 words)
  std::vector<uint32_t> up_ids;
  std::vector<uint32_t> up;        // per upper node, per level 1..L: count, m slots
  ann::DotI8 dot = nullptr;
  uint32_t max_level = 0, entry = 0;

  // a's row as the query against b's row: proportional to the decoded rows' dot, in a's units.
  int32_t sim(uint32_t a, uint32_t b) const {
    return dot(rows + size_t{b} * D, qf.data() + size_t{a} * Dp, bias[a], D);
  }
  uint32_t* record(uint32_t v, uint32_t l) { return up.data() + up_base[up_index[v]] + size_t{l - 1} * (m + 1); }
  const uint32_t* record(uint32_t v, uint32_t l) const {
    return up.data() + up_base[up_index[v]] + size_t{l - 1} * (m + 1);
  }
  size_t links(uint32_t v, uint32_t l, uint32_t* buf) const {
    if (l == 0) {
      std::copy_n(l0.data() + size_t{v} * m0, cnt0[v], buf);
      return cnt0[v];
    }
    const uint32_t* r = record(v, l);
    std::copy_n(r + 1, r[0], buf);
    return r[0];
  }

  // HNSW's neighbour selection for `owner` among `c` (sorted nearest first to owner): a candidate
  // is kept when no kept one is nearer to it than the owner is (compared in the candidate's own
  // units; with alpha > 1, than the owner is divided by alpha, in distances 1 - cos); at most `cap`
  // kept. Fewer than cap candidates: all kept. On layer 0 the first keep_nearest candidates are
  // kept unconditionally (they count as kept links for the heuristic's test of the others), and
  // with `fill` the slots the heuristic leaves free take the nearest candidates it dropped.
  void select(uint32_t owner, const std::vector<GraphCand>& c, size_t cap, std::vector<uint32_t>& out,
              bool layer0) const {
    const bool fill_free = layer0 && fill;
    out.clear();
    thread_local std::vector<uint32_t> dropped;
    dropped.clear();
    if (c.size() <= cap) {
      for (const auto& x : c) out.push_back(x.id);
      return;
    }
    const size_t near = layer0 ? std::min<size_t>(keep_nearest, cap) : 0;
    for (const auto& e : c) {
      if (out.size() >= cap) break;
      if (out.size() < near) {
        out.push_back(e.id);
        continue;
      }
      const int32_t to_owner = sim(e.id, owner);
      bool keep = true;
      if (alpha == 1.0) {
        for (uint32_t r : out)
          if (sim(e.id, r) > to_owner) {
            keep = false;
            break;
          }
      } else {  // distances 1 - cos, cos(e, x) ~ sim(e, x) / sim(e, e) for rows of about unit norm
        const double far_owner = double(self[e.id]) - to_owner;
        for (uint32_t r : out)
          if (alpha * (double(self[e.id]) - sim(e.id, r)) < far_owner) {
            keep = false;
            break;
          }
      }
      if (keep)
        out.push_back(e.id);
      else if (fill_free)
        dropped.push_back(e.id);
    }
    for (size_t i = 0; fill_free && i < dropped.size() && out.size() < cap; ++i) out.push_back(dropped[i]);
  }
};

// Where one batch node links, per level 0..top (found on the graph as the batch began).
struct Insertion {
  std::vector<std::vector<uint32_t>> sel;
};

void find_links(const Builder& b, uint32_t p, uint32_t efc, Insertion& ins) {
  thread_local ann::Visited vis;
  thread_local std::vector<GraphCand> top, cand, entries;
  thread_local std::vector<uint32_t> buf, fresh;
  buf.resize(std::max(b.m0, b.m) + 1);
  fresh.resize(std::max(b.m0, b.m) + 1);
  const uint32_t lp = b.level[p], top_level = std::min(lp, b.max_level);
  ins.sel.assign(top_level + 1, {});
  auto score = [&](uint32_t v) { return b.sim(p, v); };
  GraphCand cur{score(b.entry), b.entry};
  for (uint32_t l = b.max_level; l > lp; --l)
    cur = ann::greedy(cur, [&](uint32_t v, uint32_t* o) { return b.links(v, l, o); }, score, buf.data());
  entries.assign(1, cur);
  for (uint32_t l = top_level + 1; l-- > 0;) {
    vis.begin(b.n);
    ann::beam(
        efc, entries, [&](uint32_t v, uint32_t* o) { return b.links(v, l, o); }, score,
        [&](uint32_t v) { __builtin_prefetch(b.rows + size_t{v} * b.D); },
        [&](uint32_t v) { __builtin_prefetch(l == 0 ? b.l0.data() + size_t{v} * b.m0 : b.record(v, l)); }, vis, top, cand,
        buf.data(), fresh.data());
    std::sort(top.begin(), top.end(), ann::nearer);
    // A new node links to m nodes per level, as in HNSW (its list grows to m0 on layer 0 as later
    // nodes link back), or to m0 on a filled layer 0.
    b.select(p, top, l == 0 && b.fill ? b.m0 : b.m, ins.sel[l], l == 0);
    entries = top;
  }
}

}  // namespace

GraphIndex GraphIndex::build(const Index& ix, const GraphParams& p, const Progress& progress) {
  const std::string where = ix.path().empty() ? std::string("(in memory)") : ix.path();
  if (ix.rerank() != Rerank::Int8)
    throw Error("build-graph: index " + where + " has no int8 rerank rows (rerank: " + rerank_name(ix.rerank()) +
                "); the graph index scores int8 rows");
  if (p.m < 2 || p.m > 127) throw Error("build-graph: m = " + std::to_string(p.m) + " (2 to 127 links per node)");
  if (p.ef_construction == 0) throw Error("build-graph: ef-construction must be at least 1");
  if (p.keep_nearest > 255) throw Error("build-graph: keep-nearest = " + std::to_string(p.keep_nearest) + " (0 to 255)");
  if (p.m0 != 0 && (p.m0 < 2 || p.m0 > 255))
    throw Error("build-graph: m0 = " + std::to_string(p.m0) + " (2 to 255 layer-0 links per node)");
  if (!(p.alpha >= 1.0f && p.alpha <= 4.0f)) throw Error("build-graph: alpha = " + std::to_string(p.alpha) + " (1 to 4)");
  const size_t n = ix.size();
  if (n >= 0xFFFFFFF0ull) throw Error("build-graph: too many words for 32-bit ids");
  Builder b;
  b.n = n;
  b.D = ix.float_dims();
  b.Dp = static_cast<uint32_t>(ann::padded_dims(b.D));
  b.m = p.m;
  b.m0 = p.m0 ? p.m0 : 2 * p.m;
  b.alpha = p.alpha;
  b.fill = p.fill;
  b.keep_nearest = std::min(p.keep_nearest, b.m0 / 2);  // a graph of nearest links alone is poorly navigable
  b.rows = ix.rerank_int8_rows().data();
  b.dot = ann::pick_dot_i8(false);
  const auto scale = ix.rerank_int8_scales();

  // Each row as a query: decoded row times the scales (so its dot with a stored row is the dot of
  // the decoded rows), requantized to int8 with its own factor.
  b.qf.assign(n * b.Dp, 0);
  b.bias.assign(n, 0);
  ann::parallel_chunks(n, 4096, p.threads, [&](size_t lo, size_t hi) {
    std::vector<float> x(b.D);
    for (size_t i = lo; i < hi; ++i) {
      const int8_t* r = b.rows + i * b.D;
      float mx = 0;
      for (uint32_t d = 0; d < b.D; ++d) {
        x[d] = static_cast<float>(r[d]) * scale[d] * scale[d];
        mx = std::max(mx, std::fabs(x[d]));
      }
      const float s = mx > 0 ? 127.0f / mx : 0.0f;
      int8_t* q = b.qf.data() + i * b.Dp;
      for (uint32_t d = 0; d < b.D; ++d) q[d] = static_cast<int8_t>(std::clamp<long>(std::lround(x[d] * s), -127, 127));
      b.bias[i] = ann::query_bias(q, b.D);
    }
  });
  b.self.assign(n, 0);
  for (size_t i = 0; i < n; ++i) b.self[i] = b.sim(static_cast<uint32_t>(i), static_cast<uint32_t>(i));

  const double inv_log_m = 1.0 / std::log(double(p.m));
  b.level.resize(n);
  b.up_index.assign(n, ~0u);
  uint64_t words = 0;
  for (size_t i = 0; i < n; ++i) {
    b.level[i] = static_cast<uint8_t>(level_of(p.seed, i, inv_log_m));
    if (b.level[i] > 0) {
      b.up_index[i] = static_cast<uint32_t>(b.up_ids.size());
      b.up_ids.push_back(static_cast<uint32_t>(i));
      b.up_base.push_back(words);
      words += uint64_t{b.level[i]} * (b.m + 1);
    }
  }
  b.up.assign(words, 0);
  b.cnt0.assign(n, 0);
  b.l0.assign(n * b.m0, 0);
  b.entry = 0;
  b.max_level = b.level[0];

  // Batches of nodes inserted against the graph as it was when the batch began.
  std::vector<Insertion> ins;
  struct Edge {
    uint32_t target, level, source;
  };
  std::vector<Edge> edges;
  size_t done = 1, reported = 0;
  if (progress) progress(0, n);
  while (done < n) {
    const size_t bs = std::clamp<size_t>(done / 50, 1, 2048), b0 = done, b1 = std::min(n, done + bs);
    ins.resize(b1 - b0);
    ann::parallel_chunks(b1 - b0, 8, p.threads, [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) find_links(b, static_cast<uint32_t>(b0 + i), p.ef_construction, ins[i]);
    });
    // The new nodes' own links, and the reverse links grouped by target.
    edges.clear();
    for (size_t i = 0; i < b1 - b0; ++i) {
      const uint32_t v = static_cast<uint32_t>(b0 + i);
      for (uint32_t l = 0; l < ins[i].sel.size(); ++l) {
        const auto& s = ins[i].sel[l];
        if (l == 0) {
          std::copy(s.begin(), s.end(), b.l0.begin() + static_cast<std::ptrdiff_t>(size_t{v} * b.m0));
          b.cnt0[v] = static_cast<uint8_t>(s.size());
        } else {
          uint32_t* r = b.record(v, l);
          r[0] = static_cast<uint32_t>(s.size());
          std::copy(s.begin(), s.end(), r + 1);
        }
        for (uint32_t t : s) edges.push_back({t, l, v});
      }
    }
    std::sort(edges.begin(), edges.end(), [](const Edge& x, const Edge& y) {
      return x.target != y.target ? x.target < y.target : x.level != y.level ? x.level < y.level : x.source < y.source;
    });
    std::vector<size_t> starts;
    for (size_t e = 0; e < edges.size(); ++e)
      if (e == 0 || edges[e].target != edges[e - 1].target || edges[e].level != edges[e - 1].level) starts.push_back(e);
    starts.push_back(edges.size());
    ann::parallel_chunks(starts.size() - 1, 64, p.threads, [&](size_t lo, size_t hi) {
      std::vector<GraphCand> c;
      std::vector<uint32_t> out;
      for (size_t g = lo; g < hi; ++g) {
        const uint32_t v = edges[starts[g]].target, l = edges[starts[g]].level;
        const size_t cap = l == 0 ? b.m0 : b.m;
        uint32_t* cnt_word = l == 0 ? nullptr : b.record(v, l);
        uint32_t* slots = l == 0 ? b.l0.data() + size_t{v} * b.m0 : cnt_word + 1;
        size_t cnt = l == 0 ? b.cnt0[v] : cnt_word[0];
        for (size_t e = starts[g]; e < starts[g + 1]; ++e) {
          const uint32_t src = edges[e].source;
          if (cnt < cap) {
            slots[cnt++] = src;
            continue;
          }
          c.clear();
          for (size_t j = 0; j < cnt; ++j) c.push_back({b.sim(v, slots[j]), slots[j]});
          c.push_back({b.sim(v, src), src});
          std::sort(c.begin(), c.end(), ann::nearer);
          b.select(v, c, cap, out, l == 0);
          std::copy(out.begin(), out.end(), slots);
          cnt = out.size();
        }
        if (l == 0)
          b.cnt0[v] = static_cast<uint8_t>(cnt);
        else
          cnt_word[0] = static_cast<uint32_t>(cnt);
      }
    });
    for (size_t v = b0; v < b1; ++v)
      if (b.level[v] > b.max_level) {
        b.max_level = b.level[v];
        b.entry = static_cast<uint32_t>(v);
      }
    done = b1;
    if (progress && (done - reported) * 200 >= n) {
      reported = done;
      progress(done, n);
    }
  }
  if (progress) progress(n, n);

  // The section's bytes, then parsed as a view of them (the same checks as a file's).
  const uint32_t lb = n < (size_t{1} << 24) ? 3 : 4;
  const GraphLayout lay(n, b.m0, lb, b.up_ids.size(), words);
  GraphIndex r;
  r.own_ = std::make_unique<Owned>();
  r.own_->bytes = kernels::AlignedArray<uint64_t>(lay.total / 8);
  r.own_->size = lay.total;
  auto* out = reinterpret_cast<uint8_t*>(r.own_->bytes.data());
  GraphHeader h{};
  h.magic = ann::kGraphMagic;
  h.version = kGraphFormatVersion;
  h.dims = b.D;
  h.m = b.m;
  h.m0 = b.m0;
  h.link_bytes = lb;
  h.max_level = b.max_level;
  h.entry = b.entry;
  h.ef_construction = p.ef_construction;
  h.keep_nearest = b.keep_nearest;
  h.fill = p.fill ? 1 : 0;
  h.alpha = p.alpha;
  h.n = n;
  h.n_upper = b.up_ids.size();
  h.upper_words = words;
  h.seed = p.seed;
  std::memcpy(out, &h, sizeof h);
  std::memcpy(out + lay.counts0, b.cnt0.data(), n);
  for (size_t v = 0; v < n; ++v)
    for (uint32_t j = 0; j < b.cnt0[v]; ++j) {
      const uint32_t id = b.l0[v * b.m0 + j];
      std::memcpy(out + lay.links0 + (v * b.m0 + j) * lb, &id, lb);  // little-endian: the low bytes
    }
  std::memcpy(out + lay.upper_ids, b.up_ids.data(), 4 * b.up_ids.size());
  std::vector<uint32_t> off(b.up_base.begin(), b.up_base.end());
  off.push_back(static_cast<uint32_t>(words));
  if (words > 0xFFFFFFF0ull) throw Error("build-graph: upper layers too large for 32-bit offsets");
  std::memcpy(out + lay.upper_off, off.data(), 4 * off.size());
  std::memcpy(out + lay.upper_links, b.up.data(), 4 * words);
  GraphIndex parsed = parse(ix, {reinterpret_cast<const std::byte*>(out), lay.total});
  parsed.own_ = std::move(r.own_);
  return parsed;
}

GraphIndex GraphIndex::parse(const Index& ix, std::span<const std::byte> bytes) {
  auto bad = [](const std::string& what) { return Error("graph section GRPH: " + what); };
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < sizeof(GraphHeader))
    throw bad(std::to_string(bytes.size()) + " bytes, shorter than its header");
  if (reinterpret_cast<uintptr_t>(p) % 64) throw bad("not 64-byte aligned");
  GraphHeader h;
  std::memcpy(&h, p, sizeof h);
  if (h.magic != ann::kGraphMagic) throw bad("wrong magic number");
  if (h.version != kGraphFormatVersion)
    throw bad("format version " + std::to_string(h.version) + ", this igla reads " + std::to_string(kGraphFormatVersion));
  if (h.n != ix.size() || h.dims != ix.float_dims())
    throw bad("built for " + std::to_string(h.n) + " words x " + std::to_string(h.dims) + " dims, the index has " +
              std::to_string(ix.size()) + " x " + std::to_string(ix.float_dims()));
  if (ix.rerank() != Rerank::Int8) throw bad("the index has no int8 rerank rows to search");
  if (h.m < 2 || h.m > 127 || h.m0 < 2 || h.m0 > 255) throw bad("m = " + std::to_string(h.m) + ", m0 = " + std::to_string(h.m0));
  if (!(h.link_bytes == 4 || (h.link_bytes == 3 && h.n < (uint64_t{1} << 24))))
    throw bad(std::to_string(h.link_bytes) + "-byte links for " + std::to_string(h.n) + " words");
  if (h.max_level > kMaxLevel || h.entry >= h.n) throw bad("entry point or top level out of range");
  if (h.fill > 1 || h.keep_nearest > h.m0 / 2 || !(h.alpha == 0.0f || (h.alpha >= 1.0f && h.alpha <= 4.0f)))
    throw bad("build parameters out of range (fill " + std::to_string(h.fill) + ", keep-nearest " +
              std::to_string(h.keep_nearest) + ", alpha " + std::to_string(h.alpha) + ")");
  if (h.n_upper > h.n || h.upper_words > h.n_upper * uint64_t{kMaxLevel} * (h.m + 1))
    throw bad(std::to_string(h.n_upper) + " upper nodes with " + std::to_string(h.upper_words) + " words");
  const GraphLayout lay(h.n, h.m0, h.link_bytes, h.n_upper, h.upper_words);
  if (bytes.size() != lay.total)
    throw bad(std::to_string(bytes.size()) + " bytes, expected " + std::to_string(lay.total));
  GraphIndex r;
  r.n_ = h.n;
  r.dims_ = h.dims;
  r.m_ = h.m;
  r.m0_ = h.m0;
  r.link_bytes_ = h.link_bytes;
  r.max_level_ = h.max_level;
  r.entry_ = h.entry;
  r.efc_ = h.ef_construction;
  r.keep_nearest_ = h.keep_nearest;
  r.fill_ = h.fill != 0;
  r.alpha_ = h.alpha == 0.0f ? 1.0f : h.alpha;
  r.seed_ = h.seed;
  r.n_upper_ = h.n_upper;
  r.upper_words_ = h.upper_words;
  r.counts0_ = p + lay.counts0;
  r.links0_ = p + lay.links0;
  r.upper_ids_ = reinterpret_cast<const uint32_t*>(p + lay.upper_ids);
  r.upper_off_ = reinterpret_cast<const uint32_t*>(p + lay.upper_off);
  r.upper_links_ = reinterpret_cast<const uint32_t*>(p + lay.upper_links);

  // Layer 0: counts within m0, links to other words.
  const size_t n = h.n;
  for (size_t v = 0; v < n; ++v) {
    if (r.counts0_[v] > h.m0)
      throw bad("node " + std::to_string(v) + " has " + std::to_string(r.counts0_[v]) + " layer-0 links (at most " +
                std::to_string(h.m0) + ")");
    for (uint32_t j = 0; j < r.counts0_[v]; ++j) {
      uint32_t id = 0;
      std::memcpy(&id, r.links0_ + (v * h.m0 + j) * h.link_bytes, h.link_bytes);
      if (id >= n || id == v)
        throw bad("node " + std::to_string(v) + " links to " + std::to_string(id) +
                  (id == v ? " (itself)" : " (out of range)"));
    }
  }
  // Upper layers: ids ascending, records of whole levels, links to nodes on that level.
  std::vector<uint8_t> lvl(h.n_upper);
  if (r.upper_off_[0] != 0 || r.upper_off_[h.n_upper] != h.upper_words) throw bad("upper offsets do not span the records");
  uint32_t top = 0;
  for (size_t i = 0; i < h.n_upper; ++i) {
    if (r.upper_ids_[i] >= n || (i > 0 && r.upper_ids_[i] <= r.upper_ids_[i - 1]))
      throw bad("upper node ids not ascending within the words");
    const uint32_t o = r.upper_off_[i], e = r.upper_off_[i + 1];
    if (e <= o || (e - o) % (h.m + 1) || (e - o) / (h.m + 1) > kMaxLevel)
      throw bad("upper node " + std::to_string(r.upper_ids_[i]) + " has a record of " + std::to_string(e - o) + " words");
    lvl[i] = static_cast<uint8_t>((e - o) / (h.m + 1));
    top = std::max<uint32_t>(top, lvl[i]);
  }
  if (top != h.max_level) throw bad("top level " + std::to_string(h.max_level) + ", the nodes reach " + std::to_string(top));
  if (h.max_level > 0) {
    const auto* it = std::lower_bound(r.upper_ids_, r.upper_ids_ + h.n_upper, h.entry);
    if (it == r.upper_ids_ + h.n_upper || *it != h.entry || lvl[static_cast<size_t>(it - r.upper_ids_)] != h.max_level)
      throw bad("the entry point is not on the top level");
  }
  for (size_t i = 0; i < h.n_upper; ++i)
    for (uint32_t l = 1; l <= lvl[i]; ++l) {
      const uint32_t* rec = r.upper_links_ + r.upper_off_[i] + size_t{l - 1} * (h.m + 1);
      if (rec[0] > h.m) throw bad("upper node " + std::to_string(r.upper_ids_[i]) + " has " + std::to_string(rec[0]) + " links");
      for (uint32_t j = 1; j <= rec[0]; ++j) {
        const auto* it = std::lower_bound(r.upper_ids_, r.upper_ids_ + h.n_upper, rec[j]);
        if (it == r.upper_ids_ + h.n_upper || *it != rec[j] || lvl[static_cast<size_t>(it - r.upper_ids_)] < l ||
            rec[j] == r.upper_ids_[i])
          throw bad("upper node " + std::to_string(r.upper_ids_[i]) + " links on level " + std::to_string(l) +
                    " to word " + std::to_string(rec[j]) + ", which is not on that level");
      }
    }
  return r;
}

GraphIndex GraphIndex::from_index(const Index& ix) {
  const auto s = ix.extra_section("GRPH");
  if (s.empty())
    throw Error("index " + (ix.path().empty() ? std::string("(in memory)") : ix.path()) +
                " has no graph section (build it with `igla build-graph`)");
  return parse(ix, s);
}

bool has_graph_section(const Index& ix) { return !ix.extra_section("GRPH").empty(); }

std::shared_ptr<const GraphIndex> graph_of(const Index& ix) {
  auto p = ix.derived("graph/hnsw", [&]() -> std::shared_ptr<const void> {
    return std::make_shared<const GraphIndex>(has_graph_section(ix) ? GraphIndex::from_index(ix) : GraphIndex::build(ix));
  });
  return std::static_pointer_cast<const GraphIndex>(p);
}

ExtraSection GraphIndex::section() const {
  const GraphLayout lay(n_, m0_, link_bytes_, n_upper_, upper_words_);
  const auto* base = reinterpret_cast<const std::byte*>(counts0_) - lay.counts0;
  return {"GRPH", std::vector<std::byte>(base, base + lay.total)};
}

std::vector<uint32_t> GraphIndex::links(uint32_t v, uint32_t level) const {
  std::vector<uint32_t> out;
  if (v >= n_) return out;
  if (level == 0) {
    for (uint32_t j = 0; j < counts0_[v]; ++j) {
      uint32_t id = 0;
      std::memcpy(&id, links0_ + (size_t{v} * m0_ + j) * link_bytes_, link_bytes_);
      out.push_back(id);
    }
    return out;
  }
  const auto* it = std::lower_bound(upper_ids_, upper_ids_ + n_upper_, v);
  if (it == upper_ids_ + n_upper_ || *it != v) return out;
  const size_t i = static_cast<size_t>(it - upper_ids_);
  if (size_t{upper_off_[i]} + size_t{level} * (m_ + 1) > upper_off_[i + 1]) return out;
  const uint32_t* rec = upper_links_ + upper_off_[i] + size_t{level - 1} * (m_ + 1);
  out.assign(rec + 1, rec + 1 + rec[0]);
  return out;
}

double GraphIndex::link_bytes_per_word() const {
  if (n_ == 0) return 0;
  const double b = double(n_) * (1.0 + double(m0_) * link_bytes_) + 4.0 * double(2 * n_upper_ + 1) + 4.0 * double(upper_words_);
  return b / double(n_);
}

}  // namespace igla
