/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * x86 (i386 and x86_64). Calls push the return address at the new sp;
 * returns pop it. `iret` and `sysret` leave interrupt or system-call context,
 * which is not a function return.
 */
#include <capstone/capstone.h>
#include "arch.h"

void cs_arch_x86_classify(const cs_arch_desc *a, const uint8_t *code, size_t len,
                          uint64_t addr, cs_insn_info *out)
{
    csh *h = cs_arch_capstone(a);
    cs_insn *insn = NULL;
    out->cls = CS_INSN_OTHER;
    if (!h || cs_disasm(*h, code, len, addr, 1, &insn) != 1) {
        return;
    }
    switch (insn->id) {
    case X86_INS_CALL:
    case X86_INS_LCALL: {
        uint64_t next = addr + insn->size;
        cs_x86 *x = &insn->detail->x86;
        /* `call next; pop reg` reads the pc (old i386 PIC code): control
         * falls through and nothing ever returns, so it is no call. */
        if (insn->id == X86_INS_CALL && x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
            (uint64_t)x->operands[0].imm == next) {
            break;
        }
        out->cls = CS_INSN_CALL;
        out->ret_addr = next;
        break;
    }
    case X86_INS_RET:
    case X86_INS_RETF:
    case X86_INS_RETFQ:
        out->cls = CS_INSN_RET;
        break;
    default:
        break;
    }
    cs_free(insn, 1);
}
