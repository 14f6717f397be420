# SPDX-License-Identifier: GPL-2.0-or-later
"""Every supported guest architecture, on programs cross-compiled here and
run under qemu-<arch> -L /usr/<triple>.

uftrace and native GDB do not work across architectures, so the reference
is QEMU's own execution log (-d in_asm,exec,nochain): the sequence of
blocks each vCPU executed, read with a decoder of its own (below) that
knows nothing of the plugin's rules:

- a function of the program is entered when a block starts at its entry
  address (PowerPC64: also its local entry point);
- it is left when a block of it that contains a return instruction (by
  the cross objdump's mnemonic) is followed by a block that does not start
  at the instruction after the return (a conditional return not taken);
- the return address of a call made from the program's code is the end of
  the block that made it (MIPS: after the delay slot);
- a block of the program's function g executed while frames of other
  functions sit above g's topmost frame abandons them (longjmp, exception).

The plugin's call and return events of the program's own functions must
equal that sequence one by one, return addresses included; get_callers at
a chosen function must equal the reference stack there; frames the plugin
reports as unwound must be the ones the reference saw abandoned."""
import collections
import os
import re

from harness import (WORK, Failure, guest, qemu, run, run_plugin, test, tool)

# QEMU target -> (triple, extra compiler flags)
ARCHES = collections.OrderedDict([
    ("i386", ("i686-linux-gnu", ())),
    ("arm", ("arm-linux-gnueabihf", ())),          # Thumb-2 by default
    ("aarch64", ("aarch64-linux-gnu", ())),
    ("mips", ("mips-linux-gnu", ())),
    ("mipsel", ("mipsel-linux-gnu", ())),
    ("mips64el", ("mips64el-linux-gnuabi64", ())),
    ("ppc", ("powerpc-linux-gnu", ())),
    ("ppc64le", ("powerpc64le-linux-gnu", ())),
    ("riscv64", ("riscv64-linux-gnu", ())),
])

O0 = ("-O0",)
O2 = ("-O2", "-fno-optimize-sibling-calls")


def sysroot(arch):
    return ["-L", "/usr/" + ARCHES[arch][0]]


def cross_guest(arch, src, flags, extra=()):
    triple, arch_flags = ARCHES[arch]
    return guest(src, flags=tuple(flags) + tuple(arch_flags) + tuple(extra), cross=triple)


# ---- the reference: objdump + QEMU's execution log ---------------------------

RETURN_RULES = {
    # mnemonic regex, operand regex (None: any)
    "i386": [(r"^(rep[z]? )?ret[lw]?$", None)],
    "arm": [(r"^bx(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(\.n)?$", r"^lr$"),
            (r"^mov(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)?$", r"^pc, lr$"),
            (r"^pop\w*(\.w)?$", r"\bpc\}"),
            (r"^ldm\w*(\.w)?$", r"^sp!, \{.*\bpc\}"),
            (r"^ldr\w*(\.w)?$", r"^pc, \[sp\], #4")],
    "aarch64": [(r"^ret(aa|ab)?$", None), (r"^br$", r"^x30$")],
    "mips": [(r"^jr$", r"^ra$")],
    "ppc": [(r"^b(eq|ne|lt|le|gt|ge|so|ns|un|nu)?lr[+-]?$", None)],
    # jr through a link register; jalr t0 (= jalr ra, 0(t0)) returns to t0
    # and calls it at once (the ISA's pop-then-push hint)
    "riscv64": [(r"^ret$", None), (r"^c?\.?jr$", r"^(ra|t0)$"), (r"^jalr$", r"^t0$")],
}
RETURN_RULES["mipsel"] = RETURN_RULES["mips64el"] = RETURN_RULES["mips"]
RETURN_RULES["ppc64le"] = RETURN_RULES["ppc"]

OBJDUMP_INSN = re.compile(r"^\s*([0-9a-f]+):\t(\S+)(?:\s+(.*?))?\s*$")
OBJDUMP_FUNC = re.compile(r"^([0-9a-f]+) <(.*)>:$")


NOT_CALLED = ("main", "_start", "__start")


