"""python3 -m igla.bench: the Python module's speed beside the C++ calls it wraps and gensim.

Measures, on one index, in one run:
  - a batch of N nearest-word queries (float vectors) through kv.search vs the C++ batch call
    (Engine::nearest_vectors, timed in C++ on the same array), in queries/s;
  - the per-call time of kv.similarity and kv.most_similar(word) vs the C++ calls they make;
  - gensim's own most_similar and similarity on the same vectors (kv.vectors), when gensim is installed;
  - kv.search from several Python threads at once (the GIL is released in every search).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time

import numpy as np

import igla


def _best(fn, reps):
    """Best wall time of `reps` calls of fn()."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _per_call(fn, calls, reps=3):
    """Best-of-reps seconds per call of fn() over `calls` calls."""
    def loop():
        for _ in range(calls):
            fn()
    return _best(loop, reps) / calls


def _pair(cpp, py, reps):
    """Best of `reps` of each of two timings (seconds), taken alternately."""
    a = b = float("inf")
    for _ in range(reps):
        a = min(a, cpp())
        b = min(b, py())
    return a, b


def _binding_overhead(kv, call, calls, reps):
    """Median over calls (best of reps) of: a call's wall time minus its time inside C++."""
    best = float("inf")
    clock, inside = time.perf_counter, kv._last_cpp_seconds
    for _ in range(reps):
        d = []
        for _ in range(calls):
            t0 = clock()
            call()
            d.append(clock() - t0 - inside())
        best = min(best, float(np.median(d)))
    return best


