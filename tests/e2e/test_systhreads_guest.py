# SPDX-License-Identifier: GPL-2.0-or-later
"""The threaded whole-system guest (tests/guests/systhreads.c, booted with
systhreads=1 by tests/e2e/sysguest.py) does what the threaded-stack tests
rely on: under callstack_instr's asid stacks (one per process), each
process's four threads make exactly the calls they count themselves, their
functions are where nm says, and their calls interleave (threads run at
once, -smp 2) rather than one thread after another.

References: what each thread prints about itself, and nm of the binary.
"""
import os

from harness import CALLTRACE, PLUGIN, WORK, Failure, nm_defined_text, parse_trace, test
from sysguest import boot_threads, guest_dir

ROLES = ("main", "t1", "t2", "t3")
LEVELS = ("work", "level1", "level2", "leaf")


def check_guest(arch):
    syms = {name: addr for addr, _, name in nm_defined_text(os.path.join(guest_dir(arch), "systhreads"))}
    own = {syms["%s_%s" % (r, l)]: r for r in ROLES for l in LEVELS}
    lo, hi = min(own), max(own) + 0x1000
    trace = os.path.join(WORK, "systhreads-%s.trace" % arch)
    t = boot_threads(arch, [PLUGIN, "%s,out=%s,only=%#x-%#x" % (CALLTRACE, trace, lo, hi)], smp=2)
    for (ident, role), th in t.threads.items():
        if th["func"] != syms[role + "_work"] or th["leaf"] != syms[role + "_leaf"]:
            raise Failure("%s: copy %d %s: func %#x leaf %#x, nm %#x %#x" % (
                arch, ident, role, th["func"], th["leaf"], syms[role + "_work"], syms[role + "_leaf"]))
    events, _, _, _ = parse_trace(trace)
    per_stack = {}
    for e in events:
        if e.kind == "call" and e.func in own:
            per_stack.setdefault(e.sid, []).append(own[e.func])
    # one stack per process: each holds its four roles' calls, as counted
    counts = sorted(sorted((r, seq.count(r)) for r in set(seq)) for seq in per_stack.values())
    want = sorted(sorted((r, t.threads[(i, r)]["calls"]) for r in ROLES) for i in (1, 2))
    if counts != want:
        raise Failure("%s: calls per process and role %s, the threads counted %s" % (arch, counts, want))
    switches = sum(sum(1 for a, b in zip(seq, seq[1:]) if a != b) for seq in per_stack.values())
    print("  %s: %d calls in %d processes, %d switches between threads' calls" % (
        arch, sum(map(len, per_stack.values())), len(per_stack), switches))
    if switches < 50:
        raise Failure("%s: only %d switches between threads: they did not run at once" % (arch, switches))


@test
def systhreads_guest_x86_64():
    check_guest("x86_64")


@test
def systhreads_guest_aarch64():
    check_guest("aarch64")
