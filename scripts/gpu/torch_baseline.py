#!/usr/bin/env python3
"""torch fp16 matmul + topk on the data set igla_cuda_bench dumped (same vectors, same queries).

The baseline the issue names: unit-normalised fp16 vectors on the GPU, scores = Q @ V^T, then
torch.topk(k). Queries start on the host (pinned) and hits end on the host, as in igla's timing.
Batches whose score matrix would pass ~4 GiB are cut into row chunks (one matmul + topk each).

usage: torch_baseline.py DUMP NAME --batches 1,64,... --k 10 --out torch.tsv
"""
import argparse
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("name")
    ap.add_argument("--batches", default="1,64,1024,8192,65536")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--singles", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    raw = np.fromfile(a.dump, dtype=np.uint8)
    magic, n, dims, pool = np.frombuffer(raw[:32].tobytes(), dtype=np.uint64)
    n, dims, pool = int(n), int(dims), int(pool)
    trits = np.frombuffer(raw[32:32 + n * dims].tobytes(), dtype=np.int8).reshape(n, dims)
    ids = np.frombuffer(raw[32 + n * dims:32 + n * dims + 4 * pool].tobytes(), dtype=np.uint32).astype(np.int64)

    dev = torch.device("cuda")
    V = torch.from_numpy(trits.copy()).to(dev)
    nnz = (V != 0).sum(1).float()
    inv = torch.where(nnz > 0, nnz.rsqrt(), torch.zeros_like(nnz))
    Vn = (V.float() * inv[:, None]).half().contiguous()
    del V
    Qhost = Vn[torch.from_numpy(ids).to(dev)].cpu().pin_memory()
    VnT = Vn.t()
    k = a.k
    name = torch.cuda.get_device_name(0)
    rows = []

    def emit(batch, qps, med, note):
        line = f"torch\t{a.name}\t{n}\t{dims}\t{k}\tfp16\t{batch}\t{qps:.1f}\t{med * 1e3:.3f}\t{note}"
        print(line, flush=True)
        rows.append(line)

    chunk_rows = max(1, min(65536, (4 << 30) // (2 * n)))

    def search(q_host):
        out_v, out_i = [], []
        for s in range(0, q_host.shape[0], chunk_rows):
            q = q_host[s:s + chunk_rows].to(dev, non_blocking=True)
            v, i = torch.topk(q @ VnT, k, dim=1)
            out_v.append(v.cpu())
            out_i.append(i.cpu())
        return out_v, out_i

    print(f"# torch {torch.__version__} on {name}: {n} x {dims}, fp16, k={k}, row chunk {chunk_rows}", flush=True)
    for B in [int(x) for x in a.batches.split(",")]:
        if B == 1:
            m = min(a.singles, pool)
            for i in range(50):
                search(Qhost[i:i + 1])
            torch.cuda.synchronize()
            lat = []
            t0 = time.perf_counter()
            for i in range(m):
                c0 = time.perf_counter()
                search(Qhost[i:i + 1])
                lat.append(time.perf_counter() - c0)
            el = time.perf_counter() - t0
            lat.sort()
            emit(1, m / el, el / m, f"sequential; p50 {lat[len(lat) // 2] * 1e6:.1f} us")
            continue
        q = Qhost[:B]
        search(q)
        torch.cuda.synchronize()
        ts = []
        t0 = time.perf_counter()
        while len(ts) < 3 or (time.perf_counter() - t0 < a.seconds and len(ts) < 100):
            c0 = time.perf_counter()
            search(q)
            ts.append(time.perf_counter() - c0)
        ts.sort()
        med = ts[len(ts) // 2]
        emit(B, B / med, med, f"median of {len(ts)}")
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
