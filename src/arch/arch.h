/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-architecture knowledge: how to decode calls and returns (Capstone, or
 * a small decoder of our own where the encodings are simple or Capstone 4
 * lacks the architecture), which registers hold the stack pointer and pc,
 * and the rules a shadow stack needs (where return addresses live, delay
 * slots, conditional execution). One file per family; the table is in
 * arch.c. docs/architectures.md explains the choices.
 */
#ifndef CSI_ARCH_H
#define CSI_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum csi_insn_class {
    CSI_INSN_OTHER = 0,
    CSI_INSN_CALL,     /* pushes a frame; ret_addr says where it returns */
    CSI_INSN_RET,      /* returns from the top frame */
    /* Returns, and calls the place it returns to (RISC-V `jalr ra, t0`:
     * a coroutine switch per the ISA's return-address-stack hints). */
    CSI_INSN_RET_CALL,
} csi_insn_class;

/*
 * Where a control transfer goes, computed when the instruction executes
 * (just before it does): a constant, a register plus an offset, or a value
 * loaded from memory at [base + index * scale + disp].
 */
typedef enum csi_target_kind {
    CSI_TARGET_NONE = 0,   /* unknown: the event is recorded with target 0 */
    CSI_TARGET_DIRECT,
    CSI_TARGET_REG,        /* value of `base` + disp */
    CSI_TARGET_MEM,        /* load of `size` bytes at base + index*scale + disp */
    /* Where the next executed block starts: for guests whose registers QEMU
     * does not expose to plugins (MIPS), the target is observed instead of
     * computed. The event is then emitted at the start of that block. */
    CSI_TARGET_NEXT,
} csi_target_kind;

#define CSI_REG_NAME_MAX 16

typedef struct csi_target {
    csi_target_kind kind;
    uint64_t addr;                  /* CSI_TARGET_DIRECT */
    char base[CSI_REG_NAME_MAX];     /* register names as QEMU lists them; "" = none */
    char index[CSI_REG_NAME_MAX];
    unsigned scale;
    int64_t disp;                   /* pc-relative operands are folded in here */
    unsigned size;                  /* CSI_TARGET_MEM */
    uint64_t mask;                  /* applied to the result (ARM: clears the Thumb bit) */
    /* Nonzero: the bits above `mask` become copies of this bit rather than
     * zeros (AArch64: bit 55 selects the user or the kernel half; the bits
     * above it may hold a tag or a pointer-authentication code). */
    uint8_t half_bit;
} csi_target;

/* A target's value as an address: `v` under mask and half_bit. */
static inline uint64_t csi_target_canon(uint64_t v, uint64_t mask, unsigned half_bit)
{
    uint64_t r = v & mask;
    if (half_bit && ((v >> half_bit) & 1)) {
        r |= ~mask;
    }
    return r;
}

/*
 * A condition the instruction executes under, evaluated from a register just
 * before it executes: a conditional call or return that is not taken is no
 * event.
 */
typedef enum csi_cond_kind {
    CSI_COND_ALWAYS = 0,
    CSI_COND_ARM,      /* ARM condition code `code` (0 EQ .. 14 AL) on reg's NZCV (cpsr) */
    CSI_COND_PPC_CR,   /* bit `code` of reg (cr, bit 0 = most significant) equals `want` */
} csi_cond_kind;

typedef struct csi_cond {
    csi_cond_kind kind;
    char reg[CSI_REG_NAME_MAX];
    unsigned code;
    bool want;
} csi_cond;

/* Does the condition hold, given the value of its register? */
bool csi_cond_holds(const csi_cond *c, uint64_t reg_value);

typedef struct csi_insn_info {
    csi_insn_class cls;
    uint64_t ret_addr;   /* CSI_INSN_CALL: where a normal return lands */
    csi_target target;    /* the function called, or where the return lands */
    /* The stack pointer a frame is recorded with, relative to sp before the
     * instruction: for a call, sp at the callee's entry (x86: -word, the
     * return address slot); for a return, sp once it has returned (x86:
     * +word + the ret immediate). */
    int64_t sp_delta;
    csi_cond cond;
} csi_insn_info;

/*
 * The code a classifier sees: contiguous instructions of one translation
 * block. The instruction to classify starts at bytes + at; bytes before it
 * are earlier instructions of the block (Thumb: an IT instruction makes
 * the next ones conditional), bytes after it follow it (MIPS: the delay
 * slot).
 */
