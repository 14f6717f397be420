# SPDX-License-Identifier: GPL-2.0-or-later
"""calltrace's output formats and callstack_instr_symbolize.

Each format is read back by the tool that consumes it (uftrace's own
commands, Python's json parser, tools/pandalog-read) and compared, event by
event, with the tab-separated trace of the same run: a second calltrace
instance loaded in the same QEMU. Names are compared with nm, objdump and
readelf's view of the binaries: the program's own functions (PIE and not),
a stripped program (dynamic symbols only), PLT stubs, and libc's functions
(from its debug file, libc6-dbg)."""
import collections
import glob
import json
import os
import re
import shutil
import struct

import plog_reader

from harness import (BUILD, CALLTRACE, PLUGIN, ROOT, UFTRACE_LINE, WORK, Failure, compile_guest,
                     guest, parse_named_trace, qemu, qemu_load_base, run, run_calltraces, test,
                     thread_of)

READER = os.path.join(BUILD, "pandalog-read")


def traced(binary, tag, others=(), args=(), plugin_args="", qemu_args=()):
    """Runs binary with a names=on tsv instance first, then one instance per
    argument string in `others`; returns the tsv's events."""
    tsv = os.path.join(WORK, tag + ".tsv")
    run_calltraces(binary, ["out=%s,names=on" % tsv] + list(others), args=args,
                   plugin_args=plugin_args, qemu_args=qemu_args)
    return parse_named_trace(tsv)


def out_path(tag, ext):
    p = os.path.join(WORK, tag + ext)
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.unlink(p)
    return p


# ---- names against nm / objdump ---------------------------------------------------

def nm_symbols(path, dynamic=False):
    """Function symbols: (start, size, name), from nm (-D: .dynsym only)."""
    out = run(["nm", "-S", "--defined-only"] + (["-D"] if dynamic else []) + [path]).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "TtWwi":
            syms.append((int(f[0], 16), int(f[1], 16), f[3].split("@")[0]))
        elif len(f) == 3 and f[1] in "TtWwi":
            syms.append((int(f[0], 16), 0, f[2].split("@")[0]))
    return syms


def plt_stubs(path):
    """objdump's names of PLT stubs: address -> "name@plt"."""
    out = run(["objdump", "-d", "-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got", path],
              check=False).stdout
    return {int(m.group(1), 16): m.group(2)
            for m in re.finditer(r"^([0-9a-f]+) <(\S+@plt)>:", out, re.M)}


def expected_name(syms, plts, base_name, link):
    """The names calltrace may give a link-time address: an alias of the
    symbol starting there, "sym+0xN" inside one, the PLT stub, or
    "file+0xN" for an address no symbol covers."""
    at = {n for a, _, n in syms if a == link}
    if at:
        return at
    inside = {"%s+0x%x" % (n, link - a) for a, s, n in syms if a < link < a + s}
    if inside:
        return inside
    if link in plts:
        return {plts[link]}
    return {"%s+0x%x" % (base_name, link)}


def check_module_names(events, binary, load_base, dynamic):
    """Every call into `binary` is named as nm/objdump name it; returns the
    names seen."""
    path = os.path.realpath(binary)
    syms, plts = nm_symbols(binary, dynamic), plt_stubs(binary)
    seen = set()
    for e in events:
        if e.kind != "call" or e.module != path:
            continue
        want = expected_name(syms, plts, os.path.basename(binary), e.func - load_base)
        if e.name not in want:
            raise Failure("0x%x in %s named %r; nm/objdump: %s" % (e.func, binary, e.name,
                                                                   sorted(want)))
        seen.add(e.name)
    if not seen:
        raise Failure("no call into %s was attributed to it" % binary)
    return seen


