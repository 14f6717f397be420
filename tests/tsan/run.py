#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The thread-sanitizer runs (scripts/tsan.sh sets the environment up):
the TSan-instrumented plugins (CALLSTACK_BUILD=build-tsan) in an
uninstrumented QEMU whose binaries in $QEMU_PREFIX/bin are wrappers that
preload the TSan runtime and write its reports to $CSI_TSAN_LOG.PID.

A test passes when TSan reports nothing and the run's results still hold
against references independent of the plugin: what the guest prints about
itself (thread ids and how many calls each thread made), the program's
source-level call pattern, and test_system.py's checks of a whole-system
boot. Usage: run.py [SUBSTRING]...; prints PASS/FAIL per test and
"N passed, N failed"."""
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from harness import (BUILD, CALLTRACE, PLUGIN, WORK, Failure, guest, parse_trace, qemu,  # noqa: E402
                     run, run_tests, thread_of)

APIREADER = os.path.join(BUILD, "tests", "plugins", "libtest_apireader.so")
NOPG = ("-O0",)
TESTS = []
SLOW = set()   # run only when named (a substring of the name) or with CALLSTACK_TSAN_ALL=1


def test(fn):
    TESTS.append(fn)
    return fn


def slow(fn):
    SLOW.add(fn)
    return fn


def tsan_logs(tag):
    """A fresh log prefix for the wrappers; returns a function that raises
    Failure with the first report if TSan wrote any."""
    prefix = os.path.join(WORK, "tsan-" + tag)
    for f in glob.glob(prefix + ".*"):
        os.unlink(f)
    os.environ["CSI_TSAN_LOG"] = prefix

    def check():
        reports = []
        for f in sorted(glob.glob(prefix + ".*")):
            text = open(f, errors="replace").read()
            reports += [r for r in text.split("==================") if "ThreadSanitizer" in r]
        if reports:
            summaries = collections.Counter(l for r in reports for l in r.splitlines()
                                            if l.startswith("SUMMARY:"))
            raise Failure("%d ThreadSanitizer reports:\n%s\nfirst:\n%s" % (
                len(reports), "\n".join("%5d %s" % (n, s) for s, n in summaries.most_common()),
                reports[0].strip()[:6000]))
    return check


def run_tsan(tag, cmd, timeout=900, **kw):
    """Runs cmd (through the wrappers); TSan's reports fail the test first."""
    check = tsan_logs(tag)
    try:
        p = run(cmd, timeout=timeout, check=False, cwd=WORK, **kw)
    finally:
        check()
    if p.returncode != 0:
        raise Failure("%s exited %d:\n%s" % (" ".join(cmd[:3]), p.returncode, p.stderr[-3000:]))
    return p


def apireader_line(stderr, min_reads, min_nonempty):
    lines = [l.split("\t") for l in stderr.splitlines() if l.startswith("apireader")]
    if len(lines) != 1:
        raise Failure("expected one apireader line, got %d" % len(lines))
    f = dict(kv.split("=") for kv in lines[0][1:])
    reads, nonempty, bad = int(f["reads"]), int(f["nonempty"]), int(f["bad"])
    if reads < min_reads or nonempty < min_nonempty or bad:
        raise Failure("apireader: %d reads (at least %d expected), %d found frames (at least %d), "
                      "%d bad" % (reads, min_reads, nonempty, min_nonempty, bad))


def user_run(g, tag, stack_type, args, every, min_nonempty):
    """g under qemu-x86_64 with callstack_instr, calltrace (every event) and
    the API reader (which must have found frames at least min_nonempty
    times); returns (events, guest stdout)."""
    trace = os.path.join(WORK, "%s-%s.trace" % (g.name, tag))
    if os.path.exists(trace):
        os.unlink(trace)
    p = run_tsan(tag, [qemu(), "-plugin", PLUGIN + ",stack_type=" + stack_type,
                       "-plugin", CALLTRACE + ",out=" + trace,
                       "-plugin", "%s,every=%d" % (APIREADER, every),
                       g.binary] + [str(a) for a in args])
    events, _, _, _ = parse_trace(trace)
    apireader_line(p.stderr, 1000, min_nonempty)
    return events, p.stdout


