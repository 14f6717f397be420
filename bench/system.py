#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""callstack_instr whole-system benchmark: the project's Debian test guest
(scripts/make-system-guest.sh x86_64) boots under qemu-system-x86_64, runs
copies of tests/guests/sysbench.c at once (kernel command line bench=N) and
powers off; timed from QEMU's start to its exit, plain and with the plugins
in each configuration, at -smp 1 and -smp 2, alternated round-robin.

Run through bench/system.sh (which builds the plugins and the guest); see
bench/README.md. Standard library only; the measuring and report helpers
are bench/bench.py's.
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402

ROOT = B.ROOT
med = B.med

# Targets of the whole-system benchmark.
TARGET_ASID = 1.5           # asid at most 1.5x plain
TARGET_THREADED_EXTRA = 0.1  # threaded at most +0.1 above asid
TARGET_SCALING = 0.9        # -smp 2 speed-up at least 0.9 of plain QEMU's


class Config:
    def __init__(self, name, plugins, kind, trace=None):
        self.name, self.plugins, self.kind, self.trace = name, plugins, kind, trace
        self.unavailable = None


def configs(build, guest):
    lib = os.path.join(build, "libcallstack_instr.so")
    osi = "%s,kernel=%s" % (os.path.join(build, "libosi_linux.so"), os.path.join(guest, "kernel"))
    ct = os.path.join(build, "libcalltrace.so")
    count = os.path.join(build, "bench", "libbench_count.so")
    ref = os.path.join(build, "bench", "libbench_pandaref.so")
    asid = ["%s,stack_type=asid" % lib]
    threaded = [osi, "%s,stack_type=threaded" % lib]
    folded = "%s,format=folded,out=@TRACE@" % ct
    return [
        Config("plain", [], "plain"),
        Config("asid", asid, "plugin"),
        Config("threaded", threaded, "plugin"),
        Config("heuristic", ["%s,stack_type=heuristic" % lib], "plugin"),
        Config("asid+folded", asid + [folded], "consumer", trace="file"),
        Config("threaded+folded", threaded + [folded], "consumer", trace="file"),
        Config("threaded+uftrace", threaded + ["%s,format=uftrace,out=@TRACE@" % ct], "consumer",
               trace="dir"),
        Config("pandaref", ["%s,out=@COUNT@" % ref], "reference"),
        # Opt-in (--configs): event counts, PANDA's stack id read per block.
        Config("asid+count", asid + ["%s,out=@COUNT@" % count], "optin"),
        Config("threaded+count", threaded + ["%s,out=@COUNT@" % count], "optin"),
        Config("pandaref-cr3", ["%s,out=@COUNT@,asid=cr3" % ref], "optin"),
    ]


def guest_argv(qemu, guest, smp, copies, scale):
    with open(os.path.join(guest, "qemu.args")) as f:
        args = f.read().splitlines()
    i = args.index("-append")
    args[i + 1] += " bench=%d benchscale=%d" % (copies, scale)
    return [qemu] + args + ["-smp", str(smp)]


def tree_size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path) if os.path.exists(path) else 0


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def check_console(path, copies):
    """None if every copy finished with the same checksum, else why not."""
    with open(path, errors="replace") as f:
        text = f.read()
    sums = {l.split("sum=")[1].split()[0] for l in text.splitlines() if l.startswith("SYSBENCH id=")}
    gz = [l for l in text.splitlines() if l.startswith("SYSBENCH-GZIP")]
    if "SYSBENCH-DONE" not in text or len(sums) != 1 or len(gz) != copies:
        return "the guest did not finish its work (console tail: %r)" % text[-600:]
    return None


# ---- report ----------------------------------------------------------------------

def ratio(res, smp, c, key, agg=med):
    """c's ratio to plain at smp: with paired data, the median of the pairs."""
    d = res[smp][c.name]
    if d.get("pair_" + key) and agg is med:
        return med([x / y for x, y in zip(d[key], d["pair_" + key])])
    return agg(d[key]) / agg(res[smp]["plain"][key])


def speedup(res, c):
    """Wall-clock time at -smp 1 over -smp 2 (medians)."""
    return med(res["1"][c.name]["wall"]) / med(res["2"][c.name]["wall"])


