// Intrinsic evaluation: analogy counting (sections, skipping, restriction, case), the float32 path
// against brute force, Spearman / Pearson against hand-computed values, file errors, and on the
// real GloVe index (when present) the published-convention float score and the ternary search.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <sys/stat.h>

#include "igla/error.hpp"
#include "igla/eval.hpp"
#include "real_floats.hpp"
#include "test_util.hpp"

using namespace igla;
using igla::testing_util::TempDir;
using igla::testing_util::error_of;

namespace {

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name)) << text;
  return dir.file(name);
}

// Trit-valued vectors (quantization keeps them exactly) made of disjoint 4-dim features, so that
// b - a + c is exactly d: capital_i = C_i + K, country_i = C_i + N, singular_i = W_i + S,
// plural_i = W_i + P. "france" carries an extra feature E, so "france2" = C_2 + N (last word)
// beats it whenever it is a candidate.
FloatVectors analogy_vectors() {
  constexpr uint32_t dims = 64;
  FloatVectors v;
  v.dims = dims;
  auto feature = [](size_t f) { return f * 4; };  // feature f occupies dims [4f, 4f + 4)
  enum { K = 0, N, S, P, E, C0 = 5, W0 = 9 };
  auto add = [&](const std::string& w, std::initializer_list<size_t> fs) {
    v.words.push_back(w);
    std::vector<float> row(dims, 0.0f);
    for (size_t f : fs)
      for (size_t d = 0; d < 4; ++d) row[feature(f) + d] = (d == 1 ? -1.0f : 1.0f);
    v.data.insert(v.data.end(), row.begin(), row.end());
  };
  const char* caps[] = {"athens", "berlin", "paris", "Rome"};  // an upper-case word in the index
  const char* countries[] = {"greece", "germany", "france", "italy"};
  for (size_t i = 0; i < 4; ++i) {
    add(caps[i], {C0 + i, K});
    if (i == 2)
      add(countries[i], {C0 + i, N, E});
    else
      add(countries[i], {C0 + i, N});
  }
  const char* sing[] = {"car", "dog", "cat", "tree"};
  for (size_t i = 0; i < 4; ++i) {
    add(sing[i], {W0 + i, S});
    add(std::string(sing[i]) + "s", {W0 + i, P});  // "trees" is word 15
  }
  add("france2", {C0 + 2, N});  // word 16
  return v;
}

const char* kQuestions =
    ": capital-common-countries\n"
    "Athens Greece Berlin Germany\n"  // right
    "athens greece paris france\n"    // right unless france2 is a candidate
    "BERLIN GERMANY rome italy\n"     // right
    "berlin germany rome france\n"    // wrong: italy
    "athens greece atlantis nowhere\n"  // unknown words: skipped
    "\n"
    ": gram8-plural\n"
    "car cars dog dogs\n"   // right
    "dog dogs cat cats\n"   // right
    "cat cats tree trees\n" // right; skipped when "trees" (word 15) is outside --restrict
    "car cars cat dogs\n";  // wrong: cats

struct Expect {
  size_t correct, answered, skipped, sem_correct, sem_answered, syn_correct, syn_answered;
};

void check(const AnalogyReport& r, const Expect& e, const std::string& what) {
  EXPECT_EQ(r.correct, e.correct) << what;
  EXPECT_EQ(r.answered, e.answered) << what;
  EXPECT_EQ(r.skipped, e.skipped) << what;
  EXPECT_EQ(r.sem_correct, e.sem_correct) << what;
  EXPECT_EQ(r.sem_answered, e.sem_answered) << what;
  EXPECT_EQ(r.syn_correct, e.syn_correct) << what;
  EXPECT_EQ(r.syn_answered, e.syn_answered) << what;
}

}  // namespace

