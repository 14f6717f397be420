#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""callstack_instr benchmark: real Debian programs under qemu-x86_64, plain
and with the plugin in each configuration, alternated round-robin.

Run through bench/run.sh (which installs missing packages and builds);
see bench/README.md. Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BEGIN = "<!-- BEGIN GENERATED %s by bench/bench.py: do not edit by hand -->"
END = "<!-- END GENERATED %s -->"

# The performance targets the verdicts compare against.
TARGET_RATIO = {"threaded": 1.15, "asid": 1.15, "heuristic": 1.3}
TARGET_CONSUMER_EXTRA = 0.05
# calltrace writing a format (threaded+FORMAT): at most this much over the
# plugin alone; tsv and chrome are measured, not judged.
TARGET_FORMAT_EXTRA = {"folded": 0.25, "uftrace": 0.25}
TARGET_RSS_MB = 10.0


# ---- deterministic inputs ------------------------------------------------------

def zipf_words(rng, n):
    """n distinct pseudo-words, most frequent first."""
    seen, words = set(), []
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    while len(words) < n:
        length = 2 + min(int(rng.expovariate(0.35)), 12)
        w = "".join(letters[min(int(rng.expovariate(0.18)), 25)] for _ in range(length))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class Text:
    """English-like text: Zipf-distributed words, sentences, paragraphs."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.words = zipf_words(self.rng, 20000)
        weights = [1.0 / (i + 1) for i in range(len(self.words))]
        total, acc = sum(weights), 0.0
        self.cum = []
        for w in weights:
            acc += w / total
            self.cum.append(acc)

    def word(self):
        import bisect
        return self.words[min(bisect.bisect_left(self.cum, self.rng.random()), len(self.words) - 1)]

    def sentence(self, lo=6, hi=20):
        ws = [self.word() for _ in range(self.rng.randint(lo, hi))]
        return ws[0].capitalize() + " " + " ".join(ws[1:]) + self.rng.choice(".....?!;")


def gen_text(path, size):
    t = Text(1)
    with open(path, "w", encoding="ascii") as f:
        n = 0
        while n < size:
            para = " ".join(t.sentence() for _ in range(t.rng.randint(2, 8))) + "\n\n"
            f.write(para)
            n += len(para)


def gen_sql(path, rows):
    rng = random.Random(2)
    t = Text(2)
    tags = ["red", "green", "blue", "amber", "violet", "teal", "grey", "gold"]
    with open(path, "w", encoding="ascii") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, "
                "tag TEXT, note TEXT);\n"
                "CREATE INDEX t_grp ON t(grp);\nBEGIN;\n")
        for i in range(rows):
            name = t.word() + "_" + t.word()
            note = t.sentence(3, 10).replace("'", "")
            f.write("INSERT INTO t(name, grp, val, tag, note) VALUES('%s', %d, %.3f, '%s', '%s');\n"
                    % (name, rng.randint(0, 99), rng.uniform(-1000, 1000), rng.choice(tags), note))
        f.write("COMMIT;\n"
                "SELECT grp, count(*), sum(val), avg(length(name)) FROM t GROUP BY grp ORDER BY grp;\n"
                "SELECT tag, max(val), min(val) FROM t GROUP BY tag ORDER BY 2 DESC;\n"
                "SELECT count(*) FROM t WHERE name LIKE 'e%' AND val > 0;\n"
                "SELECT name, val FROM t ORDER BY val DESC, name LIMIT 20;\n"
                "UPDATE t SET val = val * 2 WHERE grp % 7 = 3;\n"
                "DELETE FROM t WHERE grp % 11 = 5;\n"
                "SELECT count(*), sum(val) FROM t;\n")


def gen_records(path, n):
    rng = random.Random(4)
    t = Text(4)
    doms = ["example", "mail-host", "post", "web", "inbox"]
    recs = []
    for i in range(n):
        recs.append({
            "id": i,
            "name": t.word().capitalize() + " " + t.word().capitalize(),
            "email": "%s.%s@%s.%s" % (t.word(), t.word(), rng.choice(doms),
                                      rng.choice(["com", "org", "net", "de", "fr"])),
            "date": "%04d-%02d-%02d" % (rng.randint(1990, 2025), rng.randint(1, 12), rng.randint(1, 28)),
            "score": round(rng.uniform(0, 100), 2),
            "tags": [t.word() for _ in range(rng.randint(0, 5))],
            "text": t.sentence(4, 14),
        })
    with open(path, "w", encoding="utf-8") as f:
        json.dump(recs, f)


def gen_manpage(path, sections):
    t = Text(5)
    rng = t.rng
    out = ['.TH BENCH 1 "2026-01-01" "bench" "Bench Manual"', ".SH NAME",
           "bench \\- a generated manual page", ".SH SYNOPSIS", ".B bench", "[\\fIoptions\\fR]"]
    for s in range(sections):
        out.append(".SH SECTION %d" % s)
        for p in range(8):
            out.append(".PP")
            out.append(" ".join(t.sentence() for _ in range(4)))
            if p % 3 == 0:
                out += [".TP", ".BI \\-\\-opt%d \" value\"" % p, t.sentence()]
            if p % 4 == 1:
                out += [".IP \\(bu 2", "\\fB%s\\fR %s" % (t.word(), t.sentence())]
            if p % 5 == 2:
                out += [".RS", ".nf", t.sentence(), t.sentence(), ".fi", ".RE"]
    with open(path, "w", encoding="ascii") as f:
        f.write("\n".join(out) + "\n")


# ---- workloads ------------------------------------------------------------------

class Workload:
    def __init__(self, name, desc, argv, stdin=None, prepare=None, package=None):
        self.name, self.desc, self.argv, self.stdin = name, desc, argv, stdin
        self.prepare, self.package = prepare, package


def workloads(inputs, quick):
    """Sizes: full run, or --quick (small inputs)."""
    q = quick
    text = os.path.join(inputs, "text-%s.txt" % ("q" if q else "full"))
    text_mb = 1 if q else 20
    bz_text = os.path.join(inputs, "text-bz-%s.txt" % ("q" if q else "full"))
    bz_mb = 0.25 if q else 3
    xz_text = os.path.join(inputs, "text-xz-%s.txt" % ("q" if q else "full"))
    xz_mb = 0.1 if q else 1
    sql = os.path.join(inputs, "insert-%s.sql" % ("q" if q else "full"))
    rows = 2000 if q else 50000
    recs = os.path.join(inputs, "records-%s.json" % ("q" if q else "full"))
    nrec = 1000 if q else 20000
    page = os.path.join(inputs, "page-%s.1" % ("q" if q else "full"))
    nsec = 10 if q else 150
    pymix = os.path.join(HERE, "workloads", "pymix.py")
    return [
        Workload("sqlite3", "sqlite3: %d INSERTs into an in-memory database, then aggregates" % rows,
                 ["/usr/bin/sqlite3", ":memory:"], stdin=sql,
                 prepare=lambda: gen_sql(sql, rows), package="sqlite3"),
        Workload("python3", "/usr/bin/python3: json/re/sort mix over %d records" % nrec,
                 ["/usr/bin/python3", "-I", pymix, recs],
                 prepare=lambda: gen_records(recs, nrec), package="python3"),
        Workload("gzip", "gzip -9 on %g MB of text" % text_mb,
                 ["/bin/gzip", "-9", "-c", text],
                 prepare=lambda: gen_text(text, int(text_mb * 2**20)), package="gzip"),
        Workload("bzip2", "bzip2 -9 on %g MB of text" % bz_mb,
                 ["/bin/bzip2", "-9", "-c", bz_text],
                 prepare=lambda: gen_text(bz_text, int(bz_mb * 2**20)), package="bzip2"),
        Workload("xz", "xz -6 (one thread) on %g MB of text" % xz_mb,
                 ["/usr/bin/xz", "-6", "-T1", "-c", xz_text],
                 prepare=lambda: gen_text(xz_text, int(xz_mb * 2**20)), package="xz-utils"),
        Workload("troff", "troff (C++, groff): formats a generated %d-section man page" % nsec,
                 ["/usr/bin/troff", "-man", "-Tutf8", page],
                 prepare=lambda: gen_manpage(page, nsec), package="groff-base"),
    ]


# ---- configurations ---------------------------------------------------------------

class Config:
    def __init__(self, name, stack, consumer, plugins, kind, qemu=None, base="plain"):
        self.name, self.stack, self.consumer, self.plugins, self.kind = (
            name, stack, consumer, plugins, kind)
        self.qemu = qemu            # another QEMU binary (--qemu-variant), or None
        self.base = base            # the plain configuration its ratios are against
        self.unavailable = None     # reason, when refused


def configs(build, outdir, variants=(), qemu_variants=()):
    """Every configuration; variants are (name, path of another
    libcallstack_instr.so) pairs, e.g. a build with a proposed lever;
    qemu_variants (name, path of another qemu-x86_64) give plain#NAME,
    threaded#NAME and asid#NAME, measured against plain#NAME."""
    lib = os.path.join(build, "libcallstack_instr.so")
    count = os.path.join(build, "bench", "libbench_count.so")
    ref = os.path.join(build, "bench", "libbench_pandaref.so")
    cs = [Config("plain", None, False, [], "plain")]
    # The bare plugin with every return reported (returns=all), as any
    # subscriber makes it; without one returns are counted (lazy returns),
    # measured by the +query configurations below.
    for st in ("threaded", "asid", "heuristic"):
        cs.append(Config(st, st, False, ["%s,stack_type=%s,returns=all" % (lib, st)], "plugin"))
        cs.append(Config(st + "+count", st, True,
                         ["%s,stack_type=%s" % (lib, st), "%s,out=@COUNT@" % count], "plugin"))
    cs.append(Config("pandaref", "asid", False, ["%s,out=@COUNT@" % ref], "reference"))
    # Opt-in: calltrace writing each format (to @OUT@, removed after the run).
    trace = os.path.join(build, "libcalltrace.so")
    for fmt in ("folded", "uftrace", "tsv", "chrome"):
        cs.append(Config("threaded+" + fmt, "threaded", True,
                         ["%s,stack_type=threaded" % lib, "%s,format=%s,out=@OUT@" % (trace, fmt)],
                         "consumer"))
    # Opt-in: a consumer that only queries (get_callers, get_functions,
    # get_prog_point, pandalog_callstack_create at every 100,000th executed
    # block, counted inline), so returns are counted, not reported (lazy
    # returns); and the same with returns=all, for the difference. The
    # +syscallquery ones ask at every system call instead, as an analysis
    # plugin asking for the stack at its own events does: no per-block
    # inline count of the consumer's in the measurement.
    query = os.path.join(build, "tests", "plugins", "libtest_querier.so")
    for st in ("threaded", "heuristic"):
        for mode, suffix in (("lazy", ""), ("all", "-all")):
            cs.append(Config("%s+query%s" % (st, suffix), st, True,
                             ["%s,stack_type=%s,returns=%s" % (lib, st, mode),
                              "%s,out=@OUT@,every=100000,quiet=on" % query], "consumer"))
            cs.append(Config("%s+syscallquery%s" % (st, suffix), st, True,
                             ["%s,stack_type=%s,returns=%s" % (lib, st, mode),
                              "%s,out=@OUT@,every=1,at=syscall,quiet=on" % query], "consumer"))
    # Opt-in: every register read through the plugin API (no fast_regs).
    cs.append(Config("threaded-apiregs", "threaded", False,
                     ["%s,stack_type=threaded,fast_regs=off" % lib], "variant"))
    for vname, vlib in variants:
        for st in ("threaded", "asid"):
            cs.append(Config("%s@%s" % (st, vname), st, False, ["%s,stack_type=%s" % (vlib, st)],
                             "variant"))
            cs.append(Config("%s+count@%s" % (st, vname), st, True,
                             ["%s,stack_type=%s" % (vlib, st), "%s,out=@COUNT@" % count], "variant"))
    for qname, qbin in qemu_variants:
        base = "plain#" + qname
        cs.append(Config(base, None, False, [], "plain", qemu=qbin, base=base))
        for st in ("threaded", "asid"):
            cs.append(Config("%s#%s" % (st, qname), st, False, ["%s,stack_type=%s" % (lib, st)],
                             "variant", qemu=qbin, base=base))
    # Cost probes (bench/probe.c), run only when asked for (--decompose).
    probe = os.path.join(build, "bench", "libbench_probe.so")
    for m in ("inline", "empty", "regs", "sp", "sp_mem", "retsite"):
        cs.append(Config("probe-" + m, None, False, ["%s,mode=%s,out=@COUNT@" % (probe, m)], "probe"))
    return cs