typedef struct csi_code {
    const uint8_t *bytes;
    size_t len;
    uint64_t addr;       /* address of bytes[0] */
    size_t at;
    /* Offset of the instruction before `at` in bytes; meaningful only when
     * below `at` (0 with at 0: none). */
    size_t prev_at;
    bool block_start;    /* bytes[0] is the block's first instruction */
    uint64_t mode;       /* mode_reg at translation time (the block's start), or 0 */
} csi_code;

typedef struct csi_arch_desc {
    const char *name;          /* QEMU's target_name */
    /* Register names as QEMU's plugin API lists them. sp_reg NULL: QEMU
     * exposes no registers for this target, the stack pointer is unknown. */
    const char *sp_reg;
    const char *pc_reg;
    unsigned word_bytes;       /* size of sp and pc */
    bool big_endian;
    bool ret_addr_on_stack;    /* the call instruction stores it at sp */
    /* A call made with sp equal to the top frame's sp means that frame is
     * gone (the engine's ret_addr_on_stack rule). True on x86, where the
     * new return address overwrites the old frame's, and on link-register
     * architectures: a function saves its link register on the stack, so
     * moves sp, before it calls anything; a call at a frame's own sp comes
     * from the frame's caller, after a longjmp or an exception. */
    bool call_kills_equal_sp;
    /* QEMU exposes no registers of this target to plugins (MIPS in QEMU
     * 10.0): targets that depend on registers are CSI_TARGET_NEXT, observed
     * at the start of the next executed block. */
    bool targets_observed;
    /* Instructions before the tail that the classifier also sees (Thumb:
     * an IT instruction covers up to 4 following instructions). */
    unsigned context_insns;
    /* How many instructions at the end of a translation block can be a call
     * or return: 1, or 2 where a delay slot follows the branch. */
    unsigned tail_insns;
    /* A register whose value at translation time tells how to decode the
     * block (ARM: cpsr, for the Thumb bit), or NULL. Translation happens just
     * before the vCPU executes the block, so the value is the block's. */
    const char *mode_reg;
    /* Functions may have a local entry point after their symbol (ppc64
     * ELFv2): a direct call's target is reported as the symbol's address,
     * so that a function has one address however it is called. */
    bool local_entries;
    /* Decodes the instruction at code->at into *out (zeroed by the caller).
     * Called at translation time only. */
    void (*classify)(const struct csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
    /* Optional: given the first bytes of a direct call's target, decides
     * whether the target is a thunk that only jumps on (x86 indirect-call
     * thunks): the call is then retargeted to where the thunk jumps, or is
     * no call at all (the thunk's own inner call). At translation. */
    void (*resolve_call)(const struct csi_arch_desc *a, const uint8_t *target, size_t len,
                         csi_insn_info *call);
    int capstone_arch;               /* Capstone arch and mode */
    int capstone_mode;
    /* Where the return address is at a function's first instruction (x86:
     * [sp]; elsewhere the link register): signal handlers are entered
     * without a call, and get their frame from this. */
    csi_target entry_ret;
    /* linux-user: the rt_sigaction system call number (0: unknown) and the
     * offset of sa_handler in the kernel's struct sigaction. */
    int64_t sigaction_nr;
    unsigned sigaction_handler_offset;
    /* linux-user: clone and clone3, the system calls that can start a
     * thread (0: unknown, and the plugin then assumes threads from the
     * start). */
    int64_t clone_nr[2];
} csi_arch_desc;

/* The description for QEMU's target_name, or NULL if unsupported. */
const csi_arch_desc *csi_arch_find(const char *target_name);
/* Comma-separated names of the supported targets, for error messages. */
const char *csi_arch_supported(void);

/* Shared by the decoders: a per-thread Capstone handle for this arch
 * (translation may run on several threads). NULL on failure. */
void *csi_arch_capstone(const csi_arch_desc *a);

/* Per family: src/arch/<family>.c */
void csi_arch_x86_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
void csi_arch_x86_resolve_call(const csi_arch_desc *a, const uint8_t *target, size_t len,
                               csi_insn_info *call);
void csi_arch_arm_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
void csi_arch_aarch64_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
void csi_arch_mips_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
void csi_arch_ppc_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);
void csi_arch_riscv_classify(const csi_arch_desc *a, const csi_code *code, csi_insn_info *out);

/* Fixed-size instruction words, in the guest's byte order. */
static inline uint32_t csi_arch_word32(const csi_arch_desc *a, const uint8_t *p)
{
    return a->big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                         : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline int64_t csi_sext(uint64_t v, unsigned bits)
{
    uint64_t m = 1ull << (bits - 1);
    v &= (bits == 64) ? UINT64_MAX : (1ull << bits) - 1;
    return (int64_t)((v ^ m) - m);
}

#endif
