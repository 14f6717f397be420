/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AArch64, decoded from the fixed 32-bit encodings (Arm ARM, "Branches,
 * exception generating and system instructions"):
 *   bl imm26            call, direct
 *   blr xN              call, target xN
 *   ret {xN}            return to xN (x30 by default)
 *   retaa / retab       return to x30 after pointer authentication
 *   br x30              return: a branch to the link register can only go
 *                       back to the caller (glibc's longjmp uses it); any
 *                       other br is a jump (tail call, switch)
 * The link register is x30; sp does not change at calls or returns.
 */
#include <stdio.h>
#include <string.h>
#include "arch.h"

/* Tags and pointer authentication codes sit above the 48-bit address;
 * bit 55 tells the user half (bits 48-63 zero) from the kernel's (ones). */
#define VA_MASK ((1ull << 48) - 1)
#define HALF_BIT 55

static void xreg(csi_target *t, unsigned n)
{
    t->kind = CSI_TARGET_REG;
    snprintf(t->base, CSI_REG_NAME_MAX, "x%u", n);
}

void csi_arch_aarch64_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    out->cls = CSI_INSN_OTHER;
    if (c->len - c->at < 4) {
        return;
    }
    uint64_t addr = c->addr + c->at;
    uint32_t w = csi_arch_word32(a, c->bytes + c->at);
    unsigned rn = (w >> 5) & 31;
    out->target.mask = VA_MASK;
    out->target.half_bit = HALF_BIT;
    if ((w & 0xfc000000u) == 0x94000000u) {                 /* bl */
        out->cls = CSI_INSN_CALL;
        out->target.kind = CSI_TARGET_DIRECT;
        out->target.addr = addr + (uint64_t)(csi_sext(w & 0x03ffffffu, 26) * 4);
    } else if ((w & 0xfffffc1fu) == 0xd63f0000u && rn != 31) {  /* blr xN */
        out->cls = CSI_INSN_CALL;
        xreg(&out->target, rn);
    } else if ((w & 0xfffffc1fu) == 0xd65f0000u && rn != 31) {  /* ret xN */
        out->cls = CSI_INSN_RET;
        xreg(&out->target, rn);
    } else if (w == 0xd65f0bffu || w == 0xd65f0fffu) {      /* retaa, retab */
        out->cls = CSI_INSN_RET;
        xreg(&out->target, 30);
    } else if (w == (0xd61f0000u | 30u << 5)) {             /* br x30 */
        out->cls = CSI_INSN_RET;
        xreg(&out->target, 30);
    }
    if (out->cls == CSI_INSN_CALL) {
        out->ret_addr = addr + 4;
    }
}
