/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AArch64 (A64). A call is `bl label` or `blr xN`: it writes the return
 * address (pc + 4) to x30 and leaves sp alone; a return is `ret` (x30, or
 * `ret xN`), which jumps to the register. Leaving an exception (`eret`) is
 * not a return, and `br` is a jump (tail calls, PLT stubs).
 *
 * The encodings are fixed 32-bit words, decoded here directly (Capstone 4
 * does not know the pointer-authentication forms; they are left out: the
 * CPUs they need are not the ones tested, and their hint-space prologues,
 * paciasp/autiasp, are no-ops for us).
 */
#include <stdio.h>
#include <string.h>
#include "arch.h"

static void xreg(unsigned n, char *out)
{
    snprintf(out, CS_REG_NAME_MAX, "x%u", n);
}

void cs_arch_a64_classify(const cs_arch_desc *a, const uint8_t *code, size_t len,
                          uint64_t addr, uint64_t mode, cs_insn_info *out)
{
    (void)a;
    (void)mode;
    out->cls = CS_INSN_OTHER;
    if (len < 4) {
        return;
    }
    uint32_t w = (uint32_t)code[0] | (uint32_t)code[1] << 8 | (uint32_t)code[2] << 16 |
                 (uint32_t)code[3] << 24;
    unsigned rn = (w >> 5) & 31;
    if ((w & 0xfc000000u) == 0x94000000u) {            /* BL imm26 */
        int64_t off = (int64_t)((uint64_t)(w & 0x03ffffffu) << 38) >> 36;   /* imm26 * 4 */
        out->cls = CS_INSN_CALL;
        out->target.kind = CS_TARGET_DIRECT;
        out->target.addr = addr + (uint64_t)off;
    } else if ((w & 0xfffffc1fu) == 0xd63f0000u) {     /* BLR Xn */
        out->cls = CS_INSN_CALL;
        out->target.kind = CS_TARGET_REG;
        xreg(rn, out->target.base);
    } else if ((w & 0xfffffc1fu) == 0xd65f0000u) {     /* RET Xn */
        out->cls = CS_INSN_RET;
        out->target.kind = CS_TARGET_REG;
        xreg(rn, out->target.base);
        return;
    } else {
        return;
    }
    out->ret_addr = addr + 4;
}
