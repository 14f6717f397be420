/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-vCPU state and the callbacks of translated code (vcpu.c). */
#ifndef CS_QEMU_VCPU_H
#define CS_QEMU_VCPU_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "engine/engine.h"
#include "translate.h"

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

void cs_vcpu_setup(qemu_plugin_id_t id);
cs_vcpu *cs_vcpu_get(unsigned index);        /* NULL if never initialised */
/* The vCPU's stack, binding it if this is the vCPU's own thread. */
cs_stack *cs_vcpu_stack(cs_vcpu *v);
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
/* What the trampolines (trampoline.h) jump to, with QEMU's CPU state
 * pointer `env` added. */
void cs_vcpu_on_call_env(unsigned int vcpu_index, void *site, const void *env);
void cs_vcpu_on_ret_env(unsigned int vcpu_index, void *site, const void *env);
void cs_vcpu_on_landing_env(unsigned int vcpu_index, void *block_vaddr, const void *env);
void cs_vcpu_on_signal_entry_env(unsigned int vcpu_index, void *pc, const void *env);

#endif
