"""igla against gensim on the same GloVe vectors (first 50,000 words)."""
import json
import subprocess

import numpy as np
import pytest

import igla

PROBES = ["king", "paris", "computer", "good", "run", "water", "china", "music", "doctor", "blue",
          "january", "france", "car", "happy", "science"]
ANALOGIES = [("man", "king", "woman"), ("paris", "france", "berlin"), ("good", "better", "bad"),
             ("walk", "walked", "run"), ("japan", "tokyo", "germany")]


def same_answers(got, want, tol=1e-5):
    assert [w for w, _ in got] == [w for w, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=tol)


# ---- exact: igla over the kept float32 vectors answers as gensim does --------------------------

@pytest.mark.parametrize("word", PROBES)
def test_most_similar_one_word_equals_gensim(kv_float, gensim_kv, word):
    same_answers(kv_float.most_similar(word, topn=10), gensim_kv.most_similar(word, topn=10))


@pytest.mark.parametrize("a,b,c", ANALOGIES)
def test_most_similar_pos_neg_equals_gensim(kv_float, gensim_kv, a, b, c):
    got = kv_float.most_similar(positive=[b, c], negative=[a], topn=10)
    same_answers(got, gensim_kv.most_similar(positive=[b, c], negative=[a], topn=10))


def test_most_similar_restrict_vocab_equals_gensim(kv_float, gensim_kv):
    got = kv_float.most_similar(positive=["king", "woman"], negative=["man"], topn=10, restrict_vocab=5000)
    same_answers(got, gensim_kv.most_similar(positive=["king", "woman"], negative=["man"], topn=10,
                                             restrict_vocab=5000))


def test_most_similar_weighted_and_vector_forms_equal_gensim(kv_float, gensim_kv):
    v = gensim_kv["queen"] * 0.5
    for pos, neg in [([("king", 0.7), ("woman", 1.2)], ["man"]), ([v, "king"], []), ([v], [("man", -0.3)])]:
        same_answers(kv_float.most_similar(positive=pos, negative=neg, topn=10),
                     gensim_kv.most_similar(positive=pos, negative=neg, topn=10))


@pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")  # inside gensim
def test_most_similar_cosmul_equals_gensim(kv_float, gensim_kv):
    for a, b, c in ANALOGIES:
        same_answers(kv_float.most_similar_cosmul(positive=[b, c], negative=[a], topn=10),
                     gensim_kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=10))
    same_answers(kv_float.most_similar_cosmul("king", topn=10), gensim_kv.most_similar_cosmul("king", topn=10))


def test_similarity_equals_gensim(kv_float, gensim_kv):
    rng = np.random.default_rng(3)
    keys = gensim_kv.index_to_key
    for i, j in rng.integers(0, len(keys), size=(200, 2)):
        assert kv_float.similarity(keys[i], keys[j]) == pytest.approx(float(gensim_kv.similarity(keys[i], keys[j])),
                                                                      abs=1e-5)
    w1 = [keys[i] for i in range(100)]
    w2 = [keys[i + 1000] for i in range(100)]
    np.testing.assert_allclose(kv_float.similarities(w1, w2), [gensim_kv.similarity(a, b) for a, b in zip(w1, w2)],
                               atol=1e-5)


@pytest.mark.parametrize("words", [["breakfast", "cereal", "dinner", "lunch"], ["paris", "berlin", "london", "apple"],
                                   ["red", "green", "blue", "car", "yellow"], ["cat", "dog", "mouse", "computer"]])
def test_doesnt_match_equals_gensim(kv_float, kv, gensim_kv, words):
    assert kv_float.doesnt_match(words) == gensim_kv.doesnt_match(words)
    assert kv.doesnt_match(words) == gensim_kv.doesnt_match(words)