def debug_file(path):
    """The detached debug file of a stripped file, by build-id, or None."""
    m = re.search(r"Build ID: ([0-9a-f]+)", run(["readelf", "-n", path]).stdout)
    if not m:
        return None
    d = "/usr/lib/debug/.build-id/%s/%s.debug" % (m.group(1)[:2], m.group(1)[2:])
    return d if os.path.exists(d) else None


def check_libc_names(events):
    """Calls into libc are named with its debug file's symbols (libc6-dbg;
    Debian's libc itself has no .symtab), at one consistent load bias;
    returns (names, bias)."""
    libc = [e for e in events if e.kind == "call" and re.search(r"/libc\.so", e.module)]
    if not libc:
        raise Failure("no call into libc was attributed to it")
    path = libc[0].module
    dbg = debug_file(path)
    if not dbg:
        raise Failure("no debug file for %s: is libc6-dbg installed (scripts/setup.sh)?" % path)
    by_name = collections.defaultdict(set)
    for a, _, n in nm_symbols(dbg):
        by_name[n].add(a)
    plts = plt_stubs(path)
    biases = None
    for e in libc:
        if e.name.endswith("@plt"):
            continue
        if "+0x" in e.name:
            raise Failure("libc call at 0x%x unnamed (%s) although its debug file names every "
                          "function" % (e.func, e.name))
        if e.name not in by_name:
            raise Failure("libc call named %r, which nm %s does not list" % (e.name, dbg))
        cand = {e.func - a for a in by_name[e.name]}
        biases = cand if biases is None else biases & cand
        if not biases:
            raise Failure("libc names imply different load addresses (at %r)" % e.name)
    if not biases or len(biases) != 1:
        raise Failure("no single libc load bias: %r" % biases)
    bias = biases.pop()
    for e in libc:
        if e.name.endswith("@plt") and plts.get(e.func - bias) != e.name:
            raise Failure("libc PLT stub at 0x%x named %r, objdump: %r" % (
                e.func, e.name, plts.get(e.func - bias)))
    return {e.name for e in libc}, bias


def want_names(seen, want, what):
    missing = set(want) - seen
    if missing:
        raise Failure("%s: no call named %s (seen: %s)" % (what, sorted(missing),
                                                          sorted(seen)[:40]))


NAMES_FLAGS = ("-O0", "-rdynamic")


@test
def names_own_plt_and_libc_functions():
    for pie in (False, True):
        g = guest("names.c", flags=NAMES_FLAGS, pie=pie)
        events = traced(g.binary, "names" + ("-pie" if pie else ""))
        seen = check_module_names(events, g.binary, qemu_load_base(g), dynamic=False)
        want_names(seen, {"main", "exported_work", "local_helper", "by_value", "qsort@plt",
                          "printf@plt"}, g.binary)
        libc_names, bias = check_libc_names(events)
        # qsort entered through a pointer: libc's own symbol, not the stub;
        # the static function it sorts with, from libc's debug file
        want_names(libc_names, {"qsort"}, "libc")
        if not any(n.startswith("msort_with_tmp") for n in libc_names):
            raise Failure("qsort's static helper msort_with_tmp is not named: %s" % sorted(libc_names))


@test
def names_with_a_guest_base():
    # qemu -B puts guest memory 1 TiB up in the host: the guest's mappings
    # are the host's shifted by guest_base, which the plugin must undo.
    g = guest("names.c", flags=NAMES_FLAGS, pie=True)
    events = traced(g.binary, "names-guest-base", qemu_args=("-B", "0x10000000000"))
    seen = check_module_names(events, g.binary, qemu_load_base(g), dynamic=False)
    want_names(seen, {"main", "exported_work", "local_helper", "qsort@plt"}, g.binary)
    want_names(check_libc_names(events)[0], {"qsort"}, "libc")


