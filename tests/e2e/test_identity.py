# SPDX-License-Identifier: GPL-2.0-or-later
"""A function has one address, on every architecture, and the linker's
call stubs are named target@plt.

The reference for the program's functions is the program itself: built
with -finstrument-functions, it prints every function address GCC's entry
hook receives (tests/guests/identity.c), i.e. the address C gives the
function. Every call the plugin reports into one of the program's functions
must be at exactly that address (ppc64le: not at the local entry point 8
bytes further), named exactly as the symbol table names it, in the tsv
trace, the folded stacks and the uftrace data, and get_callers at that
address (callers_at=) must fire.

The reference for stubs is the toolchain's own view of the binary: the
stubs objdump names NAME@plt (x86_64, i386, arm, aarch64, ppc, riscv64), the
NNNNNNNN.plt_call.NAME symbols ld writes for its ppc64 call stubs, and
.dynsym's stub addresses of undefined functions (MIPS)."""
import collections
import os
import re

from harness import WORK, Failure, guest, parse_named_trace, run, run_calltraces, test, tool
from test_arches import ARCHES, cross_guest, sysroot
from test_formats import uftrace_report_calls

FLAGS = ("-O2", "-fno-optimize-sibling-calls", "-finstrument-functions")
OWN = ("main", "fib", "apply", "twice", "by_libc", "__cyg_profile_func_enter",
       "__cyg_profile_func_exit")
LIBC_CALLS = ("qsort", "puts")      # called through stubs wherever the linker makes them


def reported_functions(stdout, arch):
    """The guest's own report: its functions' addresses (ARM: a Thumb
    function's address has bit 0 set, the code starts at the even one)."""
    addrs = {int(m.group(1), 16) for m in re.finditer(r"^fn 0x([0-9a-f]+)$", stdout, re.M)}
    return {a & ~1 if arch == "arm" else a for a in addrs}


def linker_stubs(g, arch):
    """address -> NAME@plt, from the toolchain's view of the binary."""
    stubs = {}
    if arch.startswith("mips"):
        out = run([tool(g.cross, "readelf"), "--dyn-syms", "-W", g.binary]).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 8 and f[3] == "FUNC" and f[6] == "UND" and int(f[1], 16):
                stubs[int(f[1], 16)] = f[7].split("@")[0] + "@plt"
    elif arch == "ppc64le":
        out = run([tool(g.cross, "readelf"), "-sW", g.binary]).stdout
        for m in re.finditer(r":\s*([0-9a-f]+)\s+\d+\s+NOTYPE\s+LOCAL\s+\S+\s+\d+\s+"
                             r"[0-9a-f]{8}\.plt_call\.([^@\s]+)", out):
            stubs[int(m.group(1), 16)] = m.group(2) + "@plt"
    else:
        out = run([tool(g.cross, "objdump"), "-d", g.binary]).stdout
        for m in re.finditer(r"^([0-9a-f]+) <([^>+]+@plt)>:$", out, re.M):
            stubs[int(m.group(1), 16)] = m.group(2)
    return stubs


def check_identity(arch):
    native = arch == "x86_64"
    g = guest("identity.c", flags=FLAGS) if native else cross_guest(arch, "identity.c", FLAGS)
    qargs = () if native else sysroot(arch)
    tag = "identity-" + arch
    tsv, folded = os.path.join(WORK, tag + ".tsv"), os.path.join(WORK, tag + ".folded")
    udir = os.path.join(WORK, tag + ".uftrace")
    p = run_calltraces(g.binary, ["out=%s,names=on" % tsv, "format=folded,out=" + folded,
                                  "format=uftrace,out=" + udir],
                       arch=arch, qemu_args=qargs)
    reported = reported_functions(p.stdout, arch)
    names = {a: g.own[a][0] for a in reported if a in g.own}
    if set(names.values()) != set(OWN):
        raise Failure("the guest reported %s, nm knows %s of them" % (
            sorted(hex(a) for a in reported), sorted(names.values())))
    events = [e for e in parse_named_trace(tsv) if e.kind == "call"]

    # every call into the program's functions is at the reported address, by its name
    calls = collections.Counter()
    for e in events:
        start = g.function_at(e.func)
        if start is None:
            continue
        if e.func not in names:
            raise Failure("call of 0x%x (%s), inside %s at 0x%x: the guest reports %s" % (
                e.func, e.name, g.name_of(start), start,
                ", ".join("%s 0x%x" % (n, a) for a, n in names.items())))
        if e.name != names[e.func]:
            raise Failure("0x%x is named %r, nm says %r" % (e.func, e.name, names[e.func]))
        calls[e.name] += 1
    # main may be entered by a jump (AArch64's crt1 calls __wrap_main, which
    # jumps to it); every other function is called
    missing = [n for n in OWN if not calls[n] and n != "main"]
    if missing:
        raise Failure("no call events for %s" % missing)

    # stubs: named as the toolchain names them, and the C library reached through them
    stubs = linker_stubs(g, arch)
    binary = os.path.realpath(g.binary)

    def in_program(e):
        return e.module != "-" and os.path.realpath(e.module) == binary

    for e in events:
        if e.func in stubs and e.name != stubs[e.func]:
            raise Failure("stub 0x%x is named %r, expected %r" % (e.func, e.name, stubs[e.func]))
        if e.name.endswith("@plt") and in_program(e) and stubs.get(e.func) != e.name:
            raise Failure("0x%x is named %r, which the toolchain does not call a stub" % (
                e.func, e.name))
    called = {e.name for e in events}
    for f in LIBC_CALLS:
        if f + "@plt" not in called:
            raise Failure("no call of %s@plt (calls: %s)" % (f, sorted(called)[:30]))

    # folded stacks: the same names, as many calls per function
    folded_calls = collections.Counter()
    with open(folded) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            leaf = stack.split(";")[-1]
            if any(re.match(r"^(%s)\+0x" % "|".join(OWN), part) for part in stack.split(";")):
                raise Failure("a function split by offset in the folded stacks: %r" % line)
            if leaf in OWN:
                folded_calls[leaf] += int(n)
    if folded_calls != calls:
        raise Failure("folded calls %s, tsv calls %s" % (dict(folded_calls), dict(calls)))

    # uftrace: its report counts calls by name
    report = uftrace_report_calls(udir)
    got = {n: report.get(n, 0) for n in OWN}
    if got != {n: calls[n] for n in OWN}:
        raise Failure("uftrace report: %s, tsv: %s" % (got, dict(calls)))

    # get_callers fires at each reported address (the frames carry it)
    ctsv = os.path.join(WORK, tag + "-callers.tsv")
    at = ",".join("callers_at=0x%x" % a for a in sorted(names))
    run_calltraces(g.binary, ["out=%s,events=off,%s" % (ctsv, at)], arch=arch,
                   qemu_args=qargs)
    fired = set()
    with open(ctsv) as fh:
        for line in fh:
            if line.startswith("callers\t"):
                fired.add(int(line.split("\t")[3], 16))
    want = {a for a, n in names.items() if calls[n]}
    if fired != want:
        raise Failure("callers_at fired for %s, expected %s" % (
            sorted(names.get(a, hex(a)) for a in fired), sorted(names[a] for a in want)))


def make_test(arch):
    def fn():
        check_identity(arch)
    fn.__name__ = "%s_function_identity_and_stub_names_vs_guest_report" % arch
    test(fn)


for _arch in ["x86_64"] + list(ARCHES):
    make_test(_arch)
