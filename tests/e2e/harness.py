# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pieces of the end-to-end tests: building guests, running them under
QEMU with the plugins, and the independent references (uftrace, GDB).

Nothing here knows what the plugin should output: expectations come from the
references, run on the same binaries."""
import bisect
import collections
import os
import re
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CALLSTACK_BUILD", os.path.join(ROOT, "build"))
PLUGIN = os.path.join(BUILD, "libcallstack_instr.so")
CALLTRACE = os.path.join(BUILD, "libcalltrace.so")
QEMU_PREFIX = os.environ["QEMU_PREFIX"]
GUESTS = os.path.join(ROOT, "tests", "guests")
WORK = tempfile.mkdtemp(prefix="callstack-e2e-")


class Failure(Exception):
    pass


TESTS = []


def test(fn):
    """Registers an end-to-end test: a function that raises Failure."""
    TESTS.append(fn)
    return fn


def run_tests(tests, filters, label):
    """Runs the tests whose name contains one of filters (all if none),
    printing PASS/FAIL label/name each; returns (passed, failed)."""
    import traceback
    passed = failed = 0
    for t in tests:
        if filters and not any(f in t.__name__ for f in filters):
            continue
        try:
            t()
            print("PASS %s/%s" % (label, t.__name__), flush=True)
            passed += 1
        except Failure as e:
            print("FAIL %s/%s: %s" % (label, t.__name__, e), flush=True)
            failed += 1
        except Exception:
            print("FAIL %s/%s: %s" % (label, t.__name__, traceback.format_exc()), flush=True)
            failed += 1
    return passed, failed


def run(cmd, timeout=300, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise Failure("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return p


def qemu(arch="x86_64"):
    return os.path.join(QEMU_PREFIX, "bin", "qemu-" + arch)


# ---- guests -----------------------------------------------------------------

class Guest:
    """A test program compiled here, with its own functions' address ranges."""

    def __init__(self, name, src, binary, obj, pie=False, cross=None):
        self.name, self.src, self.binary, self.obj, self.pie = name, src, binary, obj, pie
        self.cross = cross                             # target triple, or None (native)
        self.own = own_functions(binary, obj, nm=tool(cross, "nm"))   # start -> (name, size)
        self._starts = sorted(self.own)

    def function_at(self, addr):
        """Start of the own function containing addr, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            s = self._starts[i]
            if addr < s + max(self.own[s][1], 1):
                return s
        return None

    def addr(self, name):
        for s, (n, _) in self.own.items():
            if n == name:
                return s
        raise Failure("no function %s in %s" % (name, self.binary))

    def name_of(self, addr):
        return self.own.get(addr, ("0x%x" % addr, 0))[0]


def tool(cross, name):
    """A binutils/GCC program for a target triple (None: the host's)."""
    return "%s-%s" % (cross, name) if cross else name


def compile_guest(src_name, flags=("-O0", "-pg"), cc=None, pie=False, cross=None):
    """Compiles a guest. Non-PIE by default; with pie=True a position-
    independent executable, whose load address the runs report. With
    cross=TRIPLE, the cross compiler TRIPLE-gcc/g++ builds it. src_name may
    name a file in a subdirectory of tests/guests (tests/guests/arch/...)."""
    src = os.path.join(GUESTS, src_name)
    base, ext = os.path.splitext(src_name.replace("/", "-"))
    cc = cc or tool(cross, "g++" if ext == ".cpp" else "gcc")
    # Every flag is in the name: builds that differ only by -pg (or any other
    # flag) must not overwrite each other's binary.
    tag = ("-pie" if pie else "") + "".join(re.sub(r"[^A-Za-z0-9]", "_", f) for f in flags)
    tag += "-" + cross if cross else ""
    out = os.path.join(WORK, base + tag)
    obj = out + ".o"
    common = ["-g", "-pthread"] + list(flags) + (["-fpie", "-pie"] if pie else ["-no-pie", "-fno-pie"])
    run([cc, "-c", src, "-o", obj] + common)
    run([cc, obj, "-o", out] + common)
    g = Guest(base + tag, src, out, obj, pie=pie, cross=cross)
    return g


def rebase(guest, events, load_base):
    """Events with addresses relative to the binary's link addresses."""
    if not load_base:
        return events
    return [e._replace(func=e.func - load_base, ret=e.ret - load_base) for e in events]


LOAD_LINE = re.compile(r"^\s*LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+"
                       r"0x[0-9a-f]+\s+([RWE ]+?)\s+0x")


def first_exec_vaddr(binary):
    """Link address of the first executable LOAD segment."""
    for line in run(["readelf", "-lW", binary]).stdout.splitlines():
        m = LOAD_LINE.match(line)
        if m and "E" in m.group(2):
            return int(m.group(1), 16)
    raise Failure("no executable LOAD segment in " + binary)


def nm_defined_text(path, nm="nm", sizeless=0):
    """(address, size, name) of the text symbols; with sizeless > 0, also
    the symbols nm knows no size for (assembler labels), with that size."""
    out = run([nm, "-S", "--defined-only", path]).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "TtWw":
            syms.append((int(f[0], 16), int(f[1], 16), f[3]))
        elif sizeless and len(f) == 3 and f[1] in "TtWw":
            syms.append((int(f[0], 16), sizeless, f[2]))
    return syms


def own_functions(binary, obj, nm="nm"):
    """Functions compiled from the test's own source: the text symbols the
    object file defines, located in the linked binary."""
    mine = {name for _, _, name in nm_defined_text(obj, nm)}
    return {addr: (name, size) for addr, size, name in nm_defined_text(binary, nm)
            if name in mine and size > 0}


# ---- the plugin ---------------------------------------------------------------

Event = collections.namedtuple("Event", "kind sid depth func ret unwound")


def parse_trace(path):
    events, callers, pandalog, summaries = [], [], [], []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                summaries.append(line)
                continue
            p = line.split("\t")
            if p[0] in ("call", "ret"):
                if len(p) < 6:
                    raise Failure("malformed trace line: %r" % line)
                events.append(Event(p[0], p[1], int(p[2]), int(p[3], 16), int(p[4], 16),
                                    p[5] == "unwound"))
            elif p[0] == "callers":
                callers.append((p[1], int(p[3], 16), [int(x, 16) for x in p[4].split(",") if x]))
            elif p[0] == "pandalog":
                pandalog.append((p[1], [int(x, 16) for x in p[2].split(",") if x]))
            else:
                raise Failure("unknown trace line: %r" % line)
    return events, callers, pandalog, summaries


def run_plugin(guest, args=(), plugin_args="", trace_args="", arch="x86_64", order="after",
               timeout=300, cwd=None, tag="", qemu_args=()):
    """Runs the guest under QEMU with callstack_instr and calltrace; returns
    (events, callers, pandalog, summaries, completed process)."""
    trace = os.path.join(WORK, "%s%s.trace" % (guest.name, tag))
    pagelog = trace + ".pages"
    cs = PLUGIN + ("," + plugin_args if plugin_args else "")
    ct = CALLTRACE + ",out=" + trace + ("," + trace_args if trace_args else "")
    plugins = ["-plugin", cs, "-plugin", ct] if order == "after" else ["-plugin", ct, "-plugin", cs]
    p = run([qemu(arch)] + list(qemu_args) + plugins + ["-d", "page", "-D", pagelog, guest.binary]
            + list(args),
            timeout=timeout, cwd=cwd or WORK)
    events, callers, pandalog, summaries = parse_trace(trace)
    if guest.pie:
        # QEMU's page log gives where the first executable segment went.
        start = None
        for line in open(pagelog):
            if line.startswith("start_code"):
                start = int(line.split()[1], 16)
                break
        if start is None:
            raise Failure("no start_code in QEMU's page log")
        base = start - first_exec_vaddr(guest.binary)
        events = rebase(guest, events, base)
        callers = [(sid, f - base, [a - base for a in lst]) for sid, f, lst in callers]
        pandalog = [(sid, [a - base for a in lst]) for sid, lst in pandalog]
    return events, callers, pandalog, summaries, p


def plugin_streams(guest, events, keep_unwound):
    """Per stack id: the sequence of (entry|exit, function) for own functions."""
    streams = collections.OrderedDict()
    for e in events:
        if e.func not in guest.own:
            continue
        if e.kind == "ret" and e.unwound and not keep_unwound:
            continue
        streams.setdefault(e.sid, []).append(("entry" if e.kind == "call" else "exit", e.func))
    return streams


# ---- references ----------------------------------------------------------------

UFTRACE_LINE = re.compile(r"^\s*[\d.]+\s+(\d+): \[(entry|exit )\] (.*)\(([0-9a-f]+)\) depth: (-?\d+)")


def uftrace_streams(guest, args=()):
    """Per thread: (entry|exit, function start) for own functions, from
    uftrace on the -pg build run natively."""
    d = os.path.join(WORK, "uftrace-" + guest.name)
    shutil.rmtree(d, ignore_errors=True)
    run(["uftrace", "record", "--no-pager", "--max-stack=65535", "-d", d, guest.binary] + list(args),
        cwd=WORK)
    out = run(["uftrace", "dump", "--no-pager", "-d", d]).stdout
    base = 0
    if guest.pie:
        import glob
        for mp in glob.glob(os.path.join(d, "sid-*.map")):
            for line in open(mp):
                # uftrace writes one line per module, starting at its base
                if guest.binary in line:
                    base = int(line.split("-")[0], 16)
                    break
            if base:
                break
        if not base:
            raise Failure("no load address of %s in uftrace's map" % guest.binary)
    streams = collections.OrderedDict()
    for line in out.splitlines():
        m = UFTRACE_LINE.match(line)
        if not m:
            continue
        tid, kind, _, addr = m.group(1), m.group(2).strip(), m.group(3), int(m.group(4), 16)
        func = guest.function_at(addr - base)
        if func is None:
            continue
        streams.setdefault(tid, []).append((kind, func))
    if not streams:
        raise Failure("uftrace recorded no events of %s's own functions" % guest.name)
    return streams


def gdb_backtraces(guest, func, hits=1, args=()):
    """Return addresses of the callers at each of the first `hits` entries of
    `func`, most recent first, from native GDB: frames #1.. of `bt`, relative
    to the binary's link addresses."""
    link = guest.addr(func)
    cmds = ["set pagination off", "set confirm off", "handle all nostop noprint pass",
            "break *%s" % func, "run",
            'printf "FUNCADDR %%lx\\n", %s' % func]
    for _ in range(hits):
        cmds += ['printf "HIT\\n"', "bt 100000", "continue"]
    argv = ["gdb", "-nx", "-batch"]
    for c in cmds:
        argv += ["-ex", c]
    p = run(argv + ["--args", guest.binary] + list(args), cwd=WORK, timeout=300, check=False)
    base = None
    traces = []
    for line in p.stdout.splitlines():
        if line.startswith("FUNCADDR "):
            base = int(line.split()[1], 16) - link
        elif line == "HIT":
            traces.append([])
        m = re.match(r"^#(\d+)\s+(0x[0-9a-f]+)?", line)
        if m and traces:
            if int(m.group(1)) == 0:
                continue
            if not m.group(2):
                raise Failure("gdb frame without address: %r" % line)
            traces[-1].append(int(m.group(2), 16))
    traces = [t for t in traces if t]
    if len(traces) < hits or base is None:
        raise Failure("gdb produced %d of %d backtraces:\n%s%s" % (
            len(traces), hits, p.stdout[-2000:], p.stderr[-2000:]))
    return [[f - base for f in t] for t in traces]


def gdb_backtrace(guest, func, args=()):
    return gdb_backtraces(guest, func, 1, args)[0]


def qemu_load_base(guest, arch="x86_64"):
    """Where QEMU loads a PIE guest (deterministic: qemu-user has no ASLR)."""
    if not guest.pie:
        return 0
    log = os.path.join(WORK, guest.name + ".base.pages")
    run([qemu(arch), "-d", "page", "-D", log, guest.binary], cwd=WORK, check=False)
    for line in open(log):
        if line.startswith("start_code"):
            return int(line.split()[1], 16) - first_exec_vaddr(guest.binary)
    raise Failure("no start_code in QEMU's page log")


# ---- comparison ----------------------------------------------------------------

def describe(guest, seq, i, width=4):
    lo = max(0, i - width)
    return ", ".join("%s %s" % (k, guest.name_of(f)) for k, f in seq[lo:i + width])


def compare_streams(guest, ref, got):
    """Each reference thread's sequence must equal exactly one plugin stack's
    sequence (threads are matched by content: host thread ids differ)."""
    ref_seqs = sorted((tuple(s) for s in ref.values()), key=lambda s: (len(s), s))
    got_seqs = sorted((tuple(s) for s in got.values()), key=lambda s: (len(s), s))
    if ref_seqs == got_seqs:
        return
    msg = ["%d reference threads (%s), %d plugin stacks (%s)" % (
        len(ref_seqs), [len(s) for s in ref_seqs], len(got_seqs), [len(s) for s in got_seqs])]
    unmatched = [s for s in got_seqs if s not in ref_seqs]
    for r in ref_seqs:
        if r in got_seqs:
            continue
        # show the first difference against the closest plugin stack
        best = max(unmatched or got_seqs, key=lambda g: common_prefix(r, g), default=())
        i = common_prefix(r, best)
        msg.append("reference thread of %d events differs from plugin stack of %d at event %d:\n"
                   "  reference: %s\n  plugin:    %s" % (len(r), len(best), i, describe(guest, r, i),
                                                       describe(guest, best, i)))
    raise Failure("\n".join(msg))


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def in_binary(guest, addr):
    return guest.function_at(addr) is not None


# ---- building blocks of tests ----------------------------------------------

_guests = {}


def guest(src, **kw):
    key = (src, tuple(sorted(kw.items())))
    if key not in _guests:
        _guests[key] = compile_guest(src, **kw)
    return _guests[key]


def check_against_uftrace(g, keep_unwound, plugin_args="", args=()):
    events, _, _, summaries, _ = run_plugin(g, args=args, plugin_args=plugin_args)
    got = plugin_streams(g, events, keep_unwound)
    ref = uftrace_streams(g, args=args)
    compare_streams(g, ref, got)
    return events, got, ref, summaries


def check_callers_against_gdb(g, func, plugin_args="", args=(), hits=1):
    """get_callers at the first `hits` entries of func equals GDB's backtrace
    there, for every frame in the program's own code (the C library's
    addresses differ between a native and an emulated run). Returns the
    plugin's callers lines."""
    addr = g.addr(func) + qemu_load_base(g)
    _, callers, pandalog, _, _ = run_plugin(g, args=args, plugin_args=plugin_args,
                                            trace_args="callers_at=0x%x" % addr, tag="-callers")
    if len(callers) < hits:
        raise Failure("%d callers lines for %s, expected %d" % (len(callers), func, hits))
    wants = gdb_backtraces(g, func, hits, args=args)
    for i in range(hits):
        got = callers[i][2]
        got_own, want_own = own_prefix(g, got), own_prefix(g, wants[i])
        if got_own != want_own or not want_own:
            raise Failure("callers at entry %d of %s differ:\n  gdb:    %s\n  plugin: %s" % (
                i + 1, func, fmt_addrs(g, want_own), fmt_addrs(g, got_own)))
        # pandalog_callstack_create: the first 16 of the same stack
        if len(pandalog) <= i or pandalog[i][1] != got[:16]:
            raise Failure("pandalog CallStack %s != first 16 callers %s" % (
                pandalog[i][1] if len(pandalog) > i else None, got[:16]))
    return callers[:hits]


def own_prefix(g, addrs):
    out = []
    for a in addrs:
        if not in_binary(g, a):
            break
        out.append(a)
    return out


def fmt_addrs(g, addrs):
    return " ".join("%s+0x%x" % (g.name_of(g.function_at(a)), a - g.function_at(a)) for a in addrs)


# ---- several consumers in one run ----------------------------------------------

def calltrace_copy(tag):
    """A copy of libcalltrace.so under another name: QEMU loads each copy as
    a separate plugin, so one run can feed several calltrace instances."""
    path = os.path.join(WORK, "libcalltrace-%s.so" % tag)
    if not os.path.exists(path):
        shutil.copy(CALLTRACE, path)
    return path


def run_calltraces(binary, traces, plugin_args="", args=(), arch="x86_64", timeout=300, cwd=None,
                   check=True, qemu_args=()):
    """Runs binary under QEMU with callstack_instr and one calltrace instance
    per element of `traces` (its argument string, e.g. "format=tsv,out=X");
    qemu_args go before the plugins. Returns the completed process."""
    cmd = [qemu(arch)] + list(qemu_args)
    cmd += ["-plugin", PLUGIN + ("," + plugin_args if plugin_args else "")]
    for i, t in enumerate(traces):
        so = CALLTRACE if i == 0 else calltrace_copy(str(i))
        cmd += ["-plugin", so + ("," + t if t else "")]
    return run(cmd + [binary] + list(args), timeout=timeout, cwd=cwd or WORK, check=check)


NamedEvent = collections.namedtuple("NamedEvent", "kind sid depth func ret unwound name module")


def parse_named_trace(path):
    """call/ret lines of a names=on tsv trace, with their NAME and MODULE
    columns (in file order)."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] in ("call", "ret"):
                if len(p) < 8:
                    raise Failure("no name columns in %r" % line)
                out.append(NamedEvent(p[0], p[1], int(p[2]), int(p[3], 16), int(p[4], 16),
                                      p[5] == "unwound", p[6], p[7]))
    return out


def thread_of(sid):
    """The thread id in a threaded stack id string (the pid for asid)."""
    m = re.search(r"threadID=0x([0-9a-f]+)", sid) or re.search(r"asid=0x([0-9a-f]+)", sid)
    if not m:
        raise Failure("unexpected stack id %r" % sid)
    return int(m.group(1), 16)