@test
def names_stripped_binary_from_dynsym():
    g = guest("names.c", flags=NAMES_FLAGS)
    stripped = os.path.join(WORK, "names-stripped")
    shutil.copy(g.binary, stripped)
    run(["strip", "--strip-all", stripped])
    if ".symtab" in run(["readelf", "-SW", stripped]).stdout:
        raise Failure("strip left a .symtab")
    events = traced(stripped, "names-stripped")
    seen = check_module_names(events, stripped, 0, dynamic=True)
    want_names(seen, {"main", "exported_work", "qsort@plt"}, stripped)
    # The static functions have no symbol left: file + link-time address,
    # which is where the unstripped twin's symbol table puts them.
    for name in ("local_helper", "by_value"):
        fallback = "names-stripped+0x%x" % g.addr(name)
        if fallback not in seen:
            raise Failure("%s not named %s (seen %s)" % (name, fallback, sorted(seen)))


# ---- uftrace ------------------------------------------------------------------

def uftrace_dump(d):
    """Per task: (entry|exit, name, address, depth) as uftrace dump reads them."""
    out = run(["uftrace", "dump", "--no-pager", "-d", d]).stdout
    recs = collections.defaultdict(list)
    for line in out.splitlines():
        m = UFTRACE_LINE.match(line)
        if m:
            recs[int(m.group(1))].append((m.group(2).strip(), m.group(3), int(m.group(4), 16),
                                          int(m.group(5))))
    return recs


def tsv_as_uftrace(events, close=True):
    """What the uftrace data must hold for these events: per thread, entry
    and exit records at the frame's depth (calltrace writes depth < 1024),
    then (close) an exit for each frame still open when the task ended,
    innermost first. A frame the trace never saw entered (a fork child's
    inherited frames) has name and address None: any will do."""
    per = collections.defaultdict(list)
    open_frames = collections.defaultdict(list)
    for e in events:
        depth = e.depth - 1 if e.kind == "call" else e.depth
        st = open_frames[e.sid]
        if e.kind == "call":
            del st[depth:]
            st.extend([(None, None)] * (depth - len(st)))
            st.append((e.name, e.func))
        else:
            del st[depth:]
        if depth <= 1023:
            per[thread_of(e.sid)].append(("entry" if e.kind == "call" else "exit", e.name,
                                          e.func, depth))
    for sid, st in open_frames.items() if close else ():
        for depth in reversed(range(min(len(st), 1024))):
            per[thread_of(sid)].append(("exit", st[depth][0], st[depth][1], depth))
    return per


def uftrace_name(name):
    """calltrace's name as uftrace shows it: a PLT stub by its target (as
    uftrace's own recordings name them)."""
    return name[:-4] if name.endswith("@plt") else name


def as_uftrace_shows(recs):
    """uftrace prints an address no file covers as <hex>; calltrace as 0xhex."""
    return [(k, n if n is None else "<%x>" % a if n.startswith("0x") else uftrace_name(n), a, d)
            for k, n, a, d in recs]


def same_records(got, want):
    """uftrace's records equal the expected ones; None in an expected one
    matches anything."""
    return len(got) == len(want) and all(
        all(w is None or g == w for g, w in zip(gr, wr)) for gr, wr in zip(got, want))


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i, x, y
    return min(len(a), len(b)), None, None


def uftrace_report_calls(d):
    out = run(["uftrace", "report", "--no-pager", "-d", d]).stdout
    calls = {}
    for line in out.splitlines():
        m = re.match(r"^\s*[\d.]+ \w+\s+[\d.]+ \w+\s+(\d+)\s+(\S.*)$", line)
        if m:
            calls[m.group(2).strip()] = int(m.group(1))
    return calls