TEST(EvalAnalogies, CountsSectionsSkipsAndRestrictsInEveryMode) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  [[maybe_unused]] const Index& ix = *ix_p;
  Engine engine(ix_p);
  const std::string q = write(dir, "q.txt", kQuestions);
  for (bool fl : {false, true})
    for (AnalogyMode m : {AnalogyMode::Clamp, AnalogyMode::Add, AnalogyMode::Mul})
      for (size_t batch : {size_t{1}, size_t{3}, size_t{4096}}) {
        const std::string what = std::string(fl ? "float " : "ternary ") + analogy_mode_name(m) + " batch " +
                                 std::to_string(batch);
        AnalogyEvalOptions o{.restrict_vocab = 16, .mode = m, .use_float = fl, .batch = batch};
        const AnalogyReport r = eval_analogies(engine, q, o);
        check(r, {6, 8, 1, 3, 4, 3, 4}, what + " restrict 16");
        ASSERT_EQ(r.sections.size(), 2u);
        EXPECT_EQ(r.sections[0].name, "capital-common-countries");
        EXPECT_FALSE(r.sections[0].syntactic);
        EXPECT_EQ(r.sections[0].skipped, 1u);
        EXPECT_EQ(r.sections[1].name, "gram8-plural");
        EXPECT_TRUE(r.sections[1].syntactic);
        EXPECT_DOUBLE_EQ(r.accuracy(), 0.75);

        o.restrict_vocab = 0;  // every word: france2 is an answer and beats france
        check(eval_analogies(engine, q, o), {5, 8, 1, 2, 4, 3, 4}, what + " restrict 0");
        o.restrict_vocab = 15;  // "trees" is out: its question is skipped
        const AnalogyReport r15 = eval_analogies(engine, q, o);
        check(r15, {5, 7, 2, 3, 4, 2, 3}, what + " restrict 15");
        EXPECT_EQ(r15.sections[1].skipped, 1u);
      }
}

// A file of 9,000 questions (the 10 above, 900 times): past twice the runner's head of 4,096, so
// a large --batch searches a head batch first and the rest in one call; every batch size (odd
// ones, the head's boundary, the default) gives the 900-fold counts.
TEST(EvalAnalogies, LargeFilesInHeadAndBatchesCountTheSame) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  Engine engine(ix_p);
  std::string text;
  for (int i = 0; i < 900; ++i) text += kQuestions;
  const std::string q = write(dir, "q9000.txt", text);
  for (size_t batch : {size_t{777}, size_t{4096}, size_t{8192}, size_t{8193}, AnalogyEvalOptions{}.batch}) {
    const AnalogyReport r =
        eval_analogies(engine, q, {.restrict_vocab = 16, .mode = AnalogyMode::Add, .batch = batch});
    check(r, {5400, 7200, 900, 2700, 3600, 2700, 3600}, "batch " + std::to_string(batch));
    ASSERT_EQ(r.sections.size(), 1800u);  // each copy of the text opens its two sections again
  }
}

