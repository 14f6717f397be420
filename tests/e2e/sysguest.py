# SPDX-License-Identifier: GPL-2.0-or-later
"""Boots of the whole-system test guest (scripts/make-system-guest.sh) for
the kernel-symbol and threaded tests:

  kallsyms_dump(arch, kaslr=True, boot="a") -> path of a /proc/kallsyms dump
      of one boot, cached in the guest's directory (a guest is rebuilt when
      any of its inputs change, so a cached dump always belongs to its
      kernel); another `boot` tag is another boot, hence on x86_64 another
      KASLR slide.
  boot_threads(arch, plugin_args, smp) -> Threads: one boot running two
      copies of tests/guests/systhreads.c at once, with the given plugins.

Run as a script, `sysguest.py kallsyms ARCH [BOOT...]` prints the paths of
the dumps (booting for those not cached yet).
"""
import os
import re
import subprocess
import sys

from harness import QEMU_PREFIX, ROOT, Failure, run

_dirs = {}

# Where the guest reads its options: the kernel command line (-append).
APPEND = "-append"
KALLSYMS_LINE = re.compile(r"^([0-9a-fA-F]{1,16}) ([A-Za-z?]) (\S+)(\s+\[\S+\])?\s*$")
SYSTHREADS_LINE = re.compile(r"SYSTHREADS ID=(\d+) pid=(\d+) tid=(\d+) role=(\w+) (.*)")


def guest_dir(arch):
    """The guest directory for arch (built once, cached outside the clone)."""
    if arch not in _dirs:
        p = run(["bash", os.path.join(ROOT, "scripts", "make-system-guest.sh"), arch], timeout=900)
        _dirs[arch] = p.stdout.strip().splitlines()[-1]
    return _dirs[arch]


def guest_args(arch, options=(), kaslr=None):
    """QEMU's arguments booting the guest, with `options` added to the
    kernel command line. kaslr None keeps the guest's default (x86_64:
    randomised; aarch64: off, no seed in the device tree); True or False
    asks for it (aarch64: a device-tree seed; x86_64: nokaslr)."""
    with open(os.path.join(guest_dir(arch), "qemu.args")) as f:
        args = f.read().splitlines()
    opts = list(options)
    if kaslr is not None:
        if arch == "aarch64":
            seed = "dtb-kaslr-seed=%s" % ("on" if kaslr else "off")
            args = [re.sub(r"dtb-kaslr-seed=\w+", seed, a) for a in args]
        elif not kaslr:
            opts.append("nokaslr")
    i = args.index(APPEND)
    args[i + 1] = " ".join([args[i + 1]] + opts)
    return [os.path.join(QEMU_PREFIX, "bin", "qemu-system-" + arch)] + args


def parse_kallsyms_console(text):
    """The dump's lines between the markers (console line ends and kernel
    messages dropped)."""
    begin, end = text.find("KALLSYMS-BEGIN"), text.find("KALLSYMS-END")
    if begin < 0 or end < begin:
        raise Failure("no KALLSYMS-BEGIN/END in the console output:\n%s" % text[-2000:])
    lines = []
    for line in text[begin:end].splitlines()[1:]:
        if KALLSYMS_LINE.match(line.strip("\r")):
            lines.append(line.strip("\r").rstrip())
    return lines


def kallsyms_dump(arch, kaslr=True, boot="a"):
    """Path of /proc/kallsyms as read by root in one boot of the guest
    (kallsyms=only on its command line), cached per (arch, kaslr, boot)."""
    d = guest_dir(arch)
    path = os.path.join(d, "kallsyms-%s-%s.txt" % ("kaslr" if kaslr else "nokaslr", boot))
    if os.path.exists(path):
        return path
    cmd = guest_args(arch, ["kallsyms=only"], kaslr=kaslr)
    p = run(cmd, timeout=900, stdin=subprocess.DEVNULL)
    lines = parse_kallsyms_console(p.stdout)
    if len(lines) < 1000:
        raise Failure("%s: only %d kallsyms lines in the dump" % (arch, len(lines)))
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def read_kallsyms(path):
    """[(addr, type, name, module or None)] of a dump, parsed here with a
    regular expression (independently of the C parser)."""
    out = []
    with open(path) as f:
        for line in f:
            m = KALLSYMS_LINE.match(line)
            if m:
                mod = m.group(4).strip()[1:-1] if m.group(4) else None
                out.append((int(m.group(1), 16), m.group(2), m.group(3), mod))
    return out


class Threads:
    """One boot running two systhreads copies: the console, and per thread
    (copy id, role) a dict of what the thread printed about itself: pid,
    tid, func, level1, level2, leaf, calls (ints) and chain (list)."""

    def __init__(self, console):
        self.console = console
        self.threads = {}
        for m in SYSTHREADS_LINE.finditer(console):
            t = {"pid": int(m.group(2)), "tid": int(m.group(3))}
            for kv in m.group(5).split():
                k, _, v = kv.partition("=")
                if k == "chain":
                    t[k] = [int(x, 16) for x in v.split(",")]
                elif k == "calls":
                    t[k] = int(v)
                else:
                    t[k] = int(v, 16)
            self.threads[(int(m.group(1)), m.group(4))] = t
        want = {(i, r) for i in (1, 2) for r in ("main", "t1", "t2", "t3")}
        if set(self.threads) != want or "SYSPROG-DONE" not in console:
            raise Failure("systhreads: expected 8 threads to report and the guest to finish, got %s:\n%s"
                          % (sorted(self.threads), console[-3000:]))


def boot_threads(arch, plugin_args=(), smp=2, options=(), timeout=900):
    """Boots the guest with systhreads=1 and `-plugin A` for each A in
    plugin_args, at -smp smp; returns a Threads."""
    cmd = guest_args(arch, ["systhreads=1"] + list(options)) + ["-smp", str(smp)]
    for a in plugin_args:
        cmd += ["-plugin", a]
    p = run(cmd, timeout=timeout, stdin=subprocess.DEVNULL)
    return Threads(p.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "kallsyms":
        sys.exit("usage: sysguest.py kallsyms ARCH [BOOT...]")
    for tag in sys.argv[3:] or ["a"]:
        print(kallsyms_dump(sys.argv[2], boot=tag))