def own_counts(g, events, names):
    """Per stack id: [calls, returns, unwound] of the named own functions."""
    funcs = {g.addr(n) for n in names}
    per = collections.OrderedDict()
    for e in events:
        if e.func in funcs:
            c = per.setdefault(e.sid, [0, 0, 0])
            c[0 if e.kind == "call" else 2 if e.unwound else 1] += 1
    return per


THREADS, ROUNDS = 64, 60


def busy_threads(stack_type):
    """64 threads released at once, each calling and returning; another
    plugin reads other vCPUs' stacks through the API all along."""
    g = guest("busythreads.c", flags=NOPG)
    events, out = user_run(g, "busy-" + stack_type, stack_type, [THREADS, ROUNDS], every=4,
                           min_nonempty=1000)
    printed = [(int(t), int(c)) for t, c in re.findall(r"THREAD tid=(\d+) calls=(\d+)", out)]
    if len(printed) != THREADS or "DONE threads=%d" % THREADS not in out:
        raise Failure("the guest printed %d of %d threads:\n%s" % (len(printed), THREADS, out[-2000:]))
    per = own_counts(g, events, ("worker", "descend", "leaf"))
    if stack_type == "asid":
        # One stack for the process, shared by the threads (as PANDA's asid
        # stacks are): every thread's calls are on it, and a thread's return
        # may unwind another's frames, so only the calls are exact.
        total = sum(c for _, c in printed)
        if len(per) != 1 or list(per.values())[0][0] != total or \
                sum(list(per.values())[0][1:]) > total:
            raise Failure("asid: %d stacks, [calls, returns, unwound] %s; the threads made %d calls" % (
                len(per), list(per.values()), total))
        return
    for sid, (calls, rets, unwound) in per.items():
        if calls != rets or unwound:
            raise Failure("stack %s: %d calls, %d returns, %d unwound of the threads' functions" % (
                sid, calls, rets, unwound))
    # one stack per thread (heuristic: by the stack pointer; each thread
    # has its own stack), holding exactly that thread's calls
    got = sorted(c[0] for c in per.values())
    want = sorted(c for _, c in printed)
    if got != want:
        raise Failure("%s: calls per stack %s, per thread (as printed) %s" % (stack_type, got, want))
    if stack_type == "threaded":
        by_tid = {thread_of(sid): c[0] for sid, c in per.items()}
        if by_tid != dict(printed):
            raise Failure("threaded: calls by thread id %s, the guest printed %s" % (
                sorted(by_tid.items()), sorted(printed)))


@test
def tsan_64_threads_threaded():
    busy_threads("threaded")


@test
def tsan_64_threads_asid():
    busy_threads("asid")


@test
def tsan_64_threads_heuristic():
    busy_threads("heuristic")


@test
def tsan_64_threads_folded_and_uftrace():
    """The formats whose threaded stacks take no lock (folded, uftrace):
    64 threads at once. folded's counts of the threads' own functions must
    add up to the calls the threads printed, uftrace's records too."""
    g = guest("busythreads.c", flags=NOPG)
    names = ("worker", "descend", "leaf")
    for fmt in ("folded", "uftrace"):
        out = os.path.join(WORK, "busy-%s.out" % fmt)
        shutil.rmtree(out, ignore_errors=True)
        if os.path.isfile(out):
            os.unlink(out)
        p = run_tsan("busy-" + fmt, [qemu(), "-plugin", PLUGIN + ",stack_type=threaded",
                                     "-plugin", "%s,format=%s,out=%s" % (CALLTRACE, fmt, out),
                                     g.binary, str(THREADS), str(ROUNDS)])
        printed = [int(c) for c in re.findall(r"THREAD tid=\d+ calls=(\d+)", p.stdout)]
        if len(printed) != THREADS:
            raise Failure("%s: the guest printed %d of %d threads" % (fmt, len(printed), THREADS))
        if fmt == "folded":
            calls = 0
            for line in open(out):
                path, _, count = line.rstrip("\n").rpartition(" ")
                if path.split(";")[-1] in names:
                    calls += int(count)
        else:
            dump = run(["uftrace", "dump", "-d", out], check=False).stdout
            calls = sum(1 for l in dump.splitlines()
                        if re.search(r"\[entry\] (%s)\(" % "|".join(names), l))
        if calls != sum(printed):
            raise Failure("%s: %d calls of the threads' functions, the threads printed %d" % (
                fmt, calls, sum(printed)))


