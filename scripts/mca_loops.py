#!/usr/bin/env python3
"""Prints the innermost loops of a GCC assembly file (-S output) that hold popcount work.

Usage: mca_loops.py FILE.s [FUNCTION_REGEX [POPCOUNT_REGEX]]
A loop is a label followed by straight-line code ending in a branch back to it (no other label
in between): the shape GCC gives a rolled inner loop. Lists every such loop in functions whose
demangled name matches FUNCTION_REGEX, with its instruction and popcount counts; with --emit N
prints the N-th one's body, ready for llvm-mca. Used by scripts/mca-model.sh.
"""
import re
import subprocess
import sys


def functions(lines):
    """(mangled name, [lines]) per function of the file."""
    out, name, body = [], None, []
    for ln in lines:
        m = re.match(r'^([A-Za-z_$][\w$.]*):', ln)
        if m and not m.group(1).startswith('.'):
            if name:
                out.append((name, body))
            name, body = m.group(1), []
        elif name:
            body.append(ln)
    if name:
        out.append((name, body))
    return out


def demangle(names):
    r = subprocess.run(['c++filt'], input='\n'.join(names), capture_output=True, text=True, check=True)
    return r.stdout.split('\n')


def loops(body):
    """Innermost single-block loops: (label, instruction lines)."""
    found = []
    label_at = {}
    for i, ln in enumerate(body):
        m = re.match(r'^(\.L\w+):', ln)
        if m:
            label_at[m.group(1)] = i
        parts = ln.split()
        if not parts or parts[0].startswith('.') or ln.startswith('\t.') or ':' in parts[0]:
            continue
        target = parts[-1].strip()
        if target in label_at and parts[0].startswith(('b', 'j')):
            start = label_at[target]
            inner = body[start + 1:i + 1]
            if any(re.match(r'^\.L\w+:', x) for x in inner):
                continue  # not a single block
            insns = [x for x in inner if x.strip() and not x.strip().startswith(('.', '#', '//', '@'))]
            found.append((target, insns))
    return found


def main():
    args = sys.argv[1:]
    emit = None
    if '--emit' in args:
        k = args.index('--emit')
        emit = int(args[k + 1])
        del args[k:k + 2]
    path = args[0]
    fre = re.compile(args[1] if len(args) > 1 else '.')
    pre = re.compile(args[2] if len(args) > 2 else r'^\s*(cnt|vpopcnt\w*|vpshufb|popcnt)\b')
    fns = functions(open(path).read().split('\n'))
    names = demangle([n for n, _ in fns])
    n = 0
    for (mangled, body), name in zip(fns, names):
        if not fre.search(name):
            continue
        for label, insns in loops(body):
            pops = sum(1 for x in insns if pre.match(x))
            if pops == 0:
                continue
            if emit is None:
                print(f'{n}: {len(insns)} insns, {pops} popcount ops, {label} in {name[:150]}')
            elif emit == n:
                print('\n'.join(insns))
                return
            n += 1
    if emit is not None:
        sys.exit(f'mca_loops.py: no loop {emit} in {path}')


if __name__ == '__main__':
    main()
