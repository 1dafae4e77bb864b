#!/usr/bin/env python3
"""Prints the final table of scripts/gpu/run_all.sh from the igla and torch TSV rows."""
import sys
from collections import defaultdict


def read(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) >= 10:
                    rows.append(p)
    except FileNotFoundError:
        pass
    return rows


def fmt_qps(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} K"
    return f"{x:.0f}"


def main():
    igla = read(sys.argv[1])
    torch = read(sys.argv[2]) if len(sys.argv) > 2 else []
    header = sys.argv[3] if len(sys.argv) > 3 else ""
    best = {}
    paths = defaultdict(dict)
    notes = {}
    order = []
    for who, name, n, dims, k, path, batch, qps, med, note in igla:
        key = (name, int(batch))
        if key not in order:
            order.append(key)
        paths[key][path] = float(qps)
        if path == "auto":
            best[key] = float(qps)
            notes[key] = note
    tq = {}
    tnote = {}
    for who, name, n, dims, k, kind, batch, qps, med, note in torch:
        tq[(name, int(batch))] = float(qps)
        tnote[(name, int(batch))] = note
    sizes = {}
    for r in igla:
        sizes[r[1]] = f"{int(r[2]):,} x {r[3]}"
    if header:
        print(header)
        print()
    print("| data | batch | igla cuda q/s | torch fp16 q/s | igla / torch | mma q/s | popc q/s | notes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for key in order:
        name, batch = key
        i = best.get(key)
        t = tq.get(key)
        ratio = f"{i / t:.1f}x" if i and t else "-"
        p = paths[key]
        note = notes.get(key, "")
        if batch == 1 and key in tnote:
            note += f"; torch {tnote[key]}"
        print(f"| {name} ({sizes.get(name, '')}) | {batch} | {fmt_qps(i)} | {fmt_qps(t)} | {ratio} | "
              f"{fmt_qps(p.get('mma'))} | {fmt_qps(p.get('popc'))} | {note} |")


if __name__ == "__main__":
    main()
