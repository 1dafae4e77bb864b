"""Fixtures of the igla Python tests (pytest; run by scripts/test.sh as
`PYTHONPATH=build/python /usr/bin/python3 -m pytest python/tests`).

The real-data tests use GloVe 100d, restricted to its first 50,000 words to keep gensim (the
oracle) fast: an index with the float32 vectors kept is built once per session from the default
index (when it kept them) or from the npm tarball `igla fetch-glove` caches ($IGLA_HOME/npm).
"""
import os
import sys
import tarfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import igla  # noqa: F401
except ImportError:  # run from the repository without PYTHONPATH: the build tree's package
    sys.path.insert(0, os.path.join(REPO, "build", "python"))
    import igla  # noqa: F401

DATA = os.environ.get("IGLA_TEST_DATA", "/work/shared/data")
GLOVE_WORDS = 50_000


def _glove_source(tmp):
    """A file convert_file reads GloVe 100d from: the default index if it kept float32, else the
    wink JSON extracted from the cached npm tarball; None when neither is there."""
    default = igla.default_index_path()
    if os.path.exists(default):
        try:
            if igla.load(default).info()["float32"]:
                return default
        except igla.Error:
            pass
    tgz = os.path.join(igla.igla_home(), "npm", f"{igla.building.GLOVE_PACKAGE}-{igla.building.GLOVE_VERSION}.tgz")
    if not os.path.exists(tgz):
        return None
    out = os.path.join(tmp, "glove.json")
    with tarfile.open(tgz, "r:gz") as tar, open(out, "wb") as f:
        f.write(tar.extractfile(igla.building.GLOVE_MEMBER).read())
    return out


@pytest.fixture(scope="session")
def glove_path(tmp_path_factory):
    """GloVe 100d, first 50,000 words, default codes (rotated, int8 rerank rows) and float32 kept."""
    tmp = str(tmp_path_factory.mktemp("glove"))
    src = _glove_source(tmp)
    if src is None:
        pytest.skip("no GloVe vectors: run `build/igla fetch-glove` (scripts/test.sh does)")
    path = os.path.join(tmp, "glove50k.igla")
    igla.convert_file(src, path, limit=GLOVE_WORDS, keep_float=True, progress=False)
    if src.endswith(".json"):
        os.remove(src)
    return path


@pytest.fixture(scope="session")
def kv(glove_path):
    """igla's default mode on it: ternary scan, top 50 rescored on the int8 rows."""
    return igla.load(glove_path)


@pytest.fixture(scope="session")
def kv_float(glove_path):
    """igla over the kept float32 vectors (the exact float peer): gensim's answers."""
    return igla.load(glove_path, device="float")


@pytest.fixture(scope="session")
def gensim_kv(kv):
    """gensim's KeyedVectors on the same float32 vectors: the oracle."""
    gensim_models = pytest.importorskip("gensim.models")
    g = gensim_models.KeyedVectors(kv.vector_size)
    g.add_vectors(kv.index_to_key, np.array(kv.vectors))
    g.fill_norms()
    return g


def _data_file(name):
    """A file of the repository's data/ folder, or the test skipped where it is missing."""
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    return path


@pytest.fixture(scope="session")
def questions():
    return _data_file("questions-words.txt")


@pytest.fixture(scope="session")
def questions_sample(questions, tmp_path_factory):
    """Every 25th question of each section of questions-words.txt (~780): gensim answers them fast."""
    out = str(tmp_path_factory.mktemp("questions") / "sample.txt")
    with open(questions) as f, open(out, "w") as o:
        i = 0
        for line in f:
            if line.startswith(":"):
                o.write(line)
                i = 0
            else:
                if i % 25 == 0:
                    o.write(line)
                i += 1
    return out


@pytest.fixture(scope="session")
def wordsim():
    return _data_file("wordsim353.csv")


@pytest.fixture(scope="session")
def igla_cli():
    for p in [os.environ.get("IGLA_CLI", ""), os.path.join(REPO, "build", "igla")]:
        if p and os.access(p, os.X_OK):
            return p
    pytest.skip("no igla CLI binary (build/igla, or set IGLA_CLI)")


def random_index(tmp_path, n=2000, d=32, seed=0, **kwargs):
    """A small index of random vectors (words w0, w1, ...) and its arrays."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    words = [f"w{i}" for i in range(n)]
    path = str(tmp_path / f"random{seed}.igla")
    kv = igla.convert(x, words, path, **kwargs)
    return kv, x, words
