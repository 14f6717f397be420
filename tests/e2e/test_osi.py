# SPDX-License-Identifier: GPL-2.0-or-later
"""Whole-system threaded stacks through osi_linux (Linux introspection from
the kernel image's BTF), on the threaded test guest: two copies of
tests/guests/systhreads.c at once, four threads each, every thread running
functions of its own and printing its pid, tid and how many calls of its
own functions it made.

References, independent of the code under test: what each thread reports
about itself (pid and tid from getpid/gettid, its call count), the
program's symbol table (nm), and the guest kernel's own /proc/kallsyms of
the traced boot (printed on its console by init, parsed here).
"""
import bisect
import collections
import os
import re
import struct
import subprocess

from harness import BUILD, CALLTRACE, PLUGIN, QEMU_PREFIX, WORK, Failure, nm_defined_text, \
    parse_trace, run, test
from sysguest import Threads, guest_args, guest_dir, kallsyms_dump, parse_kallsyms_console, \
    read_kallsyms

OSI = os.path.join(BUILD, "libosi_linux.so")
BTF_TOOL = os.path.join(BUILD, "tests", "unit", "osi_btf_tool")
ARCHES = ("x86_64", "aarch64")
ROLES = ("main", "t1", "t2", "t3")
LEVELS = ("work", "level1", "level2", "leaf")
TEXT_RANGE = (0x20000000, 0x30000000)   # systhreads is linked there
# A kernel function each thread's system calls call, and how often per
# thread (systhreads.c: 1500 iterations, each a getppid, every 4th a
# sched_yield, every 8th a write, every 128th a nanosleep; a few more
# around them). Linux 6.1's x86_64 dispatches through x64_sys_call, whose
# switch tail-jumps to most system calls (a jump is no call); arm64 calls
# each one from invoke_syscall.
SYSCALL_PROBE = {"x86_64": ("x64_sys_call", 2075, 2275),
                 "aarch64": ("__arm64_sys_getppid", 1500, 1500)}


def threaded_id(pid, tid, kernel):
    return "(processID=0x%016x, threadID=0x%016x, isKernelMode=%s)" % (
        pid, tid, "true" if kernel else "false")


def role_functions(arch):
    """{address: role} of each role's own functions, from nm."""
    path = os.path.join(guest_dir(arch), "systhreads")
    syms = {name: addr for addr, _, name in nm_defined_text(path, sizeless=4)}
    out = {}
    for r in ROLES:
        for lv in LEVELS:
            name = "%s_%s" % (r, lv)
            if name not in syms:
                raise Failure("systhreads has no symbol %s" % name)
            out[syms[name]] = r
    return out


def boot(arch, tag, osi_args="", csi_args="", ct_args="", options=(), qemu_args=(), smp=2,
         kernel=None, osi="first"):
    """Boots the threaded guest with the plugins: osi_linux (kernel= the
    guest's own unless given) "first", "last" in the -plugin order, or not
    at all (None), callstack_instr, calltrace's tsv of the program's calls;
    returns (Threads, trace events, {stack id: its # stack fields}, the
    completed process, the trace's path)."""
    trace = os.path.join(WORK, "osi-%s-%s.trace" % (arch, tag))
    cmd = guest_args(arch, ["systhreads=1"] + list(options)) + ["-smp", str(smp)] + list(qemu_args)
    osi_plugin = ["-plugin", "%s,kernel=%s%s" % (OSI, kernel or os.path.join(guest_dir(arch), "kernel"),
                                                 "," + osi_args if osi_args else "")]
    cmd += osi_plugin if osi == "first" else []
    cmd += ["-plugin", PLUGIN + ("," + csi_args if csi_args else ""),
            "-plugin", "%s,out=%s,per_stack=on,only=0x%x-0x%x%s" % (
                CALLTRACE, trace, TEXT_RANGE[0], TEXT_RANGE[1], "," + ct_args if ct_args else "")]
    cmd += osi_plugin if osi == "last" else []
    p = run(cmd, timeout=900, stdin=subprocess.DEVNULL)
    threads = Threads(p.stdout)
    events, _, _, summary_lines = parse_trace(trace)
    stacks = {}
    for line in summary_lines:
        f = line.split("\t")
        if f[0] == "# stack":
            stacks[f[1]] = dict(kv.split("=", 1) for kv in f[2:])
    return threads, events, stacks, p, trace


