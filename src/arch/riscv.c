/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * RISC-V (RV64GC), a decoder of our own: Debian 12's Capstone 4 has no
 * RISC-V. Only jal, jalr and the compressed c.jr / c.jalr matter.
 *
 * The ISA tells calls from returns by the registers, not the opcode
 * (unprivileged spec, "return-address stack" hints for JAL/JALR): a link
 * register is x1 (ra) or x5 (t0), the alternate link of millicode.
 *   rd link,  rs1 not link           call
 *   rd not link, rs1 link            return
 *   rd link,  rs1 link, rd != rs1    return, then call (coroutine switch)
 *   rd link,  rs1 link, rd == rs1    call
 * jal with rd link is a call; with another rd it is a jump.
 * c.jr rs1 = jalr x0, 0(rs1); c.jalr rs1 = jalr ra, 0(rs1). (c.jal exists
 * on RV32 only: on RV64 its encoding is c.addiw.)
 * The return address is the next instruction (2 or 4 bytes on); sp does
 * not change at calls or returns.
 */
#include <string.h>
#include <glib.h>
#include "arch.h"

/* QEMU's names for x0..x31 (x8 is "fp"). */
static const char *const xname[32] = {
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3",
    "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
    "t3", "t4", "t5", "t6",
};

static bool is_link(unsigned r)
{
    return r == 1 || r == 5;
}

/* jalr rd, imm(rs1), of `size` bytes at addr. */
static void jalr(unsigned rd, unsigned rs1, int64_t imm, uint64_t addr, unsigned size,
                 csi_insn_info *out)
{
    bool push = is_link(rd), pop = is_link(rs1) && (!push || rd != rs1);
    if (!push && !pop) {
        return;
    }
    out->cls = push && pop ? CSI_INSN_RET_CALL : push ? CSI_INSN_CALL : CSI_INSN_RET;
    out->target.kind = CSI_TARGET_REG;
    g_strlcpy(out->target.base, xname[rs1], CSI_REG_NAME_MAX);
    out->target.disp = imm;
    out->target.mask = ~1ull;   /* jalr clears bit 0 */
    if (push) {
        out->ret_addr = addr + size;
    }
}

void csi_arch_riscv_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    out->cls = CSI_INSN_OTHER;
    size_t avail = c->len - c->at;
    const uint8_t *p = c->bytes + c->at;
    uint64_t addr = c->addr + c->at;
    if (avail < 2) {
        return;
    }
    uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    if ((h & 3) != 3) {
        /* compressed, quadrant 2, funct3 100, rs2 = 0: c.jr / c.jalr */
        unsigned rs1 = (h >> 7) & 31;
        if ((h & 3) == 2 && (h >> 13) == 4 && ((h >> 2) & 31) == 0 && rs1 != 0) {
            jalr((h >> 12) & 1 ? 1 : 0, rs1, 0, addr, 2, out);
        }
        return;
    }
    if (avail < 4) {
        return;
    }
    uint32_t w = csi_arch_word32(a, p);
    unsigned opcode = w & 0x7f, rd = (w >> 7) & 31, rs1 = (w >> 15) & 31;
    if (opcode == 0x6f && is_link(rd)) {                       /* jal */
        uint32_t imm = ((w >> 31) & 1) << 20 | ((w >> 21) & 0x3ff) << 1 |
                       ((w >> 20) & 1) << 11 | ((w >> 12) & 0xff) << 12;
        out->cls = CSI_INSN_CALL;
        out->ret_addr = addr + 4;
        out->target.kind = CSI_TARGET_DIRECT;
        out->target.addr = addr + (uint64_t)csi_sext(imm, 21);
    } else if (opcode == 0x67 && ((w >> 12) & 7) == 0) {      /* jalr */
        jalr(rd, rs1, csi_sext(w >> 20, 12), addr, 4, out);
    }
}