def qemu_argv(qemu, cfg, wl, count_file, out_path=os.devnull):
    argv = [cfg.qemu or qemu]
    for p in cfg.plugins:
        argv += ["-plugin", p.replace("@COUNT@", count_file).replace("@OUT@", out_path)]
    return argv + wl.argv


def output_size(path):
    """Bytes calltrace wrote: a file, or a directory's files (uftrace)."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path) if os.path.exists(path) else 0


def tsv_summary(path):
    """The calls, returns and unwound frames of a tsv trace's last summary line."""
    counts = {}
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4096))
        for line in f.read().decode(errors="replace").splitlines():
            if line.startswith("# summary"):
                counts = {k: int(v) for k, _, v in (x.partition("=") for x in line.split("\t")[1:])
                          if k in ("calls", "returns", "unwound")}
    return counts


def run_once(argv, stdin_path, stderr_path, stdout_path=None):
    """Runs argv (its stdout to stdout_path, else discarded); returns (rc,
    wall s, user+sys s, max RSS KB).

    The peak RSS comes from GNU time: a child forked by this (large) Python
    process inherits its RSS high-water mark, and Linux carries it across
    exec, so the child's own ru_maxrss would be at least Python's. time is
    small, and reports the peak of the child it forks."""
    rss_file = stderr_path + ".rss"
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    with open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file, "--"] + argv,
                             stdin=stdin, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    if stdout_path:
        out.close()
    if stdin_path:
        stdin.close()
    rc = os.waitstatus_to_exitcode(status)
    rss = 0
    with open(rss_file) as f:
        for line in f:
            if line.strip().isdigit():
                rss = int(line)
    os.unlink(rss_file)
    return rc, wall, ru.ru_utime + ru.ru_stime, rss


