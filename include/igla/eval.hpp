// igla: intrinsic evaluation — Google analogies and word-pair similarity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "igla/engine.hpp"

namespace igla {

struct AnalogySection {
  std::string name;
  bool syntactic = false;  // sections named gram* (Mikolov et al.)
  size_t correct = 0, answered = 0, skipped = 0;
};

struct AnalogyReport {
  std::vector<AnalogySection> sections;
  size_t correct = 0, answered = 0, skipped = 0;
  size_t sem_correct = 0, sem_answered = 0, syn_correct = 0, syn_answered = 0;
  double seconds = 0;
  // Where `seconds` went, on the calling thread: reading and parsing the file, finding the
  // question words, waiting for query batches still being built, in search calls, scoring hits.
  double read_seconds = 0, lookup_seconds = 0, wait_build_seconds = 0, search_seconds = 0, score_seconds = 0;
  double first_search_seconds = 0;  // the first search call's share of search_seconds
  // The untimed warm-up before `seconds` started (AnalogyEvalOptions::warm_up; 0: none).
  double warm_up_seconds = 0;
  double accuracy() const { return answered ? double(correct) / double(answered) : 0.0; }
};

struct AnalogyEvalOptions {
  size_t restrict_vocab = 30000;  // only questions whose words are among the first N; answers too
  AnalogyMode mode = AnalogyMode::Add;
  bool use_float = false;         // the float peer on the float32 vectors kept in the index
  // Questions per search call. The default puts the Google set (19,544) in one call after a
  // head of 4,096 (the searcher pipelines its own chunks; NOTES v14, runs 44-46).
  size_t batch = 32768;
  size_t candidates = kDefaultCandidates;  // rerank stage width (0: ternary scores only)
  int threads = 0;                // threads of the float peer (0: all cores)
  // Synthetic questions (triples of the first 256 words) run through the searcher the same way,
  // in batches of `batch`, before the clock starts: a GPU searcher's first calls size its pinned
  // and device buffers (~8 ms a process on an H100 host, run 75), which a long-running service
  // pays once; the report's seconds then measure the searcher warm. The warm-up's query batches
  // are kept and rebuilt into (fresh memory is slow to fault in), so a warm-up at least as large
  // as the questions leaves none to fault in. The warm-up also makes the index's map of folded
  // words (once per index), so the questions' words are looked up instead of the vocabulary being
  // scanned for them. 0: none (cold).
  size_t warm_up = 0;
};

// Reads a questions-words.txt style file (": section" lines, then "a b c d"), case-insensitive.
// Questions with a word outside the restricted vocabulary are skipped and counted.
AnalogyReport eval_analogies(const Engine& engine, const std::string& path, const AnalogyEvalOptions& opts);

struct SimilarityReport {
  size_t pairs = 0, oov = 0;
  double spearman = 0, pearson = 0;
};

// Word-pair files with a human score: "w1,w2,score" CSV (a header line is skipped) or
// whitespace-separated "w1 w2 score". Pairs with an unknown word are counted as out of vocabulary.
// Without use_float: the engine's cosine (rerank rows when the index has them and candidates > 0,
// else the ternary codes).
SimilarityReport eval_similarity(const Engine& engine, const std::string& path, bool use_float = false,
                                 size_t candidates = kDefaultCandidates);

}  // namespace igla
