#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the time goes: a sampling profile (perf record, cpu-clock) of QEMU
itself running a benchmark workload plain and with the plugin, its samples
sorted into buckets (guest code, QEMU's translation and TB lookup, the
plugin API's register and memory reads, callstack_instr's glue and engine,
locks, ...). Run through bench/profile.sh; see bench/README.md.
Standard library only."""
import argparse
import datetime
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the workloads and configurations)

# (bucket, dso regexp, symbol regexp); first match wins.
BUCKETS = [
    ("guest code (JIT, translated blocks)", r"^\[JIT\]|^perf-\d+\.map", r""),
    ("QEMU: TB lookup of indirect jumps and returns", r"^qemu-",
     r"^(helper_lookup_tb_ptr|tb_htable_lookup|qht_lookup\w*|tb_lookup\w*|curr_cflags|"
     r"tb_lookup_cmp|cpu_get_tb_cpu_state|x86_cpu_get_tb_cpu_state)$"),
    ("plugin API: register read (qemu_plugin_read_register -> gdbstub)", r"^qemu-",
     r"^(gdb_read_register|x86_cpu_gdb_read_register|object_dynamic_cast_assert|"
     r"object_class_dynamic_cast_assert|qemu_plugin_read_register|gdb_get_reg\w*|"
     r"type_is_ancestor|object_get_class)$"),
    ("plugin API: memory read (qemu_plugin_read_memory_vaddr)", r"^qemu-",
     r"^(cpu_memory_rw_debug|page_get_flags|interval_tree_\w+|mmap_lock|mmap_unlock|"
     r"qemu_plugin_read_memory_vaddr|pageflags_find|have_mmap_lock)$"),
    ("glib GByteArray calls made by both reads", r"libglib",
     r"^(g_array_\w+|g_byte_array_\w+|0x[0-9a-f]+)$"),
    ("locks (GMutex -> pthread)", r"libglib|libc\.so",
     r"^(g_mutex_\w+|pthread_mutex_\w+(@@GLIBC.*)?|__GI___pthread_mutex_\w+|"
     r"__pthread_mutex_\w+|lll_\w+)$"),
    ("TLS access (__tls_get_addr)", r"ld-linux", r"^(__tls_get_addr|update_get_addr)$"),
    ("callstack_instr: glue (src/qemu: callbacks, targets, register reads)", r"libcallstack_instr",
     r"^(csi_vcpu_\w+|csi_fastpath_\w+|csi_events_\w+|csi_site_\w+|csi_reg_\w+|csi_mem_read|csi_on_\w+|"
     r"site_rest|site_event|event_stack|read_api|current_id|csi_fastreg_\w+)(\.\w+)*$"),
    ("callstack_instr: engine (src/engine: stacks, rules, dispatch)", r"libcallstack_instr",
     r"^(csi_engine_\w+|csi_stack_\w+|pop_dead|dispatch\w*|find_returnee|make_event|top_is_dead|"
     r"fill_where\w*|subs_get|call_general|ret_from_slot_general|pop_report|write_\w+)$"),
    ("callstack_instr: translation (decode, sites)", r"libcallstack_instr|libcapstone",
     r""),
    ("bench plugins (consumer, PANDA reference, probe)", r"libbench_", r""),
    ("QEMU: translation, plugin instrumentation and the rest", r"^qemu-", r""),
    ("kernel", r"kernel", r""),
    ("other libraries (glib hash tables, libc, ...)", r"", r""),
]


def perf_ok():
    try:
        p = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
                           capture_output=True, text=True)
        return p.returncode == 0
    except FileNotFoundError:
        return False


def record(qemu, cfg, wl, data, freq, outdir):
    argv = bench.qemu_argv(qemu, cfg, wl, os.path.join(outdir, "profile-count.tsv"))
    argv.insert(1, "-perfmap")   # names for translated code: /tmp/perf-PID.map
    stdin = open(wl.stdin, "rb") if wl.stdin else subprocess.DEVNULL
    p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-o", data,
                        "--"] + argv, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if wl.stdin:
        stdin.close()
    if p.returncode != 0:
        sys.exit("profile: perf record of %s under %s failed:\n%s" % (wl.name, cfg.name, p.stderr))


def report(data):
    """[(ns, samples, dso, symbol)] from perf report."""
    p = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                        "--sort", "dso,sym", "--field-separator=|", "-F", "period,sample,dso,sym"],
                       capture_output=True, text=True)
    rows = []
    for line in p.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [x.strip() for x in line.split("|")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        sym = re.sub(r"^\[[.k]\]\s*", "", parts[3])
        rows.append((int(parts[0]), int(parts[1]), parts[2], sym))
    return rows


def bucket_of(dso, sym):
    for name, dre, sre in BUCKETS:
        if re.search(dre, dso) and (not sre or re.search(sre, sym)):
            return name
    return BUCKETS[-1][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--only", action="append", default=[],
                    help="workload (repeatable; default: troff and sqlite3)")
    ap.add_argument("--configs", default="plain,threaded,asid,threaded+count,pandaref")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=LIB",
                    help="another libcallstack_instr.so, as configurations threaded@NAME, ...")
    ap.add_argument("--quick", action="store_true", help="the benchmark's small inputs")
    ap.add_argument("--freq", type=int, default=2000, help="samples per second (cpu-clock)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", help="results file (default bench/results/tables.md; with --quick, "
                                  "bench/out/profile-quick.md)")
    ap.add_argument("--command", default="bash bench/profile.sh")
    args = ap.parse_args()
    if not perf_ok():
        sys.exit("profile: `perf record -e cpu-clock` does not work here (install linux-perf; "
                 "kernel.perf_event_paranoid <= 2 or run as root)")
    outdir = os.path.join(HERE, "out")
    os.makedirs(os.path.join(outdir, "inputs"), exist_ok=True)
    if args.out is None:
        args.out = (os.path.join(outdir, "profile-quick.md") if args.quick
                    else os.path.join(HERE, "results", "tables.md"))
    names = args.only or ["troff", "sqlite3"]
    wls = [w for w in bench.workloads(os.path.join(outdir, "inputs"), args.quick) if w.name in names]
    variants = [tuple(v.split("=", 1)) for v in args.variant]
    cfgs = {c.name: c for c in bench.configs(args.build, outdir, variants)}
    want = args.configs.split(",")
    for c in want:
        if c not in cfgs:
            sys.exit("profile: unknown configuration %s" % c)
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    L = [bench.BEGIN % "profile", "", "## Profile of QEMU with the plugin", "",
         "| | |", "|---|---|", "| date | %s |" % started, "| command | `%s` |" % args.command,
         "| sampling | `perf record -e cpu-clock -F %d` of the whole QEMU process, one run per "
         "configuration; translated guest code named with QEMU's `-perfmap` |" % args.freq, ""]
    for wl in wls:
        wl.prepare()
        prof = {}
        for name in want:
            data = os.path.join(outdir, "perf-%s-%s.data" % (wl.name, name))
            print("profile: %s under %s" % (wl.name, name), flush=True)
            record(args.qemu, cfgs[name], wl, data, args.freq, outdir)
            prof[name] = report(data)
            for tid in {m.group(1) for r in prof[name] for m in [re.match(r"\[JIT\] tid (\d+)", r[2])]
                        if m}:
                try:
                    os.unlink("/tmp/perf-%s.map" % tid)   # written by -perfmap
                except OSError:
                    pass
        L += ["### %s: CPU seconds by bucket" % wl.name, "",
              "Seconds of sampled CPU time; the plugin's share is its column minus plain's.", ""]
        L.append("| bucket | " + " | ".join(want) + " |")
        L.append("|---|" + "---:|" * len(want))
        sums = {}
        for name in want:
            for ns, _, dso, sym in prof[name]:
                b = bucket_of(dso, sym)
                sums.setdefault(b, {}).setdefault(name, 0)
                sums[b][name] += ns
        for b, _, _ in BUCKETS:
            if b in sums:
                L.append("| %s | %s |" % (b, " | ".join("%.2f" % (sums[b].get(n, 0) / 1e9)
                                                        for n in want)))
        L.append("| **total** | %s |" % " | ".join(
            "**%.2f**" % (sum(r[0] for r in prof[n]) / 1e9) for n in want))
        L.append("")
        for name in want:
            if name == "plain":
                continue
            rows = sorted(prof[name], reverse=True)
            total = sum(r[0] for r in rows) or 1
            # Translated code is spread over thousands of block symbols.
            jit = sum(r[0] for r in rows if bucket_of(r[2], r[3]).startswith("guest code"))
            L += ["<details><summary>%s under %s: top %d symbols</summary>" % (
                wl.name, name, args.top), "", "| % | seconds | object | symbol |", "|---:|---:|---|---|",
                  "| %.1f | %.2f | (all translated guest code) | |" % (100 * jit / total, jit / 1e9)]
            for ns, _, dso, sym in [r for r in rows if not bucket_of(r[2], r[3]).startswith("guest")][
                    :args.top]:
                L.append("| %.1f | %.2f | %s | `%s` |" % (100 * ns / total, ns / 1e9, dso, sym))
            L += ["", "</details>", ""]
    L.append(bench.END % "profile")
    bench.write_results(args.out, "\n".join(L) + "\n", "profile")
    print("profile: wrote %s" % os.path.relpath(args.out, os.getcwd()))


if __name__ == "__main__":
    main()