// The warm-up (synthetic questions searched before the clock starts) changes no count, in every
// mode and at sizes around the runner's head of 4,096; it is skipped, not failed, where it cannot
// run (fewer than 3 words searched, the float peer).
TEST(EvalAnalogies, WarmUpChangesNoCountAndIsTimedApart) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  Engine engine(ix_p);
  const std::string q = write(dir, "q.txt", kQuestions);
  for (AnalogyMode m : {AnalogyMode::Clamp, AnalogyMode::Add, AnalogyMode::Mul})
    for (size_t warm : {size_t{0}, size_t{1}, size_t{4097}, size_t{9000}}) {
      const std::string what = std::string(analogy_mode_name(m)) + " warm-up " + std::to_string(warm);
      const AnalogyReport r = eval_analogies(engine, q, {.restrict_vocab = 16, .mode = m, .warm_up = warm});
      check(r, {6, 8, 1, 3, 4, 3, 4}, what);
      EXPECT_EQ(r.warm_up_seconds > 0, warm > 0) << what;
    }
  // With a warm-up the question words are looked up in the whole vocabulary's folded map (made
  // once per index), without one the vocabulary is scanned: the same words found at every limit
  // (case variants: "Rome" in the index, "rome" and "BERLIN" in the questions; "trees" is word 15).
  for (size_t R : {size_t{0}, size_t{1}, size_t{3}, size_t{6}, size_t{7}, size_t{15}, size_t{16}, size_t{17}, size_t{99}}) {
    const AnalogyReport cold = eval_analogies(engine, q, {.restrict_vocab = R, .mode = AnalogyMode::Add});
    const AnalogyReport warm = eval_analogies(engine, q, {.restrict_vocab = R, .mode = AnalogyMode::Add, .warm_up = 7});
    const std::string what = "restrict " + std::to_string(R);
    EXPECT_EQ(warm.answered, cold.answered) << what;
    EXPECT_EQ(warm.skipped, cold.skipped) << what;
    EXPECT_EQ(warm.correct, cold.correct) << what;
    ASSERT_EQ(warm.sections.size(), cold.sections.size()) << what;
    for (size_t i = 0; i < warm.sections.size(); ++i) EXPECT_EQ(warm.sections[i].skipped, cold.sections[i].skipped) << what;
  }
  const AnalogyReport tiny = eval_analogies(engine, q, {.restrict_vocab = 2, .warm_up = 100});
  EXPECT_EQ(tiny.warm_up_seconds, 0.0) << "a warm-up over 2 words cannot make a question";
  EXPECT_EQ(tiny.answered, 0u);
  const AnalogyReport fl = eval_analogies(engine, q, {.restrict_vocab = 16, .use_float = true, .warm_up = 100});
  EXPECT_EQ(fl.warm_up_seconds, 0.0) << "the float peer has no warm-up";
  check(fl, {6, 8, 1, 3, 4, 3, 4}, "float with a warm-up asked");
}

// The question file is read in slices of whole lines on several threads (past 32 KB) and merged
// in order: sections that continue across a slice's start, a file without section lines, and a
// bad line far into the file (its line number counted over every slice) read as in one pass.
TEST(EvalAnalogies, LargeFilesReadInSlicesKeepSectionsAndLines) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  Engine engine(ix_p);
  const AnalogyEvalOptions o{.restrict_vocab = 16, .mode = AnalogyMode::Add};
  const AnalogyReport one = eval_analogies(engine, write(dir, "one.txt", kQuestions), o);
  ASSERT_EQ(one.sections.size(), 2u);
  std::string text;
  for (int i = 0; i < 900; ++i) text += kQuestions;
  const AnalogyReport r = eval_analogies(engine, write(dir, "q9000.txt", text), o);
  ASSERT_EQ(r.sections.size(), 1800u);
  for (size_t i = 0; i < r.sections.size(); ++i) {
    const AnalogySection &got = r.sections[i], &want = one.sections[i % 2];
    EXPECT_EQ(got.name, want.name) << i;
    EXPECT_EQ(got.syntactic, want.syntactic) << i;
    EXPECT_EQ(got.answered, want.answered) << "section " << i;
    EXPECT_EQ(got.correct, want.correct) << "section " << i;
    EXPECT_EQ(got.skipped, want.skipped) << "section " << i;
  }
  // One long section: every slice after the first continues it.
  std::string long_section = ": gram-long\n";
  for (int i = 0; i < 2000; ++i) long_section += "car cars dog dogs\ndog dogs cat cats\ncar cars cat dogs\n";
  const AnalogyReport l = eval_analogies(engine, write(dir, "long.txt", long_section), o);
  ASSERT_EQ(l.sections.size(), 1u);
  EXPECT_EQ(l.sections[0].answered, 6000u);
  EXPECT_EQ(l.sections[0].correct, 4000u);
  // No section lines at all: one section named "questions".
  const AnalogyReport ns = eval_analogies(engine, write(dir, "nosec.txt", long_section.substr(long_section.find('\n') + 1)), o);
  ASSERT_EQ(ns.sections.size(), 1u);
  EXPECT_EQ(ns.sections[0].name, "questions");
  EXPECT_EQ(ns.sections[0].answered, 6000u);
  // A bad line near the end and one near the start: the first one in the file is reported.
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  const std::string late = write(dir, "late.txt", text + "car cars dog\n" + text);
  EXPECT_NE(error_of([&] { eval_analogies(engine, late, o); }).find(late + ":" + std::to_string(lines + 1) + ":"),
            std::string::npos);
  const std::string both = write(dir, "both.txt", ": s\na b c\n" + text + "car cars dog\n" + text);
  EXPECT_NE(error_of([&] { eval_analogies(engine, both, o); }).find(both + ":2:"), std::string::npos);
  const std::string unnamed = write(dir, "unnamed.txt", text + ":\n" + text);
  EXPECT_NE(error_of([&] { eval_analogies(engine, unnamed, o); }).find(unnamed + ":" + std::to_string(lines + 1) + ":"),
            std::string::npos);
}

