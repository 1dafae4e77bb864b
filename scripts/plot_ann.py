#!/usr/bin/python3
"""Recall@10 vs queries per second from `igla bench-ann --csv FILE` (Debian python3-matplotlib).

Usage: scripts/plot_ann.py ann_bench.csv docs/ann_recall_qps.png [--set vocabulary]
One panel per mode (batched on all threads, one query at a time); one line per method and build
setting, points along its nprobe / ef sweep; recall against the exact float32 truth.
"""
import argparse
import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series_key(method, params):
    # igla ivf rows sweep nprobe (graph rows: ef) at fixed candidates: one line per c=...
    if method in ("igla ivf", "igla ivf-int8") or method.startswith("igla graph"):
        return f"{method} ({params.split()[-1]})"
    return method


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("png")
    ap.add_argument("--set", default="vocabulary", help="query set: vocabulary or held-out")
    a = ap.parse_args()
    rows = [r for r in csv.DictReader(open(a.csv)) if r["set"] == a.set]
    if not rows:
        raise SystemExit(f"{a.csv}: no rows for query set {a.set!r}")
    modes = sorted({r["mode"] for r in rows}, key=lambda m: m != "one query")
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        lines = defaultdict(list)
        for r in rows:
            if r["mode"] == mode:
                lines[series_key(r["method"], r["params"])].append((float(r["recall_float"]), float(r["qps"])))
        for name, pts in sorted(lines.items()):
            pts.sort()
            style = "o-" if name.startswith("igla") else "s--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name, markersize=4)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 (truth: exact float32 cosine)")
        ax.set_ylabel("queries per second")
        ax.set_title(f"{a.set} queries, {mode}")
        ax.axvline(0.95, color="grey", lw=0.8, ls=":")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(rows[0]["data"], fontsize=9)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(f"wrote {a.png}")


if __name__ == "__main__":
    main()
