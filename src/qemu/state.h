/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * State shared by the QEMU glue: the configuration from the command line,
 * the engine, per-vCPU state and instrumented call/return sites.
 */
#ifndef CS_QEMU_STATE_H
#define CS_QEMU_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <qemu-plugin.h>
#include "engine/engine.h"
#include "arch/arch.h"

typedef struct cs_config {
    bool verbose;
    stack_type kind;
    bool system_mode;
    /* fast_regs=on: read guest registers and memory directly where verified
     * (fastreg.h, guestmem.h); off: always through the plugin API. */
    bool direct_reads;
    cs_engine_config engine;
} cs_config;

/*
 * A call or return instruction, decoded once at translation time, with its
 * target's registers resolved to QEMU handles. Sites are interned by address
 * and decoded content (the same bytes can decode differently: ARM or Thumb
 * state, inside an IT block or not), so retranslating code allocates
 * nothing new.
 */
typedef struct cs_site {
    /* What every event reads, in the first cache line: the sites of a
     * program are many, and an event should miss at most one line. */
    uint64_t vaddr;
    uint64_t ret_addr;
    uint64_t direct;
    uint64_t mask;
    int64_t sp_delta;
    struct qemu_plugin_register *base;
    struct qemu_plugin_register *cond_reg;   /* NULL: unconditional */
    uint8_t cls;              /* cs_insn_class */
    uint8_t tkind;            /* cs_target_kind */
    bool hot;                 /* may take the hot path (vcpu.c) */
    uint8_t size;
    uint8_t scale;
    /* Targets in memory, conditions, and the interning key. */
    struct qemu_plugin_register *index;
    int64_t disp;
    cs_cond cond;
    cs_insn_info info;        /* as decoded: the interning key */
} __attribute__((aligned(64))) cs_site;

typedef struct cs_vcpu {
    unsigned index;
    cs_stack *stack;          /* NULL until the vCPU's first event binds it */
    unsigned fork_gen;        /* fork generation `stack` was bound in */
    cs_stack_id space;        /* heuristic: the address space (process), cached */
    unsigned space_gen;       /* fork generation + 1 `space` was computed in; 0: never */
    const cs_site *last_site; /* the last call or return instruction seen, */
    uint64_t last_pc;         /* or, if NULL, the last signal handler entered */
    GByteArray *regbuf;
    GByteArray *membuf;
    const cs_site *pending;   /* CS_TARGET_NEXT: the site whose target is the next block */
    cs_stack_id sys_id;       /* whole-system mode: the id `stack` was bound for */
    /* QEMU's CPU state for this vCPU, once checked (fastreg.h), and the same
     * while one of our callbacks runs (NULL outside them: registers can be
     * read directly only there). */
    const void *env_checked;
    const void *env_now;
    /* The stack the hot path may use without the checks of event_vcpu_sp
     * (user mode, bound in the current fork generation); NULL: take the
     * generic path. */
    cs_stack *hot_stack;
    struct cs_guestmem *mem;  /* linux-user: pages readable directly (guestmem.h) */
} cs_vcpu;

/*
 * The udata of a return's callback: the site, tagged (sites are 64-byte
 * aligned) when it is an x86-style `ret` that takes its target from the slot
 * at sp, in user mode, unconditional: the hot path then pops the top frame
 * whose sp is that slot without reading the site at all (cache misses on
 * sites are a measurable part of an event's cost).
 */
static inline void *cs_site_udata(cs_site *site, bool slot_ret)
{
    return (void *)((uintptr_t)site | (slot_ret ? 1u : 0u));
}

static inline const cs_site *cs_site_of(const void *udata)
{
    return (const cs_site *)((uintptr_t)udata & ~(uintptr_t)1);
}

static inline bool cs_site_is_slot_ret(const void *udata)
{
    return (uintptr_t)udata & 1;
}

extern cs_config cs_cfg;
extern cs_engine *cs_eng;
extern const cs_arch_desc *cs_arch;