// A question file that is a pipe (no size to read up front: `igla eval analogies <(...)`), here a
// FIFO written by another thread, and a directory (an error naming it).
TEST(EvalAnalogies, QuestionsFromAPipeAndADirectoryRefused) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  Engine engine(ix_p);
  const AnalogyEvalOptions o{.restrict_vocab = 16, .mode = AnalogyMode::Add};
  const AnalogyReport want = eval_analogies(engine, write(dir, "q.txt", kQuestions), o);
  std::string text;
  for (int i = 0; i < 300; ++i) text += kQuestions;  // past one 64 KB read
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::thread writer([&] {
    std::ofstream(fifo, std::ios::binary) << text;
  });
  const AnalogyReport got = eval_analogies(engine, fifo, o);
  writer.join();
  EXPECT_EQ(got.answered, 300 * want.answered);
  EXPECT_EQ(got.correct, 300 * want.correct);
  EXPECT_EQ(got.sections.size(), 600u);
  const std::string d = dir.path.string();
  const std::string error = error_of([&] { eval_analogies(engine, d, o); });
  EXPECT_NE(error.find("cannot read " + d), std::string::npos) << error;
}

// A question word with case variants in different slices of the vocabulary scan (70,000 words:
// two slices): the lowest id must be the one used. "Man" (id 5) has the vector that makes
// "man king woman queen" right, "man" (id 40,000) one that makes "decoy" the answer.
TEST(EvalAnalogies, CaseVariantsAcrossVocabularySlicesTakeTheLowestId) {
  constexpr uint32_t dims = 64;
  FloatVectors v;
  v.dims = dims;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g;
  auto row = [&](std::initializer_list<int> on) {  // features in dims 0..31, fillers in 32..63
    std::vector<float> r(dims, 0.0f);
    for (int f : on)
      for (int d = 0; d < 4; ++d) r[static_cast<size_t>(4 * f + d)] = 1.0f;
    return r;
  };
  enum { kKing = 0, kMale = 1, kFemale = 2 };
  for (size_t i = 0; i < 70000; ++i) {
    std::vector<float> r;
    const char* special = nullptr;
    if (i == 5) special = "Man", r = row({kMale});
    else if (i == 40000) special = "man", r = row({kKing});
    else if (i == 8) special = "decoy", r = row({kMale, kFemale});  // the answer with the wrong "man"
    else if (i == 6) special = "king", r = row({kKing, kMale});
    else if (i == 7) special = "woman", r = row({kFemale});
    else if (i == 50000) special = "queen", r = row({kKing, kFemale});
    else {
      r.assign(dims, 0.0f);
      for (size_t d = 32; d < dims; ++d) r[d] = g(rng);
    }
    std::string w(special ? special : "w");
    if (!special) w += std::to_string(i);
    v.words.push_back(std::move(w));
    v.data.insert(v.data.end(), r.begin(), r.end());
  }
  const auto ix_p = std::make_shared<const Index>(Index::build(v, {}, true));
  Engine engine(ix_p);
  TempDir dir;
  const std::string q = write(dir, "q.txt", ": s\nman king woman queen\nMAN KING WOMAN QUEEN\n");
  const AnalogyReport r =
      eval_analogies(engine, q, {.restrict_vocab = 0, .mode = AnalogyMode::Add, .use_float = true});
  EXPECT_EQ(r.answered, 2u);
  EXPECT_EQ(r.correct, 2u);
}

