# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile and unusual guests, and output errors (docs/reliability-guests.md).

Every guest run checks: its output and exit status equal the native run's
(or plain QEMU's), QEMU did not crash, every stack's events are consistent
(each call one deeper, each return, normal or unwound, one shallower, never
below zero) and the `# summary` counts equal the lines written, and peak
memory stays within a generous bound of plain QEMU's. References: what the
guest reports about itself, and native runs. Output errors use small tmpfs
mounts (the tests run as root)."""
import collections
import contextlib
import json
import os
import re
import struct
import subprocess
import time

import plog_reader

from harness import (CALLTRACE, PLUGIN, WORK, Failure, guest, nm_defined_text, qemu, run, test)

NOPG = ("-O0",)
BUF = 0x10000000           # where smc.c and remap.c put their code
# Peak memory of a traced run may exceed plain QEMU's by this much (the
# stacks, names, Capstone, calltrace's buffers) or by a factor of 2.
RSS_SLACK_KB = 64 * 1024

SID_PID = re.compile(r"processID=0x([0-9a-f]+)")


def timed(cmd, timeout=300, cwd=None):
    """Runs cmd; returns (completed process, peak RSS in KB)."""
    rss_file = os.path.join(WORK, "rss.%d" % os.getpid())
    p = run(["/usr/bin/time", "-o", rss_file, "-f", "%M"] + cmd, timeout=timeout, check=False,
            cwd=cwd or WORK)
    try:
        rss = int(open(rss_file).read().split()[-1])
    except (OSError, ValueError, IndexError):
        raise Failure("no peak memory from /usr/bin/time for %s" % cmd)
    # time(1) reports a child killed by a signal as exiting 128+N
    return p, rss


def native(g, args=()):
    return run([g.binary] + list(args), check=False, cwd=WORK)


def plugins(trace, trace_args="", plugin_args=""):
    return ["-plugin", PLUGIN + ("," + plugin_args if plugin_args else ""),
            "-plugin", CALLTRACE + ",out=" + trace + ("," + trace_args if trace_args else "")]


def traced(g, args=(), trace_args="", plugin_args="", tag="", want_rc=0, timeout=300,
           ignore=lambda line: False):
    """Runs g under QEMU with both plugins and under plain QEMU; checks exit
    status, no QEMU crash, memory bound. Returns (stdout, trace path)."""
    trace = os.path.join(WORK, "%s%s.hostile.tsv" % (g.name, tag))
    p, rss = timed([qemu()] + plugins(trace, trace_args, plugin_args) + [g.binary] + list(args),
                   timeout=timeout)
    plain, plain_rss = timed([qemu(), g.binary] + list(args), timeout=timeout)
    rc = p.returncode
    if rc != want_rc:
        raise Failure("%s: QEMU exited %d (expected %d):\n%s" % (g.name, rc, want_rc,
                                                                  p.stderr[-2000:]))
    def kept(text):
        return [l for l in text.splitlines() if not ignore(l)]
    if kept(plain.stdout) != kept(p.stdout):
        raise Failure("%s: output differs from plain QEMU's:\n%s\n---\n%s" % (
            g.name, plain.stdout[-1000:], p.stdout[-1000:]))
    crash = [l for l in p.stderr.splitlines()
             if "calltrace:" in l or "callstack_instr:" in l or "internal" in l.lower()
             or "Assertion" in l or "host signal" in l]
    if crash:
        raise Failure("%s: unexpected messages:\n%s" % (g.name, "\n".join(crash[:20])))
    if rss > max(2 * plain_rss, plain_rss + RSS_SLACK_KB):
        raise Failure("%s: peak memory %d KB, plain QEMU %d KB" % (g.name, rss, plain_rss))
    return p.stdout, trace


def read_tsv(path):
    """Checks every line is whole and well formed; returns (events as tuples
    (kind, sid, depth, func, ret, unwound, name), summaries by pid (the last
    one of each process))."""
    events, summaries = [], {}
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise Failure("%s does not end with a whole line" % path)
    for line in data.decode("utf-8", "replace").splitlines():
        p = line.split("\t")
        if p[0] in ("call", "ret"):
            if len(p) not in (6, 8) or p[5] not in ("-", "unwound"):
                raise Failure("torn or malformed line in %s: %r" % (path, line))
            events.append((p[0], p[1], int(p[2]), int(p[3], 16), int(p[4], 16),
                           p[5] == "unwound", p[6] if len(p) == 8 else None))
        elif p[0] == "# summary":
            f = dict(x.split("=", 1) for x in p[1:])
            summaries[int(f["process"])] = {k: int(v) for k, v in f.items()}
        elif p[0] in ("# stack", "callers", "pandalog"):
            continue
        else:
            raise Failure("unknown line in %s: %r" % (path, line))
    return events, summaries


def check_balanced(path, need_summary=True):
    """Each stack's depths follow its events; each process's summary counts
    its lines. Returns (events, {sid: final depth}, summaries)."""
    events, summaries = read_tsv(path)
    depth = {}
    counts = collections.defaultdict(collections.Counter)
    for kind, sid, d, func, ret, unwound, _ in events:
        before = d - 1 if kind == "call" else d + 1
        if d < 0 or (sid in depth and depth[sid] != before):
            raise Failure("stack %s: %s at depth %d after depth %s" % (sid, kind, d, depth.get(sid)))
        depth[sid] = d
        pid = int(SID_PID.search(sid).group(1), 16)
        counts[pid]["unwound" if unwound else "returns" if kind == "ret" else "calls"] += 1
    for pid, c in counts.items():
        s = summaries.get(pid)
        if s is None:
            if need_summary:
                raise Failure("no summary for process %d in %s" % (pid, path))
            continue
        for k in ("calls", "returns", "unwound"):
            if s[k] != c[k]:
                raise Failure("process %d: summary says %s=%d, the trace has %d" % (pid, k, s[k], c[k]))
    return events, depth, summaries


def calls_of(events, func):
    return [e for e in events if e[0] == "call" and e[3] == func]


def same_as_native(g, out, args=(), ignore=None):
    n = native(g, args)
    a, b = n.stdout, out
    if ignore:
        a = "".join(l for l in a.splitlines(True) if not ignore(l))
        b = "".join(l for l in b.splitlines(True) if not ignore(l))
    if a != b:
        raise Failure("%s: output differs from the native run:\n%s\n---\n%s" % (g.name, a, b))
    return n


# ---- self-modifying and generated code -------------------------------------

@test
def hostile_self_modifying_call_target():
    g = guest("hostile/smc.c", flags=NOPG)
    out, trace = traced(g)
    same_as_native(g, out)
    record = re.search(r"record (\w+)", out).group(1)
    events, _, _ = check_balanced(trace)
    names = {g.addr("target_a"): "a", g.addr("target_b"): "b"}
    seen = "".join(names.get(e[3], "?") for e in events
                   if e[0] == "call" and BUF <= e[4] < BUF + 4096)
    if seen != record:
        raise Failure("calls from the rewritten sites went to %r, the guest ran %r" % (seen, record))


@test
def hostile_code_remapped_at_the_same_address():
    g = guest("hostile/remap.c", flags=NOPG)
    out, trace = traced(g)
    same_as_native(g, out)
    ran = re.findall(r"gen (\d+): (t\d)", out)
    events, _, _ = check_balanced(trace)
    got = [(int(k), g.name_of(e[3]), e[4] - BUF) for k, e in
           enumerate(e for e in events if e[0] == "call" and BUF <= e[4] < BUF + 4096)]
    want = [(int(k), "gen_" + t, int(k) + 9) for k, t in ran]
    if got != want or len(want) != 8:
        raise Failure("calls from the buffer %s, expected %s" % (got, want))
    entries = calls_of(events, BUF)
    if len(entries) != 8:
        raise Failure("%d calls of the buffer, expected 8" % len(entries))


# ---- a corrupted ELF file mapped executable ----------------------------------

def corrupt_variants(data):
    """(name, bytes) of corrupted copies of a little-endian ELF64 file."""
    import random
    rnd = random.Random(1234)
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    shdrs = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        name, typ, flags, addr, offset, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, off)
        shdrs.append((off, typ, offset, size))
    out = []
    b = bytearray(data)
    for off, _, _, _ in shdrs:
        b[off:off + e_shentsize] = bytes(rnd.randrange(256) for _ in range(e_shentsize))
    out.append(("random-section-headers", bytes(b)))
    b = bytearray(data)
    struct.pack_into("<Q", b, 0x28, len(data) + 4096)
    struct.pack_into("<HHH", b, 0x3a, 64, 0xffff, 0xfffe)
    out.append(("section-headers-past-eof", bytes(b)))
    b = bytearray(data)
    for _, typ, offset, size in shdrs:
        if typ == 3:            # SHT_STRTAB: no terminator, tabs and newlines
            b[offset:offset + size] = bytes(b"A\t\n\xff"[i % 4] for i in range(size))
    out.append(("unterminated-string-tables", bytes(b)))
    b = bytearray(data)
    for _, typ, offset, size in shdrs:
        if typ in (2, 11):      # SHT_SYMTAB, SHT_DYNSYM
            for s in range(offset, offset + size - 23, 24):
                struct.pack_into("<IBBHQQ", b, s, 0xffffff00 + rnd.randrange(256), 0x12, 0,
                                 rnd.randrange(0x10000), rnd.randrange(1 << 64), (1 << 64) - 1)
    out.append(("garbage-symbols", bytes(b)))
    b = bytearray(data)
    for off, _, _, _ in shdrs:
        # sh_link to itself or far away, huge sizes, zero entry sizes
        struct.pack_into("<Q", b, off + 0x20, 1 << 63)
        struct.pack_into("<I", b, off + 0x28, rnd.choice((0, 0xffffffff, 7)))
        struct.pack_into("<Q", b, off + 0x38, 0)
    out.append(("huge-sizes-bad-links", bytes(b)))
    b = bytearray(data)
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phnum, = struct.unpack_from("<H", data, 0x38)
    b[e_phoff:e_phoff + 56 * e_phnum] = bytes(rnd.randrange(256) for _ in range(56 * e_phnum))
    struct.pack_into("<H", b, 0x38, 0xffff)
    out.append(("random-program-headers", bytes(b)))
    # a valid file whose symbol names hold a tab and a newline
    out.append(("control-bytes-in-names", data.replace(b"lib_inner\0", b"lib\tinne\n\0")
                .replace(b"lib_entry\0", b"lib\x01entr\x7f\0")))
    return out


@test
def hostile_corrupted_elf_mapped_executable_with_names():
    g = guest("hostile/corrupt_elf.c", flags=NOPG)
    so = os.path.join(WORK, "corruptlib.so")
    run(["gcc", "-O0", "-fPIC", "-shared", "-o", so,
         os.path.join(os.path.dirname(g.src), "corruptlib.c")])
    syms = {n: a for a, _, n in nm_defined_text(so)}
    loads = [l.split() for l in run(["readelf", "-lW", so]).stdout.splitlines()
             if l.strip().startswith("LOAD")]

    def file_offset(vaddr):
        for f in loads:
            off, va, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if va <= vaddr < va + filesz:
                return vaddr - va + off
        raise Failure("0x%x in no LOAD segment" % vaddr)

    entry, inner = file_offset(syms["lib_entry"]), file_offset(syms["lib_inner"])
    data = open(so, "rb").read()
    for name, bad in corrupt_variants(data):
        path = os.path.join(WORK, "corrupt-%s.so" % name)
        with open(path, "wb") as f:
            f.write(bad)
        args = [path, "%x" % entry]
        out, trace = traced(g, args=args, trace_args="names=on", tag="-" + name,
                            ignore=lambda l: l.startswith("base "))
        same_as_native(g, out, args, ignore=lambda l: l.startswith("base "))
        base = int(re.search(r"base (0x[0-9a-f]+)", out).group(1), 16)
        events, _, _ = check_balanced(trace)
        n_entry, n_inner = len(calls_of(events, base + entry)), len(calls_of(events, base + inner))
        if (n_entry, n_inner) != (2, 4):
            raise Failure("%s: %d calls of lib_entry and %d of lib_inner, expected 2 and 4"
                          % (name, n_entry, n_inner))
        for e in events:
            if e[6] is None or any(ord(c) < 0x20 for c in e[6]):
                raise Failure("%s: unusable name %r" % (name, e[6]))


# ---- exec ------------------------------------------------------------------------

@test
def hostile_execve_from_a_deep_stack_flushes_the_trace():
    g = guest("hostile/exec_deep.c", flags=NOPG)
    args = ["1000", "/bin/echo"]
    out, trace = traced(g, args=args)
    same_as_native(g, out, args)
    events, _, summaries = check_balanced(trace)
    dive = calls_of(events, g.addr("dive"))
    if len(dive) != 1000 or len(summaries) != 1:
        raise Failure("%d calls of dive (the guest made 1000), %d summaries" % (len(dive), len(summaries)))


@test
def hostile_vfork_and_exec():
    g = guest("hostile/exec_deep.c", flags=NOPG)
    args = ["200", "/bin/echo", "vfork"]
    out, trace = traced(g, args=args, tag="-vfork")
    same_as_native(g, out, args)
    events, depth, summaries = check_balanced(trace)
    pids = {int(SID_PID.search(e[1]).group(1), 16) for e in events}
    if len(pids) != 2 or set(summaries) != pids:
        raise Failure("processes %s, summaries of %s" % (sorted(pids), sorted(summaries)))
    dive = calls_of(events, g.addr("dive"))
    if len(dive) != 200:
        raise Failure("%d calls of dive, the guest made 200" % len(dive))
    # the parent came back up: dive returned 200 times on its stack
    rets = [e for e in events if e[0] == "ret" and e[3] == g.addr("dive") and not e[5]]
    if len(rets) != 200:
        raise Failure("%d returns from dive, expected 200" % len(rets))


# ---- threads ---------------------------------------------------------------------

@test
def hostile_pthread_exit_and_cancel_from_deep_stacks():
    g = guest("hostile/cancel_exit.c", flags=NOPG)
    out, trace = traced(g)
    same_as_native(g, out)
    events, _, _ = check_balanced(trace)
    for fn in ("exit_dive", "cancel_dive"):
        per_stack = collections.Counter(e[1] for e in calls_of(events, g.addr(fn)))
        if sorted(per_stack.values()) != [300] * 3:
            raise Failure("calls of %s per stack: %s, expected 300 on each of 3" % (
                fn, sorted(per_stack.values())))


@test
def hostile_nested_signal_handlers_on_sigaltstack():
    g = guest("hostile/altstack.c", flags=NOPG)
    out, trace = traced(g)
    same_as_native(g, out)
    m = re.search(r"usr1 (\d+) usr2 (\d+) max nested (\d+) off the alternate stack (\d+)", out)
    events, _, _ = check_balanced(trace)
    handler = calls_of(events, g.addr("handler"))
    if len(handler) != int(m.group(1)) + int(m.group(2)) or m.group(3) != "6" or m.group(4) != "0":
        raise Failure("%d handler frames; the guest says %s" % (len(handler), m.group(0)))
    # each handler frame is popped by a normal return (the handlers return)
    rets = [e for e in events if e[0] == "ret" and e[3] == g.addr("handler")]
    if len(rets) != len(handler) or any(e[5] for e in rets):
        raise Failure("%d handler frames, %d returns (%d unwound)" % (
            len(handler), len(rets), sum(e[5] for e in rets)))


@test
def hostile_sigsegv_ten_thousand_frames_deep():
    g = guest("hostile/segv_deep.c", flags=NOPG)
    n = native(g)
    if n.returncode != -11:
        raise Failure("the native run exited %d, not by SIGSEGV" % n.returncode)
    # time(1) reports death by signal N as 128+N
    out, trace = traced(g, want_rc=128 + 11)
    same_as_native(g, out)
    events, depth, _ = check_balanced(trace)
    dive = calls_of(events, g.addr("dive"))
    if len(dive) != 10000 or max(depth.values()) < 10000:
        raise Failure("%d calls of dive in the trace, depth %s; the guest went 10000 deep"
                      % (len(dive), depth))


# 100,000 threads take about 100 s under plain QEMU alone on this 2-core
# machine kind (QEMU's thread creation), 108 s with both plugins: the test
# uses 40,000 against 4,000, which shows the same growth tenfold.
THREADS = (4000, 40000)


@test
def hostile_many_short_threads_memory_flat():
    g = guest("manythreads.c", flags=NOPG)
    rss = {}
    for n in THREADS:
        trace = os.path.join(WORK, "threads-%d.tsv" % n)
        t0 = time.time()
        p, used = timed([qemu()] + plugins(trace, "events=off") + [g.binary, str(n)], timeout=600)
        took = time.time() - t0
        if p.returncode != 0 or p.stdout != native(g, [str(n)]).stdout:
            raise Failure("%d threads: exit %d, output %r" % (n, p.returncode, p.stdout))
        _, summaries = read_tsv(trace)
        s = list(summaries.values())
        if len(s) != 1 or s[0]["stacks"] != n + 1:
            raise Failure("%d threads: summary %s" % (n, s))
        rss[n] = (used, took)
    small, big = THREADS
    grew = rss[big][0] - rss[small][0]
    # QEMU's own peak varies by about a megabyte between runs
    if grew > 4096:
        raise Failure("peak memory grew by %d KB from %d to %d threads (%s)" % (grew, small, big, rss))
    if rss[big][1] > 120:
        raise Failure("%d threads took %.0f s" % (big, rss[big][1]))


# ---- output errors -----------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(name, opts):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d])
    try:
        yield d
    finally:
        subprocess.run(["umount", d])


FORMATS = ("tsv", "uftrace", "folded", "chrome", "pandalog")


def run_format(g, fmt, out, args):
    extra = ",names=on" if fmt == "tsv" else ""
    cmd = [qemu(), "-plugin", PLUGIN, "-plugin", CALLTRACE + ",format=%s,out=%s%s" % (fmt, out, extra),
           g.binary] + list(args)
    return run(cmd, check=False, cwd=WORK, timeout=300)


def one_message(p, what):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    ours = [l for l in lines if l.startswith("calltrace:")]
    if len(ours) != 1:
        raise Failure("%s: %d calltrace messages, expected 1:\n%s" % (what, len(ours), p.stderr[-2000:]))
    return ours[0], [l for l in lines if not l.startswith("calltrace:")]


def tsv_lines(data):
    """Whole lines of a names=on trace without what differs between runs
    (stack ids hold the pid; QEMU places libraries differently each run):
    kind, depth, flag, name, module."""
    return [tuple(f[i] for i in (0, 2, 5, 6, 7)) if f[0] in ("call", "ret") else tuple(f)
            for f in (l.split("\t") for l in data.decode().splitlines())]


def uftrace_records(d):
    recs = {}
    for f in os.listdir(d):
        if f.endswith(".dat"):
            data = open(os.path.join(d, f), "rb").read()
            if len(data) % 16:
                raise Failure("%s/%s: %d bytes, not whole 16-byte records" % (d, f, len(data)))
            # type, magic and depth, and the address only if it is in the
            # (non-PIE) program: libraries move between runs
            words = [struct.unpack_from("<Q", data, i + 8)[0] for i in range(0, len(data), 16)]
            recs[f] = [w & 0xffff if w >> 16 >= 0x1000000 else w for w in words]
    return recs


def chrome_events(path):
    doc = json.load(open(path))
    return [(e["ph"], e.get("name"), e.get("tid") == e.get("pid"))
            for e in doc["traceEvents"] if e["ph"] in "BE"]


@test
def output_full_disk_every_format():
    """A 64 KiB tmpfs fills during the run: one message, the guest runs to
    its end unchanged, the output is a complete prefix of a full run's."""
    g = guest("hostile/chatty.c", flags=NOPG)
    args = ["20000"]
    want = native(g, args).stdout
    for fmt in FORMATS:
        ref = os.path.join(WORK, "full-ref." + fmt)
        r = run_format(g, fmt, ref, args)
        if r.returncode != 0 or r.stdout != want or r.stderr.strip():
            raise Failure("%s: the reference run failed: %s" % (fmt, r.stderr[-1000:]))
        with tmpfs("full-" + fmt, "size=64k") as d:
            if fmt == "folded":
                # its output is written at exit and small: leave it one page
                with open(os.path.join(d, "filler"), "wb") as f:
                    f.write(b"x" * (64 * 1024 - 4096))
            out = os.path.join(d, "trace." + fmt)
            p = run_format(g, fmt, out, args)
            what = "format=" + fmt
            if p.returncode != 0 or p.stdout != want:
                raise Failure("%s: exit %d, output %s:\n%s" % (what, p.returncode,
                              "unchanged" if p.stdout == want else "changed", p.stderr[-1000:]))
            msg, other = one_message(p, what)
            if other or "No space left" not in msg:
                raise Failure("%s: message %r, other stderr %s" % (what, msg, other))
            check_prefix(fmt, ref, out, what)


def check_prefix(fmt, ref, out, what):
    if fmt in ("tsv", "folded"):
        got = open(out, "rb").read()
        if got and not got.endswith(b"\n"):
            raise Failure("%s: the file ends inside a line" % what)
        full = open(ref, "rb").read()
        if fmt == "tsv":
            g_lines, f_lines = tsv_lines(got), tsv_lines(full)
            if g_lines != f_lines[:len(g_lines)]:
                raise Failure("%s: the %d bytes written are not a prefix of the full trace" % (
                    what, len(got)))
            if len(got) < 16 * 1024:
                raise Failure("%s: only %d bytes written on a 64 KiB disk" % (what, len(got)))
        else:
            extra = set(got.splitlines()) - set(full.splitlines())
            if extra:
                raise Failure("%s: lines not in the full run's output: %s" % (what, sorted(extra)[:3]))
    elif fmt == "uftrace":
        full, got = uftrace_records(ref), uftrace_records(out)
        if len(got) != 1 or len(full) != 1:
            raise Failure("%s: task files %s vs %s" % (what, sorted(got), sorted(full)))
        g_recs, f_recs = list(got.values())[0], list(full.values())[0]
        if g_recs != f_recs[:len(g_recs)] or not g_recs:
            raise Failure("%s: %d records, not a prefix of the full run's %d" % (
                what, len(g_recs), len(f_recs)))
        d = run(["uftrace", "dump", "--no-pager", "-d", out], check=False)
        if d.returncode != 0:
            raise Failure("%s: uftrace cannot read the prefix: %s" % (what, d.stderr[-500:]))
    elif fmt == "chrome":
        try:
            got = chrome_events(out)
        except ValueError as e:
            raise Failure("%s: not valid JSON: %s" % (what, e))
        full = chrome_events(ref)
        if not got or got != full[:len(got)]:
            raise Failure("%s: %d events, not a prefix of the full run's %d" % (what, len(got), len(full)))
    elif fmt == "pandalog":
        # whole chunks only, closed with a directory and header that PANDA's
        # readers accept; entries compared by name and depth (addresses move)
        try:
            got = plog_reader.read(out)
        except plog_reader.PlogError as e:
            raise Failure("%s: not a whole container: %s" % (what, e))
        full = plog_reader.read(ref)
        key = lambda es: [(e.get("function"), e.get("depth")) for e in es]
        if len(got) < 2 or key(got) != key(full)[:len(got)]:
            raise Failure("%s: %d entries, not a prefix of the full run's %d" % (
                what, len(got), len(full)))


@test
def output_unwritable_directory_every_format():
    """out= on a read-only file system: one message from calltrace, QEMU
    refuses to start the guest (as for any bad argument)."""
    g = guest("hostile/chatty.c", flags=NOPG)
    with tmpfs("readonly", "size=64k,ro") as d:
        for fmt in FORMATS:
            p = run_format(g, fmt, os.path.join(d, "sub" if fmt == "uftrace" else "t." + fmt), ["10"])
            msg, _ = one_message(p, "format=" + fmt)
            if p.returncode == 0 or p.stdout or "Read-only file system" not in msg:
                raise Failure("format=%s: exit %d, output %r, message %r" % (fmt, p.returncode,
                                                                              p.stdout, msg))
