#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""No circle of calls between the files of src/: for the object files of
the plugin's build, an edge A -> B when A.o uses a function B.o defines
(nm), then every strongly connected component of more than one file is a
circle. Usage: check_circles.py BUILD_DIR. Prints each circle; the last
line is "N passed, N failed" (one check)."""
import collections
import glob
import os
import re
import subprocess
import sys


def objects(build):
    """src file name -> its object in the plugin's build (one build per file)."""
    out = {}
    for o in sorted(glob.glob(os.path.join(build, "*.p", "*.o"))):
        m = re.match(r"src_((?:engine|qemu|arch|symbols|options)_\w+)\.c\.o$", os.path.basename(o))
        if m:
            out.setdefault(m.group(1).replace("_", "/", 1) + ".c", o)
    return out


def symbols(obj):
    defined, used = set(), set()
    for line in subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] == "T":
            defined.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            used.add(f[1])
    return defined, used


def sccs(nodes, edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(build):
    objs = objects(build)
    if len(objs) < 10:
        print("found only %d object files of src/ in %s" % (len(objs), build))
        print("0 passed, 1 failed")
        return 1
    syms = {f: symbols(o) for f, o in objs.items()}
    owner = {s: f for f, (d, _) in syms.items() for s in d}
    edges = collections.defaultdict(set)
    for f, (_, used) in syms.items():
        for s in used:
            if s in owner and owner[s] != f:
                edges[f].add(owner[s])
    circles = [sorted(c) for c in sccs(sorted(objs), edges) if len(c) > 1]
    for c in circles:
        print("circle: " + " <-> ".join(c))
    print("%d files of src/, %d call edges between them" % (len(objs), sum(map(len, edges.values()))))
    print("%d passed, %d failed" % (0 if circles else 1, 1 if circles else 0))
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