def probe_availability(qemu, cfgs, outdir):
    """A configuration the plugin refuses (heuristic, for now) is reported n/a."""
    for c in cfgs:
        if c.kind == "plain":
            continue
        err = os.path.join(outdir, "probe-%s.err" % c.name)
        out = os.path.join(outdir, "probe-%s.out" % c.name)
        rc, _, _, _ = run_once(qemu_argv(qemu, c, Workload("true", "", ["/bin/true"]), os.devnull,
                                         out), None, err)
        shutil.rmtree(out, ignore_errors=True)
        if os.path.isfile(out):
            os.unlink(out)
        if rc != 0:
            with open(err, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
            c.unavailable = lines[0] if lines else "exit status %d" % rc


def read_counts(path):
    """Sums the key=value integers of the lines a bench plugin appended."""
    tot = {}
    try:
        with open(path) as f:
            for line in f:
                for field in line.split("\t")[1:]:
                    k, _, v = field.strip().partition("=")
                    if k != "pid" and v.isdigit():
                        tot[k] = tot.get(k, 0) + int(v)
    except FileNotFoundError:
        pass
    return tot


# ---- report ----------------------------------------------------------------------------

def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gb": mem_gb,
            "kernel": platform.release(), "load": os.getloadavg()}


def fmt_ratio(x):
    return "%.2fx" % x