def check_threaded(arch, threads, events, stacks):
    """Every thread's user stack holds its own calls and only those, under
    the ids it printed; it has a kernel stack of its own."""
    own = role_functions(arch)
    calls = collections.defaultdict(collections.Counter)     # stack -> role -> calls
    rets = collections.defaultdict(collections.Counter)
    unwound = collections.Counter()
    for e in events:
        r = own.get(e.func)
        if r is None:
            continue
        if e.kind == "call":
            calls[e.sid][r] += 1
        else:
            rets[e.sid][r] += 1
            unwound[e.sid] += e.unwound
    for (copy, role), t in sorted(threads.threads.items()):
        uid = threaded_id(t["pid"], t["tid"], False)
        if set(calls[uid]) != {role}:
            raise Failure("%s: thread %d/%s (pid %d tid %d): its user stack %s has calls of roles %s"
                          % (arch, copy, role, t["pid"], t["tid"], uid, dict(calls[uid])))
        if calls[uid][role] != t["calls"] or rets[uid][role] != t["calls"] or unwound[uid]:
            raise Failure("%s: thread %d/%s: %d calls and %d returns (%d unwound) of its functions "
                          "on %s; it made %d" % (arch, copy, role, calls[uid][role], rets[uid][role],
                                                 unwound[uid], uid, t["calls"]))
        kid = threaded_id(t["pid"], t["tid"], True)
        if kid not in stacks or int(stacks[kid]["calls"]) == 0:
            raise Failure("%s: thread %d/%s has no kernel stack %s" % (arch, copy, role, kid))
        # calltrace names each thread's stacks with its comm (threads
        # inherit the program's name)
        for sid in (uid, kid):
            if stacks.get(sid, {}).get("comm") != "systhreads":
                raise Failure("%s: %s: comm %r" % (arch, sid, stacks.get(sid, {}).get("comm")))
    # No role's functions anywhere else (a stack of another thread, a kernel stack).
    mine = {threaded_id(t["pid"], t["tid"], False) for t in threads.threads.values()}
    for sid, c in calls.items():
        if sid not in mine:
            raise Failure("%s: calls of the threads' functions on %s: %s" % (arch, sid, dict(c)))


def threaded(arch):
    threads, events, stacks, p, _ = boot(arch, "threaded", csi_args="verbose=on")
    if "stack_type=threaded (default with osi_linux)" not in p.stderr:
        raise Failure("%s: threaded is not the default with osi_linux:\n%s" % (arch, p.stderr[-2000:]))
    check_threaded(arch, threads, events, stacks)


@test
def osi_threaded_x86_64_smp2():
    threaded("x86_64")


@test
def osi_threaded_aarch64_smp2():
    threaded("aarch64")


@test
def osi_threaded_plugin_order():
    """osi_linux loaded after callstack_instr: threaded is still the
    default, and the stacks the same."""
    threads, events, stacks, _, _ = boot("x86_64", "order", osi="last")
    check_threaded("x86_64", threads, events, stacks)


@test
def osi_asid_mixes_threads():
    """stack_type=asid (as PANDA's): a process's threads share one user
    stack, so some stack holds several roles' calls."""
    for arch in ARCHES:
        threads, events, stacks, _, _ = boot(arch, "asid", csi_args="stack_type=asid")
        own = role_functions(arch)
        roles = collections.defaultdict(set)
        for e in events:
            if e.kind == "call" and e.func in own:
                roles[e.sid].add(own[e.func])
        if not any(len(r) > 1 for r in roles.values()):
            raise Failure("%s: no asid stack mixes threads: %s" % (arch, dict(roles)))
        if any("processID" in s for s in stacks):
            raise Failure("%s: threaded ids with stack_type=asid" % arch)


def record_replay(arch):
    """A recorded run and its replay give the same threaded streams."""
    rr = os.path.join(WORK, "osi-%s.rr" % arch)
    # Up to the end mark init runs after the threads (sysprog's the_end):
    # the replay stops where the recording does, the run not quite.
    sysprog = os.path.join(guest_dir(arch), "sysprog")
    end = [a for a, _, n in nm_defined_text(sysprog, sizeless=4) if n == "the_end"][0]
    out = []
    for mode in ("record", "replay"):
        threads, events, stacks, _, trace = boot(
            arch, "rr-" + mode, smp=1, ct_args="until=0x%x" % end,
            qemu_args=["-icount", "shift=auto,rr=%s,rrfile=%s" % (mode, rr)])
        check_threaded(arch, threads, events, stacks)
        with open(trace) as f:
            out.append([l for l in f if not l.startswith("# summary")])
    if out[0] != out[1]:
        i = next(i for i, (x, y) in enumerate(zip(out[0] + [""], out[1] + [""])) if x != y)
        raise Failure("record and replay differ at line %d: %r vs %r" % (i, out[0][i:i + 1],
                                                                        out[1][i:i + 1]))


