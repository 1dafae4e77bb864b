// Intrinsic evaluation: the Google analogy test (batched ternary search, or exact float32 on the
// vectors kept in the index) and word-pair similarity (Spearman / Pearson against human scores).
//
// Conventions follow gensim's evaluate_word_analogies (case_insensitive=True): a question whose
// words are not all among the first `restrict_vocab` words is skipped; answers come from those
// words too; a, b and c are never answers.
#include "igla/eval.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/thread_pool.hpp"
#include "igla/error.hpp"
#include "igla/search.hpp"

namespace igla {
namespace {

constexpr size_t kTopK = 5;  // hits kept per question, so case variants of a, b, c can be passed over

// The "C" locale's isspace and tolower, inline: through libc they were a call a byte, ~30% of
// reading the question file (perf, NOTES v14); ASCII only, the same in every locale.
inline bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
inline unsigned char to_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c; }

// w lower-cased, appended to out.
void fold_append(std::string_view w, std::string& out) {
  for (const char ch : w) out.push_back(static_cast<char>(to_lower(static_cast<unsigned char>(ch))));
}

std::string fold(std::string_view w) {
  std::string s;
  s.reserve(w.size());
  fold_append(w, s);
  return s;
}

void fold_into(std::string_view w, std::string& out) {
  out.clear();
  fold_append(w, out);
}

// Lower-cased word -> the lowest (most frequent) id among the first `limit` words: gensim maps
// every case variant to its first occurrence.
class FoldedVocab {
 public:
  FoldedVocab(const Index& ix, size_t limit) {
    map_.reserve(limit);
    for (size_t i = 0; i < limit; ++i) map_.try_emplace(fold(ix.word(i)), static_cast<uint32_t>(i));
  }
  std::optional<uint32_t> find(const std::string& folded) const {
    const auto it = map_.find(folded);
    return it == map_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
  }

 private:
  std::unordered_map<std::string, uint32_t> map_;
};

std::ifstream open_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  return in;
}

std::string no_float_message(const Index& ix) {
  const std::string p = ix.path().empty() ? std::string("(in memory)") : ix.path();
  return "index " + p + " has no float32 vectors: rebuild it with them to evaluate with --float, e.g. `igla convert " +
         p + " ... --keep-float` from the original vectors (or `igla fetch-glove --keep-float --force`)";
}