// The blocked float kernel (several word tiles, tasks sharing words, odd dims) against a
// brute-force double argmax: every question's d is that argmax, so accuracy must be 100%.
TEST(EvalAnalogies, FloatPathMatchesBruteForce) {
  TempDir dir;
  const uint32_t dims = 37;
  const size_t n = 1000;
  FloatVectors v;  // random normal vectors (not testing_util's: GCC 12 warns falsely when inlined here)
  v.dims = dims;
  std::mt19937_64 gen(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < n; ++i) v.words.push_back(std::string("w").append(std::to_string(i)));
  for (size_t i = 0; i < n * dims; ++i) v.data.push_back(normal(gen));
  const auto ix_p = std::make_shared<const Index>(Index::build(v, {}, true));
  [[maybe_unused]] const Index& ix = *ix_p;
  Engine engine(ix_p);
  std::vector<std::vector<double>> unit(n, std::vector<double>(dims));
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (uint32_t d = 0; d < dims; ++d) s += double(v.row(i)[d]) * v.row(i)[d];
    for (uint32_t d = 0; d < dims; ++d) unit[i][d] = v.row(i)[d] / std::sqrt(s);
  }
  auto cos = [&](size_t x, size_t y) {
    double s = 0;
    for (uint32_t d = 0; d < dims; ++d) s += unit[x][d] * unit[y][d];
    return s;
  };
  std::mt19937_64 rng(3);
  for (AnalogyMode m : {AnalogyMode::Add, AnalogyMode::Mul}) {
    std::string text = ": random\n";
    size_t kept = 0;
    for (size_t g = 0; g < 40; ++g) {  // groups sharing a and b, as in the Google file
      const size_t a = rng() % n, b = rng() % n;
      for (size_t j = 0; j < 12; ++j) {
        const size_t c = rng() % n;
        if (a == b || c == a || c == b) continue;
        double best = -1e9, second = -1e9;
        size_t arg = 0;
        for (size_t x = 0; x < n; ++x) {
          if (x == a || x == b || x == c) continue;
          const double s = m == AnalogyMode::Add
                               ? cos(x, b) - cos(x, a) + cos(x, c)
                               : ((cos(x, b) + 1) / 2) * ((cos(x, c) + 1) / 2) / ((cos(x, a) + 1) / 2 + 0.001);
          if (s > best) second = best, best = s, arg = x;
          else if (s > second) second = s;
        }
        if (best - second < 1e-4) continue;  // too close to call in float32
        for (size_t w : {a, b, c, arg}) text.append(v.words[w]).push_back(' ');
        text.back() = '\n';
        ++kept;
      }
    }
    const AnalogyReport r = eval_analogies(
        engine, write(dir, "r.txt", text), {.restrict_vocab = 0, .mode = m, .use_float = true});
    EXPECT_GT(kept, 300u);
    EXPECT_EQ(r.answered, kept) << analogy_mode_name(m);
    EXPECT_EQ(r.correct, kept) << analogy_mode_name(m);
  }
}

