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
 * buffers, sizes a memory read accepts. Anything else aborts.
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
};

static void bad(const char *arch, size_t at, const char *what)
{
    fuzz_fail("fuzz_arch", "%s, offset %zu: %s", arch, at, what);
}

static bool terminated(const char *s)
{
    return memchr(s, '\0', CS_REG_NAME_MAX) != NULL;
}

static void check(const cs_arch_desc *a, size_t at, const cs_insn_info *in, uint64_t reg)
{
    if (in->cls > CS_INSN_RET_CALL) {
        bad(a->name, at, "class out of range");
    }
    if (!terminated(in->target.base) || !terminated(in->target.index) || !terminated(in->cond.reg)) {
        bad(a->name, at, "register name not terminated");
    }
    if (in->cls == CS_INSN_OTHER) {
        return;
    }
    switch (in->target.kind) {
    case CS_TARGET_NONE:
    case CS_TARGET_DIRECT:
    case CS_TARGET_NEXT:
        break;
    case CS_TARGET_REG:
        if (!in->target.base[0]) {
            bad(a->name, at, "register target without a register");
        }
        break;
    case CS_TARGET_MEM:
        if (in->target.size == 0 || in->target.size > 8) {
            bad(a->name, at, "memory target of a size a read refuses");
        }
        break;
    default:
        bad(a->name, at, "target kind out of range");
    }
    if (in->target.kind == CS_TARGET_NEXT && !a->targets_observed) {
        bad(a->name, at, "observed target on an architecture whose registers are read");
    }
    switch (in->cond.kind) {
    case CS_COND_ALWAYS:
        break;
    case CS_COND_ARM:
        if (in->cond.code >= 14 || strcmp(in->cond.reg, "cpsr") != 0) {
            bad(a->name, at, "ARM condition out of range");
        }
        break;
    case CS_COND_PPC_CR:
        if (in->cond.code >= 32 || strcmp(in->cond.reg, "cr") != 0) {
            bad(a->name, at, "CR bit out of range");
        }
        break;
    default:
        bad(a->name, at, "condition kind out of range");
    }
    (void)cs_cond_holds(&in->cond, reg);
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
    const char *name = arch_names[data[0] % (sizeof arch_names / sizeof arch_names[0])];
    const cs_arch_desc *a = cs_arch_find(name);
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
    cs_code code = { .bytes = bytes, .len = len, .addr = addr, .block_start = data[1] & 1,
                     .mode = a->mode_reg ? mode : 0 };
    for (size_t at = stride ? stride % len : 0; at < len; at += stride ? stride : 1) {
        cs_insn_info info;
        memset(&info, 0, sizeof info);
        code.at = at;
        a->classify(a, &code, &info);
        check(a, at, &info, mode ^ addr);
    }
    free(bytes);
    return 0;
}