def check_uftrace(g, tag, args=(), tasks=None, functions=(), plugin_args="", ordered=True):
    """ordered=False: a task mixes threads (asid), whose events two calltrace
    instances may see in different orders; compare them as a multiset."""
    d = out_path(tag, ".uftrace")
    events = traced(g.binary, tag, ["format=uftrace,out=" + d], args=args, plugin_args=plugin_args)
    got, want = uftrace_dump(d), tsv_as_uftrace(events)
    unclosed = tsv_as_uftrace(events, close=False)
    if sorted(got) != sorted(want):
        raise Failure("uftrace tasks %s, calltrace stacks %s" % (sorted(got), sorted(want)))
    for tid in want:
        if not ordered:
            # The frames open at the end depend on the order in which the
            # instance saw the threads' events: the exits closing them are
            # only checked to be exits, one per depth.
            got_c = collections.Counter(got[tid])
            extra = got_c - collections.Counter(as_uftrace_shows(unclosed[tid]))
            missing = collections.Counter(as_uftrace_shows(unclosed[tid])) - got_c
            depths = [d for _, _, _, d in extra.elements()]
            if missing or any(k != "exit" for k, _, _, _ in extra) or len(set(depths)) != len(depths):
                raise Failure("task %d: uftrace records differ from the tsv events: missing %r, "
                              "extra %r" % (tid, list(missing.items())[:5], list(extra.items())[:8]))
        elif not same_records(got[tid], as_uftrace_shows(want[tid])):
            i, x, y = first_diff(got[tid], as_uftrace_shows(want[tid]))
            raise Failure("task %d: uftrace dump differs at record %d of %d/%d: %r vs tsv %r" % (
                tid, i, len(got[tid]), len(want[tid]), x, y))
    info = run(["uftrace", "info", "--no-pager", "-d", d]).stdout
    m = re.search(r"number of tasks\s*:\s*(\d+)", info)
    if not m or int(m.group(1)) != len(want) or (tasks and len(want) != tasks):
        raise Failure("uftrace info: %r tasks, expected %d" % (m and m.group(1), tasks or len(want)))
    replay = run(["uftrace", "replay", "--no-pager", "-d", d, "-F", "main"]).stdout
    if not re.search(r"\|\s+main\(\) \{", replay):
        raise Failure("uftrace replay -F main shows no main() {:\n" + replay[:2000])
    calls = uftrace_report_calls(d)
    everything = run(["uftrace", "replay", "--no-pager", "-d", d]).stdout
    # (a task mixing threads, asid, has no meaningful pairing to close)
    if ordered and "remaining functions" in everything:
        raise Failure("uftrace replay ends with functions still open:\n" + everything[-2000:])
    for f in functions:
        n = sum(1 for e in events if e.kind == "call" and uftrace_name(e.name) == f)
        if calls.get(f) != n or n == 0:
            raise Failure("uftrace report: %s called %r times, the tsv trace has %d" % (
                f, calls.get(f), n))
        if len(re.findall(r"\| +%s\(\)" % re.escape(f), everything)) != n:
            raise Failure("uftrace replay does not show %s() %d times" % (f, n))
    graph = run(["uftrace", "graph", "--no-pager", "-d", d, "-F", "main"]).stdout
    if "main" not in graph:
        raise Failure("uftrace graph -F main shows no main")
    return d, events


@test
def uftrace_format_read_by_uftrace():
    check_uftrace(guest("recursion.c"), "rec-uftrace",
                  functions=("deep", "fib", "is_even", "cmp_int", "qsort"))


@test
def uftrace_format_threads():
    check_uftrace(guest("threads.c"), "threads-uftrace", tasks=5,
                  functions=("leaf_a", "leaf_b", "rec_c", "mid_d", "worker_c"))
    # asid stacks are per process: one task, whose records mix the threads
    # (so uftrace's own pairing of entries and exits, in report and replay,
    # is not compared)
    check_uftrace(guest("threads.c"), "threads-asid-uftrace", tasks=1, plugin_args="stack_type=asid",
                  ordered=False)


@test
def uftrace_format_fork_pie():
    # (uftrace counts the child's exit from split, entered before the fork,
    # as a call of the child's task: split is not compared)
    d, events = check_uftrace(guest("fork.c", flags=("-O0",), pie=True), "fork-uftrace", tasks=2,
                              functions=("child_work", "parent_work"))
    tasks = {thread_of(e.sid) for e in events if e.name == "child_work"}
    if len(tasks) != 1 or tasks == {thread_of(e.sid) for e in events if e.name == "parent_work"}:
        raise Failure("child_work and parent_work must be in different tasks")


