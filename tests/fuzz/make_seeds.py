#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the seed inputs of tests/fuzz/corpus/ from real code: instruction
bytes of the test guests compiled by Debian's cross compilers, small ELF
files (with symbols, stripped with a detached debug file, other classes and
byte orders, a dynamic one with PLT stubs) and a few engine streams.

Needs the cross toolchains scripts/setup.sh installs. Seeds are committed;
run this only to regenerate them (files named seed-* are replaced; others,
the regression inputs, are kept):

    python3 tests/fuzz/make_seeds.py
"""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
GUESTS = os.path.join(ROOT, "tests", "guests")

# fuzz_arch's architecture indexes (its arch_names table).
ARCH_INDEX = {"x86_64": 0, "i386": 1, "arm": 2, "aarch64": 3, "mips": 4, "mipsel": 5,
              "mips64el": 6, "ppc": 7, "ppc64le": 8, "riscv64": 9}
# architecture -> (compiler triple, hand-written trap source or None)
TOOLS = {
    "x86_64": ("x86_64-linux-gnu", None),
    "i386": ("i686-linux-gnu", "i386.S"),
    "arm": ("arm-linux-gnueabihf", "arm.S"),
    "aarch64": ("aarch64-linux-gnu", "aarch64.S"),
    "mips": ("mips-linux-gnu", "mips.S"),
    "mipsel": ("mipsel-linux-gnu", "mips.S"),
    "mips64el": ("mips64el-linux-gnuabi64", None),
    "ppc": ("powerpc-linux-gnu", "ppc.S"),
    "ppc64le": ("powerpc64le-linux-gnu", None),
    "riscv64": ("riscv64-linux-gnu", "riscv64.S"),
}
CODE_MAX = 48   # seeds: chunks of the text (translate.c passes at most 5 instructions)


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def clear(name):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    return d


def put(d, name, data):
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def text_of(triple, obj, tmp):
    """The .text bytes of an object file, and its symbols (name -> value)."""
    out = os.path.join(tmp, "text.bin")
    run(triple + "-objcopy", "-O", "binary", "-j", ".text", obj, out)
    with open(out, "rb") as f:
        text = f.read()
    syms = {}
    nm = subprocess.run([triple + "-nm", obj], check=True, capture_output=True, text=True).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            syms[parts[2]] = int(parts[0], 16)
    return text, syms


def arch_seeds(tmp):
    d = clear("fuzz_arch")
    for arch, (triple, trap) in TOOLS.items():
        sources = [os.path.join(GUESTS, "recursion.c")]
        if trap:
            sources.append(os.path.join(GUESTS, "arch", trap))
        for src in sources:
            obj = os.path.join(tmp, "%s-%s.o" % (arch, os.path.basename(src)))
            try:
                run(triple + "-gcc", "-O2", "-c", "-o", obj, src)
            except (OSError, subprocess.CalledProcessError):
                print("skipped %s %s (no %s-gcc?)" % (arch, src, triple), file=sys.stderr)
                continue
            text, syms = text_of(triple, obj, tmp)
            # ARM: the trap's Thumb half starts at thumb_fn; compiled C is Thumb-2.
            thumb_from = syms.get("thumb_fn", 0 if src.endswith(".c") else len(text))
            base = 0x10000
            for i, at in enumerate(range(0, len(text), CODE_MAX)):
                chunk = text[at:at + CODE_MAX]
                cpsr = 0x20 if arch == "arm" and at >= thumb_from else 0
                head = bytes([ARCH_INDEX[arch], 1]) + struct.pack("<IQ", cpsr, base + at)
                put(d, "%s-%s-%d" % (arch, os.path.basename(src).split(".")[0], i), head + chunk)
    # Thumb inside an IT block at the block's start: ITSTATE from cpsr
    # (itt eq: firstcond 0, mask 0b0100 -> IT[7:0] = 0x04), then bleq; bxeq lr.
    it = 0x04
    cpsr = 0x20 | (it & 3) << 25 | (it >> 2) << 10
    put(d, "arm-it-cpsr", bytes([ARCH_INDEX["arm"], 1]) + struct.pack("<IQ", cpsr, 0x10000) +
        bytes.fromhex("fff7feff7047"))


def damaged(elf):
    """Variants of a small ELF64 little-endian file a hostile guest could
    map: (name, bytes)."""
    out = [("truncated-header", elf[:40]), ("truncated-half", elf[:len(elf) // 2]),
           ("wrong-class", elf[:4] + b"\x01" + elf[5:]),
           ("wrong-endian", elf[:5] + b"\x02" + elf[6:])]
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3a)

    def patched(off, fmt, *vals):
        b = bytearray(elf)
        struct.pack_into(fmt, b, off, *vals)
        return bytes(b)

    out.append(("shnum-huge", patched(0x3c, "<H", 0xffff)))
    out.append(("shoff-overlaps-header", patched(0x28, "<Q", 0)))
    out.append(("shoff-past-end", patched(0x28, "<Q", len(elf) - 8)))
    out.append(("shstrndx-bogus", patched(0x3e, "<H", shnum + 7)))
    # per section: sh_name (I), sh_type (I), ..., sh_offset at +0x18, sh_size
    # at +0x20, sh_link at +0x28, sh_entsize at +0x38
    for i in range(shnum):
        sh = shoff + i * shentsize
        kind, = struct.unpack_from("<I", elf, sh + 4)
        if kind == 2:    # SHT_SYMTAB
            out.append(("symtab-link-self", patched(sh + 0x28, "<I", i)))
            out.append(("symtab-size-huge", patched(sh + 0x20, "<Q", 1 << 40)))
            out.append(("symtab-entsize-1", patched(sh + 0x38, "<Q", 1)))
            link, = struct.unpack_from("<I", elf, sh + 0x28)
            out.append(("strtab-offset-past-end",
                        patched(shoff + link * shentsize + 0x18, "<Q", len(elf) + 4096)))
        elif kind == 7:  # SHT_NOTE: namesz, descsz, type at sh_offset
            off, = struct.unpack_from("<Q", elf, sh + 0x18)
            out.append(("note-descsz-huge", patched(off + 4, "<I", 0x7fffffff)))
            out.append(("note-descsz-1", patched(off + 4, "<I", 1)))
    return out


def elf_seeds(tmp):
    d = clear("fuzz_elf")
    src = os.path.join(tmp, "tiny.c")
    with open(src, "w") as f:
        f.write("int leaf(int x) { return x + 1; }\n"
                "static int __attribute__((noinline)) mid(int x) { return leaf(x) * 2; }\n"
                "void _start(void) { volatile int r = mid(1); (void)r; for (;;) ; }\n")
    flags = ["-Os", "-nostdlib", "-static", "-fno-asynchronous-unwind-tables",
             "-Wl,--build-id=sha1", "-Wl,-z,noseparate-code", "-Wl,-z,max-page-size=0x1000"]

    def prog(name, data, debug=b""):
        put(d, name, struct.pack("<I", len(data)) + data + debug)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    for arch in ("x86_64", "i386", "mips", "aarch64"):
        triple = TOOLS[arch][0]
        exe = os.path.join(tmp, "tiny-" + arch)
        run(triple + "-gcc", *flags, "-o", exe, src)
        prog("tiny-" + arch, read(exe))
        if arch == "x86_64":
            for name, data in damaged(read(exe)):
                prog("damaged-" + name, data)
            dbg, stripped = exe + ".debug", exe + ".stripped"
            run("objcopy", "--only-keep-debug", exe, dbg)
            run("objcopy", "--strip-all", "--add-gnu-debuglink=" + dbg, exe, stripped)
            prog("stripped-with-debug", read(stripped), read(dbg))
    # A dynamic program: .dynsym, .rela.plt and PLT stubs.
    dyn = os.path.join(tmp, "dyn")
    with open(os.path.join(tmp, "dyn.c"), "w") as f:
        f.write("#include <stdio.h>\n#include <stdlib.h>\n"
                "int main(int c, char **v) { puts(v[0]); return getenv(v[c - 1]) != NULL; }\n")
    for arch in ("x86_64", "i386"):
        triple = TOOLS[arch][0]
        run(triple + "-gcc", "-Os", "-o", dyn, os.path.join(tmp, "dyn.c"), "-Wl,-z,noseparate-code",
            "-Wl,-z,max-page-size=0x1000", "-Wl,-z,lazy")
        run(triple + "-strip", dyn)
        prog("dynamic-stripped" + ("" if arch == "x86_64" else "-" + arch), read(dyn))
    # Not ELF at all: a maps text (exercises the maps parser only).
    put(d, "maps-text", b"\0\0\0\0" + b"00400000-00401000 r-xp 00000000 fe:01 42 /bin/true\n"
        b"00401000-00402000 rw-p 00001000 fe:01 42 /bin/true (deleted)\n"
        b"7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]\n")


def engine_seeds():
    d = clear("fuzz_engine")
    # op byte: bits 0-2 operation (0,1 call; 2,3 ret; 4 slot ret; 5 unwind_top;
    # 6 query; 7 drop), bits 3-4 stack, bits 5-7 variant.
    def op(kind, stack=0, variant=0, a=0, b=0, c=0):
        return bytes([kind | stack << 3 | variant << 5, a, b, c])

    nest = b"".join(op(0, 0, 0, i, i, 1) for i in range(8)) + op(6) + \
        b"".join(op(2, 0, 0) for _ in range(8)) + op(6)
    skip = op(0, a=1, b=1) + op(0, a=2, b=2) + op(0, a=3, b=3) + op(2, variant=1, c=0) + op(6)
    slots = op(0, a=1, b=1) + op(0, a=2, b=2) + op(4) + op(4) + op(4, variant=7, a=9) + op(6)
    switch = op(0, 0, a=1, b=1) + op(0, 1, a=2, b=2) + op(0, 2, a=3, b=3) + op(0, 3, a=4, b=4) + \
        op(2, 1) + op(5, 0) + op(7, 2, variant=7) + op(6, 0, variant=7) + op(2, 3) + op(6, 3)
    longjmp = b"".join(op(0, 0, 4, i, i, 255 - i * 8) for i in range(6)) + op(0, 0, 4, 9, 9, 250) + \
        op(2, 0, 4, 15, 255) + op(6)
    deep = b"".join(op(0, 0, 0, i & 15, i & 15, 1) for i in range(40)) + op(3, 0, 4, 3) + op(6)
    # heuristic (flag 0x80): sp far apart puts calls on different stacks;
    # config [flags, max_depth, distance = 16 + 8 * n, max stacks = 1 + n % 8]
    coro = op(0, 0, 4, 1, 1, 250) + op(0, 0, 4, 2, 2, 10) + op(0, 0, 4, 3, 3, 249) + \
        op(0, 1, 4, 4, 4, 128) + op(0, 2, 4, 5, 5, 250) + op(2, 0, 4, 3, 249) + op(6, 0) + \
        op(0, 0, 4, 6, 6, 60) + op(0, 0, 4, 7, 7, 190) + op(7, 1, 7) + op(0, 0, 4, 8, 8, 100) + \
        op(2, 0, 0) + op(2, 1, 4, 4, 128) + op(6, 2)
    put(d, "heuristic-coroutines", bytes([0x80 | 1 | 32, 0, 2, 1]) + coro)
    put(d, "heuristic-noevents", bytes([0x80 | 1 | 8, 0, 0, 7]) + coro)
    # config: [flags, max_depth, search_limit, resync_window / 8]
    put(d, "nest-events", bytes([32, 0, 0, 0]) + nest)
    put(d, "nest-lockfree", bytes([8 | 16, 0, 0, 0]) + nest)
    put(d, "skip-limit", bytes([32, 0, 2, 0]) + skip)
    put(d, "slots-x86", bytes([1 | 2 | 32, 0, 0, 0]) + slots)
    put(d, "switch-stacks", bytes([4 | 32 | 64, 0, 0, 0]) + switch)
    put(d, "longjmp-resync", bytes([1 | 32, 0, 0, 16]) + longjmp)
    put(d, "max-depth", bytes([32, 5, 0, 0]) + deep)
    put(d, "max-depth-noevents", bytes([8, 4, 0, 0]) + deep)


# A C file declaring what osi_linux's layout reader looks for, with the
# anonymous nesting Linux's own structs have; pahole -J turns its DWARF
# into BTF.
OSI_TYPES = r"""
typedef int pid_t;
struct mm_struct { int count; struct { void *mmap_base; void *pgd; }; };
struct task_struct {
    unsigned int flags; void *stack;
    union { int other; struct { pid_t pid; pid_t tgid; struct mm_struct *mm; }; };
    char comm[16];
};
struct pcpu_hot { int preempt_count; struct task_struct *current_task; };
struct task_struct t; struct pcpu_hot h;
"""


def osi_seeds(tmp):
    """fuzz_osi_image: a small BTF (from pahole -J) as a raw blob, in an ELF,
    compressed whole with each codec, as an arm64 Image, and as the payload
    of a minimal bzImage and EFI zboot image."""
    d = clear("fuzz_osi_image")
    src, obj, btf = (os.path.join(tmp, n) for n in ("osi.c", "osi.o", "osi.btf"))
    with open(src, "w") as f:
        f.write(OSI_TYPES)
    run("gcc", "-g", "-c", "-o", obj, src)
    run("pahole", "-J", obj)
    run("objcopy", "--dump-section", ".BTF=" + btf, obj)
    raw = open(btf, "rb").read()
    elf = open(obj, "rb").read()
    put(d, "raw-btf", raw)
    put(d, "elf", elf)
    codecs = {"gzip": ["gzip", "-9", "-n"], "xz": ["xz", "--check=crc32"], "lzma": ["lzma"],
              "bzip2": ["bzip2"], "lz4": ["lz4", "-l"], "zstd": ["zstd", "-q"], "lzo": ["lzop"]}
    packed = {}
    for name, cmd in codecs.items():
        packed[name] = subprocess.run(cmd + ["-c", obj], check=True, stdout=subprocess.PIPE).stdout
        put(d, "elf." + name, packed[name])
    image = bytearray(64)
    image[0x38:0x3c] = b"ARM\x64"
    put(d, "arm64-image", bytes(image) + raw + bytes(64))
    # bzImage: setup_sects 1, protocol 2.15, payload right after the setup.
    bz = bytearray(1024)
    bz[0x1f1] = 1
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<HII", bz, 0x206, 0x20f, 0, 0)
    struct.pack_into("<II", bz, 0x248, 0, len(packed["lz4"]))
    put(d, "bzimage-lz4", bytes(bz) + packed["lz4"] + struct.pack("<I", len(elf)))
    zb = bytearray(512)
    zb[0:8] = b"MZ\0\0zimg"
    struct.pack_into("<II", zb, 8, 512, len(packed["zstd"]))
    zb[24:29] = b"zstd\0"
    put(d, "zboot-zstd", bytes(zb) + packed["zstd"])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        arch_seeds(tmp)
        elf_seeds(tmp)
        osi_seeds(tmp)
    engine_seeds()
    for h in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, h))
        size = sum(os.path.getsize(os.path.join(CORPUS, h, f)) for f in files)
        print("%s: %d inputs, %d bytes" % (h, len(files), size))


if __name__ == "__main__":
    main()
