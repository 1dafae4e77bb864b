"""FAISS-shaped batch search: shapes, dtypes, and the same answers as the one-query calls."""
import numpy as np
import pytest

WORDS = ["king", "paris", "computer", "good", "water", "china", "music", "blue"]


def test_search_shapes_and_dtypes(kv):
    x = np.stack([kv["king"], kv["paris"], kv["water"]])
    scores, ids = kv.search(x, k=7)
    assert scores.shape == (3, 7) and ids.shape == (3, 7)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must be best first"
    assert kv.to_keys(ids)[0][0] == "king"  # a word's own vector finds it first (not excluded here)
    assert kv.to_keys(ids[1, 0]) == "paris"


def test_search_equals_similar_by_vector(kv):
    rng = np.random.default_rng(5)
    x = (np.stack([kv[w] for w in WORDS]) + rng.normal(0, 0.05, (len(WORDS), kv.vector_size))).astype(np.float32)
    scores, ids = kv.search(x, k=10)
    for i in range(len(WORDS)):
        one = kv.similar_by_vector(x[i], topn=10)
        assert kv.to_keys(ids[i]) == [w for w, _ in one]
        np.testing.assert_allclose(scores[i], [s for _, s in one], rtol=0, atol=1e-6)


def test_search_accepts_non_contiguous_float32(kv):
    x = np.asfortranarray(np.stack([kv["king"], kv["queen"]]))
    s1, i1 = kv.search(x, 5)
    s2, i2 = kv.search(np.ascontiguousarray(x), 5)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)


def test_search_candidates_per_call(kv):
    x = np.stack([kv[w] for w in WORDS])
    s0, i0 = kv.search(x, 10, candidates=0)  # ternary scores only
    s50, i50 = kv.search(x, 10)
    assert not np.allclose(s0, s50)
    s50b, i50b = kv.search(x, 10, candidates=50)
    np.testing.assert_array_equal(i50, i50b)


def test_search_restrict_vocab(kv):
    _, ids = kv.search(np.stack([kv["king"]]), 20, restrict_vocab=1000)
    assert ids.max() < 1000


def test_fewer_answers_than_k_are_padded(kv):
    scores, ids = kv.search(np.stack([kv["the"]]), 20, restrict_vocab=5)
    assert list(ids[0, 5:]) == [-1] * 15 and np.all(np.isneginf(scores[0, 5:]))
    assert kv.to_keys(ids)[0][5] is None


def test_search_words_equals_most_similar(kv):
    scores, ids = kv.search_words(WORDS, k=10)
    for i, w in enumerate(WORDS):
        one = kv.most_similar(w, topn=10)
        assert kv.to_keys(ids[i]) == [x for x, _ in one]
        np.testing.assert_allclose(scores[i], [s for _, s in one], atol=1e-6)
    s2, i2 = kv.search_ids(np.array([kv.get_index(w) for w in WORDS]), k=10)
    np.testing.assert_array_equal(i2, ids)


def test_analogies_equal_most_similar(kv):
    a, b, c = ["man", "paris", "good"], ["king", "france", "better"], ["woman", "berlin", "bad"]
    scores, ids = kv.analogies(a, b, c, k=5)
    for i in range(3):
        one = kv.most_similar(positive=[b[i], c[i]], negative=[a[i]], topn=5)
        assert kv.to_keys(ids[i]) == [x for x, _ in one]
    assert kv.to_keys(ids)[0][0] == "queen"
    s2, i2 = kv.analogies_ids(np.array([[kv.get_index(x) for x in t] for t in zip(a, b, c)]), k=5)
    np.testing.assert_array_equal(i2, ids)
    _, mul = kv.analogies(a, b, c, k=1, mode="mul")
    assert kv.to_keys(mul)[0][0] == "queen"


def test_similarities_batch(kv):
    w1, w2 = ["king", "cat", "paris"], ["queen", "dog", "london"]
    np.testing.assert_allclose(kv.similarities(w1, w2), [kv.similarity(a, b) for a, b in zip(w1, w2)], atol=0)


def test_empty_batch(kv):
    scores, ids = kv.search(np.zeros((0, kv.vector_size), np.float32), 3)
    assert scores.shape == (0, 3) and ids.shape == (0, 3)