class Code:
    """The program's own functions as the cross objdump decodes them. On
    ARM a second decoding forces Thumb, for blocks QEMU ran in Thumb state
    (the same bytes can be executed in both)."""

    def __init__(self, g, arch):
        self.g, self.arch = g, arch
        self.next, self.returns = self.decode([])
        self.next_t, self.returns_t = self.decode(["-M", "force-thumb"]) if arch == "arm" \
            else (self.next, self.returns)
        self.entries = {}       # entry address -> function start
        # GCC's hot/cold splitting puts part of f in "f.cold": a part of f
        # reached by jumps, never entered by a call. main is left out: the
        # C library enters it in ways that differ by architecture (AArch64's
        # crt1 calls a BTI wrapper that jumps to main); _start is entered by
        # no call at all.
        by_name = {n: a for a, (n, _) in g.own.items()}
        self.parent = {a: by_name.get(n.split(".cold")[0], a) for a, (n, _) in g.own.items()}
        for start, (name, _) in g.own.items():
            if ".cold" not in name and name not in NOT_CALLED:
                self.entries[start] = start
        if arch == "ppc64le":
            # ELFv2: a local call enters after the TOC set-up.
            for line in run([tool(g.cross, "readelf"), "-sW", g.binary]).stdout.splitlines():
                m = re.search(r":\s*([0-9a-f]+)\s+\d+\s+FUNC\s.*\[<localentry>: (\d+)\]", line)
                if m and int(m.group(1), 16) in self.entries:
                    start = int(m.group(1), 16)
                    self.entries[start + int(m.group(2))] = start

    def decode(self, options):
        """(insn address -> next insn address, return instruction addresses)"""
        g, nxt, returns = self.g, {}, set()
        out = run([tool(g.cross, "objdump"), "-d", "--no-show-raw-insn"] + options
                  + [g.binary]).stdout
        rules = [(re.compile(m), re.compile(o) if o else None) for m, o in RETURN_RULES[self.arch]]
        prev = None
        for line in out.splitlines():
            if OBJDUMP_FUNC.match(line):
                prev = None
                continue
            m = OBJDUMP_INSN.match(line)
            if not m:
                continue
            addr, mnem, ops = int(m.group(1), 16), m.group(2), m.group(3) or ""
            if g.function_at(addr) is None:
                prev = None
                continue
            if prev is not None:
                nxt[prev] = addr
            prev = addr
            if any(r.search(mnem) and (o is None or o.search(ops)) for r, o in rules):
                returns.add(addr)
        return nxt, returns

    def owner(self, addr):
        """The function (not a .cold part) whose code holds addr, or None."""
        f = self.g.function_at(addr)
        return self.parent.get(f, f) if f is not None else None

    def func(self, addr):
        """The function an event address names (entry points normalised)."""
        return self.entries.get(addr & ~1 if self.arch == "arm" else addr)


TRACE = re.compile(r"^Trace (\d+): 0x[0-9a-f]+ \[([0-9a-f]+)/([0-9a-f]+)/([0-9a-f]+)/[0-9a-f]+\]")
ARM_THUMB = 1 << 23     # QEMU 10's AArch32 block flags (csi_base): Thumb state
IN_INSN = re.compile(r"^0x([0-9a-f]+):")


def exec_blocks(arch, g, args=()):
    """Per vCPU: the executed blocks, as (start, end, thumb), from QEMU's log."""
    log = os.path.join(WORK, g.name + ".exec.log")
    run([qemu(arch)] + sysroot(arch) + ["-d", "in_asm,exec,nochain", "-D", log, g.binary]
        + list(args), cwd=WORK)
    code = Code(g, arch)
    blocks = collections.OrderedDict()
    sizes = {}            # (pc, flags) -> end, from the translation just before
    last_in = None        # [start, last insn address, byte count]
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                last_in = [None, None, 0]
                continue
            m = TRACE.match(line)
            if m:
                cpu, pc = int(m.group(1)), int(m.group(3), 16)
                flags = (m.group(2), m.group(4))
                thumb = arch == "arm" and int(m.group(2), 16) & ARM_THUMB != 0
                if last_in is not None and last_in[0] == pc:
                    if last_in[2] and arch != "riscv64":
                        end = pc + last_in[2]
                    elif arch == "riscv64":
                        end = pc + last_in[2]
                    else:
                        end = (code.next_t if thumb else code.next).get(last_in[1], last_in[1] + 4)
                    sizes[(pc, flags)] = end
                last_in = None
                blocks.setdefault(cpu, []).append((pc, sizes.get((pc, flags), pc), thumb))
                continue
            if last_in is None:
                continue
            m = IN_INSN.match(line)
            if m:
                a = int(m.group(1), 16)
                if last_in[0] is None:
                    last_in[0] = a
                last_in[1] = a
                if arch == "riscv64":
                    # QEMU's RISC-V listing shows each instruction's hex: 2 or 4 bytes
                    last_in[2] += len(line.split()[1]) // 2
            elif line.startswith("OBJD-"):
                last_in[2] += len(line.split(":", 1)[1].strip()) // 2
    os.unlink(log)
    return code, blocks


Ref = collections.namedtuple("Ref", "events abandoned stacks")


