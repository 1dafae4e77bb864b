"""igla: exact search over ternary word embeddings, as a drop-in for gensim's KeyedVectors.

    import igla
    kv = igla.load()                         # the index `igla fetch-glove` builds (igla.fetch_glove())
    kv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
    scores, ids = kv.search(x, k=10)         # x: float32 (n, kv.vector_size), FAISS's shape

See help(igla.KeyedVectors) and docs/PYTHON.md (gensim -> igla side by side).
"""
from __future__ import annotations

import os

from . import _igla
from ._igla import Error, UnknownWordError, backends
from .paths import default_index_path, igla_home
from .building import ProgressBar, convert, convert_file, fetch_glove, from_keyed_vectors
from .keyed_vectors import KeyedVectors

__version__ = _igla.__version__

__all__ = [
    "Error", "UnknownWordError", "KeyedVectors", "ProgressBar", "__version__", "backends", "convert",
    "convert_file", "default_index_path", "fetch_glove", "from_keyed_vectors", "igla_home", "load",
]


def load(path=None, device="cpu", threads=0, candidates=50, lower=False):
    """Opens an igla index as a KeyedVectors (memory-mapped: nothing is copied or built).

    path: a .igla file; None for the default index ($IGLA_HOME/glove-100d.igla, $IGLA_HOME
    defaulting to ~/.cache/igla), which `igla fetch-glove` or igla.fetch_glove() builds.
    device: "cpu", or "cuda" where the CUDA backend is built (igla.backends()).
    threads: CPU threads one call may use (0: all cores). candidates: ternary candidates per query
    rescored on the rerank rows (0: ternary scores only). lower: fold input words to lower case.
    """
    if path is None:
        path = default_index_path()
        if not os.path.exists(path):
            raise FileNotFoundError(f"no index at {path}: build it with igla.fetch_glove() "
                                    f"(or `igla fetch-glove`), or pass a path")
    return KeyedVectors(path, device=device, threads=threads, candidates=candidates, lower=lower)