def render(args, info, cfgs, res, started, elapsed, command, guest_desc):
    L = B.header(args, info, started, elapsed, command, "Whole-system benchmark")
    L.insert(-1, "| guest | %s |" % guest_desc)
    smps = [s for s in ("1", "2") if s in res]
    L.append(("*Paired runs*: every run of a configuration was immediately preceded by a plain "
              "run, and the ratios compare each run with that plain run (medians of those "
              "ratios). " if args.paired else "") +
             "Time is QEMU's, from its start to its exit (boot, the work, power-off). *wall*: "
             "median wall-clock seconds and its ratio to plain QEMU at the same -smp; *CPU*: the "
             "same with user+system time; *best CPU*: smallest CPU time over plain's smallest "
             "(other load only ever adds time). *smp2 speed-up*: wall-clock time at -smp 1 over "
             "-smp 2 (the same work: %d copies at once). Targets: `asid` <= %.1fx plain; "
             "`threaded` at most +%.1f above `asid`; the -smp 2 speed-up at least %.0f%% of plain "
             "QEMU's." % (args.copies, TARGET_ASID, TARGET_THREADED_EXTRA, 100 * TARGET_SCALING))
    L.append("")
    head = "| configuration |"
    rule = "|---|"
    for s in smps:
        head += " smp%s wall s | wall | CPU | best CPU |" % s
        rule += "---:|---:|---:|---:|"
    if len(smps) == 2:
        head += " smp2 speed-up |"
        rule += "---:|"
    L += [head + " target |", rule + "---|"]
    for c in cfgs:
        if c.unavailable:
            L.append("| %s | n/a: %s |" % (c.name, c.unavailable))
            continue
        row = "| %s |" % c.name
        for s in smps:
            d = res[s][c.name]
            if c.name == "plain":
                row += " %.2f | | | |" % med(d["wall"])
            else:
                row += " %.2f | %s | %s | %s |" % (
                    med(d["wall"]), B.fmt_ratio(ratio(res, s, c, "wall")),
                    B.fmt_ratio(ratio(res, s, c, "cpu")), B.fmt_ratio(ratio(res, s, c, "cpu", min)))
        if len(smps) == 2:
            row += " %.2fx |" % speedup(res, c)
        L.append(row + " %s |" % verdict(c, cfgs, res, smps))
    L.append("")
    facts = []
    for s in smps:
        for name in ("asid+count", "threaded+count"):
            cnt = res[s].get(name, {}).get("counts", {})
            if "calls" in cnt:
                facts.append("smp%s %s: %s calls, %s returns" % (
                    s, name, "{:,}".format(cnt["calls"]), "{:,}".format(cnt["returns"])))
        cnt = res[s].get("pandaref", {}).get("counts", {})
        if "blocks" in cnt:
            facts.append("smp%s pandaref: %s blocks, %s calls, %s returns" % (
                s, *("{:,}".format(cnt[k]) for k in ("blocks", "calls", "returns"))))
        for c in cfgs:
            tr = res[s].get(c.name, {}).get("trace_bytes")
            if tr:
                facts.append("smp%s %s: %.0f MB of trace" % (s, c.name, med(tr) / 2**20))
    if facts:
        L.append("Per boot: " + "; ".join(facts) + ".")
        L.append("")
    L.append(B.END % args.block)
    return "\n".join(L) + "\n"


def verdict(c, cfgs, res, smps):
    byname = {x.name: x for x in cfgs}
    notes = []
    usable = lambda n: n in byname and not byname[n].unavailable  # noqa: E731
    for s in smps:
        r = max(ratio(res, s, c, "wall"), ratio(res, s, c, "cpu")) if c.name != "plain" else None
        if c.name == "asid":
            notes.append("smp%s %s" % (s, "ok" if r <= TARGET_ASID else "MISS"))
        elif c.name == "threaded" and usable("asid"):
            a = byname["asid"]
            extra = max(ratio(res, s, c, k) - ratio(res, s, a, k) for k in ("wall", "cpu"))
            notes.append("smp%s %+.2f %s" % (s, extra, "ok" if extra <= TARGET_THREADED_EXTRA
                                               else "MISS"))
    if len(smps) == 2 and c.name != "plain" and c.kind in ("plugin", "consumer"):
        rel = speedup(res, c) / speedup(res, byname["plain"])
        notes.append("scaling %.0f%% %s" % (100 * rel, "ok" if rel >= TARGET_SCALING else "MISS"))
    return ", ".join(notes)