def test_evaluate_word_analogies_equals_gensim(kv_float, gensim_kv, questions_sample):
    score, sections = kv_float.evaluate_word_analogies(questions_sample, restrict_vocab=30000)
    g_score, g_sections = gensim_kv.evaluate_word_analogies(questions_sample, restrict_vocab=30000)
    assert [s["section"] for s in sections] == [s["section"] for s in g_sections]
    for s, g in zip(sections, g_sections):
        assert s["correct"] == g["correct"], s["section"]
        assert s["incorrect"] == g["incorrect"], s["section"]
    assert score == pytest.approx(g_score)
    assert sections[-1]["section"] == "Total accuracy" and 0.5 < score < 0.95


def test_evaluate_word_pairs_equals_gensim(kv_float, gensim_kv, wordsim):
    p, s, oov = kv_float.evaluate_word_pairs(wordsim, delimiter=",")
    gp, gs, goov = gensim_kv.evaluate_word_pairs(wordsim, delimiter=",")
    assert p[0] == pytest.approx(gp[0], abs=1e-5)
    assert s[0] == pytest.approx(gs[0], abs=1e-5)
    assert oov == pytest.approx(goov)


def test_rank_and_closer_than_equal_gensim(kv_float, gensim_kv):
    assert kv_float.rank("king", "queen") == gensim_kv.rank("king", "queen")
    assert kv_float.closer_than("king", "prince") == gensim_kv.closer_than("king", "prince")


def test_vectors_equal_gensim(kv_float, gensim_kv):
    np.testing.assert_array_equal(kv_float["king"], gensim_kv["king"])
    np.testing.assert_allclose(kv_float.get_vector("king", norm=True), gensim_kv.get_vector("king", norm=True),
                               atol=1e-6)
    assert kv_float.index_to_key == gensim_kv.index_to_key
    assert kv_float.key_to_index["queen"] == gensim_kv.key_to_index["queen"]


# ---- the default mode (ternary scan + int8 rerank of 50 candidates) ------------------------------

def test_default_mode_close_to_gensim(kv, gensim_kv):
    agree = first = 0
    for w in PROBES:
        got = [x for x, _ in kv.most_similar(w, topn=10)]
        want = [x for x, _ in gensim_kv.most_similar(w, topn=10)]
        agree += len(set(got) & set(want))
        first += got[0] == want[0]
    assert agree >= 0.9 * 10 * len(PROBES) and first >= 0.8 * len(PROBES), (agree, first)
    assert kv.similarity("king", "queen") == pytest.approx(float(gensim_kv.similarity("king", "queen")), abs=0.01)


def test_default_mode_accuracy_equals_cli(kv, glove_path, questions, igla_cli):
    out = subprocess.run([igla_cli, "eval", "analogies", questions, "--index", glove_path, "--restrict", "30000",
                          "--json"], check=True, capture_output=True, text=True).stdout
    cli = json.loads(out)
    score, sections = kv.evaluate_word_analogies(questions, restrict_vocab=30000)
    by_name = {s["section"]: s for s in sections}
    for s in cli["sections"]:
        ours = by_name[s["name"]]
        assert len(ours["correct"]) == s["correct"], s["name"]
        assert len(ours["correct"]) + len(ours["incorrect"]) == s["answered"], s["name"]
    assert len(sections[-1]["correct"]) == cli["total"]["correct"]
    assert score == pytest.approx(cli["total"]["correct"] / cli["total"]["answered"])


def test_default_mode_word_pairs_equal_cli(kv, glove_path, wordsim, igla_cli):
    out = subprocess.run([igla_cli, "eval", "similarity", wordsim, "--index", glove_path, "--json"], check=True,
                         capture_output=True, text=True).stdout
    cli = json.loads(out)
    (pearson, _), spearman, oov = kv.evaluate_word_pairs(wordsim, delimiter=",")
    assert spearman[0] == pytest.approx(cli["spearman"], abs=1e-6)
    assert pearson == pytest.approx(cli["pearson"], abs=1e-6)
    assert oov == 100.0 * cli["oov"] / (cli["pairs"] + cli["oov"])