def reference(arch, g, args=()):
    """Per vCPU: events [(kind, func, ret or None)], abandoned frames per
    function, and the stack (ret addresses, most recent first) at each
    function's first entry."""
    code, blocks = exec_blocks(arch, g, args)
    refs = []
    for cpu, seq in blocks.items():
        stack, events, abandoned, stacks = [], [], collections.Counter(), {}
        prev = None

        def pop_to(func, inclusive):
            idx = max((i for i, fr in enumerate(stack) if fr[0] == func), default=None)
            if idx is None:
                return False
            for fr in stack[idx + 1:]:
                abandoned[fr[0]] += 1
            del stack[idx + (0 if inclusive else 1):]
            return True

        for pc, end, thumb in seq:
            if prev is not None:
                ppc, pend, pthumb = prev
                returns, nxt = (code.returns_t, code.next_t) if pthumb else (code.returns, code.next)
                rets = sorted(a for a in returns if ppc <= a < pend)
                if rets and pc != nxt.get(rets[-1]):
                    f = code.owner(rets[-1])
                    if f in code.entries.values():
                        events.append(("exit", f, None))
                    pop_to(f, inclusive=True)
            f = code.func(pc)
            if f is not None:
                ret = prev[1] if prev is not None and g.function_at(prev[0]) is not None else None
                stack.append((f, ret))
                events.append(("entry", f, ret))
                if f not in stacks:
                    stacks[f] = (pc, [r for _, r in reversed(stack)])
            else:
                cur = code.owner(pc)
                if cur is not None:
                    pop_to(cur, inclusive=False)
            prev = (pc, end, thumb)
        if events:
            refs.append(Ref(events, abandoned, stacks))
    if len(refs) != 1:
        raise Failure("expected one thread of the program's own functions, got %d" % len(refs))
    return code, refs[0]


# ---- comparison -----------------------------------------------------------------

def plugin_events(code, events):
    out, unwound = [], collections.Counter()
    for e in events:
        f = code.func(e.func)
        if f is None:
            continue
        if e.unwound:
            unwound[f] += 1
        else:
            out.append(("entry" if e.kind == "call" else "exit", f, e.ret))
    return out, unwound


def show(g, seq, i):
    return ", ".join("%s %s%s" % (k, g.name_of(f), " ->0x%x" % r if r is not None else "")
                     for k, f, r in seq[max(0, i - 3):i + 3])


def compare(g, ref, got):
    """One by one: kinds and functions; return addresses of calls where the
    reference knows them (calls made from the program's own code)."""
    for i, (r, p) in enumerate(zip(ref, got)):
        same = r[0] == p[0] and r[1] == p[1] and (r[0] == "exit" or r[2] is None or r[2] == p[2])
        if not same:
            raise Failure("event %d differs:\n  reference: %s\n  plugin:    %s"
                          % (i, show(g, ref, i), show(g, got, i)))
    if len(ref) != len(got):
        i = min(len(ref), len(got))
        raise Failure("reference has %d events, plugin %d; from event %d:\n  reference: %s\n"
                      "  plugin:    %s" % (len(ref), len(got), i, show(g, ref, i), show(g, got, i)))
    if not any(k == "entry" and r is not None for k, _, r in ref):
        raise Failure("no call from the program's own code in the reference")


def own_rets(g, rets):
    out = []
    for a in rets:
        if a is None or g.function_at(a) is None:
            break
        out.append(a)
    return out


def check_arch(arch, g, callers_at=None, expect_unwound=False, strict=False):
    """strict: a freestanding program, whose every event must be one of its
    own functions' (a pc read taken for a call would show here)."""
    code, ref = reference(arch, g)
    events, callers, _, _, _ = run_plugin(g, arch=arch, qemu_args=sysroot(arch))
    got, unwound = plugin_events(code, events)
    foreign = [e for e in events if code.func(e.func) is None]
    if strict and foreign:
        raise Failure("events for addresses that are no function entry: %s" % [
            "%s 0x%x (ret 0x%x)" % (e.kind, e.func, e.ret) for e in foreign[:6]])
    if len({e.sid for e in events}) != 1:
        raise Failure("expected one stack, got %s" % sorted({e.sid for e in events}))
    compare(g, ref.events, got)
    if unwound != ref.abandoned:
        raise Failure("unwound frames %s, reference abandoned %s" % (
            {g.name_of(f): n for f, n in unwound.items()},
            {g.name_of(f): n for f, n in ref.abandoned.items()}))
    if expect_unwound and not unwound:
        raise Failure("no unwound frames: the guest's non-local exit was not exercised")
    if callers_at:
        f = g.addr(callers_at)
        if f not in ref.stacks:
            raise Failure("%s was never entered" % callers_at)
        # at the function's symbol: the address the plugin reports for it
        # however it is entered (ppc64le: also at its local entry point)
        _, want = ref.stacks[f]
        _, callers, _, _, _ = run_plugin(g, arch=arch, qemu_args=sysroot(arch),
                                         trace_args="callers_at=0x%x" % f, tag="-callers")
        if not callers:
            raise Failure("no callers line at %s" % callers_at)
        got_c, want_c = own_rets(g, callers[0][2]), own_rets(g, want)
        if got_c != want_c or len(want_c) < 2:
            raise Failure("callers at %s:\n  reference: %s\n  plugin:    %s" % (
                callers_at, [hex(a) for a in want_c], [hex(a) for a in got_c]))