[[noreturn]] void fail_at(const std::string& path, size_t line, const std::string& msg) {
  throw Error(path + ":" + std::to_string(line) + ": " + msg);
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (true) {
    while (i < s.size() && is_space(static_cast<unsigned char>(s[i]))) ++i;
    if (i == s.size()) return out;
    const size_t j = i;
    while (i < s.size() && !is_space(static_cast<unsigned char>(s[i]))) ++i;
    out.push_back(s.substr(j, i - j));
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ---- analogies: reading -------------------------------------------------------------------------

struct Question {
  uint32_t section;
  std::array<uint32_t, 4> w;  // a, b, c, d: indices into QuestionFile::words
};

// The file's bytes: a regular file mapped read-only, its pages populated in one call (reading
// the 600 KB Google file into fresh memory took ~2.5 ms of page faults on the dev VM, the map
// 0.25 ms), else (a pipe, or a file that cannot be mapped) read to its end from the same
// descriptor.
class FileBytes {
 public:
  explicit FileBytes(const std::string& path);
  ~FileBytes() {
    if (map_) ::munmap(map_, size_);
  }
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  std::string_view view() const { return map_ ? std::string_view(static_cast<const char*>(map_), size_) : owned_; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string owned_;
};

// The questions with their words interned: each distinct folded word once (a view into the file,
// or into a slice's `folded` copy where the file has it in another case), the questions holding
// indices (the Google file: 19,544 questions over ~900 distinct words, so the lookups below run
// per distinct word, not per question).
struct QuestionFile {
  std::unique_ptr<FileBytes> bytes;
  std::vector<std::string> folded;  // the slices' folded words
  std::vector<std::string_view> words;
  std::vector<Question> qs;
};

// Distinct words in first-seen order, each with its index, folded to lower case: open addressing
// over a power-of-two table of (hash, index + 1), FNV-1a over the folded bytes. A word is folded
// while it is hashed and compared, and copied only when it is new and has upper-case letters
// (with std::unordered_map, a node a word and hashing modulo a prime, and a folded copy of every
// word, one thread's parse of the Google file took 4.5 ms on the dev VM, now 2.3).
class WordInterner {
 public:
  // The index of w's folded form; a new one is appended: w itself when it is folded already,
  // else a folded copy at the end of `arena` (whose capacity must hold it: views stay valid).
  uint32_t intern(std::string_view w, std::string& arena) {
    if (2 * (words_.size() + 1) > slots_.size()) grow();
    uint32_t h = kSeed;
    bool upper = false;
    for (const char c : w) {
      upper |= c >= 'A' && c <= 'Z';
      h = step(h, c);
    }
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const uint64_t s = slots_[i];
      if (s == 0) {
        if (upper) {
          const size_t at = arena.size();
          fold_append(w, arena);
          w = std::string_view(arena).substr(at);
        }
        words_.push_back(w);
        slots_[i] = static_cast<uint64_t>(h) << 32 | words_.size();
        return static_cast<uint32_t>(words_.size() - 1);
      }
      if (static_cast<uint32_t>(s >> 32) == h && folds_to(w, words_[static_cast<uint32_t>(s) - 1]))
        return static_cast<uint32_t>(s) - 1;
    }
  }
  std::vector<std::string_view> take_words() { return std::move(words_); }

 private:
  static constexpr uint32_t kSeed = 2166136261u;
  static uint32_t step(uint32_t h, char c) { return (h ^ to_lower(static_cast<unsigned char>(c))) * 16777619u; }
  static bool folds_to(std::string_view w, std::string_view folded) {
    if (w.size() != folded.size()) return false;
    for (size_t i = 0; i < w.size(); ++i)
      if (static_cast<char>(to_lower(static_cast<unsigned char>(w[i]))) != folded[i]) return false;
    return true;
  }
  void grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(std::max<size_t>(old.size() * 2, 1024), 0);
    for (const uint64_t s : old)
      if (s) {
        size_t i = (s >> 32) & (slots_.size() - 1);
        while (slots_[i]) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = s;
      }
  }
  std::vector<uint64_t> slots_;
  std::vector<std::string_view> words_;
};

// One slice of the file (whole lines), parsed on its own: its section lines, its distinct words
// in first-seen order, its questions over those (section -1: the one in effect where the slice
// starts). Slices are merged in file order, so the result is the one-pass parse's.
struct SliceParse {
  struct Q {
    int32_t section;
    std::array<uint32_t, 4> w;  // indices into words
  };
  std::vector<AnalogySection> sections;
  std::vector<std::string_view> words;  // views into the file or into `folded`
  std::string folded;                   // words with upper-case letters, lower-cased (never reallocated)
  std::vector<Q> qs;
  size_t lines = 0;
  size_t error_line = 0;  // the slice's first bad line (1-based within the slice), 0: none
  std::string error;
};

// Lines of all[begin, end): words are views into them, or, where a word has upper-case letters,
// into the slice's lower-cased copy (section names keep their case).
SliceParse parse_slice(std::string_view all, size_t begin, size_t end) {
  SliceParse r;
  r.folded.reserve(std::max<size_t>(end - begin, 64));  // never outgrown; on the heap: views survive moving r
  r.qs.reserve((end - begin) / 8);  // a question line takes 8 bytes or more (its newline too)
  WordInterner index;
  for (size_t at = begin; at < end;) {
    const size_t eol = std::min(all.find('\n', at), end);
    const std::string_view s = trim(all.substr(at, eol - at));
    at = eol + 1;
    ++r.lines;
    if (s.empty()) continue;
    if (s.front() == ':') {
      AnalogySection sec;
      sec.name = std::string(trim(s.substr(1)));
      if (sec.name.empty()) {
        r.error_line = r.lines, r.error = "section line without a name";
        return r;
      }
      sec.syntactic = sec.name.starts_with("gram");
      r.sections.push_back(std::move(sec));
      continue;
    }
    std::array<std::string_view, 4> words;
    size_t n = 0;
    for (size_t i = 0; i < s.size();) {
      while (i < s.size() && is_space(static_cast<unsigned char>(s[i]))) ++i;
      if (i == s.size()) break;
      const size_t j = i;
      while (i < s.size() && !is_space(static_cast<unsigned char>(s[i]))) ++i;
      if (n < 4) words[n] = s.substr(j, i - j);
      ++n;
    }
    if (n != 4) {
      r.error_line = r.lines;
      r.error = "expected 4 words (a b c d) or ': section', got " + std::to_string(n) + " word(s)";
      return r;
    }
    SliceParse::Q& q = r.qs.emplace_back(SliceParse::Q{static_cast<int32_t>(r.sections.size()) - 1, {}});
    for (size_t i = 0; i < 4; ++i) q.w[i] = index.intern(words[i], r.folded);
  }
  r.words = index.take_words();
  return r;
}

FileBytes::FileBytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } const closer{fd};
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && st.st_size > 0) {
    const size_t size = static_cast<size_t>(st.st_size);
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m != MAP_FAILED) {
      map_ = m, size_ = size;
      return;
    }
  }
  // From the descriptor already open: a FIFO's writer has started, and opening it again would
  // lose what it wrote (or kill it with SIGPIPE between the two opens).
  if (regular) owned_.reserve(static_cast<size_t>(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, chunk, sizeof chunk);
    if (r > 0) owned_.append(chunk, static_cast<size_t>(r));
    else if (r == 0) break;
    else if (errno != EINTR) throw Error("cannot read " + path + ": " + std::strerror(errno));
  }
}