def verdict(cfg, ratios, base, drss):
    """ratios: (wall, CPU) ratios; base: the same for the stack type without
    a consumer. Judged on both, since other load on the machine inflates
    wall-clock time."""
    if cfg.kind in ("reference", "probe", "variant"):
        return "(%s)" % cfg.kind
    notes = []
    limit = TARGET_RATIO.get(cfg.stack)
    target_extra = TARGET_CONSUMER_EXTRA
    if cfg.kind == "consumer":
        target_extra = TARGET_FORMAT_EXTRA.get(cfg.name.partition("+")[2])
    if cfg.consumer and base is not None and target_extra is not None:
        extra = [r - b for r, b in zip(ratios, base)]
        ok = max(extra) <= target_extra
        notes.append("%s: %+.2f wall, %+.2f CPU (<= +%.2f)" % (
            "ok" if ok else "MISS", extra[0], extra[1], target_extra))
    elif cfg.kind == "consumer":
        notes.append("(measured)")
    elif limit is not None:
        ok = max(ratios) <= limit
        notes.append("%s (<= %.2fx)" % ("ok" if ok else "MISS", limit))
    notes.append("mem %s" % ("ok" if drss <= TARGET_RSS_MB else "MISS"))
    return ", ".join(notes)


def events_of(r):
    """Calls + returns of one run of the workload, as a consumer saw them
    (else as PANDA's algorithm or the probe did), and their source."""
    for name, keys in (("threaded+count", ("calls", "returns")), ("asid+count", ("calls", "returns")),
                       ("probe-empty", ("events",)), ("probe-inline", ("events",)),
                       ("probe-regs", ("events",)), ("probe-sp", ("events",)),
                       ("pandaref", ("calls", "returns")),
                       ("threaded+tsv", ("calls", "returns", "unwound"))):
        c = r.get(name, {}).get("counts", {})
        if all(k in c for k in keys):
            return sum(c[k] for k in keys)
    return None


def med(xs):
    return statistics.median(xs)