@test
def osi_record_replay_x86_64():
    record_replay("x86_64")


@test
def osi_record_replay_aarch64():
    record_replay("aarch64")


def kernel_names(arch):
    """Kernel functions named from another boot's kallsyms: the traced boot
    prints its own /proc/kallsyms (the reference); the map given to
    osi_linux is a dump of a boot with another KASLR slide."""
    other = kallsyms_dump(arch, kaslr=True, boot="b")
    # The traced boot's layout must be known beforehand to filter on its
    # getppid: x86_64 boots it with nokaslr, aarch64 boots without a seed
    # (the guest's default); the map from boot b is randomised in both.
    options = ["kallsyms=1"] + (["nokaslr"] if arch == "x86_64" else [])
    probe, least, most = SYSCALL_PROBE[arch]
    ref_before = read_kallsyms(kallsyms_dump(arch, kaslr=False, boot="a"))
    starts = sorted({a for a, _, _, m in ref_before if m is None})
    at = [a for a, _, n, m in ref_before if n == probe and m is None]
    if len(at) != 1:
        raise Failure("%s: %s found %d times in the kallsyms dump" % (arch, probe, len(at)))
    lo, hi = at[0], starts[bisect.bisect_right(starts, at[0])]
    threads, events, stacks, p, trace = boot(
        arch, "names", osi_args="kallsyms=%s,verbose=on" % other,
        ct_args="names=on,only=0x%x-0x%x" % (lo, hi), options=options)
    own = sorted((a, n) for a, t, n, m in
                 ((int(l.split()[0], 16), l.split()[1], l.split()[2], None)
                  for l in parse_kallsyms_console(p.stdout)) if t in "tTwW")
    if not own:
        raise Failure("%s: the traced boot printed no kallsyms" % arch)
    addrs = [a for a, _ in own]
    # calltrace's named lines: call STACK DEPTH FUNC RET FLAG NAME MODULE
    named = collections.Counter()
    checked = 0
    with open(trace) as f:
        for line in f:
            fs = line.rstrip("\n").split("\t")
            if fs[0] not in ("call", "ret") or len(fs) < 8:
                continue
            func = int(fs[3], 16)
            if func < 1 << 63:
                continue
            i = bisect.bisect_right(addrs, func) - 1
            want = own[i][1] if func == own[i][0] else "%s+0x%x" % (own[i][1], func - own[i][0])
            if fs[6] != want:
                raise Failure("%s: 0x%x named %r, the boot's own kallsyms says %r" % (
                    arch, func, fs[6], want))
            checked += 1
            if fs[0] == "call" and fs[6] == probe:
                named[fs[1]] += 1
    for (copy, role), t in threads.threads.items():
        kid = threaded_id(t["pid"], t["tid"], True)
        if not least <= named[kid] <= most:
            raise Failure("%s: thread %d/%s: %d calls of %s on its kernel stack %s; its system "
                          "calls make %d to %d" % (arch, copy, role, named[kid], probe, kid, least,
                                                   most))
    if "KASLR slide" not in p.stderr or checked < 8 * least:
        raise Failure("%s: %d named kernel events; stderr %s" % (arch, checked, p.stderr[-1500:]))


@test
def osi_kernel_names_x86_64():
    kernel_names("x86_64")


@test
def osi_kernel_names_aarch64():
    kernel_names("aarch64")


def refused(args, want, arch="x86_64", qemu_args=None):
    """QEMU with osi_linux,ARGS exits non-zero with one osi_linux line
    containing `want`, before the guest runs."""
    q = os.path.join(QEMU_PREFIX, "bin", "qemu-system-" + arch)
    cmd = [q] + (qemu_args if qemu_args is not None else ["-M", "none", "-nographic"]) + [
        "-plugin", OSI + ("," + args if args else "")]
    p = run(cmd, check=False, timeout=120, stdin=subprocess.DEVNULL)
    lines = [l for l in p.stderr.splitlines() if l.startswith("osi_linux:")]
    if p.returncode == 0 or len(lines) != 1 or want not in lines[0]:
        raise Failure("osi_linux,%s: exit %d, stderr %r (wanted one line with %r)" % (
            args, p.returncode, p.stderr[-800:], want))