@test
def uftrace_and_chrome_formats_longjmp():
    # frames abandoned by longjmp are unwound returns: exits for uftrace,
    # E events marked "unwound" for chrome
    g = guest("longjmp.c")
    check_uftrace(g, "longjmp-uftrace", functions=("dive", "after"))
    per, events = check_chrome(g, "longjmp-chrome")
    unwound = [ev["name"] for evs in per.values() for ev in evs
               if ev["ph"] == "E" and ev.get("args", {}).get("unwound")]
    want = [e.name for e in events if e.kind == "ret" and e.unwound]
    if unwound != want or want.count("dive") != 2 * 26:
        raise Failure("unwound E events %d (%d dive), the tsv trace has %d unwound returns" % (
            len(unwound), unwound.count("dive"), len(want)))


@test
def uftrace_format_depth_beyond_1023():
    # uftrace's records hold a depth below 1024: deeper frames are left out
    g = guest("recursion.c")
    d, events = check_uftrace(g, "deep-uftrace", args=("1500",))
    calls = uftrace_report_calls(d)
    under = sum(1 for e in events if e.kind == "call" and e.name == "deep" and e.depth <= 1024)
    if calls.get("deep") != under or under >= 1500:
        raise Failure("uftrace report: deep %r, expected the %d calls above depth 1024" % (
            calls.get("deep"), under))


# ---- Chrome trace-event JSON ------------------------------------------------------

def chrome_sequences(path):
    with open(path) as f:
        doc = json.load(f)
    per = collections.defaultdict(list)
    for ev in doc["traceEvents"]:
        if ev["ph"] in ("B", "E"):
            per[(ev["pid"], ev["tid"])].append(ev)
    return per


def check_chrome(g, tag, args=()):
    path = out_path(tag, ".json")
    events = traced(g.binary, tag, ["format=chrome,out=" + path], args=args)
    per = chrome_sequences(path)
    tsv = collections.defaultdict(list)
    for e in events:
        tsv[thread_of(e.sid)].append(e)
    if sorted(t for _, t in per) != sorted(tsv):
        raise Failure("chrome tids %s, calltrace threads %s" % (sorted(per), sorted(tsv)))
    for (pid, tid), evs in per.items():
        stack, last_ts, seq, closing, inherited = [], 0.0, [], 0, 0
        for ev in evs:
            if ev["ts"] < last_ts:
                raise Failure("tid %d: ts goes back at %r" % (tid, ev))
            last_ts = ev["ts"]
            args_ = ev.get("args", {})
            if ev["ph"] == "B":
                stack.append(ev["name"])
                if args_.get("inherited"):
                    inherited += 1
                    continue
                seq.append(("call", ev["name"]))
            else:
                if not stack or stack[-1] != ev["name"]:
                    raise Failure("tid %d: E %r does not close the open B %r" % (
                        tid, ev["name"], stack[-1:] or None))
                stack.pop()
                if args_.get("at_exit") or args_.get("thread_exit"):
                    closing += 1
                    continue
                seq.append(("ret", ev["name"]))
        if stack:
            raise Failure("tid %d: %d B events without E" % (tid, len(stack)))
        # tsv: every event of the thread, except returns from frames the
        # child inherited (their B is the "inherited" one)
        want = [(e.kind, e.name) for e in tsv[tid]]
        if seq != want:
            i, x, y = first_diff(seq, want)
            raise Failure("tid %d: chrome differs from the tsv trace at %d: %r vs %r" % (tid, i, x, y))
        # frames still open at the thread's or process's end are closed then
        left = tsv[tid][-1].depth if tsv[tid] else 0
        if closing != left:
            raise Failure("tid %d: %d frames closed at exit, %d were open" % (tid, closing, left))
    return per, events