def header(args, info, started, elapsed, command, title):
    L = [BEGIN % args.block, "", "## " + title, "", "| | |", "|---|---|"]
    L.append("| date | %s (%s) |" % (started, "%.0f s" % elapsed if elapsed else "duration not recorded"))
    L.append("| command | `%s` |" % command)
    L.append("| machine | %d CPUs, %s, %.1f GB RAM, Linux %s |" % (
        info["nproc"], info["cpu"], info["ram_gb"], info["kernel"]))
    L.append("| load average at start / end | %s / %s |" % (
        " ".join("%.2f" % x for x in info["load"]),
        " ".join("%.2f" % x for x in info["load_end"]) if info.get("load_end") else "not recorded"))
    L.append("| QEMU | `%s` |" % args.qemu)
    L.append("| runs | %d per configuration and workload, alternated round-robin "
             "(the order of configurations rotates every round) |" % args.runs)
    L.append("")
    return L


def summary_ratio(r, c, key, agg):
    """A configuration's ratio to its plain run: with --paired data and a
    median, the median of the paired ratios; else agg over agg."""
    d = r[c.name]
    pair = d.get("pair_" + key)
    if pair and agg is med:
        return med([x / y for x, y in zip(d[key], pair)])
    return agg(d[key]) / agg(r[c.base][key])