# ---- tests: real programs on every architecture -------------------------------------

# MIPS: QEMU exposes no registers, so no stack pointer: the plugin cannot
# tell abandoned frames until a return below them (docs/architectures.md),
# and get_callers right after a longjmp or an exception still lists them.
NO_SP = {"mips", "mipsel", "mips64el"}


def make_tests(arch):
    def recursion_O0():
        check_arch(arch, cross_guest(arch, "recursion.c", O0), callers_at="checkpoint")

    def recursion_O2():
        check_arch(arch, cross_guest(arch, "recursion.c", O2), callers_at="checkpoint")

    def longjmp_O2():
        check_arch(arch, cross_guest(arch, "longjmp.c", O2),
                   callers_at=None if arch in NO_SP else "checkpoint", expect_unwound=True)

    def exception_O2():
        check_arch(arch, cross_guest(arch, "exception.cpp", O2),
                   callers_at=None if arch in NO_SP else "checkpoint", expect_unwound=True)

    for fn in (recursion_O0, recursion_O2, longjmp_O2, exception_O2):
        fn.__name__ = "%s_%s_vs_qemu_log" % (arch, fn.__name__)
        test(fn)


for _arch in ARCHES:
    make_tests(_arch)


# ---- traps: hand-written freestanding programs (tests/guests/arch/) -------------

FREESTANDING = ("-nostdlib", "-static")


def check_trap(arch, src, extra=(), min_calls=4):
    g = cross_guest(arch, "arch/" + src, FREESTANDING, extra=extra)
    check_arch(arch, g, strict=True)
    _, ref = reference(arch, g)
    calls = [e for e in ref.events if e[0] == "entry"]
    if len(calls) < min_calls:
        raise Failure("the trap guest made only %d calls" % len(calls))
    return g, ref


@test
def i386_trap_call_next_pop_vs_qemu_log():
    check_trap("i386", "i386.S", min_calls=4)


@test
def arm_trap_arm_thumb_interworking_vs_qemu_log():
    g, ref = check_trap("arm", "arm.S", min_calls=12)
    dual = g.addr("dual")
    if [e[0] for e in ref.events if e[1] == dual] != ["entry", "exit", "entry", "exit"]:
        raise Failure("dual was not entered and left twice (ARM, Thumb): %s" % ref.events)


@test
def aarch64_trap_blr_br_x30_ret_xn_vs_qemu_log():
    check_trap("aarch64", "aarch64.S", min_calls=5)


@test
def ppc_trap_bcl_bctrl_conditional_vs_qemu_log():
    check_trap("ppc", "ppc.S", min_calls=5)


@test
def ppc64le_trap_bcl_bctrl_conditional_vs_qemu_log():
    check_trap("ppc64le", "ppc.S", min_calls=5)


@test
def riscv64_trap_ra_t0_compressed_coroutine_vs_qemu_log():
    check_trap("riscv64", "riscv64.S", min_calls=6)


MIPS_ASM = ("-mno-abicalls", "-fno-pic")   # plain jal/bal, as written


@test
def mips_trap_delay_slots_bal_vs_qemu_log():
    check_trap("mips", "mips.S", extra=MIPS_ASM, min_calls=5)


@test
def mipsel_trap_delay_slots_bal_vs_qemu_log():
    check_trap("mipsel", "mips.S", extra=MIPS_ASM, min_calls=5)


@test
def mips64el_trap_delay_slots_bal_vs_qemu_log():
    check_trap("mips64el", "mips.S", extra=MIPS_ASM, min_calls=5)


@test
def arm_state_recursion_O2_vs_qemu_log():
    # -marm: ARM (not Thumb) state, conditional returns and calls
    check_arch("arm", cross_guest("arm", "recursion.c", O2, extra=("-marm",)),
               callers_at="checkpoint")


@test
def arm_state_exception_O0_vs_qemu_log():
    check_arch("arm", cross_guest("arm", "exception.cpp", O0, extra=("-marm",)),
               callers_at="checkpoint", expect_unwound=True)