// The whole file at once, lines and words as views into it (run 33: line-by-line reading
// with a vector per line took ~70 ms of a 0.14 s evaluation on the loaded dev VM), parsed in
// slices of whole lines on the shared pool (one thread took ~3 ms of the GPU eval's ~35 on the GPU
// machine's host, run 73), merged in order.
QuestionFile read_analogies(const std::string& path, std::vector<AnalogySection>& sections) {
  QuestionFile f;
  f.bytes = std::make_unique<FileBytes>(path);
  const std::string_view all = f.bytes->view();
  const size_t size = all.size();
  constexpr size_t kSliceBytes = 32 * 1024;
  ThreadPool& pool = ThreadPool::shared();
  const size_t n_slices = std::clamp<size_t>(size / kSliceBytes, 1, static_cast<size_t>(pool.size()));
  std::vector<size_t> cut(n_slices + 1, size);  // slice i: [cut[i], cut[i + 1]), whole lines
  cut[0] = 0;
  for (size_t i = 1; i < n_slices; ++i) {
    const size_t nl = all.find('\n', std::max(cut[i - 1], size * i / n_slices));
    cut[i] = nl == std::string_view::npos ? size : nl + 1;
  }
  std::vector<SliceParse> parts(n_slices);
  auto parse = [&](uint32_t i, int) { parts[i] = parse_slice(all, cut[i], cut[i + 1]); };
  if (n_slices == 1) parse(0, 0);
  else pool.run(static_cast<uint32_t>(n_slices), parse);

  WordInterner index;
  std::string no_copies;  // (the slices' words are folded already)
  size_t line0 = 0, n_q = 0;
  for (const SliceParse& part : parts) n_q += part.qs.size();
  f.qs.reserve(n_q);
  std::vector<uint32_t> remap;
  for (SliceParse& part : parts) {
    if (part.error_line) fail_at(path, line0 + part.error_line, part.error);
    line0 += part.lines;
    const bool continues = !part.qs.empty() && part.qs.front().section < 0;
    if (continues && sections.empty()) sections.push_back({.name = "questions"});  // a file without section lines
    const int64_t base = static_cast<int64_t>(sections.size());
    for (AnalogySection& sec : part.sections) sections.push_back(std::move(sec));
    remap.resize(part.words.size());
    for (size_t i = 0; i < part.words.size(); ++i) {
      remap[i] = index.intern(part.words[i], no_copies);
    }
    for (const SliceParse::Q& q : part.qs)
      f.qs.push_back(Question{static_cast<uint32_t>(base + q.section),
                              {remap[q.w[0]], remap[q.w[1]], remap[q.w[2]], remap[q.w[3]]}});
    if (!part.folded.empty()) f.folded.push_back(std::move(part.folded));  // the views into it move along
  }
  f.words = index.take_words();
  if (f.qs.empty()) throw Error(path + ": no analogy questions");
  return f;
}

