// Query builders: word ids, float vectors, ternary vectors, analogies and most_similar into one
// QueryBatch, each query with its ternary terms and (where the index can rescore) its float form.
#include "igla/queries.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/float_term.hpp"
#include "core/huge_pages.hpp"
#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/ternary.hpp"

namespace igla {

AnalogyMode parse_analogy_mode(std::string_view name) {
  if (name == "clamp") return AnalogyMode::Clamp;
  if (name == "add") return AnalogyMode::Add;
  if (name == "mul") return AnalogyMode::Mul;
  throw Error("unknown analogy mode '" + std::string(name) + "' (expected clamp, add or mul)");
}

const char* analogy_mode_name(AnalogyMode m) {
  switch (m) {
    case AnalogyMode::Clamp: return "clamp";
    case AnalogyMode::Add: return "add";
    case AnalogyMode::Mul: return "mul";
  }
  return "?";
}

namespace {

// QueryBuilder::analogies' scratch for a batch's distinct words, kept between batches in a small
// process-wide pool: made fresh, its id -> slot array alone (4 bytes a vocabulary word: 1.4 MB for
// GloVe) cost ~1 ms of page faults a batch on the GPU host (fresh memory, run 78), most of the
// eval's wait for its first batch. A lease takes one (or makes one) and gives it back with the
// slots it set reset to kNone, so every lease starts from an all-kNone array.
struct DistinctScratch {
  static constexpr uint32_t kNone = ~0u;
  std::vector<uint32_t> slot, uniq;
  std::vector<int8_t> u_trits;
  std::vector<float> u_floats;

