"""Bad input raises the right exception with a message that names the problem."""
import numpy as np
import pytest

import igla


def test_unknown_word_is_a_key_error_naming_the_closest(kv):
    with pytest.raises(KeyError) as e:
        kv.most_similar("kingg")
    assert isinstance(e.value, igla.UnknownWordError) and isinstance(e.value, igla.Error)
    assert e.value.word == "kingg"
    assert "king" in e.value.closest
    assert "kingg" in str(e.value) and "king" in str(e.value)
    for call in [lambda: kv.similarity("king", "qeen"), lambda: kv["qeen"], lambda: kv.get_index("qeen"),
                 lambda: kv.most_similar(positive=["king", "qeen"]), lambda: kv.search_words(["king", "qeen"]),
                 lambda: kv.analogies(["man"], ["king"], ["qeen"]), lambda: kv.rank("king", "qeen"),
                 lambda: kv.most_similar_cosmul(positive=["qeen", "king"], negative=["man"])]:
        with pytest.raises(KeyError, match="qeen"):
            call()


def test_get_index_default(kv):
    assert kv.get_index("qeen", -1) == -1
    assert kv.get_index("king") == kv.key_to_index["king"]
    assert "qeen" not in kv and "king" in kv
    assert 3 in kv and len(kv) not in kv and -1 not in kv and 2.0 not in kv  # ids in range, as gensim


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.float16])
def test_search_wrong_dtype_is_a_type_error(kv, dtype):
    with pytest.raises(TypeError, match="float32"):
        kv.search(np.zeros((2, kv.vector_size), dtype), 5)


def test_search_not_an_array_is_a_type_error(kv):
    with pytest.raises(TypeError, match="float32"):
        kv.search([[0.0] * kv.vector_size], 5)


@pytest.mark.parametrize("shape", [(2, 99), (2, 101), (100,), (2, 2, 100)])
def test_search_wrong_shape_is_a_value_error(kv, shape):
    with pytest.raises(ValueError, match=r"shape \(n, 100\)"):
        kv.search(np.zeros(shape, np.float32), 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_search_non_finite_is_a_value_error_naming_the_row(kv, bad):
    x = np.ones((3, kv.vector_size), np.float32)
    x[2, 7] = bad
    with pytest.raises(ValueError, match="vector 2"):
        kv.search(x, 5)


def test_bad_k_candidates_and_ids(kv):
    x = np.ones((1, kv.vector_size), np.float32)
    with pytest.raises(ValueError, match="k must be"):
        kv.search(x, 0)
    with pytest.raises(ValueError, match="candidates"):
        kv.search(x, 5, candidates=-1)
    with pytest.raises(IndexError, match="out of range"):
        kv.search_ids(np.array([0, len(kv)]), 5)
    with pytest.raises(IndexError, match="out of range"):
        kv.search_ids(np.array([-1]), 5)
    with pytest.raises(TypeError, match="integer"):
        kv.search_ids(np.array([1.5]), 5)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        kv.analogies_ids(np.zeros((2, 2), np.int64), 5)


def test_bad_lists(kv):
    with pytest.raises(TypeError, match="list of words"):
        kv.search_words("king", 5)
    with pytest.raises(ValueError, match="same length"):
        kv.analogies(["man"], ["king", "x"], ["woman"])
    with pytest.raises(ValueError, match="same length"):
        kv.similarities(["a"], [])
    with pytest.raises(ValueError, match="mode"):
        kv.analogies(["man"], ["king"], ["woman"], mode="sideways")
    with pytest.raises(ValueError, match="no input"):
        kv.most_similar(positive=[], negative=[])


def test_bad_files_and_devices(tmp_path, glove_path):
    with pytest.raises(FileNotFoundError, match="no igla index"):
        igla.load(str(tmp_path / "missing.igla"))
    bad = tmp_path / "bad.igla"
    bad.write_bytes(b"not an index at all" * 10)
    with pytest.raises(igla.Error, match="bad.igla"):
        igla.load(str(bad))
    with pytest.raises(igla.Error, match="nope"):
        igla.load(glove_path, device="nope")


def test_default_path_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("IGLA_HOME", str(tmp_path))
    assert igla.default_index_path() == str(tmp_path / "glove-100d.igla")
    with pytest.raises(FileNotFoundError, match="fetch_glove"):
        igla.load()


def test_cuda_where_not_built_says_why(glove_path):
    try:
        kv = igla.load(glove_path, device="cuda")
    except igla.Error as e:
        # Not built: says so; built but no usable GPU or driver here: says that.
        msg = str(e).lower()
        assert "cuda" in msg and ("built" in msg or "gpu" in msg or "driver" in msg), msg
    else:  # a CUDA build on a GPU machine: the same answers as the CPU
        got, want = kv.most_similar("king", topn=5), igla.load(glove_path).most_similar("king", topn=5)
        assert [w for w, _ in got] == [w for w, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
