# SPDX-License-Identifier: GPL-2.0-or-later
"""Whole-system tests: a Debian kernel and a busybox initramfs
(scripts/make-system-guest.sh) boot under qemu-system-x86_64 and
qemu-system-aarch64 (and, in test_system_arches.py, qemu-system-i386,
qemu-system-arm and qemu-system-ppc64) with callstack_instr and calltrace; init runs two waves
of four copies of tests/guests/sysprog.c (a wave's copies at once, each copy
with its own call pattern), and powers off. The second wave's processes
usually get page tables the first wave freed, hence the same address space
ids as processes that died with frames on their stacks.

References, independent of the plugin: what each copy prints about its own
frames (the return address each of them saw, __builtin_return_address), the
static binary's symbols (nm), and the program's source-level call pattern.
"""
import os
import re
import signal
import subprocess
import threading

from harness import QEMU_PREFIX, ROOT, WORK, PLUGIN, CALLTRACE, Failure, guest, nm_defined_text, \
    parse_trace, qemu, run, test

ARCHES = ("x86_64", "aarch64")
COPIES = 4                     # per wave
WAVES = 2
SPINS = 10000                  # sysprog.c
OWN = ("main", "run", "rec", "checkpoint", "spin", "add_one", "twice", "the_end")
# Where each guest's kernel lives: the top half on 64-bit guests, above
# PAGE_OFFSET (the kernels' configs: CONFIG_PAGE_OFFSET=0xC0000000, 3G/1G
# split) on 32-bit ones, arm's modules 16 MiB below it.
KERNEL_START = {"x86_64": 1 << 63, "aarch64": 1 << 63, "ppc64": 1 << 63,
                "i386": 0xC0000000, "arm": 0xBF000000}
# The frames below main's caller: glibc's _start calls __libc_start_main,
# except on ppc64, where _start branches to it without linking (objdump:
# `b __libc_start_main+0x8`), leaving no frame.
BELOW_MAIN = {"ppc64": ("__libc_start_main",)}


def system_qemu(arch):
    """The qemu-system binary for arch: x86_64 and aarch64 from the main
    QEMU build, the others from the separate one (scripts/setup.sh
    --system-extra, built here if it is not yet, or waited for if a
    background set-up is building it)."""
    if arch in ("x86_64", "aarch64"):
        return os.path.join(QEMU_PREFIX, "bin", "qemu-system-" + arch)
    b = "qemu-system-" + arch
    run(["bash", os.path.join(ROOT, "scripts", "setup.sh"), b], timeout=7200)
    p = run(["bash", "-c", '. "$1/scripts/qemu-env.sh"; printf %s "$QEMU_SYS_PREFIX"', "-", ROOT])
    return os.path.join(p.stdout, "bin", b)


def local_entries(path):
    """ppc64 ELFv2: {name: offset of the local entry point}, from readelf."""
    out = run(["readelf", "-sW", path]).stdout
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"\[<localentry>: (\d+)\]\s+\S+\s+(\S+)", out)}

_guests = {}
_local = {}    # per arch, system_guest's local entry points (ppc64)


def system_guest(arch):
    """The guest directory for arch (built once, cached outside the clone)."""
    if arch not in _guests:
        p = run(["bash", os.path.join(ROOT, "scripts", "make-system-guest.sh"), arch], timeout=900)
        d = p.stdout.strip().splitlines()[-1]
        # (an assembler symbol without a size, __wrap_main, counts as one
        # instruction)
        # (Thumb functions' symbols have bit 0 set; their code starts at
        # the even address)
        mask = ~1 if arch == "arm" else ~0
        syms = {name: (addr & mask, size) for addr, size, name in
                nm_defined_text(os.path.join(d, "sysprog"), sizeless=4)}
        # arm's _start (glibc's start.S) has no size: it ends at the next
        # symbol (nm -n; the literal pool's $d mapping symbol there).
        if arch == "arm":
            addrs = sorted({int(l.split()[0], 16) & mask for l in run(
                ["nm", "-n", os.path.join(d, "sysprog")]).stdout.splitlines() if len(l.split()) == 3})
            a = syms["_start"][0]
            syms["_start"] = (a, min(x for x in addrs if x > a) - a)
        for n in OWN + ("_start", "__libc_start_main", "__libc_start_call_main"):
            if n not in syms:
                raise Failure("sysprog has no symbol %s" % n)
        with open(os.path.join(d, "qemu.args")) as f:
            args = f.read().splitlines()
        _guests[arch] = (d, syms, args)
        _local[arch] = local_entries(os.path.join(d, "sysprog")) if arch == "ppc64" else {}
    return _guests[arch]


