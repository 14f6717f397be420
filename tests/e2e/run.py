#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests: guests compiled in this run, executed under QEMU with
callstack_instr and the calltrace consumer, compared with uftrace (native run
of the same -pg binary, per thread) and with native GDB backtraces.

Tests live in this file and in test_*.py beside it (each decorates its
tests with harness.test). Usage: run.py [SUBSTRING]...  Prints PASS/FAIL per
test and a summary."""
import importlib
import glob
import os
import shutil
import sys

from harness import (CALLTRACE, PLUGIN, TESTS, WORK, Failure, check_against_uftrace, run_tests,
                     check_callers_against_gdb, guest, own_prefix, plugin_streams, qemu, run,
                     run_plugin, test, uftrace_streams, compare_streams)


# ---- call/return sequences against uftrace --------------------------------------

@test
def recursion_pointers_qsort_vs_uftrace():
    g = guest("recursion.c")
    events, got, _, _ = check_against_uftrace(g, keep_unwound=False)
    names = {g.name_of(f) for s in got.values() for _, f in s}
    for n in ("deep", "is_even", "is_odd", "twice", "square", "negate", "cmp_int", "fib"):
        if n not in names:
            raise Failure("no events for %s" % n)
    if any(e.unwound for e in events if e.func in g.own):
        raise Failure("unwound frames in a program without non-local exits")


# Optimised, position-independent builds (sibling calls off: a tail call is
# a jump, which neither the plugin nor the real stack sees as a call, while
# uftrace's entry hook does).
O2 = ("-O2", "-pg", "-fno-optimize-sibling-calls")


@test
def recursion_O2_pie_vs_uftrace():
    check_against_uftrace(guest("recursion.c", flags=O2, pie=True), keep_unwound=False)


@test
def threads_O2_pie_vs_uftrace():
    check_against_uftrace(guest("threads.c", flags=O2, pie=True), keep_unwound=False)


@test
def cxx_exception_O2_pie_vs_uftrace():
    check_against_uftrace(guest("exception.cpp", flags=O2, pie=True), keep_unwound=True)


@test
def longjmp_O2_pie_vs_uftrace():
    check_against_uftrace(guest("longjmp.c", flags=O2, pie=True), keep_unwound=False)


@test
def callers_O2_pie_vs_gdb():
    check_callers_against_gdb(guest("recursion.c", flags=O2, pie=True), "checkpoint")


@test
def longjmp_vs_uftrace():
    g = guest("longjmp.c")
    events, _, _, _ = check_against_uftrace(g, keep_unwound=False)
    dive = g.addr("dive")
    unwound = [e for e in events if e.unwound and e.func == dive]
    if len(unwound) != 2 * 26:
        raise Failure("expected the 26 abandoned dive frames of each longjmp to be unwound, got %d"
                      % len(unwound))


@test
def cxx_exception_vs_uftrace():
    # uftrace reports the frames an exception unwinds as exits at the catch;
    # the plugin reports them as unwound returns at the same point.
    g = guest("exception.cpp")
    check_against_uftrace(g, keep_unwound=True)


@test
def threads_vs_uftrace():
    g = guest("threads.c")
    events, got, ref, _ = check_against_uftrace(g, keep_unwound=False)
    if len(ref) != 5 or len(got) != 5:
        raise Failure("expected 5 threads, reference has %d, plugin %d" % (len(ref), len(got)))


@test
def fork_threaded_vs_uftrace():
    g = guest("fork.c")
    events, got, _, summaries = check_against_uftrace(g, keep_unwound=False)
    if len([s for s in summaries if s.startswith("# summary")]) != 2:
        raise Failure("expected a summary from each process, got %r" % summaries)


@test
def fork_asid_separate_stacks():
    g = guest("fork.c")
    events, _, _, _, _ = run_plugin(g, plugin_args="stack_type=asid", tag="-asid")
    sids = {e.sid for e in events}
    if len(sids) != 2 or not all(s.startswith("(asid=0x") for s in sids):
        raise Failure("expected two asid stacks (parent, child), got %r" % sids)
    child_work, parent_work = g.addr("child_work"), g.addr("parent_work")
    by_sid = {s: {e.func for e in events if e.sid == s} for s in sids}
    child = [s for s in sids if child_work in by_sid[s]]
    parent = [s for s in sids if parent_work in by_sid[s]]
    if len(child) != 1 or len(parent) != 1 or child == parent:
        raise Failure("child_work and parent_work must be on different stacks: %r" % by_sid)
    got = plugin_streams(g, events, keep_unwound=False)
    compare_streams(g, uftrace_streams(g), got)


@test
def consumer_before_and_after_plugin():
    g = guest("recursion.c")
    copy = os.path.join(WORK, "libcalltrace-second.so")
    shutil.copy(CALLTRACE, copy)
    a, b = os.path.join(WORK, "first.trace"), os.path.join(WORK, "second.trace")
    run([qemu(), "-plugin", CALLTRACE + ",out=" + a, "-plugin", PLUGIN,
         "-plugin", copy + ",out=" + b, g.binary], cwd=WORK)
    la = [l for l in open(a) if not l.startswith("#")]
    lb = [l for l in open(b) if not l.startswith("#")]
    if not la or la != lb:
        raise Failure("consumers before (%d lines) and after (%d lines) saw different events"
                      % (len(la), len(lb)))


# ---- stacks against GDB ---------------------------------------------------------

@test
def callers_at_deep_recursion_vs_gdb():
    g = guest("recursion.c")
    got = check_callers_against_gdb(g, "checkpoint")[0][2]
    if len(own_prefix(g, got)) < 300:
        raise Failure("expected >= 300 own frames, got %d" % len(own_prefix(g, got)))


@test
def callers_after_longjmp_vs_gdb():
    check_callers_against_gdb(guest("longjmp.c"), "after")


@test
def callers_after_exception_vs_gdb():
    check_callers_against_gdb(guest("exception.cpp"), "checkpoint")


@test
def callers_in_thread_vs_gdb():
    check_callers_against_gdb(guest("threads.c"), "mid_d")


# ---- arguments -------------------------------------------------------------------

BAD_ARGS = [
    ("stack_type=bogus", ["stack_type", "asid", "threaded"]),
    ("stack_distance=5", ["stack_distance"]),
    ("max_stacks=0", ["max_stacks"]),
    ("max_depth=0x", ["max_depth"]),
    ("verbose=maybe", ["verbose", "on", "off"]),
    ("frobnicate=1", ["frobnicate", "stack_type"]),
    ("stack_type=", ["stack_type", "asid"]),
    ("max_depth=-5", ["max_depth"]),
    ("max_depth=1", ["max_depth"]),
    ("max_depth=abc", ["max_depth"]),
]


@test
def bad_arguments_are_refused():
    g = guest("recursion.c")
    for arg, words in BAD_ARGS:
        p = run([qemu(), "-plugin", PLUGIN + "," + arg, g.binary], check=False, cwd=WORK)
        if p.returncode == 0:
            raise Failure("%s: QEMU ran (exit 0)" % arg)
        first = [l for l in p.stderr.splitlines() if l.startswith("callstack_instr:")]
        if not first or not all(w in first[0] for w in words):
            raise Failure("%s: message %r lacks %r" % (arg, first, words))


@test
def calltrace_without_callstack_instr_fails_clearly():
    g = guest("recursion.c")
    p = run([qemu(), "-plugin", CALLTRACE, g.binary], check=False, cwd=WORK)
    if p.returncode == 0 or "callstack_instr is not loaded" not in p.stderr:
        raise Failure("exit %d, stderr %r" % (p.returncode, p.stderr[-500:]))


@test
def calltrace_bad_argument():
    g = guest("recursion.c")
    p = run([qemu(), "-plugin", PLUGIN, "-plugin", CALLTRACE + ",bogus=1", g.binary],
            check=False, cwd=WORK)
    if p.returncode == 0 or "unknown argument 'bogus=1'" not in p.stderr or "out=PATH" not in p.stderr:
        raise Failure("exit %d, stderr %r" % (p.returncode, p.stderr[-500:]))


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    filters = [a for a in argv[1:] if not a.startswith("-")]
    passed, failed = run_tests(TESTS, filters, "e2e")
    if not os.environ.get("KEEP_WORK"):
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("work dir kept: %s" % WORK)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
