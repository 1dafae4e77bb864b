"""igla.KeyedVectors: gensim 4's KeyedVectors over an igla index, plus FAISS-style batch search.

The searches run in C++ (igla._igla.KeyedVectorsBase) with the GIL released; this file adds
gensim's argument forms (a word, lists, (word, weight) tuples, vectors), the numpy-side helpers
(distances, rank, closer_than) and the evaluations in gensim's shapes.
"""
from __future__ import annotations

import logging
import os
from numbers import Integral

import numpy as np

from . import _igla

logger = logging.getLogger("igla")

_KEY_TYPES = (str, int, np.integer)


def _ensure_list(value):
    """gensim's: None -> [], a single key or vector -> [it]."""
    if value is None:
        return []
    if isinstance(value, (str, np.ndarray)) or isinstance(value, _KEY_TYPES):
        return [value]
    return list(value)


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


class KeyedVectors(_igla.KeyedVectorsBase):
    """Word vectors in an igla index, searched exactly over ternary codes (gensim's KeyedVectors API).

    ``kv = igla.load()`` opens the index ``igla fetch-glove`` builds; ``igla.KeyedVectors(path,
    device="cpu", threads=0, candidates=50, lower=False)`` opens any ``.igla`` file.

    - device: the search backend ("cpu"; "cuda" where built; igla.backends() lists them).
    - threads: CPU threads one call may use (0: all cores).
    - candidates: ternary candidates per query rescored with float math on the index's rerank rows
      (0: the ternary scores are the answer). ``search()`` also takes it per call.
    - lower: fold input words to lower case before lookup.

    gensim's names: most_similar, most_similar_cosmul, similar_by_word / key / vector, similarity,
    n_similarity, distance, distances, doesnt_match, rank, closer_than, get_vector, get_index,
    get_normed_vectors, index_to_key, key_to_index, vectors, vector_size, ``kv["word"]``,
    ``"word" in kv``, ``len(kv)``, evaluate_word_analogies, evaluate_word_pairs.

    FAISS's shape: ``scores, ids = kv.search(x, k)`` for a float32 array x (n, vector_size);
    search_words, search_ids, analogies, analogies_ids and similarities answer batches in one call.
    ``kv.to_keys(ids)`` turns ids into words.

    Unknown words raise igla.UnknownWordError, a KeyError naming the word and the closest known
    ones (``.word``, ``.closest``). Every search releases the GIL; any number of threads may use
    one object at once (it is immutable).
    """

    def __init__(self, path, device="cpu", threads=0, candidates=50, lower=False):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no igla index at {path} (igla.fetch_glove() builds the default one; "
                                    f"igla.convert_file() converts a vector file)")
        super().__init__(path, device=device, threads=int(threads), candidates=int(candidates), lower=bool(lower))
        self._loaded = True  # the C++ object exists (a failed __init__ leaves it unset)
        self._index_to_key = None
        self._key_to_index = None
        self._vectors = None
        self._normed = None

    def __repr__(self):
        if not self.__dict__.get("_loaded"):  # its __init__ failed: no C++ object to ask
            return "<igla.KeyedVectors (not loaded)>"
        info = self.info()
        return (f"<igla.KeyedVectors {info['words']} words x {info['float_dims']} dims, "
                f"{info['quantization']} codes of {info['code_dims']} trits, rerank {info['rerank']}, "
                f"{info['searcher']}, path {info['path']!r}>")

    # ---- vocabulary ------------------------------------------------------------------------

    @property
    def index_to_key(self):
        """The words in index order (most frequent first in GloVe / word2vec files)."""
        if self._index_to_key is None:
            self._index_to_key = self._all_keys()
        return self._index_to_key

    @property
    def key_to_index(self):
        """Dict word -> index (built on first use)."""
        if self._key_to_index is None:
            self._key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        return self._key_to_index

    def __getitem__(self, key_or_keys):
        """``kv["king"]``: the word's float vector (get_vector); a list of words gives a 2-D array."""
        if isinstance(key_or_keys, _KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(k) for k in key_or_keys])

    def __iter__(self):
        return iter(self.index_to_key)

    # ---- vectors ---------------------------------------------------------------------------

    @property
    def vectors(self):
        """(n, vector_size) float32: the vectors kept in the index (read-only, not copied), else the
        rerank rows decoded to unit vectors (made on first use)."""
        if self._vectors is None:
            v = self._float32_vectors()
            self._vectors = v if v is not None else self._rerank_vectors()
        return self._vectors

    def get_normed_vectors(self):
        """(n, vector_size) float32 unit vectors (made on first use)."""
        if self._normed is None:
            v = self.vectors
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            norms[norms == 0] = 1
            self._normed = (v / norms).astype(np.float32)
        return self._normed

    def get_mean_vector(self, keys, weights=None, pre_normalize=True, post_normalize=False, ignore_missing=True):
        """gensim's get_mean_vector: the weighted mean of the keys' vectors (unit vectors when
        pre_normalize), divided by the total absolute weight; unit length when post_normalize."""
        keys = _ensure_list(keys)
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        weights = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(keys) != weights.shape[0]:
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, np.float32)
        total = 0.0
        for key, w in zip(keys, weights):
            if isinstance(key, np.ndarray):
                mean += w * key
                total += abs(w)
            elif key in self or (isinstance(key, (int, np.integer)) and 0 <= key < len(self)):
                mean += w * self.get_vector(key, norm=pre_normalize)
                total += abs(w)
            elif not ignore_missing:
                self.get_index(key)  # raises KeyError naming the closest words
        if total > 0:
            mean = mean / total
        return _unit(mean) if post_normalize else mean

    # ---- gensim's queries ------------------------------------------------------------------

    # most_similar itself is in C++ (igla._igla.KeyedVectorsBase.most_similar): words go straight to
    # the search; any other form of argument comes here.
    def _most_similar_py(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None,
                         restrict_vocab=None, indexer=None):
        """most_similar for vectors, ids, (key, weight) tuples and topn=None (see most_similar)."""
        if isinstance(topn, Integral) and topn < 1:
            return []
        if indexer is not None:
            raise NotImplementedError("igla.KeyedVectors.most_similar: indexer= is not supported (igla is the index)")
        if clip_start:
            raise NotImplementedError("igla.KeyedVectors.most_similar: clip_start is not supported (use restrict_vocab)")
        limit = int(restrict_vocab or clip_end or 0)
        positive = _ensure_list(positive)
        negative = _ensure_list(negative)
        keys, weights = [], []
        for item, sign in [(p, 1.0) for p in positive] + [(n, -1.0) for n in negative]:
            if isinstance(item, (str, int, np.integer, np.ndarray)):
                keys.append(item)
                weights.append(sign)
            else:  # (key, weight): the weight as given, for negatives too (gensim)
                keys.append(item[0])
                weights.append(float(item[1]))
        if not keys:
            raise ValueError("cannot compute similarity with no input")
        if not topn:
            mean = self.get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True, ignore_missing=False)
            return self.get_normed_vectors()[:limit or len(self)] @ mean
        return self._search_terms(keys, weights, int(topn), limit)

    def _search_terms(self, keys, weights, topn, limit):
        """One C++ query over weighted words (as unit vectors) and vectors (with their length), the
        words excluded; scores are cosines to the combined direction (gensim's most_similar)."""
        ids, id_w, vecs, vec_w = [], [], [], []
        for key, w in zip(keys, weights):
            if isinstance(key, np.ndarray):
                vecs.append(np.asarray(key, dtype=np.float32).reshape(-1))
                vec_w.append(float(w))
            else:
                ids.append(self.get_index(key))
                id_w.append(float(w))
        x = np.stack(vecs) if vecs else None
        if x is not None and x.shape[1] != self.vector_size:
            raise ValueError(f"vectors must have {self.vector_size} values (the index's float dims), got {x.shape[1]}")
        return self._most_similar_terms(ids, id_w, x, vec_w, sorted(set(ids)), topn, limit)

    def similar_by_word(self, word, topn=10, restrict_vocab=None):
        """gensim's similar_by_word: most_similar(word)."""
        return self.most_similar(word, topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        """The topn words closest to a float vector (vector_size values): a list of (word, cosine)."""
        return self.most_similar(positive=[np.asarray(vector, dtype=np.float32)], topn=topn,
                                 restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """gensim's most_similar_cosmul (3CosMul of Levy & Goldberg with gensim's epsilon 1e-6):
        prod over positives of (1 + cos) / 2 divided by (prod over negatives + 1e-6).

        Candidates come from the C++ search (3CosMul for the usual two positives and one negative,
        most_similar otherwise; the top max(candidates, 10 x topn)), rescored here with gensim's
        formula on ``vectors``.
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive = _ensure_list(positive)
        negative = _ensure_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        exclude = {self.get_index(w) for w in positive + negative if isinstance(w, _KEY_TYPES)}
        pos = [self.get_vector(w, norm=True) if isinstance(w, _KEY_TYPES) else _unit(w) for w in positive]
        neg = [self.get_vector(w, norm=True) if isinstance(w, _KEY_TYPES) else _unit(w) for w in negative]
        normed = self.get_normed_vectors()
        limit = int(restrict_vocab or 0)
        if not topn:
            rows = normed[:limit or len(self)]
            return self._cosmul(rows, pos, neg)
        width = max(self.candidates, 10 * int(topn)) + len(exclude)
        words = [w for w in positive + negative if isinstance(w, str)]
        if len(positive) == 2 and len(negative) == 1 and len(words) == 3:
            hits = self._analogy(negative[0], positive[0], positive[1], "mul", width, limit)
        elif words and len(words) == len(positive) + len(negative):
            hits = self._most_similar(list(positive), list(negative), width, limit)
        else:
            hits = self._search_terms(positive + negative, [1.0] * len(positive) + [-1.0] * len(negative), width, limit)
        ids = np.array([self.get_index(w) for w, _ in hits], dtype=np.int64)
        if len(ids) == 0:
            return []
        scores = self._cosmul(normed[ids], pos, neg)
        order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[:int(topn)]
        return [(self.index_to_key[ids[i]], float(scores[i])) for i in order]

    @staticmethod
    def _cosmul(rows, pos, neg):
        p = np.prod([(1 + rows @ t) / 2 for t in pos], axis=0)
        n = np.prod([(1 + rows @ t) / 2 for t in neg], axis=0) if neg else 1.0
        return p / (n + 0.000001)

    def doesnt_match(self, words):
        """The word farthest from the mean of the others' unit vectors (gensim's doesnt_match).
        Unknown words are ignored with a warning, as gensim does."""
        words = list(words)
        used = [w for w in words if w in self]
        if len(used) != len(words):
            logger.warning("vectors for words %s are not present in the model, ignoring these words",
                           set(words) - set(used))
        if not used:
            raise ValueError("cannot select a word from an empty list")
        if len(used) == 1:
            return used[0]
        return self._doesnt_match(used)

    def distance(self, w1, w2):
        """1 - similarity(w1, w2)."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector, other_words=()):
        """Cosine distances (1 - cosine) from a word or vector to `other_words` (all words when
        empty), computed with numpy on ``vectors``."""
        v = self.get_vector(word_or_vector) if isinstance(word_or_vector, _KEY_TYPES) else word_or_vector
        v = _unit(v)
        if not other_words:
            rows = self.get_normed_vectors()
        else:
            rows = self.get_normed_vectors()[[self.get_index(w) for w in other_words]]
        return 1.0 - rows @ v

    def n_similarity(self, ws1, ws2):
        """Cosine between the means of two lists of words' vectors (gensim's n_similarity)."""
        if not (len(ws1) and len(ws2)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        m1 = self.get_mean_vector(ws1, pre_normalize=False, ignore_missing=False)
        m2 = self.get_mean_vector(ws2, pre_normalize=False, ignore_missing=False)
        return float(np.dot(_unit(m1), _unit(m2)))

    def closer_than(self, key1, key2):
        """Words closer to key1 than key2 is (gensim's closer_than; numpy on ``vectors``)."""
        d = self.distances(key1)
        i1, i2 = self.get_index(key1), self.get_index(key2)
        return [self.index_to_key[i] for i in np.where(d < d[i2])[0] if i != i1]

    words_closer_than = closer_than

    def rank(self, key1, key2):
        """Rank of key2 among the neighbours of key1: len(closer_than(key1, key2)) + 1."""
        return len(self.closer_than(key1, key2)) + 1

    def most_similar_to_given(self, key1, keys_list):
        """The key of keys_list most similar to key1."""
        return keys_list[int(np.argmax(self.similarities([key1] * len(keys_list), list(keys_list))))]

    # ---- evaluation (gensim's shapes) ------------------------------------------------------

    def _ok_vocab(self, restrict_vocab, case_insensitive):
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:  # the most frequent case variant wins, as in gensim
            return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
        return {k: i for i, k in enumerate(keys)}

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False, similarity_function="most_similar"):
        """Accuracy on an analogy file (questions-words.txt), as gensim computes it: returns
        (score, sections), each section a dict {'section', 'correct', 'incorrect'} of (a, b, c, d)
        tuples (upper-cased when case_insensitive), the last one 'Total accuracy'.

        All questions go to the C++ search in one batch (3CosAdd; similarity_function=
        "most_similar_cosmul" for 3CosMul), the top 5 of each checked as gensim checks them.
        """
        mode = {"most_similar": "add", "most_similar_cosmul": "mul"}.get(similarity_function)
        if mode is None:
            raise ValueError(f"similarity_function must be 'most_similar' or 'most_similar_cosmul', "
                             f"got {similarity_function!r}")
        restrict_vocab = min(int(restrict_vocab), len(self))
        ok_vocab = self._ok_vocab(restrict_vocab, case_insensitive)
        sections, questions, abc, oov, quadruplets = [], [], [], 0, 0
        with open(analogies, "rb") as f:
            for line_no, raw in enumerate(f):
                line = raw.decode("utf8")
                if line.startswith(": "):
                    sections.append({"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []})
                    continue
                if not sections:
                    raise ValueError(f"Missing section header before line #{line_no} in {analogies}")
                words = line.split()
                if len(words) != 4:
                    logger.info("Skipping invalid line #%i in %s", line_no, analogies)
                    continue
                quad = tuple(w.upper() for w in words) if case_insensitive else tuple(words)
                quadruplets += 1
                if any(w not in ok_vocab for w in quad):
                    oov += 1
                    if dummy4unknown:
                        sections[-1]["incorrect"].append(quad)
                    continue
                questions.append((len(sections) - 1, quad))
                abc.append((ok_vocab[quad[0]], ok_vocab[quad[1]], ok_vocab[quad[2]]))
        if abc:
            _, ids = self.analogies_ids(np.asarray(abc, dtype=np.int64), k=5, mode=mode,
                                        restrict_vocab=restrict_vocab)
            keys = self.index_to_key
            for (s, quad), row in zip(questions, ids):
                ignore, predicted = set(quad[:3]), None
                for i in row:
                    if i < 0:
                        break
                    predicted = keys[i].upper() if case_insensitive else keys[i]
                    if predicted in ok_vocab and predicted not in ignore:
                        break
                sections[s]["correct" if predicted == quad[3] else "incorrect"].append(quad)
        total = {"section": "Total accuracy",
                 "correct": [q for s in sections for q in s["correct"]],
                 "incorrect": [q for s in sections for q in s["incorrect"]]}
        for s in sections + [total]:
            n = len(s["correct"]) + len(s["incorrect"])
            if n:
                logger.info("%s: %.1f%% (%i/%i)", s["section"], 100.0 * len(s["correct"]) / n, len(s["correct"]), n)
        if quadruplets:
            logger.info("Quadruplets with out-of-vocabulary words: %.1f%%", 100.0 * oov / quadruplets)
        n = len(total["correct"]) + len(total["incorrect"])
        sections.append(total)
        return (len(total["correct"]) / n if n else 0.0), sections

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation with human similarity scores (WordSim-353 style "w1<delimiter>w2<delimiter>score"
        lines; '#' lines skipped), as gensim computes it: returns (pearson, spearman, oov_ratio),
        pearson and spearman as (statistic, p-value) from scipy.stats."""
        ok_vocab = self._ok_vocab(min(int(restrict_vocab), len(self)), case_insensitive)
        gold, a_ids, b_ids, oov, dummies = [], [], [], 0, []
        with open(pairs, encoding=encoding) as f:
            for line_no, line in enumerate(f):
                if not line or line.startswith("#"):
                    continue
                try:
                    parts = [w.upper() if case_insensitive else w for w in line.split(delimiter)]
                    a, b, sim = parts
                    sim = float(sim)
                except (ValueError, TypeError):
                    logger.info("Skipping invalid line #%d in %s", line_no, pairs)
                    continue
                if a not in ok_vocab or b not in ok_vocab:
                    oov += 1
                    if dummy4unknown:
                        dummies.append(len(gold))
                        gold.append(sim)
                        a_ids.append(-1)
                        b_ids.append(-1)
                    continue
                gold.append(sim)
                a_ids.append(ok_vocab[a])
                b_ids.append(ok_vocab[b])
        if not gold:
            raise ValueError(f"No valid similarity judgements found in {pairs}: either invalid format or "
                             f"all are out-of-vocabulary in {self!r}")
        keys = self.index_to_key
        known = [i for i in range(len(gold)) if a_ids[i] >= 0]
        model = np.zeros(len(gold), dtype=np.float64)
        model[known] = self.similarities([keys[a_ids[i]] for i in known], [keys[b_ids[i]] for i in known])
        pearson, spearman = _correlations(np.asarray(gold, dtype=np.float64), model)
        oov_ratio = float(oov) / (len(gold) if dummy4unknown else len(gold) + oov) * 100
        logger.info("Pearson correlation coefficient against %s: %.4f", pairs, pearson[0])
        logger.info("Spearman rank-order correlation coefficient against %s: %.4f", pairs, spearman[0])
        logger.info("Pairs with unknown words ratio: %.1f%%", oov_ratio)
        return pearson, spearman, oov_ratio


def _correlations(x, y):
    """(pearson, spearman) as scipy.stats returns them; numpy's statistics (p-value NaN) without scipy."""
    try:
        from scipy import stats
    except ImportError:  # scipy is optional: the statistics alone
        def ranks(v):
            order = np.argsort(v, kind="mergesort")
            r = np.empty(len(v))
            r[order] = np.arange(len(v))
            for val in np.unique(v):  # ties share their mean rank
                m = v == val
                r[m] = r[m].mean()
            return r
        return (float(np.corrcoef(x, y)[0, 1]), float("nan")), \
               (float(np.corrcoef(ranks(x), ranks(y))[0, 1]), float("nan"))
    return stats.pearsonr(x, y), stats.spearmanr(x, y)
