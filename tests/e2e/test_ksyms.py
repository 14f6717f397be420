# SPDX-License-Identifier: GPL-2.0-or-later
"""Kernel symbols across boots (src/osi/kallsyms.c through its driver,
build/tests/unit/osi_ksyms_tool): one boot's /proc/kallsyms dump names
another boot's kernel addresses once the KASLR slide between them is found.

References, independent of the code under test: the dumps themselves, as
root read them in each boot (tests/e2e/sysguest.py), parsed here with a
regular expression; the slide expected is the difference of the two boots'
_text (x86_64) or _stext (aarch64).
"""
import bisect
import os
import random
import re
import subprocess

from harness import BUILD, WORK, Failure, run, test
from sysguest import guest_args, kallsyms_dump, parse_kallsyms_console, read_kallsyms

TOOL = os.path.join(BUILD, "tests", "unit", "osi_ksyms_tool")
TEXT = "tTwW"
ALIGN = {"x86_64": 0x200000, "aarch64": 0x10000}


def kernel_start(syms):
    for want in ("_text", "startup_64", "_stext"):
        for addr, _, name, mod in syms:
            if name == want and mod is None:
                return addr
    raise Failure("no _text/startup_64/_stext in the dump")


def tool(map_path, arch, commands):
    p = run([TOOL, map_path, hex(ALIGN[arch])], input="".join(c + "\n" for c in commands), timeout=300)
    lines = p.stdout.splitlines()
    tail = dict(kv.split("=", 1) for kv in lines[-1].split())
    return lines[:-1], tail


def check_across_boots(arch, path_a, path_b):
    """Map A names boot B's addresses: the slide found from B's function
    addresses (random order, half of them inside functions rather than at
    their entries) is B's _text minus A's, and at B's addresses (entries
    and insides) find on A's map, slid back, gives B's own symbol there."""
    a, b = read_kallsyms(path_a), read_kallsyms(path_b)
    a = [s for s in a if s[3] is None and s[1] not in "aA"]
    b = [s for s in b if s[3] is None and s[1] not in "aA"]
    want = kernel_start(b) - kernel_start(a)
    rnd = random.Random(7)
    starts = sorted({addr for addr, t, _, _ in b if t in TEXT})
    feed = []
    for i, f in enumerate(starts[:-1]):
        feed.append(f)
        if starts[i + 1] > f + 1:
            feed.append(rnd.randrange(f + 1, starts[i + 1]))
    rnd.shuffle(feed)
    _, tail = tool(path_a, arch, ["feed %x" % x for x in feed])
    if tail["slide"] == "-":
        raise Failure("%s: no slide decided from %d addresses" % (arch, len(feed)))
    got = int(tail["slide"], 16)
    got = got - (1 << 64) if got >= 1 << 63 else got
    print("  %s: slide %#x (expected %#x) decided after %s of %d addresses; %s symbols" % (
        arch, got, want, tail["fed"], len(feed), tail["count"]))
    if got != want:
        raise Failure("%s: slide %#x, the dumps' _text differ by %#x" % (arch, got, want))
    if int(tail["count"]) != len(a):
        raise Failure("%s: %s symbols kept, the dump has %d" % (arch, tail["count"], len(a)))

    # B's names by address; aliases: a function first, then file order.
    at = {}
    for addr, t, name, _ in b:
        at.setdefault(addr, []).append((t not in TEXT, len(at.get(addr, ())), name))
    b_addrs = sorted(at)
    probes = rnd.sample(b_addrs[:-1], 3000)
    probes = probes + [rnd.randrange(x, b_addrs[bisect.bisect_right(b_addrs, x)]) for x in probes]
    lines, _ = tool(path_a, arch, ["find %x" % ((x - want) % (1 << 64)) for x in probes])
    for x, line in zip(probes, lines):
        sym = b_addrs[bisect.bisect_right(b_addrs, x) - 1]
        expect = min(at[sym])[2]
        if line != "%s %x" % (expect, (sym - want) % (1 << 64)):
            raise Failure("%s: boot B's %#x: A's map says '%s', B's own dump %s at %#x" % (
                arch, x, line, expect, sym))
    # Names to B's addresses, for names that occur once.
    count = {}
    for _, _, name, _ in b:
        count[name] = count.get(name, 0) + 1
    names = rnd.sample(sorted(n for n, c in count.items() if c == 1), 2000)
    b_of = {name: addr for addr, _, name, _ in b}
    lines, _ = tool(path_a, arch, ["lookup " + n for n in names])
    for n, line in zip(names, lines):
        if line == "-" or (int(line, 16) + want) % (1 << 64) != b_of[n]:
            raise Failure("%s: lookup %s gave %s, B has it at %#x (slide %#x)" % (arch, n, line, b_of[n], want))


