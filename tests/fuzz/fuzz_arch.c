/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for the instruction classifiers (src/arch/): arbitrary
 * bytes at an arbitrary address, as translate.c hands them over (up to 96
 * bytes of one block, the instruction to classify at any offset), for every
 * architecture the plugin supports.
 *
 * Input:
 *   [0]     architecture (index into the table below, modulo its size)
 *   [1]     bit 0: the bytes start the block (ARM: the IT state comes from
 *           cpsr); bits 1-7: which offsets to classify (0: all)
 *   [2..5]  the mode register at translation time (ARM: cpsr; T is bit 5,
 *           ITSTATE bits 15:10 and 26:25), little-endian
 *   [6..13] address of the first byte, little-endian (32-bit guests: the low
 *           32 bits)
 *   [14..]  the code bytes (at most 96, as in translate.c)
 * A classification must not crash, and must describe what the plugin can
 * act on: known enum values, register names terminated within their
 * buffers and listed by QEMU, sizes a memory read accepts. Anything else
 * aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/arch.h"
#include "fuzz.h"

#define CODE_MAX 96

static const char *const arch_names[] = {
    "x86_64", "i386", "arm", "aarch64", "mips", "mipsel", "mips64el", "ppc", "ppc64le", "riscv64",
    "ppc64",   /* whole-system: byte order from the mode register (MSR.LE) */
};

static void bad(const char *arch, size_t at, const char *what)
{
    fuzz_fail("fuzz_arch", "%s, offset %zu: %s", arch, at, what);
}

/*
 * The registers QEMU 10.0 lists for these targets (gdb-xml/arm-core.xml,
 * aarch64-core.xml, power-core.xml, power64-core.xml, riscv-64bit-cpu.xml):
 * a classifier naming another register leaves the plugin without the
 * target. (x86 is left out: Capstone names partial registers, which QEMU
 * does not list, for operand sizes compiled code does not call through;
 * MIPS targets are observed.)
 */
static const char *const qemu_regs[][40] = {
    [2] = { "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
            "sp", "lr", "pc", "cpsr" },
    [3] = { "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
            "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
            "x26", "x27", "x28", "x29", "x30", "sp", "pc", "cpsr" },
    [7] = { "r1", "pc", "msr", "cr", "lr", "ctr", "xer" },
    [8] = { "r1", "pc", "msr", "cr", "lr", "ctr", "xer" },
    [9] = { "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3",
            "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
            "t3", "t4", "t5", "t6", "pc" },
    [10] = { "r1", "pc", "msr", "cr", "lr", "ctr", "xer" },
};

/* Is `name` ("" for none) a register QEMU lists for architecture index k? */
static bool qemu_lists(unsigned k, const char *name)
{
    if (!name[0] || k >= sizeof qemu_regs / sizeof qemu_regs[0] || !qemu_regs[k][0]) {
        return true;
    }
    for (unsigned i = 0; i < 40 && qemu_regs[k][i]; i++) {
        if (strcmp(qemu_regs[k][i], name) == 0) {
            return true;
        }
    }
    return false;
}

static bool terminated(const char *s)
{
    return memchr(s, '\0', CSI_REG_NAME_MAX) != NULL;
}

static void check(const csi_arch_desc *a, unsigned k, size_t at, const csi_insn_info *in,
                  uint64_t reg)
{
    if (in->cls > CSI_INSN_RET_CALL) {
        bad(a->name, at, "class out of range");
    }
    if (!terminated(in->target.base) || !terminated(in->target.index) || !terminated(in->cond.reg)) {
        bad(a->name, at, "register name not terminated");
    }
    if (in->cls == CSI_INSN_OTHER) {
        return;
    }
    if (!qemu_lists(k, in->target.base) || !qemu_lists(k, in->target.index) ||
        !qemu_lists(k, in->cond.reg)) {
        fuzz_fail("fuzz_arch", "%s, offset %zu: a register QEMU does not list: '%s' '%s' '%s'",
                  a->name, at, in->target.base, in->target.index, in->cond.reg);
    }
    switch (in->target.kind) {
    case CSI_TARGET_NONE:
    case CSI_TARGET_DIRECT:
    case CSI_TARGET_NEXT:
        break;
    case CSI_TARGET_REG:
        if (!in->target.base[0]) {
            bad(a->name, at, "register target without a register");
        }
        break;
    case CSI_TARGET_MEM:
        if (in->target.size == 0 || in->target.size > 8) {
            bad(a->name, at, "memory target of a size a read refuses");
        }
        break;
    default:
        bad(a->name, at, "target kind out of range");
    }
    if (in->target.kind == CSI_TARGET_NEXT && !a->targets_observed) {
        bad(a->name, at, "observed target on an architecture whose registers are read");
    }
    switch (in->cond.kind) {
    case CSI_COND_ALWAYS:
        break;
    case CSI_COND_ARM:
        if (in->cond.code >= 14 || strcmp(in->cond.reg, "cpsr") != 0) {
            bad(a->name, at, "ARM condition out of range");
        }
        break;
    case CSI_COND_PPC_CR:
        if (in->cond.code >= 32 || strcmp(in->cond.reg, "cr") != 0) {
            bad(a->name, at, "CR bit out of range");
        }
        break;
    default:
        bad(a->name, at, "condition kind out of range");
    }
    (void)csi_cond_holds(&in->cond, reg);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 15) {
        return 0;
    }
    unsigned k = data[0] % (sizeof arch_names / sizeof arch_names[0]);
    const char *name = arch_names[k];
    const csi_arch_desc *a = csi_arch_find(name);
    if (!a) {
        bad(name, 0, "listed architecture not found");
    }
    uint64_t mode = le(data + 2, 4);
    uint64_t addr = le(data + 6, 8);
    if (a->word_bytes == 4) {
        addr &= UINT32_MAX;
    }
    /* A copy of exactly the given length: reads past it are caught. */
    size_t len = size - 14 > CODE_MAX ? CODE_MAX : size - 14;
    uint8_t *bytes = malloc(len);
    memcpy(bytes, data + 14, len);
    unsigned stride = data[1] >> 1;
    csi_code code = { .bytes = bytes, .len = len, .addr = addr, .block_start = data[1] & 1,
                     .mode = a->mode_reg ? mode : 0 };
    for (size_t at = stride ? stride % len : 0; at < len; at += stride ? stride : 1) {
        csi_insn_info info;
        memset(&info, 0, sizeof info);
        code.at = at;
        code.prev_at = at > 0 ? at - 1 - (data[2] % at) : 0;   /* an earlier offset */
        a->classify(a, &code, &info);
        check(a, k, at, &info, mode ^ addr);
        if (info.cls == CSI_INSN_CALL && info.target.kind == CSI_TARGET_DIRECT && a->resolve_call) {
            /* the same bytes as the target's code (thunk recognition) */
            a->resolve_call(a, bytes + at, len - at, &info);
            check(a, k, at, &info, mode ^ addr);
        }
    }
    free(bytes);
    return 0;
}