using Abc = std::array<uint32_t, 3>;  // a, b, c
constexpr uint32_t kNoId = ~0u;

// The whole vocabulary's FoldedVocab, made once per index (Index::derived; ~40 ms for GloVe's
// 341K words on one core). The analogy eval's warm-up makes it before the clock starts, as a
// service holds its lookup tables; the question words are then looked up (~900 finds) instead of
// the vocabulary being scanned for them (1.4-2.4 ms of a ~20 ms GPU eval on 16 cores, run 81).
const FoldedVocab& whole_folded_vocab(const Index& ix) {
  const auto p = ix.derived("eval/folded-vocab", [&]() -> std::shared_ptr<const void> {
    return std::make_shared<const FoldedVocab>(ix, ix.size());
  });
  return *static_cast<const FoldedVocab*>(p.get());
}

// Folded question word -> the lowest (most frequent) id among the first R words whose folded form
// equals it (gensim maps every case variant to its first occurrence); kNoId when none. Without the
// whole vocabulary's map made already (341K strings at --restrict 0), none is made here: the
// vocabulary is scanned in parallel
// slices, and only words whose (length, first, last folded byte) some question word has are
// folded and looked up (run 35 on the GPU machine's host: the plain scan took 25-30 ms).
//
// With `whole` (the whole vocabulary's FoldedVocab, already made) a lookup a word instead: its
// lowest id over all words is the lowest below R when it is below R, and none is otherwise.
std::vector<uint32_t> find_question_words(const Index& ix, size_t R, const std::vector<std::string_view>& words,
                                          const FoldedVocab* whole) {
  if (whole) {  // in slices on the shared pool (a find misses the cache a few times: ~1-2 us)
    std::vector<uint32_t> out(words.size(), kNoId);
    constexpr size_t kSlice = 64;
    ThreadPool::shared().run(static_cast<uint32_t>((words.size() + kSlice - 1) / kSlice), [&](uint32_t p, int) {
      for (size_t i = p * kSlice; i < std::min(words.size(), (p + 1) * kSlice); ++i)
        if (const auto id = whole->find(std::string(words[i])); id && *id < R) out[i] = *id;
    });
    return out;
  }
  std::unordered_map<std::string_view, uint32_t> ids;
  constexpr size_t kLens = 32;
  std::vector<uint64_t> seen(kLens * 256 * 4, 0);  // bit (len % 32, first, last) of a question word
  auto slot = [](size_t len, unsigned char first, unsigned char last) {
    return ((len % kLens) * 256 + first) * 256 + last;
  };
  auto lower = [](unsigned char c) { return to_lower(c); };
  for (const std::string_view w : words) {
    ids.try_emplace(w, kNoId);
    if (w.empty()) continue;
    const size_t b = slot(w.size(), static_cast<unsigned char>(w.front()), static_cast<unsigned char>(w.back()));
    seen[b / 64] |= uint64_t{1} << (b % 64);
  }
  // On the shared pool (was std::async: a thread started a slice).
  const size_t n_slices = std::clamp<size_t>(R / 32768, 1, 16);
  std::vector<std::vector<std::pair<std::string_view, uint32_t>>> parts(n_slices);  // first hit of each word a slice
  ThreadPool::shared().run(static_cast<uint32_t>(n_slices), [&](uint32_t p, int) {
    std::vector<std::pair<std::string_view, uint32_t>>& found = parts[p];
    std::unordered_map<std::string_view, uint32_t> local;
    std::string buf;
    for (size_t i = R * p / n_slices; i < R * (p + 1) / n_slices; ++i) {
      const std::string_view w = ix.word(i);
      if (w.empty()) continue;
      const size_t b = slot(w.size(), lower(static_cast<unsigned char>(w.front())),
                            lower(static_cast<unsigned char>(w.back())));
      if (!((seen[b / 64] >> (b % 64)) & 1)) continue;
      fold_into(w, buf);
      const auto it = ids.find(buf);  // read only here
      if (it != ids.end() && local.try_emplace(it->first, static_cast<uint32_t>(i)).second)
        found.emplace_back(it->first, static_cast<uint32_t>(i));
    }
  });
  for (const auto& part : parts)
    for (const auto& [w, id] : part) {
      uint32_t& at = ids.at(w);
      at = std::min(at, id);
    }
  std::vector<uint32_t> out(words.size());
  for (size_t i = 0; i < words.size(); ++i) out[i] = ids.at(words[i]);
  return out;
}

