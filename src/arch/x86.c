/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * x86 (i386 and x86_64). A call pushes the return address at sp - word;
 * a return pops it from [sp] and adds its immediate. `iret` and `sysret`
 * leave interrupt or system-call context, which is not a function return.
 */
#include <string.h>
#include <capstone/capstone.h>
#include <glib.h>
#include "arch.h"

static void reg_name(csh h, x86_reg r, char *out)
{
    const char *n = r == X86_REG_INVALID ? NULL : cs_reg_name(h, r);
    g_strlcpy(out, n ? n : "", CSI_REG_NAME_MAX);
}

/* The operand of an indirect call as a target to evaluate at run time. */
static void operand_target(csh h, const cs_x86_op *op, uint64_t next, unsigned word,
                           csi_target *t)
{
    switch (op->type) {
    case X86_OP_IMM:
        t->kind = CSI_TARGET_DIRECT;
        t->addr = (uint64_t)op->imm;
        break;
    case X86_OP_REG:
        t->kind = CSI_TARGET_REG;
        reg_name(h, op->reg, t->base);
        break;
    case X86_OP_MEM:
        /* fs:/gs:-relative calls would need the segment base: left unknown. */
        if (op->mem.segment != X86_REG_INVALID && op->mem.segment != X86_REG_CS &&
            op->mem.segment != X86_REG_DS && op->mem.segment != X86_REG_SS) {
            break;
        }
        t->kind = CSI_TARGET_MEM;
        t->size = op->size ? op->size : word;
        t->disp = op->mem.disp;
        t->scale = (unsigned)op->mem.scale;
        if (op->mem.base == X86_REG_RIP || op->mem.base == X86_REG_EIP) {
            t->disp += (int64_t)next;
        } else {
            reg_name(h, op->mem.base, t->base);
        }
        reg_name(h, op->mem.index, t->index);
        break;
    default:
        break;
    }
}

void csi_arch_x86_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    const uint8_t *code = c->bytes + c->at;
    size_t len = c->len - c->at;
    uint64_t addr = c->addr + c->at;
    csh *h = csi_arch_capstone(a);
    cs_insn *insn = NULL;
    uint64_t mask = a->word_bytes == 8 ? UINT64_MAX : UINT32_MAX;
    out->cls = CSI_INSN_OTHER;
    if (!h || cs_disasm(*h, code, len, addr, 1, &insn) != 1) {
        return;
    }
    cs_x86 *x = &insn->detail->x86;
    uint64_t next = (addr + insn->size) & mask;
    switch (insn->id) {
    case X86_INS_CALL:
        if (x->op_count != 1) {
            break;
        }
        /* `call next; pop reg` reads the pc (old i386 PIC code): control
         * falls through and nothing ever returns, so it is no call. */
        if (x->operands[0].type == X86_OP_IMM && ((uint64_t)x->operands[0].imm & mask) == next) {
            break;
        }
        out->cls = CSI_INSN_CALL;
        out->ret_addr = next;
        out->sp_delta = -(int64_t)a->word_bytes;
        operand_target(*h, &x->operands[0], next, a->word_bytes, &out->target);
        out->target.mask = mask;
        break;
    case X86_INS_RET:
        out->cls = CSI_INSN_RET;
        out->target.kind = CSI_TARGET_MEM;
        g_strlcpy(out->target.base, a->sp_reg, CSI_REG_NAME_MAX);
        out->target.size = a->word_bytes;
        out->target.mask = mask;
        out->sp_delta = (int64_t)a->word_bytes;
        if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
            out->sp_delta += x->operands[0].imm;
        }
        break;
    default:
        /* Far calls and returns (lcall, retf) switch code segments: only
         * seen in 16-bit and system code, not followed here. */
        break;
    }
    cs_free(insn, 1);
}
