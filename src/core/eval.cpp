// Intrinsic evaluation: the Google analogy test (batched ternary search, or exact float32 on the
// vectors kept in the index) and word-pair similarity (Spearman / Pearson against human scores).
//
// Conventions follow gensim's evaluate_word_analogies (case_insensitive=True): a question whose
// words are not all among the first `restrict_vocab` words is skipped; answers come from those
// words too; a, b and c are never answers.
#include "igla/eval.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <unordered_map>

#include "igla/error.hpp"

namespace igla {
namespace {

constexpr size_t kTopK = 5;  // hits kept per question, so case variants of a, b, c can be passed over

std::string fold(std::string_view w) {
  std::string s(w);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Lower-cased word -> the lowest (most frequent) id among the first `limit` words: gensim maps
// every case variant to its first occurrence.
class FoldedVocab {
 public:
  FoldedVocab(const Index& ix, size_t limit) : ix_(ix) {
    map_.reserve(limit);
    for (size_t i = 0; i < limit; ++i) map_.try_emplace(fold(ix.word(i)), static_cast<uint32_t>(i));
  }
  std::optional<uint32_t> find(const std::string& folded) const {
    const auto it = map_.find(folded);
    return it == map_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
  }
  uint32_t canonical(uint32_t id) const { return map_.at(fold(ix_.word(id))); }

 private:
  const Index& ix_;
  std::unordered_map<std::string, uint32_t> map_;
};

std::ifstream open_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  return in;
}

[[noreturn]] void fail_at(const std::string& path, size_t line, const std::string& msg) {
  throw Error(path + ":" + std::to_string(line) + ": " + msg);
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (true) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i == s.size()) return out;
    const size_t j = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    out.push_back(s.substr(j, i - j));
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ---- analogies: reading -------------------------------------------------------------------------

struct Question {
  uint32_t section;
  std::array<std::string, 4> w;  // folded a, b, c, d
};

std::vector<Question> read_analogies(const std::string& path, std::vector<AnalogySection>& sections) {
  std::ifstream in = open_text(path);
  std::vector<Question> qs;
  std::string line;
  for (size_t no = 1; std::getline(in, line); ++no) {
    const std::string_view s = trim(line);
    if (s.empty()) continue;
    if (s.front() == ':') {
      AnalogySection sec;
      sec.name = std::string(trim(s.substr(1)));
      if (sec.name.empty()) fail_at(path, no, "section line without a name");
      sec.syntactic = sec.name.starts_with("gram");
      sections.push_back(std::move(sec));
      continue;
    }
    const auto words = split_ws(s);
    if (words.size() != 4)
      fail_at(path, no, "expected 4 words (a b c d) or ': section', got " + std::to_string(words.size()) + " word(s)");
    if (sections.empty()) sections.push_back({.name = "questions"});  // a file without section lines
    Question q{static_cast<uint32_t>(sections.size() - 1), {}};
    for (size_t i = 0; i < 4; ++i) q.w[i] = fold(words[i]);
    qs.push_back(std::move(q));
  }
  if (qs.empty()) throw Error(path + ": no analogy questions");
  return qs;
}

using Ids = std::array<uint32_t, 4>;  // a, b, c, d

// ---- analogies: ternary codes (and the exact rerank, when the index has it), through the engine --

SearchResults ternary_answers(Engine& engine, const std::vector<Ids>& qs, size_t limit, AnalogyMode mode,
                              size_t batch_size) {
  SearchResults all;
  all.k = kTopK;
  all.hits.resize(qs.size() * kTopK);
  all.count.resize(qs.size());
  SearchResults r;
  batch_size = std::max<size_t>(batch_size, 1);
  for (size_t s = 0; s < qs.size(); s += batch_size) {
    const size_t e = std::min(qs.size(), s + batch_size);
    std::vector<std::array<uint32_t, 3>> abc(e - s);
    for (size_t i = s; i < e; ++i) abc[i - s] = {qs[i][0], qs[i][1], qs[i][2]};
    r = engine.analogies(abc, mode, {.k = kTopK, .limit = limit});
    for (size_t i = s; i < e; ++i) {
      const auto h = r.of(i - s);
      std::copy(h.begin(), h.end(), all.hits.begin() + i * kTopK);
      all.count[i] = h.size();
    }
  }
  return all;
}

// ---- analogies: float32, a blocked matmul of query rows x unit word vectors --------------------
//
// Tasks are runs of consecutive questions whose distinct a, b, c words fit in kRows dot rows. The
// file varies c fastest with a and b fixed, so a task answers ~kRows questions from ~kRows rows,
// and both 3CosAdd (cos(x,b) - cos(x,a) + cos(x,c), the argmax of x.(b - a + c) over unit
// vectors) and 3CosMul cost one dot row per question. Clamp has no float form: it counts as add.

constexpr size_t kTile = 256;  // words per tile: a dims x 256 slice (100 KB at 100d) stays in L2
constexpr size_t kRows = 48;   // dot rows (distinct query words) per task, a multiple of every MR
constexpr size_t kMaxTaskQuestions = 256;  // keeps tasks balanced when questions repeat words
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

struct Task {
  size_t q0 = 0, n = 0;
  std::vector<uint32_t> words{};               // dot rows
  std::vector<std::array<uint8_t, 3>> slot{};  // per question: rows of a, b, c
};

std::vector<Task> make_tasks(const std::vector<Ids>& qs) {
  std::vector<Task> tasks;
  for (size_t i = 0; i < qs.size(); ++i) {
    auto is_new = [&](const Task& t, size_t k) {  // word k of question i needs a row of its own
      return std::find(t.words.begin(), t.words.end(), qs[i][k]) == t.words.end() &&
             std::find(qs[i].begin(), qs[i].begin() + k, qs[i][k]) == qs[i].begin() + k;
    };
    if (tasks.empty() || tasks.back().n == kMaxTaskQuestions ||
        tasks.back().words.size() + is_new(tasks.back(), 0) + is_new(tasks.back(), 1) + is_new(tasks.back(), 2) > kRows)
      tasks.push_back({.q0 = i});
    Task& t = tasks.back();
    std::array<uint8_t, 3> sl{};
    for (size_t k = 0; k < 3; ++k) {
      const auto it = std::find(t.words.begin(), t.words.end(), qs[i][k]);
      sl[k] = static_cast<uint8_t>(it - t.words.begin());
      if (it == t.words.end()) t.words.push_back(qs[i][k]);
    }
    t.slot.push_back(sl);
    ++t.n;
  }
  return tasks;
}

struct FloatProblem {
  size_t dims, R, n_tiles;
  const float* unit;  // R x dims unit vectors
  const float* xt;    // the same per tile, transposed: xt[(t * dims + d) * kTile + w]
  bool mul;
  const std::vector<Ids>* qs;
};

struct Scratch {
  std::vector<float> rows, s, score;
  std::vector<Hit> top;
};

inline void push_top(Hit* top, Hit h) {  // into a best-first list of kTopK hits
  size_t p = kTopK - 1;
  for (; p > 0 && better(h, top[p - 1]); --p) top[p] = top[p - 1];
  top[p] = h;
}

// One task: for each word tile, s[r][w] = rows[r] . word w (MR rows x NV vectors of accumulators
// in registers), then each question's scores and its top kTopK. V is a GCC vector type, so one
// body serves every ISA; the caller's target attribute picks the instructions.
template <class V, int MR, int NV>
[[gnu::always_inline]] inline void run_task(const FloatProblem& p, const Task& task, Scratch& sc, Hit* out) {
  constexpr size_t L = sizeof(V) / sizeof(float);
  static_assert(kRows % MR == 0 && kTile % (L * NV) == 0);
  const size_t dims = p.dims;
  sc.rows.assign(kRows * dims, 0.0f);
  sc.s.resize(kRows * kTile);
  sc.score.resize(kTile);
  for (size_t r = 0; r < task.words.size(); ++r)
    std::copy_n(p.unit + size_t{task.words[r]} * dims, dims, &sc.rows[r * dims]);
  sc.top.assign(task.n * kTopK, Hit{kNone, -INFINITY});
  const float* rows = sc.rows.data();
  float *s = sc.s.data(), *score = sc.score.data();
  const size_t n_rows = (task.words.size() + MR - 1) / MR * MR;
  for (size_t t = 0; t < p.n_tiles; ++t) {
    const float* xt = p.xt + t * dims * kTile;
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
    for (size_t j = 0; j < task.n; ++j) {
      const float *ca = s + task.slot[j][0] * kTile, *cb = s + task.slot[j][1] * kTile, *cc = s + task.slot[j][2] * kTile;
      if (p.mul) {
        for (size_t w = 0; w < kTile; ++w) {  // the float expression of combine_score's 3CosMul
          const float sa = (ca[w] + 1.0f) * 0.5f, sb = (cb[w] + 1.0f) * 0.5f, sc3 = (cc[w] + 1.0f) * 0.5f;
          score[w] = (sb * sc3) / (sa + kCosMulEpsilon);
        }
      } else {
        for (size_t w = 0; w < kTile; ++w) score[w] = cb[w] - ca[w] + cc[w];
      }
      // Words arrive in id order, so a new hit beats the k-th best only on a higher score: skip
      // chunks with no such score (a vectorized test), then insert one by one.
      const Ids& q = (*p.qs)[task.q0 + j];
      Hit* top = &sc.top[j * kTopK];
      for (size_t c0 = 0; c0 < nw; c0 += 32) {
        const size_t c1 = std::min(nw, c0 + 32);
        const float kth = top[kTopK - 1].score;
        int any = 0;
        for (size_t w = c0; w < c1; ++w) any |= score[w] > kth;
        if (!any) continue;
        for (size_t w = c0; w < c1; ++w) {
          const uint32_t id = static_cast<uint32_t>(base + w);
          if (score[w] > top[kTopK - 1].score && id != q[0] && id != q[1] && id != q[2]) push_top(top, {id, score[w]});
        }
      }
    }
  }
  std::copy(sc.top.begin(), sc.top.end(), out);
}

using V16 = float __attribute__((vector_size(64)));
using V8 = float __attribute__((vector_size(32)));
using V4 = float __attribute__((vector_size(16)));
using TaskFn = void (*)(const FloatProblem&, const Task&, Scratch&, Hit*);

// The library is built for baseline x86-64; the wider instruction sets are picked at run time.
#if defined(__x86_64__) || defined(__i386__)
[[gnu::target("avx512f")]] void task_avx512(const FloatProblem& p, const Task& t, Scratch& s, Hit* o) {
  run_task<V16, 6, 4>(p, t, s, o);  // 24 of 32 zmm registers accumulate
}
[[gnu::target("avx2")]] void task_avx2(const FloatProblem& p, const Task& t, Scratch& s, Hit* o) {
  run_task<V8, 6, 2>(p, t, s, o);  // 12 of 16 ymm
}
#endif
void task_base(const FloatProblem& p, const Task& t, Scratch& s, Hit* o) { run_task<V4, 4, 2>(p, t, s, o); }

TaskFn pick_task_fn() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return task_avx512;
  if (__builtin_cpu_supports("avx2")) return task_avx2;
#endif
  return task_base;
}

SearchResults float_answers(const Index& ix, size_t R, const std::vector<Ids>& qs, AnalogyMode mode, int threads) {
  const size_t dims = ix.float_dims(), nq = qs.size();
  const std::span<const float> fv = ix.float_vectors();
  const int nt = threads > 0 ? threads : omp_get_max_threads();
  const size_t n_tiles = (R + kTile - 1) / kTile;
  std::vector<float> unit(R * dims), xt(n_tiles * dims * kTile, 0.0f);  // padding words stay 0
#pragma omp parallel for num_threads(nt) schedule(static)
  for (size_t i = 0; i < R; ++i) {
    double n2 = 0;
    for (size_t d = 0; d < dims; ++d) n2 += double(fv[i * dims + d]) * fv[i * dims + d];
    const float inv = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.0f;
    float* xi = xt.data() + (i / kTile) * dims * kTile + i % kTile;
    for (size_t d = 0; d < dims; ++d) xi[d * kTile] = unit[i * dims + d] = fv[i * dims + d] * inv;
  }
  const FloatProblem p{dims, R, n_tiles, unit.data(), xt.data(), mode == AnalogyMode::Mul, &qs};
  const std::vector<Task> tasks = make_tasks(qs);
  const TaskFn run = pick_task_fn();

  SearchResults out;
  out.k = kTopK;
  out.hits.resize(nq * kTopK);
  out.count.assign(nq, 0);
#pragma omp parallel num_threads(nt)
  {
    Scratch scratch;
#pragma omp for schedule(dynamic)
    for (size_t ti = 0; ti < tasks.size(); ++ti) run(p, tasks[ti], scratch, &out.hits[tasks[ti].q0 * kTopK]);
  }
  for (size_t i = 0; i < nq; ++i) {
    const Hit* h = &out.hits[i * kTopK];
    out.count[i] = static_cast<uint32_t>(std::count_if(h, h + kTopK, [](const Hit& x) { return x.id != kNone; }));
  }
  return out;
}

}  // namespace