// ---- analogies: batches of questions through an engine (ternary + rerank, or the float peer) ----

// Batches already searched, kept for their memory: the next batch is built into the smallest
// that holds it (QueryBuilder's storage constructor), so the eval's batches after a warm-up write
// into pages already faulted in.
class SpareBatches {
 public:
  QueryBatch take(size_t n_terms) {
    std::lock_guard<std::mutex> g(mu_);
    if (spare_.empty()) return QueryBatch();
    // Preferred: one that fits over one that does not; among those that fit the smallest, among
    // the rest the largest.
    const auto preferred = [n_terms](const QueryBatch& x, const QueryBatch& y) {
      const size_t cx = x.weights.capacity(), cy = y.weights.capacity();
      if ((cx >= n_terms) != (cy >= n_terms)) return cx >= n_terms;
      return cx >= n_terms ? cx < cy : cx > cy;
    };
    const auto it = std::min_element(spare_.begin(), spare_.end(), preferred);
    QueryBatch r = std::move(*it);
    spare_.erase(it);
    return r;
  }
  void give(QueryBatch&& b) {
    std::lock_guard<std::mutex> g(mu_);
    spare_.push_back(std::move(b));
  }

 private:
  std::mutex mu_;
  std::vector<QueryBatch> spare_;
};

// Questions in batches: the QueryBatches are built on other threads (up to kAhead batches ahead)
// while the searcher answers the ones before (building was most of the time next to a GPU
// search), and each batch's hits are scored as they come back, in order.
class AnalogyRunner {
 public:
  AnalogyRunner(const Engine& engine, const std::vector<Abc>& qs, AnalogyMode mode, SearchParams p, size_t batch,
                AnalogyReport& rep, SpareBatches& spares)
      : engine_(engine), qs_(qs), mode_(mode), p_(p), batch_(std::max<size_t>(batch, 1)), rep_(rep), spares_(spares) {}