TEST(EvalAnalogies, FileErrorsNameFileAndLine) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, false));
  [[maybe_unused]] const Index& ix = *ix_p;
  Engine engine(ix_p);
  const AnalogyEvalOptions o;
  const std::string missing = dir.file("nope.txt");
  EXPECT_NE(error_of([&] { eval_analogies(engine, missing, o); }).find(missing), std::string::npos);
  const std::string bad = write(dir, "bad.txt", ": s\na b c d\na b c\n");
  EXPECT_NE(error_of([&] { eval_analogies(engine, bad, o); }).find(bad + ":3:"), std::string::npos);
  const std::string five = write(dir, "five.txt", ": s\na b c d e\n");
  EXPECT_NE(error_of([&] { eval_analogies(engine, five, o); }).find(five + ":2:"), std::string::npos);
  const std::string empty = write(dir, "empty.txt", ": only-a-section\n\n");
  EXPECT_NE(error_of([&] { eval_analogies(engine, empty, o); }).find("no analogy questions"), std::string::npos);
  // No float32 vectors kept: say how to get them.
  const std::string q = write(dir, "q.txt", kQuestions);
  EXPECT_NE(error_of([&] { eval_analogies(engine, q, {.use_float = true}); }).find("--keep-float"), std::string::npos);
  EXPECT_NE(error_of([&] { eval_similarity(engine, q, true); }).find("--keep-float"), std::string::npos);
}

// Model cosines (exact for these trit vectors): athens-greece 0.5, athens-berlin 0.5,
// athens-germany 0, paris-france 1/sqrt(6), car-car 1; human 5, 3, 1, 4, 8.
// Model ranks (a tie) 3.5 3.5 1 2 5, human ranks 4 2 1 3 5: Spearman = 8 / sqrt(9.5 * 10).
TEST(EvalSimilarity, SpearmanWithTiesAndPearson) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, true));
  [[maybe_unused]] const Index& ix = *ix_p;
  Engine engine(ix_p);
  const double spearman = 8.0 / std::sqrt(95.0), pearson = 0.9547317437443701;
  const std::string csv = write(dir, "ws.csv",
                                "Word 1,Word 2,Human (mean)\n"
                                "Athens,Greece,5\r\n"
                                "athens,berlin,3.0\n"
                                "athens, germany ,1\n"
                                "paris,france,4\n"
                                "\n"
                                "car,car,8\n"
                                "zzz,car,2\n");
  const std::string ws = write(dir, "ws.txt",
                               "athens greece 5\nathens berlin 3\nathens\tgermany 1\n"
                               "paris france 4\ncar car 8\nzzz car 2\ncar qqq 7\n");
  for (bool fl : {false, true}) {
    const SimilarityReport a = eval_similarity(engine, csv, fl);
    EXPECT_EQ(a.pairs, 5u);
    EXPECT_EQ(a.oov, 1u);
    EXPECT_NEAR(a.spearman, spearman, 1e-12);
    EXPECT_NEAR(a.pearson, pearson, 1e-6);
    const SimilarityReport b = eval_similarity(engine, ws, fl);
    EXPECT_EQ(b.pairs, 5u);
    EXPECT_EQ(b.oov, 2u);
    EXPECT_NEAR(b.spearman, spearman, 1e-12);
    EXPECT_NEAR(b.pearson, pearson, 1e-6);
  }
}

TEST(EvalSimilarity, MalformedFilesNameFileAndLine) {
  TempDir dir;
  const auto ix_p = std::make_shared<const Index>(Index::build(analogy_vectors(), {}, false));
  [[maybe_unused]] const Index& ix = *ix_p;
  Engine engine(ix_p);
  const std::string two = write(dir, "two.csv", "w1,w2,score\nathens,greece,5\nathens,greece\n");
  EXPECT_NE(error_of([&] { eval_similarity(engine, two); }).find(two + ":3:"), std::string::npos);
  const std::string nan = write(dir, "nan.txt", "athens greece 5\nathens berlin high\n");
  EXPECT_NE(error_of([&] { eval_similarity(engine, nan); }).find(nan + ":2:"), std::string::npos);
  const std::string missing = dir.file("nope.csv");
  EXPECT_NE(error_of([&] { eval_similarity(engine, missing); }).find(missing), std::string::npos);
  const std::string empty = write(dir, "empty.csv", "Word 1,Word 2,Human (mean)\n");
  EXPECT_NE(error_of([&] { eval_similarity(engine, empty); }).find("no word pairs"), std::string::npos);
}