MANY = 200


@test
def tsan_threads_come_and_go():
    """Short threads created and joined 8 at a time while the API reader
    reads vCPUs that are exiting or gone (their stacks dropped)."""
    g = guest("manythreads.c", flags=NOPG)
    for stack_type in ("threaded", "heuristic"):
        # (most reads find a vCPU that has exited: few frames)
        events, out = user_run(g, "many-" + stack_type, stack_type, [MANY], every=2, min_nonempty=100)
        # manythreads.c: thread j computes work(j % 50), which calls work
        # max(1, j % 50) times, and returns it; main prints the sum
        want_sum = sum(j % 50 for j in range(MANY))
        want_calls = sum(max(1, j % 50) for j in range(MANY))
        if out.split() != [str(want_sum)]:
            raise Failure("%s: the guest printed %r, expected %d" % (stack_type, out, want_sum))
        per = own_counts(g, events, ("work",))
        calls = sum(c[0] for c in per.values())
        bad = [(s, c) for s, c in per.items() if c[0] != c[1] or c[2]]
        if calls != want_calls or bad:
            raise Failure("%s: %d calls of work (expected %d); unbalanced stacks %s" % (
                stack_type, calls, want_calls, bad[:4]))


@test
def tsan_unit_engine():
    """The engine's unit tests (tests/unit/test_engine.c: threads driving
    their own stacks while others read them and subscribers churn), built
    with TSan: no QEMU involved, only GLib's locks need the shim."""
    check = tsan_logs("unit-engine")
    env = dict(os.environ, LD_PRELOAD=os.path.join(BUILD, "tests", "tsan", "libtsan_glib.so"),
               TSAN_OPTIONS="log_path=" + os.environ["CSI_TSAN_LOG"])
    try:
        p = run([os.path.join(BUILD, "tests", "unit", "test_engine")], check=False, env=env, timeout=600)
    finally:
        check()
    last = p.stdout.strip().splitlines()[-1:] or [""]
    if p.returncode != 0 or not re.fullmatch(r"\d+ passed, 0 failed", last[0]):
        raise Failure("test_engine exited %d: %s" % (p.returncode, (p.stdout + p.stderr)[-2000:]))


@test
def tsan_system_x86_64_smp4_api_reader():
    """A 4-vCPU whole-system boot (MTTCG: a host thread per vCPU) with
    callstack_instr and the API reader on every 8th event (no calltrace:
    a quicker run than the next one). The guest must finish as it does
    without plugins: 4 CPUs seen, every copy of sysprog reporting."""
    import test_system
    d, _, args = test_system.system_guest("x86_64")
    p = run_tsan("system-smp4-api", [os.path.join(os.environ["QEMU_PREFIX"], "bin", "qemu-system-x86_64")]
                 + args + ["-smp", "4", "-plugin", PLUGIN, "-plugin", APIREADER + ",every=8"],
                 stdin=subprocess.DEVNULL)
    copies = sorted(int(i) for i in re.findall(r"SYSPROG id=(\d+) ", p.stdout))
    want = list(range(1, test_system.WAVES * test_system.COPIES + 1))
    if "SYSPROG-CPUS 4" not in p.stdout or "SYSPROG-DONE" not in p.stdout or copies != want:
        raise Failure("the guest did not finish as expected (copies %s):\n%s" % (copies, p.stdout[-3000:]))
    apireader_line(p.stderr, 10000, 1000)


@test
@slow
def tsan_system_x86_64_smp4():
    """A 4-vCPU whole-system boot (MTTCG: a host thread per vCPU), with
    calltrace and test_system.py's checks. Slow (minutes: every kernel event
    is formatted by an instrumented calltrace), hence only when named."""
    import test_system
    check = tsan_logs("system-smp4")
    try:
        test_system.system_test("x86_64", 4)
    finally:
        check()


def main():
    filters = sys.argv[1:]
    tests = [t for t in TESTS if filters or t not in SLOW or os.environ.get("CALLSTACK_TSAN_ALL") == "1"]
    passed, failed = run_tests(tests, filters, "tsan")
    shutil.rmtree(WORK, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
