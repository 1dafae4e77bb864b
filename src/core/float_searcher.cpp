// The float peer: exact float32 cosine search over the float32 vectors kept in the index (F32V),
// for `eval --float` and as the tests' oracle. Scores follow combine_score's formula over float
// cosines of unit vectors (Sum: sum of w_t cos(x, t); CosMul: 3CosMul).
//
// A blocked matmul of query rows x unit word vectors: tasks are runs of consecutive queries whose
// distinct float terms fit in kRows dot rows. The Google analogy file varies c fastest with a and
// b fixed, so a task answers ~kRows questions from ~kRows rows.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <xxhash.h>

#include "core/backends.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/index.hpp"

namespace igla {
namespace {

constexpr size_t kTile = 256;  // words per tile: a dims x 256 slice (100 KB at 100d) stays in L2
constexpr size_t kRows = 48;   // dot rows (distinct query terms) per task, a multiple of every MR
constexpr size_t kMaxTaskQueries = 256;  // keeps tasks balanced when queries repeat terms
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// The unit vectors, per tile and transposed: xt[(t * dims + d) * kTile + w]; padding words are 0.
struct UnitTiles {
  size_t dims = 0, n = 0, n_tiles = 0;
  std::vector<float> xt;
};

// The first n words' tiles (a search restricted to them reads no others).
std::shared_ptr<const UnitTiles> make_unit_tiles(const Index& ix, size_t n) {
  auto u = std::make_shared<UnitTiles>();
  u->dims = ix.float_dims();
  u->n = n;
  u->n_tiles = (u->n + kTile - 1) / kTile;
  u->xt.assign(u->n_tiles * u->dims * kTile, 0.0f);
  const std::span<const float> fv = ix.float_vectors();
  const size_t dims = u->dims;
  ThreadPool::shared().run(static_cast<uint32_t>(u->n_tiles), [&](uint32_t t, int) {
    for (size_t i = t * kTile; i < std::min(u->n, (t + 1) * kTile); ++i) {
      double n2 = 0;
      for (size_t d = 0; d < dims; ++d) n2 += double(fv[i * dims + d]) * fv[i * dims + d];
      const float inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.0f;
      float* xi = u->xt.data() + (i / kTile) * dims * kTile + i % kTile;
      for (size_t d = 0; d < dims; ++d) xi[d * kTile] = fv[i * dims + d] * inv;
    }
  });
  return u;
}

struct Task {
  size_t q0 = 0, n = 0;
  std::vector<uint32_t> rows{};  // batch term index of each dot row
  std::vector<uint8_t> slot{};   // per term of the task's queries, in order: its dot row
};

std::vector<Task> make_tasks(const QueryBatch& b) {
  const size_t D = b.float_dims;
  // Terms are compared by a hash of their bytes first: a memcmp of every term against every row
  // of its task was a tenth of eval --float's time (19,544 questions x 3 terms x ~48 rows).
  std::vector<uint64_t> hash(b.n_terms());
  for (size_t t = 0; t < hash.size(); ++t) hash[t] = XXH3_64bits(&b.float_terms[t * D], D * sizeof(float));
  auto same = [&](uint32_t t, uint32_t u) {
    return hash[t] == hash[u] && std::memcmp(&b.float_terms[size_t{t} * D], &b.float_terms[size_t{u} * D], D * 4) == 0;
  };
  std::vector<Task> tasks;
  for (size_t q = 0; q < b.size(); ++q) {
    const uint32_t t0 = b.term_offsets[q], t1 = b.term_offsets[q + 1];
    auto fresh = [&](const Task& task) {  // rows this query adds to `task`
      size_t k = 0;
      for (uint32_t t = t0; t < t1; ++t) {
        bool found = std::any_of(task.rows.begin(), task.rows.end(), [&](uint32_t r) { return same(r, t); });
        for (uint32_t u = t0; u < t && !found; ++u) found = same(u, t);
        k += !found;
      }
      return k;
    };
    if (tasks.empty() || tasks.back().n == kMaxTaskQueries || tasks.back().rows.size() + fresh(tasks.back()) > kRows)
      tasks.push_back({.q0 = q});
    Task& task = tasks.back();
    for (uint32_t t = t0; t < t1; ++t) {
      const auto it = std::find_if(task.rows.begin(), task.rows.end(), [&](uint32_t r) { return same(r, t); });
      task.slot.push_back(static_cast<uint8_t>(it - task.rows.begin()));
      if (it == task.rows.end()) task.rows.push_back(t);
    }
    ++task.n;
  }
  return tasks;
}

struct Problem {
  const UnitTiles& u;
  const QueryBatch& b;
  size_t R, k;  // words considered, hits per query
};

struct Scratch {
  std::vector<float> rows, s, score;
  std::vector<Hit> top;
};

inline void push_top(Hit* top, size_t k, Hit h) {  // into a best-first list of k hits
  size_t p = k - 1;
  for (; p > 0 && better(h, top[p - 1]); --p) top[p] = top[p - 1];
  top[p] = h;
}

// One task: for each word tile, s[r][w] = rows[r] . word w (MR rows x NV vectors of accumulators
// in registers), then each query's scores and its top k. V is a GCC vector type, so one body
// serves every ISA; the caller's target attribute picks the instructions.
template <class V, int MR, int NV>
[[gnu::always_inline]] inline void run_task(const Problem& p, const Task& task, Scratch& sc, Hit* out) {
  constexpr size_t L = sizeof(V) / sizeof(float);
  static_assert(kRows % MR == 0 && kTile % (L * NV) == 0);
  const size_t dims = p.u.dims, k = p.k;
  const QueryBatch& b = p.b;
  sc.rows.assign(kRows * dims, 0.0f);
  sc.s.resize(kRows * kTile);
  sc.score.resize(kTile);
  for (size_t r = 0; r < task.rows.size(); ++r)
    std::copy_n(b.float_terms.data() + size_t{task.rows[r]} * dims, dims, &sc.rows[r * dims]);
  sc.top.assign(task.n * k, Hit{kNone, -INFINITY});
  const float* rows = sc.rows.data();
  float *s = sc.s.data(), *score = sc.score.data();
  const size_t n_rows = (task.rows.size() + MR - 1) / MR * MR;
  const size_t n_tiles = (p.R + kTile - 1) / kTile;
  for (size_t t = 0; t < n_tiles; ++t) {
    const float* xt = p.u.xt.data() + t * dims * kTile;
    for (size_t r0 = 0; r0 < n_rows; r0 += MR)
      for (size_t w0 = 0; w0 < kTile; w0 += L * NV) {
        V acc[MR][NV] = {};
        for (size_t d = 0; d < dims; ++d) {
          V x[NV];
          for (int j = 0; j < NV; ++j) std::memcpy(&x[j], xt + d * kTile + w0 + j * L, sizeof(V));
          for (int r = 0; r < MR; ++r) {
            const float q = rows[(r0 + r) * dims + d];
            for (int j = 0; j < NV; ++j) acc[r][j] += q * x[j];
          }
        }
        for (int r = 0; r < MR; ++r)
          for (int j = 0; j < NV; ++j) std::memcpy(s + (r0 + r) * kTile + w0 + j * L, &acc[r][j], sizeof(V));
      }
    const size_t base = t * kTile, nw = std::min(kTile, p.R - base);
    size_t slot = 0;
    for (size_t j = 0; j < task.n; ++j) {
      const size_t q = task.q0 + j;
      const uint32_t t0 = b.term_offsets[q], nt = b.term_offsets[q + 1] - t0;
      const uint8_t* sl = &task.slot[slot];
      slot += nt;
      if (b.combine == Combine::CosMul) {
        const float *ca = s + sl[0] * kTile, *cb = s + sl[1] * kTile, *cc = s + sl[2] * kTile;
        for (size_t w = 0; w < kTile; ++w) {  // the float expression of combine_score's 3CosMul
          const float sa = (ca[w] + 1.0f) * 0.5f, sb = (cb[w] + 1.0f) * 0.5f, sc3 = (cc[w] + 1.0f) * 0.5f;
          score[w] = (sb * sc3) / (sa + kCosMulEpsilon);
        }
      } else {
        const float* w = b.float_weights.data() + t0;
        if (nt == 3) {  // 3CosAdd, the common case: one pass, the same sum order as the loop below
          const float *c0 = s + sl[0] * kTile, *c1 = s + sl[1] * kTile, *c2 = s + sl[2] * kTile;
          for (size_t x = 0; x < kTile; ++x) score[x] = ((0.0f + w[0] * c0[x]) + w[1] * c1[x]) + w[2] * c2[x];
        } else {
          for (size_t x = 0; x < kTile; ++x) score[x] = 0.0f;
          for (uint32_t i = 0; i < nt; ++i) {
            const float* c = s + sl[i] * kTile;
            for (size_t x = 0; x < kTile; ++x) score[x] += w[i] * c[x];
          }
        }
      }
      // Words arrive in id order, so a new hit beats the k-th best only on a higher score: skip
      // chunks with no such score (a vectorized test), then insert one by one.
      const uint32_t* ex = b.exclude.data() + b.exclude_offsets[q];
      const uint32_t* ex_end = b.exclude.data() + b.exclude_offsets[q + 1];
      Hit* top = &sc.top[j * k];
      for (size_t c0 = 0; c0 < nw; c0 += 32) {
        const size_t c1 = std::min(nw, c0 + 32);
        const float kth = top[k - 1].score;
        int any = 0;
        for (size_t w = c0; w < c1; ++w) any |= score[w] > kth;
        if (!any) continue;
        for (size_t w = c0; w < c1; ++w) {
          const uint32_t id = static_cast<uint32_t>(base + w);
          if (score[w] > top[k - 1].score && std::find(ex, ex_end, id) == ex_end) push_top(top, k, {id, score[w]});
        }
      }
    }
  }
  std::copy(sc.top.begin(), sc.top.end(), out);
}

using V16 = float __attribute__((vector_size(64)));
using V8 = float __attribute__((vector_size(32)));
using V4 = float __attribute__((vector_size(16)));
using TaskFn = void (*)(const Problem&, const Task&, Scratch&, Hit*);

// The library is built for the baseline instruction set; the wider ones are picked at run time.
#if defined(__x86_64__)
[[gnu::target("avx512f")]] void task_avx512(const Problem& p, const Task& t, Scratch& s, Hit* o) {
  run_task<V16, 6, 4>(p, t, s, o);  // 24 of 32 zmm registers accumulate
}
[[gnu::target("avx2")]] void task_avx2(const Problem& p, const Task& t, Scratch& s, Hit* o) {
  run_task<V8, 6, 2>(p, t, s, o);  // 12 of 16 ymm
}
#endif
void task_base(const Problem& p, const Task& t, Scratch& s, Hit* o) { run_task<V4, 4, 2>(p, t, s, o); }

TaskFn pick_task_fn() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return task_avx512;
  if (__builtin_cpu_supports("avx2")) return task_avx2;
#endif
  return task_base;
}

class FloatSearcher final : public Searcher {
 public:
  FloatSearcher(std::shared_ptr<const Index> index, const CpuOptions& opts)
      : index_(std::move(index)), threads_(opts.threads), run_(pick_task_fn()) {
    if (!index_->has_float())
      throw Error("index " + (index_->path().empty() ? std::string("(in memory)") : index_->path()) +
                  " has no float32 vectors: rebuild it with `igla convert --keep-float` for the float peer");
  }

