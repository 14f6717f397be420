# SPDX-License-Identifier: GPL-2.0-or-later
"""Stack-pointer aware tracking: non-local exits, heuristic stacks,
coroutines, tail calls and bounded memory. References: native GDB backtraces
at checkpoints, uftrace call sequences, plain QEMU's peak memory."""
import os
import re

from harness import (WORK, Failure, check_against_uftrace, check_callers_against_gdb, guest,
                     own_prefix, qemu, run, run_plugin, test, PLUGIN)

NOPG = ("-O0",)


@test
def siglongjmp_and_signal_handler_longjmp_vs_gdb():
    # level2 is entered once after a siglongjmp out of 200 frames and once
    # after a signal handler longjmps out of 100: the stack must be exact.
    g = guest("unwind.c", flags=NOPG)
    for mode in ("threaded", "heuristic"):
        check_callers_against_gdb(g, "level2", plugin_args="stack_type=" + mode, hits=2)


@test
def unwind_sequence_vs_uftrace():
    g = guest("unwind.c")
    events, _, _, _ = check_against_uftrace(g, keep_unwound=False)
    sink, raiser = g.addr("sink"), g.addr("raiser")
    for f, n in ((sink, 201), (raiser, 101)):
        u = [e for e in events if e.func == f and e.unwound]
        if len(u) != n:
            raise Failure("expected %d unwound frames of %s, got %d" % (n, g.name_of(f), len(u)))


@test
def exception_through_50_frames_vs_gdb_and_uftrace():
    g = guest("exception50.cpp", flags=NOPG)
    check_callers_against_gdb(g, "level2")
    g = guest("exception50.cpp")
    events, _, _, _ = check_against_uftrace(g, keep_unwound=True)
    u = [e for e in events if e.func == g.addr("_Z7descendiPi") and e.unwound]
    if len(u) != 50:
        raise Failure("expected 50 unwound descend frames, got %d" % len(u))


@test
def coroutines_get_their_own_heuristic_stacks():
    g = guest("coro.c", flags=NOPG)
    # checkpoint: 100 in coroutine a, 200 in coroutine b, 101 in a again
    callers = check_callers_against_gdb(g, "checkpoint", plugin_args="stack_type=heuristic", hits=3)
    sids = [c[0] for c in callers]
    if sids[0] == sids[1] or sids[0] != sids[2]:
        raise Failure("coroutine stacks: a=%s b=%s a again=%s" % tuple(sids))
    if not all(s.startswith("(asid=0x") and ", sp=0x" in s for s in sids):
        raise Failure("unexpected heuristic stack ids %r" % sids)


@test
def threads_heuristic_vs_uftrace():
    g = guest("threads.c")
    _, got, ref, _ = check_against_uftrace(g, keep_unwound=False, plugin_args="stack_type=heuristic")
    if len(got) != len(ref):
        raise Failure("%d heuristic stacks for %d threads" % (len(got), len(ref)))


@test
def fork_heuristic_vs_uftrace():
    check_against_uftrace(guest("fork.c"), keep_unwound=False, plugin_args="stack_type=heuristic")


@test
def tail_call_leaves_no_frame_like_gdb():
    # forward() jumps to target(): the real stack has no frame for forward,
    # so neither has the shadow stack. GDB agrees.
    # -g0: with debug information GDB shows a reconstructed frame for the
    # tail caller, which is not on the real stack.
    g = guest("tailcall.c", flags=("-O2", "-g0"))
    dis = run(["objdump", "-d", "--no-show-raw-insn", g.binary]).stdout
    body = dis[dis.index("<forward>:"):]
    body = body[:body.index("\n\n")]
    if not re.search(r"jmp\s+[0-9a-f]+ <target>", body):
        raise Failure("the compiler did not make a tail call:\n" + body)
    callers = check_callers_against_gdb(g, "checkpoint")
    events, _, _, _, _ = run_plugin(g, tag="-tail")
    fwd, tgt = g.addr("forward"), g.addr("target")
    calls = [e.func for e in events if e.kind == "call" and e.func in (fwd, tgt)]
    rets = [e.func for e in events if e.kind == "ret" and e.func in (fwd, tgt)]
    if calls != [fwd, tgt] or rets != [tgt, fwd]:
        # target is called by nothing but checkpoint... forward is called;
        # target is entered by a jump: only checkpoint's frame and forward's.
        if calls != [fwd] or rets != [fwd]:
            raise Failure("calls %s, returns %s" % ([g.name_of(f) for f in calls],
                                                    [g.name_of(f) for f in rets]))
    return callers