# ---- main -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 round, small work (smoke test)")
    ap.add_argument("--runs", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--smp", default="1,2", help="vCPU counts, from 1,2 (default both)")
    ap.add_argument("--copies", type=int, default=2, help="copies of the workload at once (2)")
    ap.add_argument("--scale", type=int, help="units of work per copy (default 10; 2 with --quick)")
    ap.add_argument("--paired", action="store_true",
                    help="run plain QEMU just before every other run and take each ratio "
                         "against that run")
    ap.add_argument("--configs", help="comma-separated configuration names (plain is always run)")
    ap.add_argument("--out", help="results file (default bench/results/system.md; "
                                  "bench/out/system-quick.md with --quick)")
    ap.add_argument("--block", default="system", help="name of the generated block (system)")
    ap.add_argument("--render-only", metavar="RAW.json", help="do not run: re-render raw numbers")
    ap.add_argument("--qemu", required=True, help="qemu-system-x86_64")
    ap.add_argument("--build", required=True)
    ap.add_argument("--guest", required=True, help="the guest directory (make-system-guest.sh)")
    ap.add_argument("--command", default="bash bench/system.sh")
    args = ap.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.scale = args.scale or (2 if args.quick else 10)
    outdir = os.path.join(HERE, "out")
    os.makedirs(outdir, exist_ok=True)
    if args.out is None:
        args.out = (os.path.join(outdir, "system-quick.md") if args.quick
                    else os.path.join(HERE, "results", "system.md"))
    smps = args.smp.split(",")
    if not smps or any(s not in ("1", "2") for s in smps):
        sys.exit("system: --smp takes 1, 2 or 1,2")
    cfgs = configs(args.build, args.guest)
    known = [c.name for c in cfgs]
    if args.configs:
        want = set(args.configs.split(",")) | {"plain"}
        if want - set(known):
            sys.exit("system: unknown configuration(s) %s; known: %s" % (
                ", ".join(sorted(want - set(known))), ", ".join(known)))
        cfgs = [c for c in cfgs if c.name in want]
    else:
        cfgs = [c for c in cfgs if c.kind != "optin"]
    kpkg = [f for f in os.listdir(os.path.join(args.guest, "..", "debs-amd64"))
            if f.startswith("linux-image-")] if os.path.isdir(
                os.path.join(args.guest, "..", "debs-amd64")) else []
    guest_desc = "%s; %d copies of `tests/guests/sysbench.c` at once, scale %d (`bench=%d " \
                 "benchscale=%d`)" % (kpkg[0].split("_")[0] + " " + kpkg[0].split("_")[1]
                                      if kpkg else "Debian kernel", args.copies, args.scale,
                                      args.copies, args.scale)

    if args.render_only:
        with open(args.render_only) as f:
            raw = json.load(f)
        byname = {c.name: c for c in configs(args.build, args.guest)}
        cfgs = [byname[n] for n in raw["configs"]]
        for c in cfgs:
            c.unavailable = raw.get("unavailable", {}).get(c.name)
        args.runs, args.copies, args.scale = raw["runs"], raw["copies"], raw["scale"]
        args.paired = raw.get("paired", False)
        text = render(args, raw["info"], cfgs, raw["results"], raw["started"], raw["elapsed"],
                      raw["command"], raw["guest"])
        B.write_results(args.out, text, args.block)
        print("system: wrote %s from %s" % (args.out, args.render_only))
        return

    info = B.machine_info()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    t0 = time.monotonic()
    res = {s: {c.name: {"wall": [], "cpu": [], "rss": [], "counts": {}} for c in cfgs}
           for s in smps}
    pairs = [c for c in cfgs if c.name != "plain"]
    per_round = 2 * len(pairs) if args.paired else len(cfgs)
    total, n = args.runs * len(smps) * per_round, 0
    plain = cfgs[0]

    def one(rnd, smp, c):
        nonlocal n
        n += 1
        if c.unavailable:
            return None
        tag = "%s-smp%s" % (c.name, smp)
        count = os.path.join(outdir, "system-count-%s.tsv" % tag)
        trace = os.path.join(outdir, "system-trace-%s" % tag)
        console = os.path.join(outdir, "system-console-%s.txt" % tag)
        err = os.path.join(outdir, "system-last-%s.err" % tag)
        remove(count)
        remove(trace)
        argv = guest_argv(args.qemu, args.guest, int(smp), args.copies, args.scale)
        for p in c.plugins:
            argv += ["-plugin", p.replace("@COUNT@", count).replace("@TRACE@", trace)]
        rc, wall, cpu, rss = B.run_once(argv, None, err, stdout_path=console)
        why = check_console(console, args.copies) if rc == 0 else "exit status %d" % rc
        if why:
            with open(err, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
            c.unavailable = why if rc == 0 or not lines else lines[0]
            print("system: %s at -smp %s failed: %s (see %s)" % (c.name, smp, c.unavailable, err),
                  flush=True)
            if c is plain:
                sys.exit("system: plain QEMU failed; nothing to compare with")
            return None
        d = res[smp][c.name]
        d["wall"].append(wall)
        d["cpu"].append(cpu)
        d["rss"].append(rss)
        d["counts"] = B.read_counts(count)
        if c.trace:
            d.setdefault("trace_bytes", []).append(tree_size(trace))
            remove(trace)     # a uftrace directory is gigabytes
        print("system: [%d/%d] round %d smp%s %-17s %7.2f s %7.2f s CPU %7.1f MB" % (
            n, total, rnd + 1, smp, c.name, wall, cpu, rss / 1024), flush=True)
        return wall, cpu

    for rnd in range(args.runs):
        for smp in smps:
            if args.paired:
                k = rnd % len(pairs)
                for c in pairs[k:] + pairs[:k]:
                    base = one(rnd, smp, plain)
                    if one(rnd, smp, c):
                        d = res[smp][c.name]
                        d.setdefault("pair_wall", []).append(base[0])
                        d.setdefault("pair_cpu", []).append(base[1])
                continue
            k = rnd % len(cfgs)
            for c in cfgs[k:] + cfgs[:k]:
                one(rnd, smp, c)
    elapsed = time.monotonic() - t0
    info["load_end"] = os.getloadavg()
    for c in cfgs:
        if not c.unavailable and any(not res[s][c.name]["wall"] for s in smps):
            c.unavailable = "no run completed"
    text = render(args, info, cfgs, res, started, elapsed, args.command, guest_desc)
    B.write_results(args.out, text, args.block)
    B.write_raw("system", args, outdir, info, started, elapsed, cfgs, res, copies=args.copies,
                scale=args.scale, paired=args.paired, guest=guest_desc)


if __name__ == "__main__":
    main()