AnalogyReport eval_analogies(Engine& engine, const std::string& path, const AnalogyEvalOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const Index& ix = engine.index();
  if (opts.use_float && !ix.has_float())
    throw Error("index " + (ix.path().empty() ? std::string("(in memory)") : ix.path()) +
                " has no float32 vectors: rebuild it with --keep-float to evaluate with --float");
  AnalogyReport rep;
  const std::vector<Question> questions = read_analogies(path, rep.sections);
  const size_t R = opts.restrict_vocab ? std::min(opts.restrict_vocab, ix.size()) : ix.size();
  const FoldedVocab vocab(ix, R);

  std::vector<Ids> ids;
  std::vector<uint32_t> section_of;
  for (const Question& q : questions) {
    Ids id{};
    bool ok = true;
    for (size_t i = 0; i < 4 && ok; ++i) {
      const auto f = vocab.find(q.w[i]);
      ok = f.has_value();
      if (ok) id[i] = *f;
    }
    if (!ok) {
      ++rep.sections[q.section].skipped;
      continue;
    }
    ids.push_back(id);
    section_of.push_back(q.section);
  }

  SearchResults res;
  if (!ids.empty())
    res = opts.use_float ? float_answers(ix, R, ids, opts.mode, opts.threads)
                         : ternary_answers(engine, ids, R, opts.mode, opts.batch);

  for (size_t i = 0; i < ids.size(); ++i) {
    // The best hit that is not a case variant of an input word (ids themselves are excluded).
    std::optional<uint32_t> answer;
    for (const Hit& h : res.of(i)) {
      const uint32_t c = vocab.canonical(h.id);
      if (c != ids[i][0] && c != ids[i][1] && c != ids[i][2]) {
        answer = c;
        break;
      }
    }
    AnalogySection& sec = rep.sections[section_of[i]];
    ++sec.answered;
    if (answer == ids[i][3]) ++sec.correct;
  }
  for (const AnalogySection& sec : rep.sections) {
    rep.correct += sec.correct, rep.answered += sec.answered, rep.skipped += sec.skipped;
    (sec.syntactic ? rep.syn_correct : rep.sem_correct) += sec.correct;
    (sec.syntactic ? rep.syn_answered : rep.sem_answered) += sec.answered;
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

// ---- word-pair similarity ----------------------------------------------------------------------

namespace {

// Ranks 1..n, tied values sharing the average of their ranks.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double avg = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[order[k]] = avg;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 2) return NAN;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= double(n), my /= double(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : NAN;
}

double float_cosine(std::span<const float> fv, size_t dims, uint32_t a, uint32_t b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t d = 0; d < dims; ++d) {
    const double x = fv[a * dims + d], y = fv[b * dims + d];
    ab += x * y, aa += x * x, bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace

SimilarityReport eval_similarity(const Engine& engine, const std::string& path, bool use_float) {
  const Index& ix = engine.index();
  if (use_float && !ix.has_float())
    throw Error("index " + (ix.path().empty() ? std::string("(in memory)") : ix.path()) +
                " has no float32 vectors: rebuild it with --keep-float to evaluate with --float");
  std::ifstream in = open_text(path);
  const std::span<const float> fv = use_float ? ix.float_vectors() : std::span<const float>();
  const FoldedVocab vocab(ix, ix.size());
  SimilarityReport rep;
  std::vector<double> model, human;
  std::string line;
  bool first = true;
  for (size_t no = 1; std::getline(in, line); ++no) {
    const std::string_view s = trim(line);
    if (s.empty()) continue;
    std::vector<std::string_view> f;
    if (s.find(',') != std::string_view::npos) {
      for (size_t p = 0;;) {
        const size_t q = s.find(',', p);
        f.push_back(trim(s.substr(p, q == std::string_view::npos ? q : q - p)));
        if (q == std::string_view::npos) break;
        p = q + 1;
      }
    } else {
      f = split_ws(s);
    }
    if (f.size() != 3)
      fail_at(path, no, "expected 3 fields (word1, word2, score), got " + std::to_string(f.size()));
    double score = 0;
    const auto [ptr, ec] = std::from_chars(f[2].data(), f[2].data() + f[2].size(), score);
    const bool numeric = ec == std::errc() && ptr == f[2].data() + f[2].size() && std::isfinite(score);
    const bool header = first && !numeric;
    first = false;
    if (header) continue;  // e.g. "Word 1,Word 2,Human (mean)"
    if (!numeric) fail_at(path, no, "score '" + std::string(f[2]) + "' is not a number");
    const auto a = vocab.find(fold(f[0])), b = vocab.find(fold(f[1]));
    if (!a || !b) {
      ++rep.oov;
      continue;
    }
    // Without --float: the engine's cosine (rerank rows when the index has them, else the codes).
    model.push_back(use_float ? float_cosine(fv, ix.float_dims(), *a, *b) : engine.cosine(*a, *b));
    human.push_back(score);
  }
  if (model.empty() && rep.oov == 0) throw Error(path + ": no word pairs");
  rep.pairs = model.size();
  rep.pearson = pearson(model, human);
  rep.spearman = pearson(ranks(model), ranks(human));
  return rep;
}

}  // namespace igla
