# SPDX-License-Identifier: GPL-2.0-or-later
"""The hot path changes speed, not results: registers read from
QEMU's CPU state at learnt offsets, guest memory read directly, lock-free
stacks. Reference: the same guest under the same QEMU with fast_regs=off,
where every register goes through qemu_plugin_read_register (an independent
mechanism: the gdbstub). Event streams must be
identical (every call and return, by function name and module, with its
depth and unwound flag), and the fast run must really have used the fast
path."""
import os
import re

from harness import WORK, Failure, guest, parse_named_trace, run_calltraces, test

DIRECT = re.compile(r"registers read directly: (\d+), through QEMU: (\d+)")


def streams_by_stack(events, own_only):
    """Per stack, in order of first appearance: (kind, depth, unwound, name,
    module) tuples. Names, not addresses: QEMU may map the guest's libraries
    elsewhere from one run to the next (the plugins' own allocations move
    its mmap hints). Stack ids hold thread ids, which differ between runs.
    own_only: only the guest binary's functions, without depth (threads make
    library internals, e.g. futex paths, differ between runs)."""
    streams = {}
    for e in events:
        module = os.path.basename(e.module)
        if own_only:
            if not module.startswith("fastpath-"):
                continue
            key = (e.kind, e.unwound, e.name)
        else:
            key = (e.kind, e.depth, e.unwound, e.name, module)
        streams.setdefault(e.sid, []).append(key)
    return list(streams.values())


def direct_reads(p):
    m = DIRECT.search(p.stderr)
    if not m:
        raise Failure("no register statistics in verbose output:\n%s" % p.stderr[-1000:])
    return int(m.group(1))


def compare_modes(g, mode, threads=False):
    # A copy named for this test, so that its frames are recognisable by module.
    binary = os.path.join(WORK, "fastpath-" + os.path.basename(g.binary))
    if not os.path.exists(binary):
        with open(g.binary, "rb") as src, open(binary, "wb") as dst:
            dst.write(src.read())
        os.chmod(binary, 0o755)
    runs = {}
    for fast in ("on", "off"):
        trace = os.path.join(WORK, "fastpath-%s-%s-%s.tsv" % (os.path.basename(g.binary), mode, fast))
        p = run_calltraces(binary, ["out=%s,names=on" % trace],
                           plugin_args="verbose=on,stack_type=%s,fast_regs=%s" % (mode, fast))
        runs[fast] = (parse_named_trace(trace), direct_reads(p))
    (ev_on, n_on), (ev_off, n_off) = runs["on"], runs["off"]
    if n_on < 1:
        raise Failure("%s: fast_regs=on read no register directly" % mode)
    if n_off != 0:
        raise Failure("%s: fast_regs=off read %d registers directly" % (mode, n_off))
    if not ev_on:
        raise Failure("%s: no events" % mode)
    a, b = streams_by_stack(ev_on, threads), streams_by_stack(ev_off, threads)
    if threads:
        # Thread ids and start order vary: compare the set of per-thread streams.
        a, b = sorted(a), sorted(b)
    if not any(a):
        raise Failure("%s: no events of the guest's own functions" % mode)
    if a != b:
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                j = next((k for k, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
                raise Failure("%s: stack %d differs at event %d of %d/%d: fast %r, API %r" % (
                    mode, i, j, len(x), len(y), x[j] if j < len(x) else None,
                    y[j] if j < len(y) else None))
        raise Failure("%s: %d stacks with the fast path, %d without" % (mode, len(a), len(b)))


@test
def fast_path_equals_api_path_recursion_pointers():
    # No -pg: gprof's SIGPROF handler would run at timer-dependent points.
    g = guest("recursion.c", flags=("-O0",))
    for mode in ("threaded", "asid", "heuristic"):
        compare_modes(g, mode)


@test
def fast_path_equals_api_path_longjmp_signals():
    g = guest("unwind.c", flags=("-O0",))
    for mode in ("threaded", "heuristic"):
        compare_modes(g, mode)


@test
def fast_path_equals_api_path_cxx_exception():
    g = guest("exception.cpp", flags=("-O2", "-fno-optimize-sibling-calls"), pie=True)
    compare_modes(g, "threaded")


@test
def fast_path_equals_api_path_calls_through_memory():
    # Virtual calls and function tables: their callback is the load's
    # (csi_fastpath_call_loaded), on the fast lane and on the event path.
    g = guest("dispatch.cpp", flags=("-O2", "-fno-optimize-sibling-calls"), pie=True)
    for mode in ("threaded", "heuristic"):
        compare_modes(g, mode)


@test
def fast_path_equals_api_path_threads():
    g = guest("threads.c", flags=("-O2", "-fno-optimize-sibling-calls"), pie=True)
    for mode in ("threaded", "heuristic"):
        compare_modes(g, mode, threads=True)
