/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * 32-bit ARM, in ARM and Thumb-2 state (Capstone). The state comes from
 * cpsr at translation time (bit 5, T): the same address can hold ARM code
 * in one block and Thumb code in another.
 *
 * Calls: bl, blx (immediate: switches state; register: the target's low bit
 * selects the state and is cleared). The return address is the next
 * instruction; the link register holds it (with bit 0 set in Thumb state,
 * hence the mask on every target).
 * Returns: bx lr, mov pc, lr, and loads of pc from the stack: pop {..., pc}
 * (= ldm sp!, {..., pc}) and ldr pc, [sp], #4. Those land with sp past the
 * popped words: sp_delta.
 * Not returns: the exception returns of privileged code (movs pc, lr and an
 * ldm that also loads cpsr, `{..., pc}^`), which leave an exception or
 * system call and change mode, like x86's iret.
 * Conditions: ARM instructions carry one; in Thumb an IT instruction makes
 * up to 4 following ones conditional. Both are evaluated on cpsr when the
 * instruction is about to execute: a call or return not taken is no event.
 */
#include <string.h>
#include <capstone/capstone.h>
#include <glib.h>
#include "arch.h"

#define ARM_MASK 0xfffffffeull   /* bit 0 of a branch target is the Thumb bit */

/* The IT state a block starts in: cpsr bits 15:10 and 26:25 (ITSTATE). */
static unsigned it_from_cpsr(uint64_t cpsr)
{
    return (unsigned)(((cpsr >> 8) & 0xfc) | ((cpsr >> 25) & 3));
}

/* ITAdvance (ARM ARM): the state after one instruction of an IT block. */
static unsigned it_advance(unsigned it)
{
    return (it & 7) == 0 ? 0 : ((it & 0xe0) | ((it << 1) & 0x1f));
}

static int reg_index_in(const cs_arm *x, unsigned first, arm_reg r)
{
    for (unsigned i = first; i < x->op_count; i++) {
        if (x->operands[i].type == ARM_OP_REG && x->operands[i].reg == (int)r) {
            return (int)(i - first);
        }
    }
    return -1;
}

static void set_reg(csi_target *t, const char *name)
{
    t->kind = CSI_TARGET_REG;
    g_strlcpy(t->base, name, CSI_REG_NAME_MAX);
}

/* A pop of `n` words (registers operands from `first`) whose one is pc. */
static bool pop_pc(const cs_arm *x, unsigned first, csi_insn_info *out)
{
    int pc = reg_index_in(x, first, ARM_REG_PC);
    if (pc < 0) {
        return false;
    }
    out->cls = CSI_INSN_RET;
    out->target.kind = CSI_TARGET_MEM;
    g_strlcpy(out->target.base, "sp", CSI_REG_NAME_MAX);
    out->target.disp = 4 * pc;    /* registers load in ascending order */
    out->target.size = 4;
    out->sp_delta = 4 * (int64_t)(x->op_count - first);
    return true;
}

static void classify_one(csh h, const cs_insn *in, csi_insn_info *out)
{
    const cs_arm *x = &in->detail->arm;
    const cs_arm_op *op0 = x->op_count > 0 ? &x->operands[0] : NULL;
    uint64_t next = in->address + in->size;
    switch (in->id) {
    case ARM_INS_BL:
    case ARM_INS_BLX:
        if (!op0) {
            break;
        }
        out->cls = CSI_INSN_CALL;
        out->ret_addr = next;
        if (op0->type == ARM_OP_IMM) {
            out->target.kind = CSI_TARGET_DIRECT;
            out->target.addr = (uint32_t)op0->imm;
        } else if (op0->type == ARM_OP_REG) {
            set_reg(&out->target, cs_reg_name(h, op0->reg));
        }
        break;
    case ARM_INS_BX:
        if (op0 && op0->type == ARM_OP_REG && op0->reg == (int)ARM_REG_LR) {
            out->cls = CSI_INSN_RET;
            set_reg(&out->target, "lr");
        }
        break;
    case ARM_INS_MOV:
        if (x->op_count == 2 && !x->update_flags && op0->type == ARM_OP_REG && op0->reg == (int)ARM_REG_PC &&
            x->operands[1].type == ARM_OP_REG && x->operands[1].reg == (int)ARM_REG_LR) {
            out->cls = CSI_INSN_RET;
            set_reg(&out->target, "lr");
        }
        break;
    case ARM_INS_POP:
        if (!x->usermode) {
            pop_pc(x, 0, out);
        }
        break;
    case ARM_INS_LDM:
        /* ldm sp!, {...}: Capstone names most of them pop. */
        if (op0 && op0->type == ARM_OP_REG && op0->reg == (int)ARM_REG_SP && x->writeback &&
            !x->usermode) {
            pop_pc(x, 1, out);
        }
        break;
    case ARM_INS_LDR:
        /* ldr pc, [sp], #imm (post-indexed: a third operand) or
         * ldr pc, [sp, #imm]! (pre-indexed) */
        if (x->op_count >= 2 && op0->type == ARM_OP_REG && op0->reg == (int)ARM_REG_PC &&
            x->operands[1].type == ARM_OP_MEM && x->operands[1].mem.base == (int)ARM_REG_SP &&
            x->operands[1].mem.index == (int)ARM_REG_INVALID && x->writeback) {
            out->cls = CSI_INSN_RET;
            out->target.kind = CSI_TARGET_MEM;
            g_strlcpy(out->target.base, "sp", CSI_REG_NAME_MAX);
            out->target.size = 4;
            if (x->op_count == 3 && x->operands[2].type == ARM_OP_IMM) {
                out->sp_delta = x->operands[2].subtracted ? -x->operands[2].imm : x->operands[2].imm;
            } else {
                out->target.disp = x->operands[1].mem.disp;
                out->sp_delta = out->target.disp;
            }
        }
        break;
    default:
        break;
    }
    out->target.mask = ARM_MASK;
}

void csi_arch_arm_classify(const csi_arch_desc *a, const csi_code *c, csi_insn_info *out)
{
    csh *h = csi_arch_capstone(a);
    bool thumb = (c->mode >> 5) & 1;
    out->cls = CSI_INSN_OTHER;
    if (!h) {
        return;
    }
    cs_option(*h, CS_OPT_MODE, thumb ? CS_MODE_THUMB : CS_MODE_ARM);
    cs_insn *insn = NULL;
    size_t n = cs_disasm(*h, c->bytes, c->len, c->addr, 0, &insn);
    unsigned it = thumb && c->block_start ? it_from_cpsr(c->mode) : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t off = insn[i].address - c->addr;
        if (off > c->at) {
            break;
        }
        if (off == c->at) {
            classify_one(*h, &insn[i], out);
            /* ARM: the condition field; Thumb: the IT block's, if any. */
            unsigned code = thumb ? (it ? it >> 4 : 14)
                                  : (insn[i].detail->arm.cc == ARM_CC_INVALID
                                         ? 14 : (unsigned)insn[i].detail->arm.cc - 1);
            if (out->cls != CSI_INSN_OTHER && code < 14) {
                out->cond.kind = CSI_COND_ARM;
                out->cond.code = code;
                g_strlcpy(out->cond.reg, "cpsr", CSI_REG_NAME_MAX);
            }
            break;
        }
        if (thumb) {
            it = insn[i].id == ARM_INS_IT ? insn[i].bytes[0] : it_advance(it);
        }
    }
    if (n) {
        cs_free(insn, n);
    }
}