@test
def chrome_format_balanced_and_equal_to_tsv():
    check_chrome(guest("recursion.c"), "rec-chrome")


@test
def chrome_format_threads():
    per, _ = check_chrome(guest("threads.c"), "threads-chrome")
    if len(per) != 5 or len({p for p, _ in per}) != 1:
        raise Failure("expected 5 threads of one process, got %s" % sorted(per))


@test
def chrome_format_fork_one_valid_file():
    per, _ = check_chrome(guest("fork.c"), "fork-chrome")
    if len({p for p, _ in per}) != 2:
        raise Failure("expected the parent's and the child's events, got %s" % sorted(per))


# ---- folded stacks -------------------------------------------------------------

def folded_from_tsv(events):
    """Count per call path, rebuilt from the events: the exact numbers the
    folded format must hold."""
    counts = collections.Counter()
    stacks = {}
    for e in events:
        st = stacks.setdefault(e.sid, [])
        if e.kind == "call":
            del st[e.depth - 1:]
            st.append(e.name)
            counts[";".join(st)] += 1
        else:
            del st[e.depth:]
    return counts


@test
def folded_format_counts_calls_exactly():
    for src in ("recursion.c", "threads.c"):
        g = guest(src)
        path = out_path("folded-" + src, ".folded")
        events = traced(g.binary, "folded-" + src, ["format=folded,out=" + path])
        got = collections.Counter()
        with open(path) as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                if not stack or not n.isdigit():
                    raise Failure("malformed folded line %r" % line)
                got[stack] += int(n)
        want = folded_from_tsv(events)
        if got != want:
            diff = sorted(set(got.items()) ^ set(want.items()))[:6]
            raise Failure("%s: folded stacks differ from the tsv trace: %r" % (src, diff))
        if sum(got.values()) != sum(1 for e in events if e.kind == "call"):
            raise Failure("counts do not add up to the number of calls")
        if not any(k.endswith(";main;deep;deep;deep") or k.endswith(";worker_c;rec_c;rec_c")
                   for k in got):
            raise Failure("no named deep path in %s" % path)


# ---- pandalog ---------------------------------------------------------------------

def read_pandalog(path, salvage=False):
    """Entries as tools/pandalog-read prints them."""
    p = run([READER] + (["--salvage"] if salvage else []) + [path])
    entries = []
    for line in p.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split("\t"))
        entries.append(fields)
    return entries


def callers_from_tsv(events):
    """Per call event: (stack id, function, depth, the first 16 return
    addresses of the stack after the call, most recent first)."""
    out, stacks = [], {}
    for e in events:
        st = stacks.setdefault(e.sid, [])
        if e.kind == "call":
            del st[e.depth - 1:]
            st.extend([None] * (e.depth - 1 - len(st)))    # frames never seen entered
            st.append(e.ret)
            out.append((e.sid, e.func, e.name, e.depth, list(reversed(st))[:16]))
        else:
            del st[e.depth:]
    return out


def check_plog_against_tsv(entries, events, inherited=False):
    """The independent reader's entries (placeholder first) equal the calls
    of the tsv trace of the same run, per stack, in order. `inherited`: the
    stacks began with frames entered before the trace (a fork child's), so
    the tsv gives only the most recent part of each CallStack."""
    if not entries or not entries[0]["placeholder"]:
        raise Failure("no PANDA placeholder first entry: %r" % entries[:1])
    entries = entries[1:]
    want = callers_from_tsv(events)
    if len(entries) != len(want):
        raise Failure("%d pandalog entries for %d calls" % (len(entries), len(want)))
    by_sid = collections.defaultdict(list)
    for en in entries:
        by_sid[en["stack"]].append(en)
    cursor = collections.Counter()
    for sid, func, name, depth, callers in want:
        en = by_sid[sid][cursor[sid]]
        cursor[sid] += 1
        got_callers = en["callers"]
        if inherited and len(got_callers) == len(callers):
            got_callers = [None if c is None else g for g, c in zip(got_callers, callers)]
        got = (en["func"], en.get("function"), en["depth"], got_callers)
        if got != (func, name, depth, callers):
            raise Failure("pandalog entry %s != tsv (%x, %s, %d, %s)" % (
                en, func, name, depth, [hex(c) for c in callers]))
    return entries