@test
def osi_bad_input_refused():
    """Each bad input: one clear line and a non-zero exit before the guest
    runs."""
    g = guest_dir("x86_64")
    kernel = os.path.join(g, "kernel")
    junk = os.path.join(WORK, "osi-junk.bin")
    with open(kernel, "rb") as f:
        head = bytearray(f.read(0x4000))
    # A bzImage whose payload is garbage: the setup header stays, the
    # payload's first bytes (its compression magic) become junk.
    setup_sects = head[0x1f1] or 4
    payload = (setup_sects + 1) * 512 + struct.unpack_from("<I", head, 0x248)[0]
    with open(kernel, "rb") as f:
        data = bytearray(f.read())
    data[payload:payload + 16] = b"\x13\x37" * 8
    with open(junk, "wb") as f:
        f.write(data)
    refused("", "kernel=PATH is required")
    refused("kernel=" + os.path.join(WORK, "no-such-kernel"), "no-such-kernel")
    refused("kernel=" + os.path.join(g, "systhreads"), "BTF")           # an ELF without BTF
    refused("kernel=" + junk, "compression")
    refused("kernel=" + os.path.join(guest_dir("aarch64"), "kernel"), "another architecture")
    refused("kernel=%s,kallsyms=%s" % (kernel, os.path.join(WORK, "no-such-map")), "no-such-map")
    refused("kernel=%s,colour=red" % kernel, "unknown argument")
    # linux-user has its own view of threads.
    p = run([os.path.join(QEMU_PREFIX, "bin", "qemu-x86_64"), "-plugin", OSI + ",kernel=" + kernel,
             "/bin/true"], check=False, timeout=60)
    if p.returncode == 0 or "whole-system mode only" not in p.stderr:
        raise Failure("user mode: exit %d, %r" % (p.returncode, p.stderr[-400:]))


def btf_members(blob, struct_name):
    """{member name: (offset of its u32 'offset' field in blob, bit offset)}
    of a BTF struct, read with a BTF parser written here from the format
    (header, then types of 12 bytes plus a kind-specific tail)."""
    magic, ver, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", blob)
    if magic != 0xeb9f:
        raise Failure("not BTF")
    types, strs = hdr_len + type_off, hdr_len + str_off

    def name(off):
        end = blob.index(b"\0", strs + off)
        return blob[strs + off:end].decode()

    tail = {1: lambda v: 4, 2: lambda v: 0, 3: lambda v: 12, 4: lambda v: 12 * v, 5: lambda v: 12 * v,
            6: lambda v: 8 * v, 7: lambda v: 0, 8: lambda v: 0, 9: lambda v: 0, 10: lambda v: 0,
            11: lambda v: 0, 12: lambda v: 0, 13: lambda v: 8 * v, 14: lambda v: 4,
            15: lambda v: 12 * v, 16: lambda v: 0, 17: lambda v: 4, 18: lambda v: 0,
            19: lambda v: 12 * v}
    pos = types
    while pos < types + type_len:
        name_off, info, _ = struct.unpack_from("<III", blob, pos)
        kind, vlen, kflag = (info >> 24) & 0x1f, info & 0xffff, info >> 31
        if kind == 4 and name(name_off) == struct_name:
            out = {}
            for i in range(vlen):
                m = pos + 12 + 12 * i
                mname, _, off = struct.unpack_from("<III", blob, m)
                out[name(mname)] = (m + 8, off & 0xffffff if kflag else off)
            return out
        pos += 12 + tail[kind](vlen)
    raise Failure("no struct %s in the BTF" % struct_name)


@test
def osi_wrong_offsets_detected():
    """A kernel description whose offsets do not fit the running kernel (the
    guest's own BTF with task_struct.pid moved onto comm) is detected at run
    time: one warning, no thread ids, the asid fallback, and the guest runs
    to its end."""
    arch = "x86_64"
    blob_path = os.path.join(WORK, "osi-vmlinux.btf")
    run([BTF_TOOL, os.path.join(guest_dir(arch), "kernel"), blob_path])
    blob = bytearray(open(blob_path, "rb").read())
    members = btf_members(blob, "task_struct")
    if "pid" not in members or "comm" not in members:
        raise Failure("task_struct lacks pid or comm in the BTF")
    struct.pack_into("<I", blob, members["pid"][0], members["comm"][1])
    bad = os.path.join(WORK, "osi-wrong.btf")
    with open(bad, "wb") as f:
        f.write(blob)
    _, _, stacks, p, _ = boot(arch, "wrong", kernel=bad, smp=1)   # (the guest runs to its end)
    warn = [l for l in p.stderr.splitlines() if l.startswith("osi_linux:")]
    if len(warn) != 1 or "makes no sense" not in warn[0]:
        raise Failure("wanted one osi_linux warning, got %r" % warn)
    ids = list(stacks)
    user = [i for i in ids if "isKernelMode=false" in i or i.startswith("(asid=")]
    if not any(i.startswith("(asid=") for i in user):
        raise Failure("no asid fallback stacks: %s" % ids[:10])
    # The unaltered blob (a raw BTF file is accepted as kernel=) gives
    # threaded stacks: the alteration is what was detected.
    threads, events, stacks, _, _ = boot(arch, "rawbtf", kernel=blob_path)
    check_threaded(arch, threads, events, stacks)