@test
def ksyms_x86_64_two_boots():
    """x86_64 boots are randomised (see scripts/make-system-guest.sh): two
    boots' dumps differ in _text, and either names the other's addresses;
    so does the unrandomised layout (nokaslr)."""
    pa, pb = kallsyms_dump("x86_64", boot="a"), kallsyms_dump("x86_64", boot="b")
    ta, tb = (kernel_start(read_kallsyms(p)) for p in (pa, pb))
    if ta == tb:
        raise Failure("two x86_64 boots put _text at the same address %#x: no KASLR" % ta)
    check_across_boots("x86_64", pa, pb)
    check_across_boots("x86_64", kallsyms_dump("x86_64", kaslr=False), pa)


@test
def ksyms_aarch64_seeded_boots():
    """aarch64 boots are randomised only with a device-tree seed: the
    unrandomised dump names a seeded boot's addresses, and two seeded boots
    differ."""
    p0 = kallsyms_dump("aarch64", kaslr=False)
    pa, pb = kallsyms_dump("aarch64", boot="a"), kallsyms_dump("aarch64", boot="b")
    t0, ta, tb = (kernel_start(read_kallsyms(p)) for p in (p0, pa, pb))
    if len({t0, ta, tb}) != 3:
        raise Failure("aarch64 _stext: %#x (no seed), %#x and %#x (seeded): expected three layouts"
                      % (t0, ta, tb))
    check_across_boots("aarch64", p0, pa)
    check_across_boots("aarch64", pb, pa)


@test
def ksyms_refuses_restricted_dump():
    """A dump read without the right to see addresses (kptr_restrict) is
    all zeros: refused with one line saying how to dump it."""
    src = read_kallsyms(kallsyms_dump("x86_64", boot="a"))
    path = os.path.join(WORK, "restricted-kallsyms.txt")
    with open(path, "w") as f:
        for _, t, name, _ in src:
            f.write("%016x %s %s\n" % (0, t, name))
    p = run([TOOL, path, "0x200000"], input="", check=False)
    msg = p.stderr.strip()
    if p.returncode != 1 or "\n" in msg or "kptr_restrict=0" not in msg:
        raise Failure("restricted dump: status %d, message %r" % (p.returncode, msg))


def slide_in_boot(arch, map_path, kaslr):
    """One boot with test_slidefeed (the finder fed every translated block,
    the map from another boot) that also dumps its own kallsyms: the slide
    decided must be this boot's _text minus the map's."""
    plugin = os.path.join(BUILD, "tests", "plugins", "libtest_slidefeed.so")
    cmd = guest_args(arch, ["kallsyms=only"], kaslr=kaslr) + [
        "-plugin", "%s,map=%s,align=%#x" % (plugin, map_path, ALIGN[arch])]
    p = run(cmd, timeout=900, stdin=subprocess.DEVNULL)
    dump = os.path.join(WORK, "kallsyms-%s-slidefeed.txt" % arch)
    with open(dump, "w") as f:
        f.write("\n".join(parse_kallsyms_console(p.stdout)) + "\n")
    want = kernel_start(read_kallsyms(dump)) - kernel_start(read_kallsyms(map_path))
    m = re.search(r"slidefeed\tslide=(\S+)\tafter=(\d+)\tkernel_blocks=(\d+)", p.stderr)
    if not m or m.group(1) == "-":
        raise Failure("%s: no slide decided in the boot: %s" % (arch, p.stderr[-1000:]))
    got = int(m.group(1), 16)
    print("  %s: slide %#x (expected %#x) after %s translated blocks, %s of them in the kernel half" % (
        arch, got, want % (1 << 64), m.group(2), m.group(3)))
    if got != want % (1 << 64):
        raise Failure("%s: the boot's slide %#x, its own dump says %#x" % (arch, got, want % (1 << 64)))


@test
def ksyms_slide_found_in_real_boots():
    """The slide finder fed the blocks QEMU translates while a randomised
    kernel boots (early physical-address code, firmware, mid-function
    blocks and all), with another boot's map, decides this boot's slide."""
    slide_in_boot("x86_64", kallsyms_dump("x86_64", boot="a"), kaslr=None)
    slide_in_boot("aarch64", kallsyms_dump("aarch64", kaslr=False), kaslr=True)
