# SPDX-License-Identifier: GPL-2.0-or-later
"""Lazy returns (returns=lazy, the default where possible): while no plugin
subscribes to events, return instructions get no callback, only an inline
count, and the stacks are read through the query API alone. Reference: the
same guest run with returns=all, where every return is reported as it
happens. A query-only consumer (tests/plugins/querier.c) asks get_callers,
get_functions, get_stack_depth, get_prog_point and pandalog_callstack_create
at every Nth executed block; both runs must give the same answers at the
same blocks. Host address-space randomisation is turned off (setarch -R) so
that the guest's libraries land at the same addresses in both runs; the
stack id holds the guest's pid, so it is compared by shape only."""
import os
import re

from harness import BUILD, CALLTRACE, PLUGIN, WORK, Failure, guest, qemu, run, test

QUERIER = os.path.join(BUILD, "tests", "plugins", "libtest_querier.so")
STATS = re.compile(r"(\d+) calls, (\d+) returns, (\d+) unwound, (\d+) unmatched returns "
                   r"\((\d+) returns counted")
NOPG = ("-O2",)


def run_querier(g, returns, tag, querier_args, plugin_args="", args=(), arch="x86_64"):
    out = os.path.join(WORK, "lazy-%s-%s-%s.txt" % (g.name, tag, returns))
    cs = PLUGIN + ",verbose=on,returns=" + returns + ("," + plugin_args if plugin_args else "")
    root = ["-L", "/usr/" + g.cross] if g.cross else []
    p = run(["setarch", "-R", qemu(arch)] + root + ["-plugin", cs,
             "-plugin", QUERIER + ",out=" + out + "," + querier_args, g.binary] + list(args))
    m = STATS.search(p.stderr)
    if not m:
        raise Failure("no statistics in verbose output:\n%s" % p.stderr[-1500:])
    with open(out) as f:
        lines = [l.rstrip("\n").split("\t") for l in f]
    return lines, [int(x) for x in m.groups()], p.stderr


def without_pid(lines):
    """Sample lines with the stack id replaced by a marker of its shape."""
    out = []
    for l in lines:
        if l[0] == "S":
            l = l[:7] + ["sid"] + l[8:]
        out.append(l)
    return out


def compare(g, tag, querier_args, plugin_args="", args=(), min_depth=3, arch="x86_64"):
    lazy, st_lazy, err_lazy = run_querier(g, "lazy", tag, querier_args, plugin_args, args, arch)
    full, st_full, _ = run_querier(g, "all", tag, querier_args, plugin_args, args, arch)
    if "counted while nobody subscribes" not in err_lazy:
        raise Failure("%s: returns=lazy not in effect:\n%s" % (tag, err_lazy[:1500]))
    if st_lazy[4] == 0:
        raise Failure("%s: returns=lazy counted no return (stats %s)" % (tag, st_lazy))
    if st_full[4] != 0:
        raise Failure("%s: returns=all counted %d returns" % (tag, st_full[4]))
    samples = [l for l in full if l[0] == "S"]
    if len(samples) < 200:
        raise Failure("%s: only %d samples" % (tag, len(samples)))
    if max(int(l[3]) for l in samples) < min_depth:
        raise Failure("%s: samples never deeper than %d" % (tag, max(int(l[3]) for l in samples)))
    a, b = without_pid(lazy), without_pid(full)
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            raise Failure("%s: line %d differs:\n  lazy: %s\n  full: %s" % (
                tag, i + 1, "\t".join(x), "\t".join(y)))
    if len(a) != len(b):
        raise Failure("%s: %d lines lazy, %d with returns=all" % (tag, len(a), len(b)))
    # Counted and reported returns pop the same frames: the same totals of
    # calls and of returns plus unwound frames.
    if st_lazy[0] != st_full[0] or st_lazy[1] + st_lazy[2] != st_full[1] + st_full[2]:
        raise Failure("%s: statistics lazy %s, full %s" % (tag, st_lazy, st_full))
    return lazy, full


@test
def lazy_recursion_queries_equal_full():
    # (no -pg: its profiling timer's signals land at different blocks from
    # run to run)
    compare(guest("recursion.c", flags=("-O0",)), "rec-o0", "every=5")


@test
def lazy_optimised_queries_equal_full():
    # -O2: tail calls, leaf functions without frames, pushes between calls.
    compare(guest("recursion.c", flags=NOPG), "rec-o2", "every=3", min_depth=10)


@test
def lazy_nonlocal_exits_queries_equal_full():
    # longjmp and siglongjmp out of deep recursion, a signal handler that
    # longjmps: frames abandoned without a return.
    compare(guest("longjmp.c", flags=NOPG), "longjmp", "every=3")
    compare(guest("unwind.c", flags=NOPG), "unwind", "every=5")


