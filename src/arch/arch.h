/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-architecture knowledge: how to decode calls and returns (Capstone),
 * which registers hold the stack pointer and pc, and the rules a shadow
 * stack needs (where return addresses live, delay slots).
 */
#ifndef CS_ARCH_H
#define CS_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cs_insn_class {
    CS_INSN_OTHER = 0,
    CS_INSN_CALL,     /* pushes a frame; ret_addr says where it returns */
    CS_INSN_RET,      /* returns from the top frame */
} cs_insn_class;

/*
 * Where a control transfer goes, computed when the instruction executes
 * (just before it does): a constant, a register plus an offset, or a value
 * loaded from memory at [base + index * scale + disp].
 */
typedef enum cs_target_kind {
    CS_TARGET_NONE = 0,   /* unknown: the event is recorded with target 0 */
    CS_TARGET_DIRECT,
    CS_TARGET_REG,        /* value of `base` + disp */
    CS_TARGET_MEM,        /* load of `size` bytes at base + index*scale + disp */
} cs_target_kind;

#define CS_REG_NAME_MAX 16

typedef struct cs_target {
    cs_target_kind kind;
    uint64_t addr;                  /* CS_TARGET_DIRECT */
    char base[CS_REG_NAME_MAX];     /* register names as QEMU lists them; "" = none */
    char index[CS_REG_NAME_MAX];
    unsigned scale;
    int64_t disp;                   /* pc-relative operands are folded in here */
    unsigned size;                  /* CS_TARGET_MEM */
    uint64_t mask;                  /* applied to the result (ARM: clears the Thumb bit) */
} cs_target;

typedef struct cs_insn_info {
    cs_insn_class cls;
    uint64_t ret_addr;   /* CS_INSN_CALL: where a normal return lands */
    cs_target target;    /* the function called, or where the return lands */
    /* The stack pointer a frame is recorded with, relative to sp before the
     * instruction: for a call, sp at the callee's entry (x86: -word, the
     * return address slot); for a return, sp once it has returned (x86:
     * +word + the ret immediate). */
    int64_t sp_delta;
} cs_insn_info;

typedef struct cs_arch_desc {
    const char *name;          /* QEMU's target_name */
    const char *sp_reg;        /* register names as QEMU's plugin API lists them */
    const char *pc_reg;
    unsigned word_bytes;       /* size of sp and pc */
    bool big_endian;
    bool ret_addr_on_stack;    /* the call instruction stores it at sp */
    /* How many instructions at the end of a translation block can be a call
     * or return: 1, or 2 where a delay slot follows the branch. */
    unsigned tail_insns;
    /* A register whose value at translation time tells how to decode the
     * block (ARM: cpsr, for the Thumb bit), or NULL. Translation happens just
     * before the vCPU executes the block, so the value is the block's. */
    const char *mode_reg;
    /* Decodes one instruction at addr into *out (zeroed by the caller);
     * `mode` is mode_reg's value, or 0. Called at translation time only. */
    void (*classify)(const struct cs_arch_desc *a, const uint8_t *code, size_t len,
                     uint64_t addr, uint64_t mode, cs_insn_info *out);
    int cs_arch;               /* Capstone arch and mode */
    int cs_mode;
} cs_arch_desc;

/* The description for QEMU's target_name, or NULL if unsupported. */
const cs_arch_desc *cs_arch_find(const char *target_name);
/* Comma-separated names of the supported targets, for error messages. */
const char *cs_arch_supported(void);

/* Shared by the decoders: a per-thread Capstone handle for this arch
 * (translation may run on several threads). NULL on failure. */
void *cs_arch_capstone(const cs_arch_desc *a);

void cs_arch_x86_classify(const cs_arch_desc *a, const uint8_t *code, size_t len,
                          uint64_t addr, uint64_t mode, cs_insn_info *out);
void cs_arch_a64_classify(const cs_arch_desc *a, const uint8_t *code, size_t len,
                          uint64_t addr, uint64_t mode, cs_insn_info *out);

#endif