def peak_rss_kb(cmd):
    p = run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, cwd=WORK, timeout=600)
    m = re.search(r"MAXRSS (\d+)", p.stderr)
    if not m:
        raise Failure("no peak memory in: " + p.stderr[-500:])
    return int(m.group(1))


# The documented bound: max_depth frames of 32 bytes per stack (2 MiB at the
# default) plus fixed costs (Capstone, tables); 16 MiB leaves room for QEMU's
# own noise between runs.
MEMORY_BOUND_KB = 16 * 1024


@test
def million_frames_deep_stays_bounded():
    g = guest("deep.c", flags=NOPG)
    base = peak_rss_kb([qemu(), g.binary, "1000000"])
    for mode in ("threaded", "heuristic"):
        used = peak_rss_kb([qemu(), "-plugin", PLUGIN + ",stack_type=" + mode, g.binary, "1000000"])
        if used - base > MEMORY_BOUND_KB:
            raise Failure("%s: %d KB above plain QEMU's %d KB" % (mode, used - base, base))
    # at the bottom, depth counts every frame while only max_depth are kept
    addr = g.addr("checkpoint")
    _, callers, _, _, _ = run_plugin(g, args=["1000000"], plugin_args="max_depth=1000",
                                     trace_args="events=off,callers_at=0x%x" % addr, tag="-deep")
    trace = os.path.join(WORK, g.name + "-deep.trace")
    depth = [int(l.split("\t")[2]) for l in open(trace) if l.startswith("callers")]
    if not depth or depth[0] < 1000000 or len(callers[0][2]) > 1000:
        raise Failure("depth %s, %d callers listed" % (depth, len(callers[0][2]) if callers else -1))
    if own_prefix(g, callers[0][2]) != callers[0][2][:len(own_prefix(g, callers[0][2]))] or \
            len(own_prefix(g, callers[0][2])) < 500:
        raise Failure("the most recent frames at the bottom are not the recursion's")


@test
def ten_thousand_threads_memory_does_not_grow():
    g = guest("manythreads.c", flags=NOPG)
    for mode in ("threaded", "heuristic"):
        small = peak_rss_kb([qemu(), "-plugin", PLUGIN + ",stack_type=" + mode, g.binary, "1000"])
        big = peak_rss_kb([qemu(), "-plugin", PLUGIN + ",stack_type=" + mode, g.binary, "10000"])
        plain_small = peak_rss_kb([qemu(), g.binary, "1000"])
        plain_big = peak_rss_kb([qemu(), g.binary, "10000"])
        growth = (big - plain_big) - (small - plain_small)
        if growth > 2048:
            raise Failure("%s: the plugin's memory grew by %d KB from 1,000 to 10,000 threads"
                          % (mode, growth))


@test
def retpoline_thunks_O2_vs_uftrace():
    """Built with GCC's Spectre v2 mitigations, as Linux is: every indirect
    call goes through a retpoline thunk (call 1f; ...; mov %reg,(%rsp);
    ret) and every return through a return thunk (jmp __x86_return_thunk).
    The plugin reports the functions the thunks reach, with the same
    streams as uftrace's entry hooks (which know nothing of thunks): a call
    through a thunk is a call of its target, the thunk's inner call none."""
    flags = ("-O2", "-pg", "-fno-optimize-sibling-calls", "-mindirect-branch=thunk",
             "-mfunction-return=thunk")
    for src in ("recursion.c",):
        g = guest(src, flags=flags, pie=True)
        # the binary really calls through thunks
        dis = run(["objdump", "-d", g.binary]).stdout
        if "__x86_indirect_thunk_" not in dis or "__x86_return_thunk" not in dis:
            raise Failure("%s: no thunks in the binary" % src)
        check_against_uftrace(g, keep_unwound=False)


MEMORY_CALL = re.compile(r"\bcall[lq]?\s+\*[^%\s]*\(")


@test
def calls_through_memory_vs_uftrace():
    """C++ virtual calls, a function-pointer table and a struct's function
    pointer (tests/guests/dispatch.cpp): x86 calls that load their target
    from memory, whose callback runs after that load with the value loaded.
    Every call and return, in order, as uftrace records them; non-PIE
    (absolute table address) and PIE (base register + index)."""
    flags = ("-O2", "-pg", "-fno-optimize-sibling-calls")
    for pie in (False, True):
        g = guest("dispatch.cpp", flags=flags, pie=pie)
        dis = run(["objdump", "-d", "--no-show-raw-insn", g.binary]).stdout
        own = [l for l in dis.splitlines() if MEMORY_CALL.search(l) and "(%rip)" not in l]
        if len(own) < 3:
            raise Failure("%s: %d calls through memory in the binary, expected the virtual, "
                          "table and struct ones" % (g.name, len(own)))
        check_against_uftrace(g, keep_unwound=False)