@test
def lazy_exception_queries_equal_full():
    # A C++ exception: the unwinder's return lands in a landing pad.
    compare(guest("exception.cpp", flags=NOPG), "exception", "every=3")


@test
def lazy_heuristic_queries_equal_full():
    compare(guest("recursion.c", flags=NOPG), "rec-heur", "every=3", plugin_args="stack_type=heuristic",
            min_depth=10)
    compare(guest("longjmp.c", flags=NOPG), "longjmp-heur", "every=3",
            plugin_args="stack_type=heuristic")


@test
def lazy_other_architectures_queries_equal_full():
    """i386 PIE code calls __x86.get_pc_thunk and moves sp below the
    returned frame before the next call (why returns are counted, not
    inferred from sp); Thumb-2 has conditional returns (which keep their
    callback) and pop {pc}; AArch64, RISC-V and ppc64le return through a
    link register, so a returned frame's sp equals the caller's."""
    for arch, triple, pie in (("i386", "i686-linux-gnu", True), ("arm", "arm-linux-gnueabihf", False),
                              ("aarch64", "aarch64-linux-gnu", False),
                              ("riscv64", "riscv64-linux-gnu", False),
                              ("ppc64le", "powerpc64le-linux-gnu", False)):
        g = guest("recursion.c", flags=NOPG, cross=triple, pie=pie)
        compare(g, "arch-" + arch, "every=3", arch=arch, min_depth=10)


@test
def lazy_late_subscriber_events_equal_full():
    """The consumer subscribes to on_event after its 300th sample: lazy
    returns end (every block is retranslated) and the events from then on,
    and the samples before and after, equal those of the run where returns
    were reported all along."""
    for src, flags in (("recursion.c", NOPG), ("exception.cpp", NOPG)):
        g = guest(src, flags=flags)
        lazy, full = compare(g, "late-" + src, "every=3,after=300")
        events = [l for l in full if l[0] == "E"]
        if len(events) < 100 or not any(l[1] == "ret" for l in events):
            raise Failure("%s: %d events after the subscription" % (src, len(events)))
        n = next(i for i, l in enumerate(lazy) if l[0] == "E")
        if n < 300:
            raise Failure("%s: an event before the subscription, after sample %d" % (src, n))


@test
def lazy_not_where_threads_share_a_stack():
    """asid stacks are shared by a process's threads: every return is
    reported there whatever returns= says."""
    g = guest("recursion.c", flags=NOPG)
    _, st, err = run_querier(g, "lazy", "asid", "every=50", plugin_args="stack_type=asid")
    if "returns reported" not in err or st[4] != 0:
        raise Failure("asid: lazy returns in effect (%s)" % st)


@test
def lazy_bad_argument():
    g = guest("recursion.c", flags=NOPG)
    p = run([qemu(), "-plugin", PLUGIN + ",returns=sometimes", g.binary], check=False)
    # (QEMU adds its own line: could not load the plugin)
    lines = [l for l in p.stderr.splitlines() if l.startswith("callstack_instr")]
    if p.returncode == 0 or len(lines) != 1 or "returns" not in lines[0] or "lazy" not in lines[0]:
        raise Failure("returns=sometimes: exit %d, stderr %r" % (p.returncode, p.stderr))


@test
def lazy_folded_equals_full():
    """calltrace's folded format hears calls only (through frame words), so
    returns stay lazy under it: counted returns are popped just before each
    call, which is all a call path needs. Its output must equal the one with
    every return reported, on deep recursion, longjmp out of it, signal
    handlers that longjmp, and a C++ exception."""
    for src, flags in (("recursion.c", NOPG), ("longjmp.c", NOPG), ("unwind.c", NOPG),
                       ("exception.cpp", NOPG)):
        g = guest(src, flags=flags)
        outs = []
        for returns in ("lazy", "all"):
            out = os.path.join(WORK, "lazy-folded-%s-%s.txt" % (g.name, returns))
            p = run(["setarch", "-R", qemu(), "-plugin", PLUGIN + ",verbose=on,returns=" + returns,
                     "-plugin", "%s,format=folded,out=%s" % (CALLTRACE, out), g.binary])
            m = STATS.search(p.stderr)
            if not m:
                raise Failure("%s: no statistics in verbose output:\n%s" % (src, p.stderr[-1500:]))
            counted = int(m.group(5))
            if (returns == "lazy") != (counted > 0):
                raise Failure("%s: returns=%s counted %d returns" % (src, returns, counted))
            with open(out) as f:
                outs.append(f.read())
        if not outs[1].strip() or outs[0] != outs[1]:
            a, b = outs[0].splitlines(), outs[1].splitlines()
            diff = next((i for i, (x, y) in enumerate(zip(a + [""], b + [""])) if x != y), None)
            raise Failure("%s: folded output differs with lazy returns at line %s of %d/%d" % (
                src, diff, len(a), len(b)))