def render(args, info, wls, cfgs, results, started, elapsed, command):
    L = header(args, info, started, elapsed, command,
               {"main": "Measurements", "decompose": "Cost decomposition"}.get(
                   args.block, "Measurements: %s" % args.block))
    L.append(("*Paired runs*: every run of a configuration was immediately preceded by a plain "
              "run, and *ratio*, *CPU ratio* and *range* compare each run with that plain run "
              "(medians of those ratios). " if args.paired else "") +
             "*median s*: median wall-clock seconds. *ratio*: that median over plain QEMU's median in "
             "the same invocation; *range*: the smallest and largest ratio of a single round (each "
             "run over the plain run of its round). *CPU ratio*: the same with user+system time, "
             "less sensitive to other load on the machine. *best CPU*: the smallest CPU time over "
             "plain's smallest: interference from other load only ever adds time, so this is the "
             "steadiest estimate of the intrinsic cost. *ns/event*: extra CPU time over plain "
             "(smallest times), per call or return event. *max RSS*: median peak resident set (GNU time); *ΔRSS*: "
             "its difference from plain. Targets: `threaded`, `asid` <= %.2fx; `heuristic` <= "
             "%.2fx; a counting consumer at most +%.2f over the same stack type without it; peak "
             "memory at most %.0f MB above plain." % (
                 TARGET_RATIO["threaded"], TARGET_RATIO["heuristic"], TARGET_CONSUMER_EXTRA,
                 TARGET_RSS_MB))
    L.append("")
    shown = [c for c in cfgs if c.name != "plain"]
    for title, key, agg in (("wall-clock time ratio against plain QEMU (medians)", "wall", med),
                            ("CPU time (user+system) ratio against plain QEMU (medians)", "cpu", med),
                            ("best CPU time ratio against plain QEMU (smallest times)", "cpu", min)):
        L.append("### Summary: %s" % title)
        L.append("")
        L.append("| workload | plain s | " + " | ".join(c.name for c in shown) + " |")
        L.append("|---|---:|" + "---:|" * len(shown))
        for wl in wls:
            r = results[wl.name]
            plain = agg(r["plain"][key])
            cells = ["n/a" if c.unavailable else fmt_ratio(summary_ratio(r, c, key, agg))
                     for c in shown]
            L.append("| %s | %.2f | %s |" % (wl.name, plain, " | ".join(cells)))
        L.append("")
    L.append("### Summary: peak memory above plain QEMU (ΔRSS, MB)")
    L.append("")
    L.append("| workload | plain MB | " + " | ".join(c.name for c in shown) + " |")
    L.append("|---|---:|" + "---:|" * len(shown))
    for wl in wls:
        r = results[wl.name]
        plain = med(r["plain"]["rss"])
        cells = ["n/a" if c.unavailable else "%+.1f" % (
            (med(r[c.name]["rss"]) - med(r[c.base]["rss"])) / 1024) for c in shown]
        L.append("| %s | %.1f | %s |" % (wl.name, plain / 1024, " | ".join(cells)))
    L.append("")
    for c in cfgs:
        if c.unavailable and not c.consumer:
            L.append("n/a: `stack_type=%s` is refused by the plugin: \"%s\"" % (c.stack, c.unavailable))
            L.append("")
    for wl in wls:
        r = results[wl.name]
        plain_c = min(r["plain"]["cpu"])
        L.append("### %s" % wl.name)
        L.append("")
        L.append("%s. Guest command: `%s`%s." % (
            wl.desc, " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in wl.argv),
            " < `%s`" % os.path.relpath(wl.stdin, ROOT) if wl.stdin else ""))
        events = events_of(r)
        facts = []
        for name in ("threaded+count", "asid+count"):
            c = r.get(name, {}).get("counts", {})
            if "calls" in c:
                facts.append("%s: %s calls, %s returns" % (
                    name, "{:,}".format(c["calls"]), "{:,}".format(c["returns"])))
        c = r.get("pandaref", {}).get("counts", {})
        if "blocks" in c:
            facts.append("pandaref: %s blocks executed, %s calls, %s returns" % (
                "{:,}".format(c["blocks"]), "{:,}".format(c["calls"]), "{:,}".format(c["returns"])))
        for name in ("probe-empty", "probe-inline", "probe-regs"):
            c = r.get(name, {}).get("counts", {})
            if "events" in c:
                facts.append("%s: %s call/return instructions executed" % (
                    name, "{:,}".format(c["events"])))
                break
        c = r.get("probe-retsite", {}).get("counts", {})
        if "site_blocks" in c:
            facts.append("probe-retsite: %s calls and matched returns, %s return-site blocks "
                         "executed" % ("{:,}".format(c["events"]), "{:,}".format(c["site_blocks"])))
        if facts:
            L.append("Events per run: %s." % "; ".join(facts))
        if events:
            L.append("That is %.1f M events per second of plain QEMU (smallest CPU time)." % (
                events / plain_c / 1e6))
        L.append("")
        L.append("| configuration | median s | ratio | range | CPU ratio | best CPU | ns/event "
                 "| max RSS MB | ΔRSS MB | target |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        base_ratios = {}
        for c in cfgs:
            if c.unavailable:
                L.append("| %s | n/a | n/a | | | | | | | refused |" % c.name)
                continue
            d, b = r[c.name], r[c.base]
            bw, bc, bm = (med(b[k]) for k in ("wall", "cpu", "rss"))
            m = med(d["wall"])
            ratios = (m / bw, med(d["cpu"]) / bc)
            if d.get("pair_cpu"):
                # --paired: the median of each run over the plain run just before it
                ratios = (med([x / y for x, y in zip(d["wall"], d["pair_wall"])]),
                          med([x / y for x, y in zip(d["cpu"], d["pair_cpu"])]))
            vkey = (c.stack, c.name.partition("@")[2])
            if not c.consumer:
                base_ratios[vkey] = ratios
            per_round = [w / p for w, p in zip(d["wall"], d.get("pair_wall") or b["wall"])]
            rss = med(d["rss"])
            drss = (rss - bm) / 1024
            nsev = ("%.0f" % ((min(d["cpu"]) - min(b["cpu"])) / events * 1e9)
                    if events and c.name != c.base else "")
            tgt = "" if c.kind == "plain" else verdict(c, ratios, base_ratios.get(vkey), drss)
            L.append("| %s | %.2f | %s | %.2f-%.2f | %s | %s | %s | %.1f | %+.1f | %s |" % (
                c.name, m, fmt_ratio(ratios[0]), min(per_round), max(per_round),
                fmt_ratio(ratios[1]), fmt_ratio(min(d["cpu"]) / min(b["cpu"])), nsev, rss / 1024,
                drss, tgt))
        L.append("")
    L.append(END % args.block)
    return "\n".join(L) + "\n"


def write_results(path, text, block):
    """Replaces the generated block of `path`, keeping the hand-written rest."""
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    b, e = BEGIN % block, END % block
    if b in old and e in old:
        head, rest = old.split(b, 1)
        tail = rest.split(e, 1)[1]
        new = head + text.rstrip("\n") + tail
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "# Benchmark results\n\n") + text
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


# ---- main ---------------------------------------------------------------------------------

