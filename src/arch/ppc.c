/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PowerPC (32-bit big-endian and 64-bit little-endian), decoded from the
 * fixed 32-bit encodings (Power ISA, Book I, "Branch Instructions"):
 *   bl / bla            I-form with LK=1: call, direct
 *   bcl BO,BI,target    B-form with LK=1: conditional call, direct
 *   bcctrl (bctrl)      call to CTR
 *   bclr (blr)          return to LR
 *   bclrl (blrl)        taken as a return: it branches to LR, so it goes
 *                       back to whoever set LR (the 32-bit GOT trick
 *                       `bl GOT-4` executes a blrl found there), rather
 *                       than calling a function
 * `bcl 20,31,$+4` (and any bl to the next instruction) reads the pc: no
 * call. Branches that decrement CTR (BO bit 2 clear) are never calls or
 * returns in compiled code and are left alone. A condition on a CR bit is
 * evaluated on cr when the branch is about to execute. The link register
 * is LR; r1 (sp) does not change at calls or returns. The return address
 * is the next instruction, so targets are masked to a multiple of 4 (LR's
 * low bits are ignored by bclr).
 * Whole-system ppc64 runs big-endian firmware and early kernel code before a
 * little-endian kernel switches MSR.LE on: there the block's msr (mode_reg)
 * says how its instructions are stored.
 */
#include <string.h>
#include <glib.h>
#include "arch.h"

/* BO: bit 4 (16) "ignore the CR bit", bit 3 (8) the value wanted, bit 2
 * (4) "do not decrement CTR". Returns false for CTR-decrementing forms. */
static bool bo_cond(unsigned bo, unsigned bi, csi_cond *cond)
{
    if (!(bo & 4)) {
        return false;
    }
    if (!(bo & 16)) {
        cond->kind = CSI_COND_PPC_CR;
        cond->code = bi;
        cond->want = (bo & 8) != 0;
        g_strlcpy(cond->reg, "cr", CSI_REG_NAME_MAX);
    }
    return true;
}

void csi_arch_ppc_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    out->cls = CSI_INSN_OTHER;
    if (c->len - c->at < 4) {
        return;
    }
    uint64_t addr = c->addr + c->at;
    uint64_t mask = (a->word_bytes == 8 ? UINT64_MAX : UINT32_MAX) & ~3ull;
    const uint8_t *p = c->bytes + c->at;
    uint32_t w = csi_arch_word32(a, p);
    if (a->mode_reg && !(c->mode & 1)) {   /* MSR.LE clear: big-endian code */
        w = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    }
    unsigned op = w >> 26, bo = (w >> 21) & 31, bi = (w >> 16) & 31, xo = (w >> 1) & 0x3ff;
    bool lk = w & 1, aa = (w >> 1) & 1;
    out->target.mask = mask;
    if (op == 18 && lk) {                                   /* bl, bla */
        int64_t li = csi_sext(w & 0x03fffffcu, 26);
        out->cls = CSI_INSN_CALL;
        out->target.kind = CSI_TARGET_DIRECT;
        out->target.addr = (aa ? 0 : addr) + (uint64_t)li;
    } else if (op == 16 && lk) {                            /* bcl */
        int64_t bd = csi_sext(w & 0xfffcu, 16);
        if (bo_cond(bo, bi, &out->cond)) {
            out->cls = CSI_INSN_CALL;
            out->target.kind = CSI_TARGET_DIRECT;
            out->target.addr = (aa ? 0 : addr) + (uint64_t)bd;
        }
    } else if (op == 19 && xo == 528 && lk) {               /* bcctrl */
        if (bo_cond(bo, bi, &out->cond)) {
            out->cls = CSI_INSN_CALL;
            out->target.kind = CSI_TARGET_REG;
            g_strlcpy(out->target.base, "ctr", CSI_REG_NAME_MAX);
        }
    } else if (op == 19 && xo == 16) {                      /* bclr, bclrl */
        if (bo_cond(bo, bi, &out->cond)) {
            out->cls = CSI_INSN_RET;
            out->target.kind = CSI_TARGET_REG;
            g_strlcpy(out->target.base, "lr", CSI_REG_NAME_MAX);
        }
    }
    if (out->cls == CSI_INSN_CALL) {
        out->ret_addr = (addr + 4) & mask;
    }
}