/* vcpu.c */
void cs_vcpu_setup(qemu_plugin_id_t id);
cs_vcpu *cs_vcpu_get(unsigned index);        /* NULL if never initialised */
/* The vCPU's stack, binding it if this is the vCPU's own thread. */
cs_stack *cs_vcpu_stack(cs_vcpu *v);
/* The same for reading it from any thread (the API): the stack stays valid
 * until cs_vcpu_stack_unpin(*pinned). */
cs_stack *cs_vcpu_stack_pin(cs_vcpu *v, bool *pinned);
void cs_vcpu_stack_unpin(bool pinned);
/* The address of the vCPU's last call or return instruction (or signal
 * handler entry), from any thread. */
uint64_t cs_vcpu_last_pc(const cs_vcpu *v);
bool cs_vcpu_read_pc(cs_vcpu *v, uint64_t *out);
/* Reads a register of the vCPU this thread is running (translation time). */
bool cs_vcpu_read_named(const char *name, uint64_t *out);
/* The vCPU this thread has run, or -1. */
int cs_vcpu_current(void);
/* Is this thread handling a call or return of that vCPU right now (so that
 * its registers are the ones QEMU reads)? */
bool cs_vcpu_in_callback(unsigned index);
/* A QEMU register handle by name, or NULL (valid after the first vCPU init). */
struct qemu_plugin_register *cs_vcpu_register(const char *name);
/* Reads a register of this vCPU (on its thread, from a callback). */
bool cs_vcpu_read_reg(cs_vcpu *v, struct qemu_plugin_register *h, uint64_t *out);
/* Reads `size` bytes of guest virtual memory at addr, as a number. */
bool cs_vcpu_read_mem(cs_vcpu *v, uint64_t addr, unsigned size, uint64_t *out);
/* The callbacks translated code calls: trampolines (trampoline.c) that add
 * QEMU's CPU state pointer `env` and jump to the *_env functions. */
void cs_vcpu_on_call(unsigned int vcpu_index, void *site);
void cs_vcpu_on_ret(unsigned int vcpu_index, void *site);
/* At the start of a block that follows a CS_TARGET_NEXT site; udata is
 * the block's address. */
void cs_vcpu_on_landing(unsigned int vcpu_index, void *block_vaddr);
void cs_vcpu_on_call_env(unsigned int vcpu_index, void *site, const void *env);
void cs_vcpu_on_ret_env(unsigned int vcpu_index, void *site, const void *env);
void cs_vcpu_on_landing_env(unsigned int vcpu_index, void *block_vaddr, const void *env);
void cs_vcpu_on_signal_entry_env(unsigned int vcpu_index, void *pc, const void *env);
/* Per-vCPU flag, non-zero while a CS_TARGET_NEXT site awaits its block. */
extern qemu_plugin_u64 cs_pending_flag;

void cs_vcpu_on_signal_entry(unsigned int vcpu_index, void *pc);

/* signals.c */
void cs_signals_setup(void);
/* Before a system call (syscalls.c): learns handlers from rt_sigaction. */
void cs_signals_on_syscall(int64_t num, uint64_t a2);

/* syscalls.c: the one system-call callback (QEMU keeps one per plugin). */
void cs_syscalls_setup(qemu_plugin_id_t id);
bool cs_signals_is_handler(uint64_t pc);

/* system.c: stack ids in whole-system mode */
int cs_system_setup(const char *target_name);   /* at install; -1 after a message */
void cs_system_registers_found(void);            /* once QEMU's registers are known */
/* At a call or return: the vCPU's stack for its registers and stack
 * pointer now, made its current stack (after dropping frames that died
 * while the vCPU was elsewhere). */
cs_stack *cs_system_stack(cs_vcpu *v, uint64_t sp);

/* translate.c */
void cs_translate_setup(qemu_plugin_id_t id);
/* QEMU's guest_base (host address minus guest address), learnt from the
 * first block translated; 0 until then. */
uint64_t cs_translate_guest_base(void);

/* symbols.c */
void cs_symbols_setup(void);
/* ppc64 ELFv2: the function's global entry (its symbol) if addr is the
 * local entry point of a named function, else addr. Translation time only
 * (a symbol lookup). */
uint64_t cs_symbols_function_entry(uint64_t addr);

#endif