class Boot:
    """One boot of the guest with the plugins; parsed results."""

    def __init__(self, arch, tag, extra=(), smp=1, plugin_args=""):
        d, syms, args = system_guest(arch)
        local = _local[arch]
        self.arch, self.syms = arch, syms
        # AArch64 glibc calls main through __wrap_main, a landing pad that
        # jumps to main: the frame is __wrap_main's (a tail call is no call).
        self.entry = "__wrap_main" if "__wrap_main" in syms else "main"
        names = OWN + ((self.entry,) if self.entry != "main" else ())
        own = [syms[n] for n in names]
        lo, hi = min(a for a, _ in own), max(a + s for a, s in own)
        self.own = {syms[n][0]: n for n in names}
        # ppc64: a direct call enters at the local entry point.
        self.own.update({syms[n][0] + local[n]: n for n in names if local.get(n)})
        self.trace = os.path.join(WORK, "system-%s-%s.trace" % (arch, tag))
        # (ppc64: where the program's direct calls enter, the local entry)
        entered = {n: syms[n][0] + local.get(n, 0) for n in ("checkpoint", "the_end")}
        ct = [CALLTRACE, "out=" + self.trace, "callers_at=0x%x" % entered["checkpoint"],
              "only=0x%x-0x%x" % (lo, hi), "per_stack=on", "until=0x%x" % entered["the_end"]]
        cmd = [system_qemu(arch)] + args + [
            "-smp", str(smp), "-plugin", PLUGIN + plugin_args, "-plugin", ",".join(ct)] + list(extra)
        p = run(cmd, timeout=900, stdin=subprocess.DEVNULL)
        self.console, self.stderr = p.stdout, p.stderr
        if "SYSPROG-DONE" not in self.console:
            raise Failure("%s guest did not finish:\n%s" % (arch, self.console[-3000:]))
        self.events, self.callers, _, self.summaries = parse_trace(self.trace)
        self.stacks = {}
        for line in self.summaries:
            f = line.split("\t")
            if f[0] == "# stack":
                self.stacks[f[1]] = dict(kv.split("=", 1) for kv in f[2:])
        self.copies = {}
        for m in re.finditer(r"SYSPROG id=(\d+) depth=(\d+) .*chain=(\S+)", self.console):
            # (Thumb: the return addresses the program saw have bit 0 set)
            self.copies[int(m.group(1))] = (int(m.group(2)), [int(x, 16) & ~1 if arch == "arm" else int(x, 16)
                                                              for x in m.group(3).split(",")])
        if sorted(self.copies) != list(range(1, WAVES * COPIES + 1)):
            raise Failure("expected %d copies of sysprog to report, got %s" % (
                WAVES * COPIES, sorted(self.copies)))

    def inside(self, name, addr):
        a, s = self.syms[name]
        return a <= addr < a + s


def expected_own_calls(depth, ident, entry):
    """The program's own calls and returns (sysprog.c), in order."""
    seq = [("call", entry), ("call", "run")] + [("call", "rec")] * (depth + 1)
    seq += [("call", "checkpoint"), ("ret", "checkpoint")] + [("ret", "rec")] * (depth + 1)
    seq.append(("call", "spin"))
    for i in range(SPINS + ident):
        op = "add_one" if i % 2 == 0 else "twice"
        seq += [("call", op), ("ret", op)]
    return seq + [("ret", "spin"), ("ret", "run"), ("ret", entry)]


def processes(b, sid):
    """The program's own calls and returns on stack sid, one list per
    process: an address space id outlives its process, and a later process
    (the second wave, `sysprog end`) may get the same page table, hence the
    same id. Each process starts with its one call of the entry function."""
    segs = []
    for e in b.events:
        if e.sid == sid and e.func in b.own:
            ev = (e.kind, b.own[e.func])
            if ev == ("call", b.entry) or not segs:
                segs.append([])
            segs[-1].append((ev, e.unwound))
    return segs