def exec_trace_pcs(log):
    """The pc of every block QEMU's -d exec log shows executed, in order
    (with -one-insn-per-tb: every instruction)."""
    pcs = []
    with open(log, errors="replace") as f:
        for line in f:
            m = TRACE.match(line)
            if m:
                pcs.append(int(m.group(1), 16))
    return pcs


TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


@test
def pandalog_format_is_pandas_container():
    """PANDA's plog container, read by a reader written from the format's
    description: every call's CallStack equals the tsv of the same run, pc
    is the call instruction and instr the number of guest instructions
    executed up to it, both checked against QEMU's own execution log of the
    same run, one instruction per block (the instr-th instruction executed
    is at pc)."""
    g = guest("recursion.c", flags=("-O0",))    # no -pg: no SIGPROF handler entries
    path = out_path("rec", ".plog")
    log = os.path.join(WORK, "rec-plog.exec.log")
    events = traced(g.binary, "rec-plog", ["format=pandalog,out=" + path],
                    qemu_args=["-one-insn-per-tb", "-d", "exec,nochain", "-D", log])
    entries = check_plog_against_tsv(plog_reader.read(path), events)
    pcs = exec_trace_pcs(log)
    os.unlink(log)
    for en in entries:
        if not 0 < en["instr"] <= len(pcs) or pcs[en["instr"] - 1] != en["pc"]:
            raise Failure("entry at instr %d, pc 0x%x: the log's instruction %d is at %s" % (
                en["instr"], en["pc"], en["instr"],
                hex(pcs[en["instr"] - 1]) if 0 < en["instr"] <= len(pcs) else "nowhere"))
        if not 0 < en["return"] - en["pc"] <= 15:
            raise Failure("call site 0x%x is not the instruction before 0x%x" % (en["pc"],
                                                                                en["return"]))
    # tools/pandalog-read agrees with the independent reader
    tool = read_pandalog(path)
    if [(int(t["instr"]), int(t["pc"], 16), [int(x, 16) for x in t["callers"].split(",") if x])
            for t in tool] != [(e["instr"], e["pc"], e["callers"]) for e in entries]:
        raise Failure("pandalog-read and the independent reader differ")


@test
def pandalog_format_damaged_files():
    """pandalog-read refuses damaged containers with one line, and salvages
    the chunks of one whose writer never finished."""
    g = guest("recursion.c")
    path = out_path("rec-dmg", ".plog")
    run_calltraces(g.binary, ["format=pandalog,out=" + path])
    data = open(path, "rb").read()
    want = read_pandalog(path)
    cases = {
        "truncated": (data[:-3], "directory"),
        "no header": (bytes(24) + data[24:], "did not finish"),
        "version": (b"\x07" + data[1:], "version"),
        "chunk damaged": (data[:140] + bytes(8) + data[148:], "chunk 0"),
        "short": (data[:50], "header"),
    }
    for what, (blob, word) in cases.items():
        bad = path + ".bad"
        with open(bad, "wb") as o:
            o.write(blob)
        p = run([READER, bad], check=False)
        err = p.stderr.strip().splitlines()
        if p.returncode != 1 or len(err) != 1 or word not in err[0]:
            raise Failure("%s: exit %d, stderr %r" % (what, p.returncode, p.stderr))
    # an unfinished file: no header, no directory
    unfinished = path + ".unfinished"
    (dir_pos,) = struct.unpack_from("<Q", data, 8)
    with open(unfinished, "wb") as o:
        o.write(bytes(128) + data[128:dir_pos])
    if read_pandalog(unfinished, salvage=True) != want:
        raise Failure("--salvage does not give the same entries")


