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

/*
 * Indirect-call thunks (Spectre v2 mitigations: GCC's -mindirect-branch,
 * Linux's __x86_indirect_thunk_REG). Code calls the thunk instead of
 * `call *%REG`, and the thunk jumps on to %REG: `jmp *%REG`, `lfence;
 * jmp *%REG`, or the retpoline
 *     call 1f; 2: pause; lfence; jmp 2b; 1: mov %REG,(%rsp); ret
 * whose inner call pushes a slot that the mov overwrites with %REG and the
 * ret jumps through. A call of such a thunk is a call of %REG; the
 * retpoline's inner call and its ret are no call and no return, as a jump
 * is none. Without this every indirect call of a mitigated kernel would
 * be reported as a call of the thunk. (Where the ret is Linux's return
 * thunk, shared by every function, it stays a return instruction: it lands
 * at %REG, matches no frame, and pops nothing.)
 */
static const char *const reg64[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
static const char *const reg32[8] = { "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi" };

/* `mov %REG,(%sp)` at c: its length, the register in *reg; 0 if not. */
static size_t store_to_sp(const uint8_t *c, size_t n, unsigned word, unsigned *reg)
{
    size_t p = 0;
    unsigned high = 0;
    if (word == 8) {
        if (n < 4 || (c[0] != 0x48 && c[0] != 0x4c)) {
            return 0;
        }
        high = c[0] == 0x4c ? 8 : 0;
        p = 1;
    }
    if (n < p + 3 || c[p] != 0x89 || (c[p + 1] & 0xc7) != 0x04 || c[p + 2] != 0x24) {
        return 0;
    }
    *reg = high + ((c[p + 1] >> 3) & 7);
    return p + 3;
}

/* `jmp *%REG` at c (after an optional lfence): the register, or -1. */
static int jump_to_reg(const uint8_t *c, size_t n, unsigned word)
{
    if (n >= 3 && c[0] == 0x0f && c[1] == 0xae && c[2] == 0xe8) {
        c += 3;
        n -= 3;
    }
    if (n >= 2 && c[0] == 0xff && (c[1] & 0xf8) == 0xe0) {
        return c[1] & 7;
    }
    if (word == 8 && n >= 3 && c[0] == 0x41 && c[1] == 0xff && (c[2] & 0xf8) == 0xe0) {
        return 8 + (c[2] & 7);
    }
    return -1;
}

/* `mov %REG,(%sp); ret` at c, the ret possibly a `jmp` to a return thunk
 * (Linux's CONFIG_RETHUNK turns every ret into `jmp __x86_return_thunk`):
 * the register, or -1. */
static int store_and_ret(const uint8_t *c, size_t n, unsigned word)
{
    unsigned reg;
    size_t k = store_to_sp(c, n, word, &reg);
    return k && n > k && (c[k] == 0xc3 || (c[k] == 0xe9 && n >= k + 5)) ? (int)reg : -1;
}

void csi_arch_x86_resolve_call(const csi_arch_desc *a, const uint8_t *t, size_t n,
                               csi_insn_info *call)
{
    unsigned word = a->word_bytes;
    int reg = store_and_ret(t, n, word);
    if (reg >= 0) {
        call->cls = CSI_INSN_OTHER;   /* a retpoline's inner call */
        return;
    }
    reg = jump_to_reg(t, n, word);
    if (reg < 0 && n >= 5 && t[0] == 0xe8) {
        /* a retpoline: its inner call's target stores and returns */
        int32_t d;
        memcpy(&d, t + 1, 4);
        if (d > 0 && (size_t)d + 5 < n) {
            reg = store_and_ret(t + 5 + d, n - 5 - (size_t)d, word);
        }
    }
    if (reg < 0 || (word == 4 && reg > 7)) {
        return;
    }
    call->target.kind = CSI_TARGET_REG;
    call->target.addr = 0;
    g_strlcpy(call->target.base, word == 8 ? reg64[reg] : reg32[reg], CSI_REG_NAME_MAX);
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
    case X86_INS_RET: {
        /* `mov %REG,(%sp); ret` jumps to %REG (a retpoline's end): no return. */
        unsigned reg;
        if (c->prev_at < c->at &&
            store_to_sp(c->bytes + c->prev_at, c->at - c->prev_at, a->word_bytes, &reg) ==
                c->at - c->prev_at && x->op_count == 0) {
            break;
        }
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
    }
    default:
        /* Far calls and returns (lcall, retf) switch code segments: only
         * seen in 16-bit and system code, not followed here. */
        break;
    }
    cs_free(insn, 1);
}