@test
def heuristic_whole_system_splits_threads():
    """stack_type=heuristic in whole-system mode (no osi_linux needed):
    (asid, stack-pointer region) stacks, as PANDA's; the threads' stacks lie
    far apart, so every stack holds one role's calls, and all of them are
    there."""
    for arch in ARCHES:
        threads, events, _, _, _ = boot(arch, "heuristic", csi_args="stack_type=heuristic",
                                         osi=None)
        own = role_functions(arch)
        roles = collections.defaultdict(collections.Counter)
        for e in events:
            if e.kind == "call" and e.func in own:
                roles[e.sid][own[e.func]] += 1
        total = collections.Counter()
        for sid, c in roles.items():
            if len(c) != 1 or not sid.startswith("(asid=") or ", sp=" not in sid:
                raise Failure("%s: stack %s holds %s" % (arch, sid, dict(c)))
            total.update(c)
        want = collections.Counter()
        for (_, role), t in threads.threads.items():
            want[role] += t["calls"]
        if total != want:
            raise Failure("%s: calls per role %s, the threads made %s" % (arch, dict(total), dict(want)))


@test
def osi_uftrace_one_task_per_thread():
    """calltrace format=uftrace in whole-system threaded mode: one task
    (<tid>.dat, task.txt's TASK line with the thread's pid) per guest
    thread, holding its own calls (as many as it counted, no other role's)
    and, nested above them, the kernel's calls made on its behalf."""
    arch = "x86_64"
    out = os.path.join(WORK, "osi-uftrace")
    cmd = guest_args(arch, ["systhreads=1"]) + ["-smp", "2",
        "-plugin", "%s,kernel=%s" % (OSI, os.path.join(guest_dir(arch), "kernel")),
        "-plugin", PLUGIN, "-plugin", "%s,format=uftrace,out=%s" % (CALLTRACE, out)]
    p = run(cmd, timeout=900, stdin=subprocess.DEVNULL)
    threads = Threads(p.stdout)
    own = role_functions(arch)
    tasks = {}
    for line in open(os.path.join(out, "task.txt")):
        m = re.match(r"TASK timestamp=\S+ tid=(\d+) pid=(\d+)", line)
        if m:
            tasks[int(m.group(1))] = int(m.group(2))
    for (copy, role), t in sorted(threads.threads.items()):
        if tasks.get(t["tid"]) != t["pid"]:
            raise Failure("thread %d/%s: task.txt gives tid %d pid %r" % (copy, role, t["tid"],
                                                                         tasks.get(t["tid"])))
        with open(os.path.join(out, "%d.dat" % t["tid"]), "rb") as f:
            data = f.read()
        roles, kernel, nested = collections.Counter(), 0, 0
        for i in range(0, len(data) - 15, 16):
            _, bits = struct.unpack_from("<QQ", data, i)
            entry, depth, addr = (bits & 3) == 0, (bits >> 6) & 0x3ff, bits >> 16
            if not entry:
                continue
            if addr in own:
                roles[own[addr]] += 1
            elif addr >= 1 << 47:          # a kernel address (48 bits kept)
                kernel += 1
                # above ROLE_work, level1, level2, leaf and the C library's
                # system-call wrapper: a system call of the leaf
                nested += depth >= 5
        if set(roles) != {role} or roles[role] != t["calls"]:
            raise Failure("thread %d/%s: its task holds calls %s; it made %d" % (
                copy, role, dict(roles), t["calls"]))
        if kernel < 2000 or nested < 1500:
            raise Failure("thread %d/%s: %d kernel entries, %d of them above its leaf" % (
                copy, role, kernel, nested))
