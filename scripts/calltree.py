#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Prints calltrace output as an indented call tree of one binary's
functions. A trace written with names=on carries the plugin's own names
(callstack_instr_symbolize) and modules; otherwise the functions of the
binary (non-PIE, or PIE at qemu-user's x86_64 base) are named with `nm`.

Usage: calltree.py TRACE BINARY [--all]   (--all: keep library functions)"""
import bisect
import os
import subprocess
import sys


def symbols(binary):
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "TtWw":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
    pie = subprocess.run(["readelf", "-h", binary], capture_output=True, text=True).stdout
    base = 0x4000000000 if "DYN (" in pie else 0
    return sorted((a + base, s, n) for a, s, n in syms)


def main(argv):
    trace, binary = argv[1], argv[2]
    keep_all = "--all" in argv
    syms = symbols(binary)
    starts = [s[0] for s in syms]

    def name(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < syms[i][0] + max(syms[i][1], 1):
            off = addr - syms[i][0]
            return syms[i][2] + ("+0x%x" % off if off else "")
        return None

    base_depth = {}
    for line in open(trace):
        if line.startswith("#"):
            print(line.rstrip())
            continue
        f = line.rstrip("\n").split("\t")
        if f[0] not in ("call", "ret"):
            continue
        sid, depth, func = f[1], int(f[2]), int(f[3], 16)
        if len(f) >= 8:
            # names=on: the plugin's name and module
            n = f[6] if keep_all or f[7] == os.path.realpath(binary) else None
        else:
            n = name(func)
        if n is None and not keep_all:
            continue
        n = n or "0x%x" % func
        d = depth if f[0] == "ret" else depth - 1
        base = base_depth.setdefault(sid, d)
        indent = "  " * max(d - base, 0)
        if f[0] == "call":
            print("%s%s {" % (indent, n))
        else:
            print("%s} %s%s" % (indent, n, " (unwound)" if f[5] == "unwound" else ""))


if __name__ == "__main__":
    main(sys.argv)