  class Lease {
   public:
    Lease() {
      std::lock_guard<std::mutex> g(pool_mu());
      if (!pool().empty()) {
        s_ = std::move(pool().back());
        pool().pop_back();
      }
      if (!s_) s_ = std::make_unique<DistinctScratch>();
    }
    ~Lease() {
      for (uint32_t id : s_->uniq) s_->slot[id] = kNone;
      s_->uniq.clear();
      std::lock_guard<std::mutex> g(pool_mu());
      if (pool().size() < kKept) pool().push_back(std::move(s_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    DistinctScratch* operator->() const { return s_.get(); }

   private:
    static constexpr size_t kKept = 8;  // builders at once: the eval builds up to 5 batches ahead
    static std::mutex& pool_mu() {
      static std::mutex m;
      return m;
    }
    static std::vector<std::unique_ptr<DistinctScratch>>& pool() {
      static std::vector<std::unique_ptr<DistinctScratch>> p;
      return p;
    }
    std::unique_ptr<DistinctScratch> s_;
  };
};
std::string where(const Index& ix) { return ix.path().empty() ? std::string("(in memory)") : ix.path(); }
}  // namespace

QueryBuilder::QueryBuilder(const Index& ix, Combine c, FloatForm f) : ix_(ix), form_(f), b_(ix.dims(), c) {
  if (form_ == FloatForm::Auto) form_ = ix.rerank() != Rerank::None ? FloatForm::Rows : FloatForm::None;
  if (form_ == FloatForm::Rows && ix.rerank() == Rerank::None)
    throw Error("index " + where(ix) + " has no rerank rows");
  if (form_ == FloatForm::Float32 && !ix.has_float())
    throw Error("index " + where(ix) + " has no float32 vectors: rebuild it with `igla convert --keep-float`");
  row_.resize(ix.float_dims());
}

QueryBuilder::QueryBuilder(const Index& ix, Combine c, FloatForm f, QueryBatch&& storage) : QueryBuilder(ix, c, f) {
  QueryBatch& b = storage;
  b.dims = ix.dims();
  b.combine = c;
  b.trits.clear();
  b.weights.clear();
  b.term_offsets.assign(1, 0);
  b.exclude.clear();
  b.exclude_offsets.assign(1, 0);
  b.float_dims = 0;
  b.float_terms.clear();
  b.float_weights.clear();
  b.has_float.clear();
  b_ = std::move(b);
}

void QueryBuilder::float_row(uint32_t id, std::span<float> out) const {
  if (form_ == FloatForm::Rows) {
    ix_.rerank_row(id, out);
    return;
  }
  const auto fv = ix_.float_vectors();
  const size_t d = ix_.float_dims();
  std::copy(fv.begin() + static_cast<long>(id * d), fv.begin() + static_cast<long>((id + 1) * d), out.begin());
}

void QueryBuilder::add(std::span<const uint32_t> ids, std::span<const float> signs, std::span<const uint32_t> excl) {
  const size_t n = ids.size();
  for (uint32_t id : ids)
    if (id >= ix_.size()) throw Error("word id " + std::to_string(id) + " is out of range");
  // Scratch reused across calls (a batch of 19,544 analogies spent most of its building time in
  // allocations of per-term vectors and their copies).
  thread_local std::vector<int8_t> tbuf;
  thread_local std::vector<std::span<const int8_t>> terms;
  thread_local std::vector<float> w, rows;
  thread_local std::vector<std::span<const float>> fterms;
  const uint32_t dims = ix_.dims();
  tbuf.resize(n * dims);
  terms.resize(n);
  w.resize(n);
  const float* inv = ix_.codes().inv_norms;
  for (size_t i = 0; i < n; ++i) {
    const std::span<int8_t> t(tbuf.data() + i * dims, dims);
    unpack_from_blocks(ix_.codes().codes, ids[i], dims, t);
    terms[i] = t;
    w[i] = signs[i] * inv[ids[i]];  // signs[i] / |x_i|: the cosine's weight
  }
  if (!floats()) {
    b_.add_query(terms, w, excl);
    return;
  }
  const size_t fd = ix_.float_dims();
  rows.resize(n * fd);
  fterms.resize(n);
  for (size_t i = 0; i < n; ++i) {
    std::span<float> r(rows.data() + i * fd, fd);
    float_row(ids[i], r);
    fterms[i] = r;
  }
  b_.add_query(terms, w, fterms, signs, excl);
}

QueryBuilder& QueryBuilder::word(uint32_t id, bool exclude_self) {
  if (id >= ix_.size()) throw Error("word id " + std::to_string(id) + " is out of range");
  const std::vector<int8_t> t = ix_.trits(id);
  const std::span<const int8_t> terms[1] = {t};
  const float w[1] = {inv_norm_from_nnz(count_nonzero(t))};
  const uint32_t excl[1] = {id};
  const std::span<const uint32_t> ex = exclude_self ? std::span<const uint32_t>(excl) : std::span<const uint32_t>();
  if (!floats()) {
    b_.add_query(terms, w, ex);
    return *this;
  }
  float_row(id, row_);
  const std::span<const float> f[1] = {row_};
  const float one[1] = {1.0f};
  b_.add_query(terms, w, f, one, ex);
  return *this;
}

QueryBuilder& QueryBuilder::vectors(std::span<const float> x, size_t n, std::span<const uint32_t> excl) {
  const size_t d = ix_.float_dims();
  if (x.size() != n * d)
    throw Error("expected " + std::to_string(n) + " x " + std::to_string(d) + " float values (the index's float dims), got " +
                std::to_string(x.size()));
  std::vector<int8_t> t(ix_.dims());
  const float one[1] = {1.0f};
  for (size_t i = 0; i < n; ++i) {
    const std::span<const float> xi = x.subspan(i * d, d);
    for (size_t j = 0; j < d; ++j)
      if (!std::isfinite(xi[j]))
        throw Error("query vector " + std::to_string(i) + " holds a value that is not a finite number (dim " +
                    std::to_string(j) + ")");
    ix_.transform().quantize(xi, t);
    const std::span<const int8_t> terms[1] = {t};
    const float w[1] = {inv_norm_from_nnz(count_nonzero(t))};
    if (floats()) {
      const std::span<const float> f[1] = {xi};
      b_.add_query(terms, w, f, one, excl);
    } else {
      b_.add_query(terms, w, excl);
    }
  }
  return *this;
}

QueryBuilder& QueryBuilder::trits(std::span<const int8_t> t, std::span<const uint32_t> excl) {
  for (int8_t v : t)
    if (v < -1 || v > 1) throw Error("a ternary query holds a value outside {-1, 0, 1}");
  b_.add_nearest(t, excl);
  return *this;
}

QueryBuilder& QueryBuilder::analogy(uint32_t a, uint32_t b, uint32_t c, AnalogyMode mode) {
  if (combine_of(mode) != b_.combine)
    throw Error(std::string("an analogy of mode '") + analogy_mode_name(mode) + "' in a batch of another combine");
  const uint32_t ids[3] = {a, b, c};
  if (mode == AnalogyMode::Clamp) {  // the seed: b - a + c clamped back to a ternary vector
    for (uint32_t id : ids)
      if (id >= ix_.size()) throw Error("word id " + std::to_string(id) + " is out of range");
    const auto ta = ix_.trits(a), tb = ix_.trits(b), tc = ix_.trits(c);
    std::vector<int32_t> sum(ix_.dims());
    for (size_t d = 0; d < sum.size(); ++d) sum[d] = tb[d] - ta[d] + tc[d];
    std::vector<int8_t> q(sum.size());
    clamp_trits(sum, q);
    b_.add_nearest(q, ids);
    return *this;
  }
  const float add_signs[3] = {-1.0f, 1.0f, 1.0f}, mul_signs[3] = {1.0f, 1.0f, 1.0f};
  add(ids, mode == AnalogyMode::Mul ? mul_signs : add_signs, ids);
  return *this;
}

QueryBuilder& QueryBuilder::analogies(std::span<const std::array<uint32_t, 3>> abc, AnalogyMode mode) {
  if (combine_of(mode) != b_.combine)
    throw Error(std::string("an analogy of mode '") + analogy_mode_name(mode) + "' in a batch of another combine");
  for (const auto& q : abc)
    for (uint32_t id : q)
      if (id >= ix_.size()) throw Error("word id " + std::to_string(id) + " is out of range");
  const size_t fd = ix_.float_dims();
  // One at a time where the batch's float form is not this builder's own (a batch edited by hand)
  // and for the clamped seed (its own arithmetic, never reranked).
  const bool other_floats = floats() ? b_.float_dims && b_.float_dims != fd : b_.float_dims != 0;
  const bool plain = mode == AnalogyMode::Clamp || other_floats || b_.has_float.size() != b_.size();
  if (plain) {
    for (const auto& q : abc) analogy(q[0], q[1], q[2], mode);
    return *this;
  }
  const size_t n = abc.size(), q0 = b_.size(), t0 = b_.n_terms(), e0 = b_.exclude.size();
  if (n == 0) return *this;
  const uint32_t dims = ix_.dims();
  if (floats() && b_.float_dims == 0) {  // the first float query: earlier terms get zero float forms
    b_.float_dims = static_cast<uint32_t>(fd);
    b_.float_terms.assign(t0 * fd, 0.0f);
    b_.float_weights.assign(t0, 0.0f);
  }
  reserve_huge(b_.trits, (t0 + 3 * n) * dims);
  if (floats()) reserve_huge(b_.float_terms, (t0 + 3 * n) * fd);
  b_.trits.resize((t0 + 3 * n) * dims);
  b_.weights.resize(t0 + 3 * n);
  b_.term_offsets.resize(q0 + 1 + n);
  b_.exclude.resize(e0 + 3 * n);
  b_.exclude_offsets.resize(q0 + 1 + n);
  b_.has_float.resize(q0 + n, floats() ? 1 : 0);
  if (floats()) {
    b_.float_terms.resize((t0 + 3 * n) * fd);
    b_.float_weights.resize(t0 + 3 * n);
  }
  static constexpr float kAdd[3] = {-1.0f, 1.0f, 1.0f}, kMul[3] = {1.0f, 1.0f, 1.0f};
  const float* signs = mode == AnalogyMode::Mul ? kMul : kAdd;
  const float* inv = ix_.codes().inv_norms;
  const uint64_t* codes = ix_.codes().codes;
  // A question file repeats its words (the Google set's 58,632 terms are 905 words): where the
  // batch's words repeat, each distinct word's trits and unit float row are made once (the same
  // functions, so the same bits) and copied to its terms: 15,448 eval questions 24.7 -> 13.6 ms
  // on the dev VM's 2 cores. (On the GPU machine's 16 host cores, 7-14 ms either way, runs 78-79:
  // there the fresh memory the batch is written into costs most; see eval's SpareBatches.)
  constexpr uint32_t kNone = DistinctScratch::kNone;
  DistinctScratch::Lease scratch;  // slot: word id -> its distinct index, kNone where not in the batch
  std::vector<uint32_t>& slot = scratch->slot;
  std::vector<uint32_t>& uniq = scratch->uniq;
  if (3 * n >= 2048) {
    if (slot.size() < ix_.size()) slot.resize(ix_.size(), kNone);
    for (const auto& q : abc)
      for (uint32_t id : q)
        if (slot[id] == kNone) {
          slot[id] = static_cast<uint32_t>(uniq.size());
          uniq.push_back(id);
        }
    if (2 * uniq.size() > 3 * n) {  // too few repeats to pay for the extra copy
      for (uint32_t id : uniq) slot[id] = kNone;
      uniq.clear();
    }
  }
  // A word's trits and (f: where the batch has float forms) unit float row.
  auto make_term = [&](uint32_t id, int8_t* tr, float* f) {
    unpack_from_blocks(codes, id, dims, std::span<int8_t>(tr, dims));
    if (f) {
      float_row(id, std::span<float>(f, fd));
      unit_float_term(f, fd, f);
    }
  };
  std::vector<int8_t>& u_trits = scratch->u_trits;
  std::vector<float>& u_floats = scratch->u_floats;
  u_trits.resize(uniq.size() * dims);
  u_floats.resize(floats() ? uniq.size() * fd : 0);
  auto make_rows = [&](size_t u0, size_t u1) {
    for (size_t u = u0; u < u1; ++u)
      make_term(uniq[u], u_trits.data() + u * dims, floats() ? u_floats.data() + u * fd : nullptr);
  };
  auto fill = [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      for (size_t j = 0; j < 3; ++j) {
        const uint32_t id = abc[i][j];
        const size_t t = t0 + 3 * i + j;
        int8_t* tr = b_.trits.data() + t * dims;
        float* f = floats() ? b_.float_terms.data() + t * fd : nullptr;
        if (!uniq.empty()) {
          const size_t u = slot[id];
          std::memcpy(tr, u_trits.data() + u * dims, dims);
          if (f) std::memcpy(f, u_floats.data() + u * fd, fd * sizeof(float));
        } else {
          make_term(id, tr, f);
        }
        b_.weights[t] = signs[j] * inv[id];  // signs[j] / |x|: the cosine's weight, as add() gives it
        b_.exclude[e0 + 3 * i + j] = id;
        if (f) b_.float_weights[t] = signs[j];
      }
      b_.term_offsets[q0 + 1 + i] = static_cast<uint32_t>(t0 + 3 * (i + 1));
      b_.exclude_offsets[q0 + 1 + i] = static_cast<uint32_t>(e0 + 3 * (i + 1));
    }
  };
  // Slices on the shared pool where there are several.
  auto in_slices = [](size_t count, size_t slice, const auto& fn) {
    const size_t n_slices = (count + slice - 1) / slice;
    if (n_slices <= 1) {
      fn(size_t{0}, count);
      return;
    }
    ThreadPool::shared().run(static_cast<uint32_t>(n_slices), [&](uint32_t s, int) {
      fn(s * slice, std::min(count, (s + 1) * slice));
    });
  };
  in_slices(uniq.size(), 64, make_rows);
  in_slices(n, 256, fill);  // 256 queries a task: ~0.6 MB of output, a few tens of microseconds
  return *this;
}

QueryBuilder& QueryBuilder::most_similar(std::span<const uint32_t> positive, std::span<const uint32_t> negative) {
  if (positive.empty() && negative.empty()) throw Error("most_similar needs at least one positive or negative word");
  if (b_.combine != Combine::Sum) throw Error("most_similar queries go in a Sum batch");
  std::vector<uint32_t> ids(positive.begin(), positive.end());
  ids.insert(ids.end(), negative.begin(), negative.end());
  std::vector<float> signs(positive.size(), 1.0f);
  signs.resize(ids.size(), -1.0f);
  add(ids, signs, ids);
  return *this;
}

}  // namespace igla