DECOMPOSE = ["plain", "probe-inline", "probe-empty", "probe-regs", "probe-sp", "probe-sp_mem",
             "probe-retsite",
             "threaded", "threaded+count", "asid", "pandaref"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 run each, small inputs (smoke test)")
    ap.add_argument("--runs", type=int, help="runs per configuration (default 5; 1 with --quick)")
    ap.add_argument("--only", action="append", default=[], help="workload name (repeatable)")
    ap.add_argument("--paired", action="store_true",
                    help="run plain QEMU just before every other run and take each ratio "
                         "against that run (robust to the machine's speed drifting)")
    ap.add_argument("--configs", help="comma-separated configuration names (plain is always run)")
    ap.add_argument("--decompose", action="store_true",
                    help="cost decomposition: the probe plugins next to the plugin (%s)"
                    % ",".join(DECOMPOSE))
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=LIB",
                    help="also measure another libcallstack_instr.so as configurations "
                    "threaded@NAME, asid@NAME, ...+count@NAME (select them with --configs)")
    ap.add_argument("--qemu-variant", action="append", default=[], metavar="NAME=QEMU",
                    help="also measure another qemu-x86_64: plain#NAME, threaded#NAME, asid#NAME "
                    "(ratios against plain#NAME; select them with --configs)")
    ap.add_argument("--render-only", metavar="RAW.json",
                    help="do not run: re-render a past run's bench/out/raw-*.json")
    ap.add_argument("--block", help="name of the generated block of the results file "
                    "(default: main, or decompose)")
    ap.add_argument("--out", help="results file (default bench/results/tables.md; bench/out/quick.md "
                                  "with --quick)")
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--command", default="bash bench/run.sh")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if not args.block:
        args.block = "decompose" if args.decompose else "main"
    outdir = os.path.join(HERE, "out")
    inputs = os.path.join(outdir, "inputs")
    os.makedirs(inputs, exist_ok=True)
    if args.out is None:
        args.out = os.path.join(outdir, "quick.md") if args.quick else os.path.join(HERE, "results", "tables.md")

    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("bench: /usr/bin/time is missing (Debian package time)")
    wls = workloads(inputs, args.quick)
    if args.only:
        wls = [w for w in wls if w.name in args.only]
        if not wls:
            sys.exit("bench: no workload named %s" % ", ".join(args.only))
    for w in wls:
        if not os.path.exists(w.argv[0]):
            sys.exit("bench: %s is missing (Debian package %s)" % (w.argv[0], w.package))
    variants = []
    for v in args.variant:
        name, _, lib = v.partition("=")
        if not name or not os.path.isfile(lib):
            sys.exit("bench: --variant wants NAME=PATH-OF-libcallstack_instr.so, got %r" % v)
        variants.append((name, os.path.abspath(lib)))
    qvariants = []
    for v in args.qemu_variant:
        name, _, qbin = v.partition("=")
        if not name or not os.access(qbin, os.X_OK):
            sys.exit("bench: --qemu-variant wants NAME=PATH-OF-qemu-x86_64, got %r" % v)
        qvariants.append((name, os.path.abspath(qbin)))
    cfgs = configs(args.build, outdir, variants, qvariants)
    known = [c.name for c in cfgs]
    if args.configs or args.decompose:
        want = set(args.configs.split(",") if args.configs else DECOMPOSE) | {"plain"}
        unknown = want - set(known)
        if unknown:
            sys.exit("bench: unknown configuration(s) %s; known: %s" % (
                ", ".join(sorted(unknown)), ", ".join(known)))
        cfgs = [c for c in cfgs if c.name in want]
    else:
        cfgs = [c for c in cfgs if c.kind not in ("probe", "variant", "consumer")]
    if args.render_only:
        # Re-render a past run's raw data (same workload and configuration
        # options as that run), e.g. after a change of the report's format.
        with open(args.render_only) as f:
            raw = json.load(f)
        byname = {c.name: c for c in cfgs}
        missing = [n for n in raw["configs"] if n not in byname]
        if missing:
            sys.exit("bench: --render-only: pass the options of the original run (unknown: %s)"
                     % ", ".join(missing))
        cfgs = [byname[n] for n in raw["configs"]]
        wls = [w for w in wls if w.name in raw["results"]]
        unrun = []
        for c in cfgs:
            c.unavailable = raw.get("unavailable", {}).get(c.name)
            if not c.unavailable and not any(raw["results"][w.name][c.name]["wall"] for w in wls):
                unrun.append(c)
        probe_availability(args.qemu, unrun, outdir)   # (older raw files lack the reasons)
        for c in unrun:
            c.unavailable = c.unavailable or "not run"
        args.runs = raw.get("runs", max(len(v["wall"]) for r in raw["results"].values()
                                        for v in r.values()))
        info = raw["info"]
        text = render(args, info, wls, cfgs, raw["results"], raw["started"], raw.get("elapsed"),
                      raw.get("command", args.command))
        write_results(args.out, text, args.block)
        print("bench: wrote %s from %s" % (os.path.relpath(args.out, os.getcwd()), args.render_only))
        return
    probe_availability(args.qemu, cfgs, outdir)
    for c in cfgs:
        if c.unavailable:
            print("bench: %s: n/a (%s)" % (c.name, c.unavailable), flush=True)

    print("bench: generating inputs", flush=True)
    done = set()
    for w in wls:
        path = w.stdin or w.argv[-1]
        if w.prepare and path not in done:
            w.prepare()
            done.add(path)

    info = machine_info()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    t_start = time.monotonic()
    runnable = [c for c in cfgs if not c.unavailable]
    results = {w.name: {c.name: {"wall": [], "cpu": [], "rss": [], "counts": {}} for c in cfgs}
               for w in wls}
    # --paired: every configuration's run is preceded by its own plain run,
    # and its ratio is taken against that one: the machine's speed drifts
    # over minutes (other tenants), which a round-robin only averages out.
    pairs = [c for c in runnable if c.name != c.base] if args.paired else []
    total = args.runs * len(wls) * (2 * len(pairs) if args.paired else len(runnable))
    n = 0

    def one(rnd, w, c):
        nonlocal n
        n += 1
        count_file = os.path.join(outdir, "count-%s-%s.tsv" % (w.name, c.name))
        if os.path.exists(count_file):
            os.unlink(count_file)
        err = os.path.join(outdir, "last-%s-%s.err" % (w.name, c.name))
        out_path = os.path.join(outdir, "out-%s-%s" % (w.name, c.name))
        shutil.rmtree(out_path, ignore_errors=True)
        rc, wall, cpu, rss = run_once(qemu_argv(args.qemu, c, w, count_file, out_path),
                                      w.stdin, err)
        if rc != 0:
            with open(err, errors="replace") as f:
                tail = f.read()[-2000:]
            sys.exit("bench: %s under %s failed (exit %d):\n%s" % (w.name, c.name, rc, tail))
        d = results[w.name][c.name]
        d["wall"].append(wall)
        d["cpu"].append(cpu)
        d["rss"].append(rss)
        d["counts"] = read_counts(count_file)
        if c.kind == "consumer":
            d.setdefault("out_bytes", []).append(output_size(out_path))
            if c.name.endswith("+tsv") and os.path.isfile(out_path):
                d["counts"] = tsv_summary(out_path)
            if os.path.isdir(out_path):
                shutil.rmtree(out_path)
            elif os.path.exists(out_path):
                os.unlink(out_path)
        print("bench: [%d/%d] round %d %-8s %-16s %6.2f s %6.2f s CPU %7.1f MB" % (
            n, total, rnd + 1, w.name, c.name, wall, cpu, rss / 1024), flush=True)
        return wall, cpu

    byname = {c.name: c for c in cfgs}
    for rnd in range(args.runs):
        for w in wls:
            if args.paired:
                k = rnd % len(pairs)
                for c in pairs[k:] + pairs[:k]:
                    pw, pc = one(rnd, w, byname[c.base])
                    d = results[w.name][c.name]
                    d.setdefault("pair_wall", []).append(pw)
                    d.setdefault("pair_cpu", []).append(pc)
                    one(rnd, w, c)
                continue
            k = rnd % len(runnable)
            order = runnable[k:] + runnable[:k]
            for c in order:
                one(rnd, w, c)
    elapsed = time.monotonic() - t_start
    info["load_end"] = os.getloadavg()
    text = render(args, info, wls, cfgs, results, started, elapsed, args.command)
    write_results(args.out, text, args.block)
    write_raw("bench", args, outdir, info, started, elapsed, cfgs, results)


def write_raw(who, args, outdir, info, started, elapsed, cfgs, results, **extra):
    """The run's raw numbers (for --render-only) beside the rendered tables."""
    raw = os.path.join(outdir, "raw-%s-%s.json" % (args.block, "quick" if args.quick else "full"))
    with open(raw, "w") as f:
        json.dump(dict({"info": info, "started": started, "elapsed": elapsed,
                        "command": args.command, "runs": args.runs,
                        "configs": [c.name for c in cfgs],
                        "unavailable": {c.name: c.unavailable for c in cfgs if c.unavailable},
                        "results": results}, **extra), f, indent=1)
    print("%s: wrote %s (raw data: %s)" % (who, os.path.relpath(args.out, os.getcwd()),
                                           os.path.relpath(raw, os.getcwd())))


if __name__ == "__main__":
    main()