def _queries(kv, n, seed=1):
    """n float query vectors: vectors of random words among the first 100,000, with noise."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, min(len(kv), 100_000), size=n)
    x = np.asarray(kv.vectors[ids], dtype=np.float32)
    scale = float(np.abs(x).mean())
    return np.ascontiguousarray(x + rng.normal(0, 0.1 * scale, x.shape).astype(np.float32))


def run(index=None, n=10_000, k=10, reps=5, calls=2000, gensim_calls=50, threads=2, device="cpu"):
    kv = igla.load(index, device=device)
    info = kv.info()
    out = {"index": info["path"], "words": info["words"], "dims": info["float_dims"], "searcher": info["searcher"],
           "rerank": info["rerank"], "candidates": info["candidates"], "n": n, "k": k,
           "python": sys.version.split()[0], "numpy": np.__version__, "machine": platform.machine(),
           "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    x = _queries(kv, n)
    kv.search(x[:100], k)  # warm: pages in the codes and rerank rows
    # Each pair is measured interleaved, best of `reps` each: a shared machine's load hits both alike.
    cpp, py = _pair(lambda: kv._time_cpp_search(x, k, 1), lambda: _best(lambda: kv.search(x, k), 1), reps)
    out.update(cpp_batch_qps=n / cpp, py_batch_qps=n / py, py_over_cpp=cpp / py)
    # The same in CPU seconds of the process (all threads): on a machine other jobs load, the wall
    # time is mostly waiting for a core; the CPU time is the work each path does.
    cpu = lambda fn: (lambda c0: (fn(), time.process_time() - c0)[1])(time.process_time())
    cpp_cpu, py_cpu = _pair(lambda: cpu(lambda: kv._time_cpp_search(x, k, 1)), lambda: cpu(lambda: kv.search(x, k)),
                            reps)
    out.update(cpp_batch_q_per_cpu_s=n / cpp_cpu, py_batch_q_per_cpu_s=n / py_cpu, py_over_cpp_cpu=cpp_cpu / py_cpu)

    w1, w2 = "king", "queen"
    if w1 not in kv or w2 not in kv:
        w1, w2 = kv.index_to_key[100], kv.index_to_key[101]
    cpp_sim, py_sim = _pair(lambda: kv._time_cpp_similarity(w1, w2, calls),
                            lambda: _per_call(lambda: kv.similarity(w1, w2), calls, 1), reps)
    m = max(calls // 10, 1)
    cpp_ms, py_ms = _pair(lambda: kv._time_cpp_most_similar(w1, 10, m),
                          lambda: _per_call(lambda: kv.most_similar(w1, topn=10), m, 1), reps)
    # The same call over the first 1,000 words: a short C++ call, so the load's noise is small
    # beside the per-call overhead being measured.
    cpp_ms1k, py_ms1k = _pair(lambda: kv._time_cpp_most_similar(w1, 10, calls, 1000),
                              lambda: _per_call(lambda: kv.most_similar(w1, topn=10, restrict_vocab=1000), calls, 1),
                              reps)
    out.update(cpp_most_similar_1k_us=cpp_ms1k * 1e6, py_most_similar_1k_us=py_ms1k * 1e6,
               most_similar_1k_overhead_us=(py_ms1k - cpp_ms1k) * 1e6)
    # The binding's own time per call: the call's wall time minus the time the same call spent
    # inside C++ (each call timed alone; includes the perf_counter calls, ~0.1 us).
    sim_in = _binding_overhead(kv, lambda: kv.similarity(w1, w2), calls, reps)
    ms_in = _binding_overhead(kv, lambda: kv.most_similar(w1, topn=10), m, reps)
    out.update(similarity_binding_us=sim_in * 1e6, most_similar_binding_us=ms_in * 1e6)
    out.update(cpp_similarity_us=cpp_sim * 1e6, py_similarity_us=py_sim * 1e6,
               similarity_overhead_us=(py_sim - cpp_sim) * 1e6,
               cpp_most_similar_us=cpp_ms * 1e6, py_most_similar_us=py_ms * 1e6,
               most_similar_overhead_us=(py_ms - cpp_ms) * 1e6)

    if threads > 1:  # one object, several Python threads, each searching its share of the batch
        kv1 = igla.load(index, device=device, threads=1)  # one core per call: the threads add the cores
        parts = np.array_split(x, threads)

        def threaded():
            ts = [threading.Thread(target=kv1.search, args=(p, k)) for p in parts]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        one, many = _pair(lambda: _best(lambda: kv1.search(x, k), 1), lambda: _best(threaded, 1), reps)
        # CPU seconds per wall second of the process: ~1 for one thread, up to `threads` when the
        # threads really search at once (the GIL released), whatever else loads the machine.
        busy = []
        for fn in (lambda: kv1.search(x, k), threaded):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            busy.append((time.process_time() - c0) / (time.perf_counter() - w0))
        out.update(threads=threads, one_thread_qps=n / one, py_threads_qps=n / many,
                   one_thread_cpu_per_wall=busy[0], py_threads_cpu_per_wall=busy[1])

    try:
        from gensim.models import KeyedVectors as GensimKV
    except ImportError:
        out["gensim"] = None
    else:
        import gensim
        g = GensimKV(kv.vector_size)
        g.add_vectors(kv.index_to_key, np.asarray(kv.vectors))
        g.fill_norms()
        g.most_similar(w1, topn=10)
        g_ms = _per_call(lambda: g.most_similar(w1, topn=10), gensim_calls, reps)
        g_sim = _per_call(lambda: g.similarity(w1, w2), calls, reps)
        out.update(gensim=gensim.__version__, gensim_most_similar_us=g_ms * 1e6, gensim_similarity_us=g_sim * 1e6)
    return out


def report(r):
    lines = [
        f"igla.bench {r['date']}: {r['index']} ({r['words']} words x {r['dims']} dims, rerank {r['rerank']}, "
        f"candidates {r['candidates']}), {r['searcher']}, Python {r['python']}, numpy {r['numpy']}, "
        f"{r['cpus']} CPUs",
        f"batch of {r['n']} nearest (k={r['k']}):  C++ {r['cpp_batch_qps']:,.0f} q/s   kv.search "
        f"{r['py_batch_qps']:,.0f} q/s   = {100 * r['py_over_cpp']:.1f}% of C++",
        f"  per CPU second of the process: C++ {r['cpp_batch_q_per_cpu_s']:,.0f} q   kv.search "
        f"{r['py_batch_q_per_cpu_s']:,.0f} q   = {100 * r['py_over_cpp_cpu']:.1f}% of C++",
        f"similarity:        C++ {r['cpp_similarity_us']:8.2f} us   kv.similarity   {r['py_similarity_us']:8.2f} us"
        f"   overhead {r['similarity_overhead_us']:6.2f} us",
        f"most_similar(w):   C++ {r['cpp_most_similar_us']:8.2f} us   kv.most_similar {r['py_most_similar_us']:8.2f} us"
        f"   overhead {r['most_similar_overhead_us']:6.2f} us",
    ]
    lines.append(f"binding's own time per call (wall minus the same call's time inside C++, median): "
                 f"similarity {r['similarity_binding_us']:.2f} us, most_similar {r['most_similar_binding_us']:.2f} us")
    lines.append(f"most_similar(w, restrict_vocab=1000): C++ {r['cpp_most_similar_1k_us']:8.2f} us   kv.most_similar "
                 f"{r['py_most_similar_1k_us']:8.2f} us   overhead {r['most_similar_1k_overhead_us']:6.2f} us")
    if "threads" in r:
        lines.append(f"kv.search, threads=1 searcher: 1 Python thread {r['one_thread_qps']:,.0f} q/s "
                     f"({r['one_thread_cpu_per_wall']:.2f} CPU s per wall s), {r['threads']} Python threads "
                     f"{r['py_threads_qps']:,.0f} q/s ({r['py_threads_cpu_per_wall']:.2f} CPU s per wall s)")
    if r.get("gensim"):
        lines.append(f"gensim {r['gensim']} on the same vectors: most_similar {r['gensim_most_similar_us']:,.1f} us"
                     f" ({r['gensim_most_similar_us'] / r['py_most_similar_us']:.1f}x igla's),"
                     f" similarity {r['gensim_similarity_us']:.2f} us")
    else:
        lines.append("gensim: not installed (apt-get install python3-gensim)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m igla.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=None, help="a .igla file (default: igla.default_index_path())")
    ap.add_argument("-n", type=int, default=10_000, help="queries in the batch (default 10000)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5, help="best of this many repetitions")
    ap.add_argument("--calls", type=int, default=2000, help="one-query calls timed per repetition")
    ap.add_argument("--gensim-calls", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2, help="Python threads for the threaded search (<2: skip)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    a = ap.parse_args(argv)
    r = run(a.index, a.n, a.k, a.reps, a.calls, a.gensim_calls, a.threads, a.device)
    print(json.dumps(r, indent=1) if a.json else report(r))


if __name__ == "__main__":
    main()
