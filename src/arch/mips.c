/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MIPS (o32 on mips/mipsel, n64 on mips64el), decoded from the fixed 32-bit
 * encodings (MIPS32/MIPS64 Architecture, Volume II):
 *   jal target          call, direct: the 256 MiB region of the delay slot
 *   bal offset          call, direct (bgezal $zero)
 *   bgezal/bltzal rs    conditional call
 *   jalr rd, rs         call (rd != $zero; rd is the link register)
 *   jr $ra              return (any other jr is a jump: switch, tail call)
 * Every branch has a delay slot: the return address is the branch + 8, and
 * the block ends after the delay slot (tail_insns = 2).
 *
 * QEMU 10.0 exposes no MIPS registers to plugins (the target has no GDB XML
 * description), so targets that depend on a register (jalr, jr $ra, the
 * conditional calls) are observed: CSI_TARGET_NEXT, the address of the next
 * block executed, i.e. after the delay slot. A conditional call whose next
 * block is its return address was not taken. For the same reason the stack
 * pointer is unknown: returns match frames by address only (no sp_resync),
 * and sp_delta is left 0.
 */
#include "arch.h"

#define RA 31

void csi_arch_mips_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    out->cls = CSI_INSN_OTHER;
    if (c->len - c->at < 4) {
        return;
    }
    uint64_t addr = c->addr + c->at;
    uint64_t mask = a->word_bytes == 8 ? UINT64_MAX : UINT32_MAX;
    uint32_t w = csi_arch_word32(a, c->bytes + c->at);
    unsigned op = w >> 26, rs = (w >> 21) & 31, rt = (w >> 16) & 31, rd = (w >> 11) & 31;
    unsigned funct = w & 0x3f;
    out->target.mask = mask;
    if (op == 3) {                                           /* jal */
        out->cls = CSI_INSN_CALL;
        out->target.kind = CSI_TARGET_DIRECT;
        out->target.addr = ((addr + 4) & ~0x0fffffffull) | (uint64_t)(w & 0x03ffffffu) << 2;
    } else if (op == 1 && (rt == 16 || rt == 17 || rt == 18 || rt == 19)) {
        /* bltzal, bgezal, bltzall, bgezall; bal is bgezal $zero */
        out->cls = CSI_INSN_CALL;
        if (rs == 0 && rt == 17) {
            out->target.kind = CSI_TARGET_DIRECT;
            out->target.addr = addr + 4 + (uint64_t)(csi_sext(w & 0xffffu, 16) * 4);
        } else {
            out->target.kind = CSI_TARGET_NEXT;
        }
    } else if (op == 0 && funct == 9 && rd != 0) {          /* jalr */
        out->cls = CSI_INSN_CALL;
        out->target.kind = CSI_TARGET_NEXT;
    } else if (op == 0 && (funct == 8 || (funct == 9 && rd == 0)) && rs == RA) {
        out->cls = CSI_INSN_RET;                             /* jr $ra */
        out->target.kind = CSI_TARGET_NEXT;
    }
    if (out->cls == CSI_INSN_CALL) {
        out->ret_addr = (addr + 8) & mask;
    }
}
