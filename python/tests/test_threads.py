"""Many Python threads on one object: the answers of serial calls, no crash, no lock-up."""
import threading

import numpy as np


def test_many_threads_one_object(kv):
    words = ["king", "paris", "computer", "good", "water", "china", "music", "blue", "car", "happy"]
    rng = np.random.default_rng(9)
    x = (np.stack([kv[w] for w in words]) + rng.normal(0, 0.05, (len(words), kv.vector_size))).astype(np.float32)
    want_search = kv.search(x, 10)
    want_ms = [kv.most_similar(w, topn=5) for w in words]
    want_sim = [kv.similarity(w, "queen") for w in words]
    want_an = kv.analogies(["man"] * 3, ["king", "prince", "boy"], ["woman"] * 3, k=3)
    errors = []

    def worker(t):
        try:
            for r in range(20):
                i = (t + r) % len(words)
                s, ids = kv.search(x, 10)
                assert np.array_equal(ids, want_search[1]) and np.array_equal(s, want_search[0])
                assert kv.most_similar(words[i], topn=5) == want_ms[i]
                assert kv.similarity(words[i], "queen") == want_sim[i]
                s, ids = kv.analogies(["man"] * 3, ["king", "prince", "boy"], ["woman"] * 3, k=3)
                assert np.array_equal(ids, want_an[1])
        except Exception as e:  # reported below with the thread number
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert errors == []