@test
def pandalog_format_fork_child_writes_its_own():
    g = guest("fork.c")
    path = out_path("fork", ".plog")
    for old in glob.glob(path + ".*"):
        os.unlink(old)
    events = traced(g.binary, "fork-plog", ["format=pandalog,out=" + path])
    children = glob.glob(path + ".*")
    if len(children) != 1:
        raise Failure("child containers: %r" % children)
    child_pid = int(children[0].rsplit(".", 1)[1])
    parent = plog_reader.read(path)
    child = plog_reader.read(children[0])
    in_child = [e for e in events if thread_of(e.sid) == child_pid]
    if not in_child:
        raise Failure("no events of the child %d in the tsv" % child_pid)
    check_plog_against_tsv(child, in_child, inherited=True)
    check_plog_against_tsv(parent, [e for e in events if thread_of(e.sid) != child_pid])
    names = {e["function"] for e in child[1:]}
    if "child_work" not in names or "parent_work" in names:
        raise Failure("the child's container names %r" % sorted(names))


@test
def pandalog_format_callers_at_equals_pandalog_callstack_create():
    g = guest("recursion.c")
    at = "callers_at=0x%x" % g.addr("checkpoint")
    path = out_path("rec-at", ".plog")
    tsv = os.path.join(WORK, "rec-at.tsv")
    run_calltraces(g.binary, ["out=%s,%s" % (tsv, at), "format=pandalog,out=%s,%s" % (path, at)])
    lines = [l.rstrip("\n").split("\t") for l in open(tsv) if l.startswith("pandalog\t")]
    entries = read_pandalog(path)
    if not lines or len(entries) != len(lines):
        raise Failure("%d entries at checkpoint, tsv has %d pandalog lines" % (len(entries), len(lines)))
    for en, l in zip(entries, lines):
        if en["function"] != "checkpoint" or en["callers"] != l[2] or en["stack"] != l[1]:
            raise Failure("entry %r != tsv pandalog line %r" % (en, l))


# ---- arguments and the demo ----------------------------------------------------------

CALLTRACE_BAD_ARGS = [
    ("format=xml", ["format", "tsv", "uftrace", "folded", "chrome", "pandalog"]),
    ("names=maybe", ["names", "on", "off"]),
    ("format=uftrace,names=on", ["names", "format=tsv"]),
    ("format=folded,callers_at=0x1000", ["callers_at", "format=tsv", "pandalog"]),
    ("format=pandalog", ["pandalog", "out=PATH"]),
    ("format=uftrace,out=/proc/version/x", ["/proc/version/x"]),
]


@test
def calltrace_format_bad_arguments():
    g = guest("recursion.c")
    for arg, words in CALLTRACE_BAD_ARGS:
        p = run([qemu(), "-plugin", PLUGIN, "-plugin", CALLTRACE + "," + arg, g.binary],
                check=False, cwd=WORK)
        lines = [l for l in p.stderr.splitlines() if l.startswith("calltrace:")]
        if p.returncode == 0 or len(lines) != 1 or not all(w in lines[0] for w in words):
            raise Failure("%s: exit %d, messages %r lack %r" % (arg, p.returncode, lines, words))


@test
def demo_shows_named_call_tree():
    env = dict(os.environ, CALLSTACK_SKIP_APT="1")
    p = run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], env=env, timeout=600)
    out = p.stdout
    for want in (r"main\(\) \{", r"eval\(\) \{", r"factor\(\) \{", r"by_value\(\);",
                 r"qsort\(\) \{", r"report\(\) \{"):
        if not re.search(want, out):
            raise Failure("demo output lacks %s:\n%s" % (want, out[-3000:]))