  // The unit tiles of the first R words: made once per index and R (Index::derived), so a search
  // restricted to the frequent words (eval's --restrict) transposes only those.
  std::shared_ptr<const UnitTiles> tiles(size_t R) const {
    const Index& ix = *index_;
    return std::static_pointer_cast<const UnitTiles>(index_->derived(
        "float/unit-tiles/" + std::to_string(R), [&ix, R]() -> std::shared_ptr<const void> { return make_unit_tiles(ix, R); }));
  }

  std::string name() const override { return "float32 exact"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.max_fast_k = std::numeric_limits<size_t>::max();
    c.max_fast_terms = std::numeric_limits<uint32_t>::max();
    c.reranks = true;  // float scores already: nothing to rescore
    return c;
  }

  void search(const QueryBatch& b, const SearchParams& params, SearchResults& out) const override {
    b.validate();
    const size_t nq = b.size();
    const size_t R = params.limit ? std::min(params.limit, index_->size()) : index_->size();
    const size_t k = std::min(params.k, R);
    out.reset(nq, params.k);
    if (nq == 0 || k == 0) return;
    const std::shared_ptr<const UnitTiles> tiles_ = tiles(R);
    if (b.float_dims != tiles_->dims)
      throw Error("the float peer needs every query's float form (float32, " + std::to_string(tiles_->dims) + " dims)");
    for (size_t q = 0; q < nq; ++q)
      if (!b.has_float[q]) throw Error("query " + std::to_string(q) + " has no float form for the float peer");
    const std::vector<Task> tasks = make_tasks(b);
    std::vector<Hit> top(nq * k);
    const Problem p{*tiles_, b, R, k};
    ThreadPool::shared().run(
        static_cast<uint32_t>(tasks.size()),
        [&](uint32_t i, int) {
          thread_local Scratch scratch;
          run_(p, tasks[i], scratch, &top[tasks[i].q0 * k]);
        },
        threads_);
    for (size_t q = 0; q < nq; ++q) {
      uint32_t c = 0;
      for (size_t i = 0; i < k && top[q * k + i].id != kNone; ++i) out.hits[q * params.k + c++] = top[q * k + i];
      out.count[q] = c;
    }
  }

 private:
  std::shared_ptr<const Index> index_;
  int threads_;
  TaskFn run_;
};

}  // namespace

std::shared_ptr<const Searcher> make_float_searcher(std::shared_ptr<const Index> index, const CpuOptions& opts) {
  if (!index) throw Error("make_searcher: no index");
  return std::make_shared<FloatSearcher>(std::move(index), opts);
}

}  // namespace igla