def check_user_stacks(b):
    """Each copy's user stack at checkpoint holds exactly its own frames, in
    order; its calls and returns are exactly the program's; copies alive at
    the same time have different stacks."""
    sids, matched = {}, set()
    for ident, (depth, chain) in sorted(b.copies.items()):
        mine = [c for c in b.callers if c[2][:len(chain)] == chain]
        if len(mine) != 1:
            raise Failure("copy %d: %d callers lines start with its chain %s (lines: %s)" % (
                ident, len(mine), [hex(a) for a in chain], [(s, [hex(a) for a in l]) for s, _, l in b.callers]))
        sid, _, stack = mine[0]
        # Below main: __libc_start_call_main (main's own return address,
        # already in the chain), then __libc_start_main's and _start's frames.
        rest = stack[len(chain):]
        below = BELOW_MAIN.get(b.arch, ("__libc_start_main", "_start"))
        if (len(rest) != len(below) or not all(b.inside(n, a) for n, a in zip(below, rest))
                or not b.inside("__libc_start_call_main", chain[-1])):
            raise Failure("copy %d: below its own %d frames the stack holds %s, expected one frame in "
                          "each of %s" % (ident, len(chain), [hex(a) for a in rest], below))
        if not sid.startswith("(asid=0x"):
            raise Failure("copy %d: user stack id %s is not an asid stack" % (ident, sid))
        sids[ident] = sid
        want = expected_own_calls(depth, ident, b.entry)
        # Its process on that stack: the one that recursed as deep as it did.
        segs = [(k, seg) for k, seg in enumerate(processes(b, sid))
                if [ev for ev, _ in seg].count(("call", "rec")) == depth + 1]
        if len(segs) != 1:
            raise Failure("copy %d: %d processes on %s recursed %d times" % (ident, len(segs), sid, depth + 1))
        matched.add((sid, segs[0][0]))
        got = [ev for ev, _ in segs[0][1]]
        unwound = [ev for ev, u in segs[0][1] if u]
        if got != want or unwound:
            i = next((k for k, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
            raise Failure("copy %d on %s: own calls and returns differ at event %d of %d/%d "
                          "(%d unwound):\n  expected %s\n  got      %s" % (
                              ident, sid, i, len(got), len(want), len(unwound), want[i:i + 6], got[i:i + 6]))
    for w in range(WAVES):
        wave = [sids[i] for i in range(w * COPIES + 1, (w + 1) * COPIES + 1)]
        if len(set(wave)) != COPIES:
            raise Failure("copies alive at the same time share stack ids: %s" % wave)
    # Nothing else of the program's on user stacks but `sysprog end` (traced
    # up to its call of the_end, so just the call of the entry function).
    for sid in {e.sid for e in b.events}:
        for k, seg in enumerate(processes(b, sid)):
            if (sid, k) not in matched and [ev for ev, _ in seg] != [("call", b.entry)]:
                raise Failure("events of no copy on %s: %s" % (sid, seg[:8]))


def check_privilege(b):
    """Kernel addresses (the top half) only on kernel stacks; the program's
    addresses only on user stacks. (Kernel stacks may hold low addresses:
    firmware, early boot, and the arm64 kernel's calls into its identity
    map.)"""
    kernel_calls = 0
    for e in b.events:
        if not e.sid.startswith("(asid=0x"):
            raise Failure("an event in sysprog's code is on stack %s: %s" % (e.sid, e))
    for sid, st in b.stacks.items():
        hi = int(st["hi"], 16)
        if sid.startswith("(kernel, sp=0x"):
            kernel_calls += int(st["calls"])
        elif sid.startswith("(asid=0x"):
            if hi >= KERNEL_START[b.arch]:
                raise Failure("user stack %s holds a kernel address 0x%x" % (sid, hi))
        else:
            raise Failure("unexpected stack id %s" % sid)
    if kernel_calls < 100000:
        raise Failure("only %d calls on kernel stacks: the kernel was not traced" % kernel_calls)
    # Frames left behind by interrupts, exceptions or system calls would pile
    # up: Linux's deepest call chains are far shallower than this.
    depth = max(int(l.split("max_depth=")[1]) for l in b.summaries if l.startswith("# summary"))
    if depth > 200:
        raise Failure("a stack reached depth %d: frames are not being popped" % depth)


def system_test(arch, smp, extra=()):
    b = Boot(arch, "smp%d" % smp, smp=smp, extra=extra)
    m = re.search(r"SYSPROG-CPUS (\d+)", b.console)
    if not m or int(m.group(1)) != smp:
        raise Failure("the guest saw %s CPUs, expected %d" % (m and m.group(1), smp))
    check_user_stacks(b)
    check_privilege(b)
    return b


@test
def system_x86_64_stacks():
    system_test("x86_64", 1)


@test
def system_x86_64_smp2_stacks():
    system_test("x86_64", 2)


@test
def system_aarch64_stacks():
    # A Cortex-A72 rather than the guest's default A57: under it the second
    # wave reliably gets page tables of dead processes (as x86_64 guests
    # do), which only the ASID in the stack id tells apart.
    system_test("aarch64", 1, extra=("-cpu", "cortex-a72"))


@test
def system_aarch64_smp2_stacks():
    system_test("aarch64", 2)


def trace_lines(b):
    with open(b.trace) as f:
        return [l for l in f if not l.startswith("# summary")]


def first_difference(a, b):
    i = next(i for i, (x, y) in enumerate(zip(a + [""], b + [""])) if x != y)
    return "line %d of %d/%d:\n  %s  %s" % (i, len(a), len(b), (a + [""])[i], (b + [""])[i])


def record_replay(arch):
    """The recorded run and its replay report the same events: every line of
    calltrace (the copies' events, the stacks at checkpoint, per-stack
    counts, address ranges and digests of all events up to the_end, which
    runs after the copies exit and before the power-off)."""
    rr = os.path.join(WORK, "system-%s.rr" % arch)
    out = []
    for mode in ("record", "replay"):
        # (QEMU 10 records single-vCPU guests only.)
        b = Boot(arch, "rr-" + mode, extra=["-icount", "shift=auto,rr=%s,rrfile=%s" % (mode, rr)])
        check_user_stacks(b)
        check_privilege(b)
        out.append(trace_lines(b))
    if out[0] != out[1]:
        raise Failure("record and replay differ at %s" % first_difference(out[0], out[1]))


@test
def system_x86_64_record_replay():
    record_replay("x86_64")


@test
def system_aarch64_record_replay():
    record_replay("aarch64")


SLOW_EVENTS = re.compile(r"events through the event path: (\d+)")
TOTALS = re.compile(r"(\d+) calls, (\d+) returns")


def fast_lane_equals_api(arch, stack_type=""):
    """The fast lane (registers read from QEMU's CPU state, the vCPU's stack
    kept while the privilege level and kernel stack region stay the same)
    changes speed, not results. Reference: a replay of the same recording
    with fast_regs=off, where every register goes through the plugin API
    (QEMU's gdbstub) and every event chooses its stack from the registers.
    Both replays must give calltrace's whole output (every event of the
    copies, the stacks at checkpoint, per-stack digests of all events up to
    the_end), and the fast one must have taken the fast lane for most
    events."""
    kind = ",stack_type=" + stack_type if stack_type else ""
    rr = os.path.join(WORK, "system-%s-lanes%s.rr" % (arch, stack_type))
    rec = "-icount", "shift=auto,rr=record,rrfile=%s" % rr
    Boot(arch, "lanes-record" + stack_type, plugin_args=kind, extra=rec)
    out, slow = [], []
    for tag, args in (("fast", ",verbose=on"), ("api", ",verbose=on,fast_regs=off")):
        b = Boot(arch, "lanes-%s%s" % (tag, stack_type), plugin_args=kind + args,
                 extra=("-icount", "shift=auto,rr=replay,rrfile=%s" % rr))
        check_user_stacks(b)
        out.append(trace_lines(b))
        m, t = SLOW_EVENTS.search(b.stderr), TOTALS.search(b.stderr)
        if not m or not t:
            raise Failure("%s: no event counts in the verbose output:\n%s" % (tag, b.stderr[-1500:]))
        slow.append((int(m.group(1)), int(t.group(1)) + int(t.group(2))))
    if out[0] != out[1]:
        raise Failure("fast lane and API reads differ at %s" % first_difference(out[0], out[1]))
    (fast_slow, total), (api_slow, _) = slow
    if fast_slow * 10 > api_slow or api_slow * 2 < total:
        raise Failure("events through the event path: %d with fast_regs=on, %d with fast_regs=off, "
                      "of %d calls and returns" % (fast_slow, api_slow, total))


@test
def system_x86_64_fast_lane_equals_api():
    fast_lane_equals_api("x86_64")


@test
def system_aarch64_fast_lane_equals_api():
    fast_lane_equals_api("aarch64")


@test
def system_x86_64_heuristic_fast_lane_equals_api():
    fast_lane_equals_api("x86_64", "heuristic")


@test
def system_mode_refuses_threaded_without_osi():
    """stack_type=threaded without osi_linux: one line and a non-zero exit
    when the first vCPU starts (by then every plugin is loaded), before the
    guest runs."""
    for arch in ARCHES:
        d, _, args = system_guest(arch)
        q = os.path.join(QEMU_PREFIX, "bin", "qemu-system-" + arch)
        p = run([q] + args + ["-plugin", PLUGIN + ",stack_type=threaded"],
                check=False, stdin=subprocess.DEVNULL, timeout=120)
        lines = [l for l in p.stderr.splitlines() if l.startswith("callstack_instr:")]
        if p.returncode == 0 or len(lines) != 1 or "threaded" not in lines[0] or \
                "osi_linux" not in lines[0] or "SYSPROG" in p.stdout:
            raise Failure("%s: exit %d, stderr %r" % (arch, p.returncode, p.stderr[-500:]))


@test
def calltrace_system_arguments_are_checked():
    """only=, until= and per_stack= (added for whole-system runs): a bad
    value is one line naming the argument and a non-zero exit; good ones
    filter and stop as documented (checked in user mode, quicker)."""
    g = guest("recursion.c")
    for arg in ("only=5-3", "only=0x10", "only=a-b", "until=", "until=0", "per_stack=maybe"):
        p = run([qemu(), "-plugin", PLUGIN, "-plugin", CALLTRACE + "," + arg, g.binary],
                check=False, cwd=WORK)
        lines = [l for l in p.stderr.splitlines() if l.startswith("calltrace:")]
        if p.returncode == 0 or len(lines) != 1 or arg.split("=")[0] not in lines[0]:
            raise Failure("%s: exit %d, stderr %r" % (arg, p.returncode, p.stderr[-500:]))
    deep, checkpoint = g.addr("deep"), g.addr("checkpoint")
    out = os.path.join(WORK, "calltrace-args.trace")
    run([qemu(), "-plugin", PLUGIN, "-plugin", "%s,out=%s,only=0x%x-0x%x,per_stack=on,until=0x%x" % (
        CALLTRACE, out, deep, deep + g.own[deep][1], checkpoint), g.binary], cwd=WORK)
    events, _, _, summaries = parse_trace(out)
    # deep(300) recurses to checkpoint: 301 calls of deep (and of mcount,
    # -pg, from deep), then tracing stops: no checkpoint, no return of deep.
    mine = [e for e in events if e.func == deep]
    outside = [e for e in events if e.func != deep and not deep <= e.ret < deep + g.own[deep][1]]
    if len(mine) != 301 or any(e.kind != "call" for e in mine) or outside:
        raise Failure("only=deep, until=checkpoint: expected the 301 calls of deep, got %d events of "
                      "deep (%d returns) and %d outside" % (
                          len(mine), sum(e.kind == "ret" for e in mine), len(outside)))
    stacks = [l for l in summaries if l.startswith("# stack")]
    if len(stacks) != 1 or "returns=0" in stacks[0]:
        raise Failure("per_stack: expected one stack, with the returns before deep's: %r" % stacks)


SPAWN_SMALL, SPAWN_LARGE = 200, 2000   # short-lived processes per boot
SPAWN_BOUND = 64                       # max_spaces for the spawn test
KiB = 1024


def spawn_boot(n, tag, plugins=True, smp=2):
    """Boots the x86_64 guest with spawn=n (init runs n short-lived
    processes one after another) and returns (console, peak RSS in KiB,
    calltrace summary fields, the plugin's stack counts). The peak RSS is
    QEMU's own (wait4), so the run is spawned directly, not through run()."""
    d, _, args = system_guest("x86_64")
    args = list(args)
    i = args.index("-append")
    args[i + 1] += " spawn=%d" % n
    trace = os.path.join(WORK, "system-spawn-%s.tsv" % tag)
    cmd = [os.path.join(QEMU_PREFIX, "bin", "qemu-system-x86_64")] + args + ["-smp", str(smp)]
    if plugins:
        cmd += ["-plugin", "%s,verbose=on,max_spaces=%d" % (PLUGIN, SPAWN_BOUND),
                "-plugin", "%s,out=%s,events=off" % (CALLTRACE, trace)]
    log = os.path.join(WORK, "system-spawn-%s.log" % tag)
    with open(log, "w") as out:
        pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])
        timer = threading.Timer(1800, os.kill, (pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(pid, 0)
        finally:
            timer.cancel()
    with open(log, errors="replace") as f:
        console = f.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise Failure("%s: QEMU exited with status %d:\n%s" % (tag, os.waitstatus_to_exitcode(status),
                                                             console[-3000:]))
    if "SPAWN n=%d ok=%d" % (n, n) not in console or "SYSPROG-DONE" not in console:
        raise Failure("%s: the guest did not run its %d processes:\n%s" % (tag, n, console[-3000:]))
    summary, counts = None, None
    if plugins:
        _, _, _, summaries = parse_trace(trace)
        summary = dict(kv.split("=", 1) for kv in summaries[-1].split("\t")[1:])
        m = re.search(r"(\d+) stacks created, (\d+) live", console)
        if not m:
            raise Failure("%s: no stack counts in the plugin's verbose output" % tag)
        counts = int(m.group(1)), int(m.group(2))
    return console, usage.ru_maxrss, summary, counts


@test
def system_x86_64_many_processes_memory_flat():
    """Short-lived processes in whole-system mode: every process gets an
    address space (user stack) and a kernel stack of its own, which no
    operating-system view tells dead, so at most max_spaces of each are
    kept (least recently used evicted). Two boots with the plugins, of
    SPAWN_SMALL and SPAWN_LARGE processes at -smp 2 (MTTCG), and two without:
    every process runs (the guest counts their exit statuses), QEMU exits
    0, calls and returns balance (calltrace's counts of the events: what is
    neither returned nor unwound is the frames open at power-off and those
    of evicted stacks, a sliver), at most 2 * max_spaces + vCPUs stacks are
    live at the end after many more were made, and QEMU's peak RSS grows by
    under 4 MiB more than plain QEMU's from SPAWN_SMALL to SPAWN_LARGE
    processes and stays within 64 MiB of plain QEMU's.

    The issue's figure is 20,000 processes; under TCG on this 2-core
    machine 2,000 take about 80 s with the plugins (20,000 would take some
    15 minutes), hence 2,000. A process's stacks are a few hundred bytes,
    so the RSS alone could not tell an unbounded table at this scale: the
    live count is the sharp check, the RSS the independent one."""
    plain = {n: spawn_boot(n, "plain%d" % n, plugins=False)[1] for n in (SPAWN_SMALL, SPAWN_LARGE)}
    plain_rss = plain[SPAWN_LARGE]
    results = {}
    for n in (SPAWN_SMALL, SPAWN_LARGE):
        _, rss, s, (created, live) = spawn_boot(n, "n%d" % n)
        calls, rets, unwound = int(s["calls"]), int(s["returns"]), int(s["unwound"])
        open_frames = calls - rets - unwound
        if calls < 100000 or not 0 <= open_frames <= calls // 100:
            raise Failure("%d processes: %d calls, %d returns, %d unwound: unbalanced" % (
                n, calls, rets, unwound))
        if live > 2 * SPAWN_BOUND + 2:
            raise Failure("%d processes: %d stacks live, bound %d" % (n, live, 2 * SPAWN_BOUND + 2))
        results[n] = (rss, created, live)
    created = results[SPAWN_LARGE][1]
    if created <= 2 * SPAWN_BOUND + 2:
        raise Failure("only %d stacks were made for %d processes: the bound was not exercised" % (
            created, SPAWN_LARGE))
    # (QEMU's own growth, e.g. its translation cache, is not the plugins')
    growth = results[SPAWN_LARGE][0] - results[SPAWN_SMALL][0] - max(0, plain_rss - plain[SPAWN_SMALL])
    print("  peak RSS: plain %d KiB (%d processes), %d KiB (%d); plugins %d KiB, %d KiB; "
          "stacks made %d, live %d" % (plain[SPAWN_SMALL], SPAWN_SMALL, plain_rss, SPAWN_LARGE,
                                       results[SPAWN_SMALL][0], results[SPAWN_LARGE][0], created,
                                       results[SPAWN_LARGE][2]))
    if growth > 4 * KiB:
        raise Failure("peak RSS grew by %d KiB more than plain QEMU's from %d to %d processes" % (
            growth, SPAWN_SMALL, SPAWN_LARGE))
    if results[SPAWN_LARGE][0] > plain_rss + 64 * KiB:
        raise Failure("peak RSS %d KiB with the plugins, %d KiB without" % (
            results[SPAWN_LARGE][0], plain_rss))