  // f(question index, its hits) for every question: a batch's questions in slices on the shared
  // pool (the last batch's ~15,000 on one thread took 0.6-1.0 ms after the last search, run 81),
  // so f must be safe to call from several threads for different questions.
  template <typename F>
  void run(F&& f) {
    std::vector<size_t> starts;  // batch j: questions [starts[j], starts[j + 1])
    size_t s = 0;
    // A large batch is preceded by a head of kHead questions: the searcher starts on it while the
    // rest is built (run 45: building all 19,544 at once took 12 ms before the first search).
    if (batch_ >= 2 * kHead && qs_.size() >= 2 * kHead) {
      starts.push_back(0);
      s = kHead;
    }
    for (; s < qs_.size(); s += batch_) starts.push_back(s);
    starts.push_back(qs_.size());
    constexpr size_t kAhead = 4;
    std::deque<std::future<QueryBatch>> ahead;
    size_t next = 0;  // next batch to start building
    auto refill = [&](size_t upto) {
      for (; ahead.size() < upto && next + 1 < starts.size(); ++next)
        ahead.push_back(std::async(std::launch::async, [this, s = starts[next], e = starts[next + 1]] { return build(s, e); }));
    };
    // The first batch is built alone. Built beside the rest, it shared the thread pool with it,
    // whose jobs take threads in posting order, so it could wait for the whole rest to be built
    // (run 73's GPU eval waited 3.4 ms before its first search, about what building all 19,544
    // questions takes on that host's 16 cores).
    refill(1);
    for (size_t j = 0; j + 1 < starts.size(); ++j) {
      auto t0 = std::chrono::steady_clock::now();
      QueryBatch b = ahead.front().get();
      rep_.wait_build_seconds += seconds_since(t0);
      ahead.pop_front();
      refill(kAhead);
      t0 = std::chrono::steady_clock::now();
      const SearchResults r = engine_.searcher().search(b, p_);
      const double searched = seconds_since(t0);
      rep_.search_seconds += searched;
      if (j == 0) rep_.first_search_seconds = searched;
      t0 = std::chrono::steady_clock::now();
      constexpr size_t kScoreSlice = 1024;
      const size_t n_slices = (b.size() + kScoreSlice - 1) / kScoreSlice;
      auto score_slice = [&](uint32_t p, int) {
        for (size_t i = p * kScoreSlice; i < std::min(b.size(), (p + 1) * kScoreSlice); ++i) f(starts[j] + i, r.of(i));
      };
      if (n_slices == 1) score_slice(0, 0);
      else ThreadPool::shared().run(static_cast<uint32_t>(n_slices), score_slice);
      rep_.score_seconds += seconds_since(t0);
      spares_.give(std::move(b));
    }
  }

 private:
  // Sized once and filled in parallel slices (QueryBuilder::analogies): one thread took 46 ms for
  // the 19,544 questions on the GPU machine's host (run 35).
  QueryBatch build(size_t s, size_t e) const {
    QueryBuilder qb(engine_.index(), combine_of(mode_), engine_.options().float_form, spares_.take(3 * (e - s)));
    qb.analogies(std::span<const Abc>(qs_).subspan(s, e - s), mode_);
    return qb.take();
  }
  static constexpr size_t kHead = 4096;  // one chunk of the CUDA searcher's mt and popc paths
  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  const Engine& engine_;
  const std::vector<Abc>& qs_;
  AnalogyMode mode_;
  SearchParams p_;
  size_t batch_;
  AnalogyReport& rep_;
  SpareBatches& spares_;
};

}  // namespace