// The real GloVe 6B 100d index: float32 3CosAdd @30000 must give gensim's 65.7%.
TEST(EvalRealData, GloveFloatScoreMatchesGensim) {
  const igla::testing_util::RealData real;
  if (const std::string why = real.missing(); !why.empty()) GTEST_SKIP() << why;
  const size_t R = 30000;
  // float32 (the first R words decide every question at --restrict R): kept or rebuilt
  std::string why;
  const FloatVectors& v = igla::testing_util::real_float_vectors(real.index, R, why);
  ASSERT_EQ(v.size(), R) << why;
  const Engine fe(std::make_shared<const Index>(Index::build(v, {}, true)));
  const AnalogyReport f = eval_analogies(fe, real.questions, {.restrict_vocab = R, .use_float = true});
  EXPECT_NEAR(100.0 * f.accuracy(), 65.7, 0.3) << f.correct << "/" << f.answered;
  EXPECT_EQ(f.answered + f.skipped, 19544u);
}

// The real GloVe index: the evaluator's ternary answers (the best kernel of this CPU) must be the
// int8 reference search's. Apart from the float score so that an emulated run
// (scripts/cross-test-aarch64.sh) can check the kernels on real data without the float part.
TEST(EvalRealData, TernaryAnswersMatchReference) {
  const igla::testing_util::RealData real;
  if (const std::string why = real.missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string& questions = real.questions;
  const auto ix_p = std::make_shared<const Index>(Index::open(real.index));
  const Index& ix = *ix_p;
  const Engine engine(ix_p);
  const size_t R = 30000;

  // The first 300 questions (all capital-common-countries), through the evaluator and directly.
  TempDir dir;
  std::ifstream in(questions);
  std::string line, text;
  std::vector<std::array<uint32_t, 4>> qs;
  while (qs.size() < 300 && std::getline(in, line)) {
    text += line + "\n";
    if (line.empty() || line[0] == ':') continue;
    std::istringstream ss(line);
    std::array<uint32_t, 4> id{};
    bool ok = true;
    for (auto& x : id) {
      std::string w;
      ss >> w;
      for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const auto f = ix.find(w);
      ok = ok && f && *f < R;
      x = f ? *f : 0;
    }
    if (ok) qs.push_back(id);
  }
  ASSERT_EQ(qs.size(), 300u);
  const AnalogyReport t =
      eval_analogies(engine, write(dir, "q300.txt", text),
                     {.restrict_vocab = R, .mode = AnalogyMode::Add, .candidates = 0});  // the ternary answers

  QueryBuilder qb(ix, Combine::Sum, FloatForm::None);
  for (auto& q : qs) qb.analogy(q[0], q[1], q[2], AnalogyMode::Add);
  const QueryBatch& batch = qb.batch();
  std::vector<int8_t> vocab;
  for (size_t i = 0; i < R; ++i) {
    const auto tr = ix.trits(i);
    vocab.insert(vocab.end(), tr.begin(), tr.end());
  }
  const SearchResults ref = reference_search(vocab, R, ix.dims(), batch, {.k = 1, .limit = R});
  SearchResults got;
  engine.searcher().search(batch, {.k = 1, .limit = R}, got);
  size_t correct = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    ASSERT_EQ(ref.of(i)[0].id, got.of(i)[0].id) << "question " << i;
    correct += ref.of(i)[0].id == qs[i][3];
  }
  EXPECT_EQ(t.answered, 300u);
  EXPECT_EQ(t.correct, correct);
}