AnalogyReport eval_analogies(const Engine& engine, const std::string& path, const AnalogyEvalOptions& opts) {
  const Index& ix = engine.index();
  if (opts.use_float && !ix.has_float()) throw Error(no_float_message(ix));
  AnalogyReport rep;
  const size_t R = opts.restrict_vocab ? std::min(opts.restrict_vocab, ix.size()) : ix.size();
  const SearchParams params{.k = kTopK, .limit = R, .candidates = opts.use_float ? 0 : opts.candidates};
  SpareBatches spares;
  const FoldedVocab* whole_vocab = nullptr;  // made by the warm-up
  if (opts.warm_up && !opts.use_float && R >= 3) {
    // Triples of a pool of words, as a question file repeats its words (the shared-terms scan of
    // the CUDA mt path takes such batches).
    const auto tw = std::chrono::steady_clock::now();
    const uint32_t pool = static_cast<uint32_t>(std::min<size_t>(R, 256));
    std::vector<Abc> fake(opts.warm_up);
    for (size_t i = 0; i < fake.size(); ++i)
      for (uint32_t j = 0; j < 3; ++j) fake[i][j] = static_cast<uint32_t>((3 * i + j) % pool);
    AnalogyReport scratch;
    AnalogyRunner(engine, fake, opts.mode, params, opts.batch, scratch, spares).run([](size_t, std::span<const Hit>) {});
    whole_vocab = &whole_folded_vocab(ix);
    rep.warm_up_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count();
  }
  const auto t0 = std::chrono::steady_clock::now();
  const QuestionFile file = read_analogies(path, rep.sections);
  const std::vector<Question>& questions = file.qs;
  const auto t_read = std::chrono::steady_clock::now();
  rep.read_seconds = std::chrono::duration<double>(t_read - t0).count();
  const std::vector<uint32_t> word_ids = find_question_words(ix, R, file.words, whole_vocab);

  std::vector<Abc> ids;
  std::vector<const Question*> asked;
  ids.reserve(questions.size());
  asked.reserve(questions.size());
  for (const Question& q : questions) {
    std::array<uint32_t, 4> id{};
    bool ok = true;
    for (size_t i = 0; i < 4 && ok; ++i) {
      id[i] = word_ids[q.w[i]];
      ok = id[i] != kNoId;
    }
    if (!ok) {
      ++rep.sections[q.section].skipped;
      continue;
    }
    ids.push_back({id[0], id[1], id[2]});
    asked.push_back(&q);
  }
  rep.lookup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_read).count();

  // The best hit that is not a case variant of an input word (ids themselves are excluded): hit h
  // is one of a, b, c (or d) exactly when its folded word is theirs, since a word's canonical id
  // is the lowest id of its folded form. Called on several threads (AnalogyRunner::run): each
  // question's verdict in its own byte, counted into the sections after.
  std::vector<uint8_t> correct(ids.size(), 0);
  auto score = [&](size_t i, std::span<const Hit> hits) {
    thread_local std::string folded;
    const Question& q = *asked[i];
    for (const Hit& h : hits) {
      fold_into(ix.word(h.id), folded);
      const auto& w = file.words;
      if (folded != w[q.w[0]] && folded != w[q.w[1]] && folded != w[q.w[2]]) {
        correct[i] = folded == w[q.w[3]];
        break;
      }
    }
  };
  if (opts.use_float) {  // the float peer over the same index; clamp has no float form: add
    const AnalogyMode mode = opts.mode == AnalogyMode::Clamp ? AnalogyMode::Add : opts.mode;
    SearcherOptions so;
    so.backend = "float";
    so.cpu.threads = opts.threads;
    const Engine peer(engine.index_ptr(), make_searcher(engine.index_ptr(), so),
                      {.lower = engine.options().lower, .float_form = FloatForm::Float32});
    AnalogyRunner(peer, ids, mode, params, opts.batch, rep, spares).run(score);
  } else {
    AnalogyRunner(engine, ids, opts.mode, params, opts.batch, rep, spares).run(score);
  }

  for (size_t i = 0; i < asked.size(); ++i) {
    AnalogySection& sec = rep.sections[asked[i]->section];
    ++sec.answered;
    sec.correct += correct[i];
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

SimilarityReport eval_similarity(const Engine& engine, const std::string& path, bool use_float, size_t candidates) {
  const Index& ix = engine.index();
  if (use_float && !ix.has_float()) throw Error(no_float_message(ix));
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
    model.push_back(use_float ? float_cosine(fv, ix.float_dims(), *a, *b) : engine.cosine(*a, *b, {.candidates = candidates}));
    human.push_back(score);
  }
  if (model.empty() && rep.oov == 0) throw Error(path + ": no word pairs");
  rep.pairs = model.size();
  rep.pearson = pearson(model, human);
  rep.spearman = pearson(ranks(model), ranks(human));
  return rep;
}

}  // namespace igla
