/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * State shared by the QEMU glue: the configuration from the command line,
 * the engine, and per-vCPU state.
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
    cs_engine_config engine;
} cs_config;

/*
 * What the inline ops at a call or return instruction leave for the first
 * block executed after it. Lives in a QEMU scoreboard (one per vCPU), so the
 * instruction itself costs a few stores and no callback.
 */
typedef struct cs_pending {
    uint64_t kind;        /* CS_PENDING_* */
    uint64_t ret_addr;
    uint64_t call_site;
} cs_pending;

enum { CS_PENDING_NONE = 0, CS_PENDING_CALL = 1, CS_PENDING_RET = 2 };

typedef struct cs_vcpu {
    unsigned index;
    cs_stack *stack;          /* NULL until the vCPU's first event binds it */
    unsigned fork_gen;        /* fork generation `stack` was bound in */
    uint64_t last_pc;         /* block where the last event was seen */
    GByteArray *regbuf;
} cs_vcpu;

extern cs_config cs_cfg;
extern cs_engine *cs_eng;
extern const cs_arch_desc *cs_arch;
extern struct qemu_plugin_scoreboard *cs_pending_sb;

/* vcpu.c */
void cs_vcpu_setup(qemu_plugin_id_t id);
cs_vcpu *cs_vcpu_get(unsigned index);        /* NULL if never initialised */
/* The vCPU's stack, binding it if this is the vCPU's own thread. */
cs_stack *cs_vcpu_stack(cs_vcpu *v);
bool cs_vcpu_read_reg(cs_vcpu *v, bool pc, uint64_t *out);
/* The vCPU this thread has run, or -1. */
int cs_vcpu_current(void);

/* translate.c */
void cs_translate_setup(qemu_plugin_id_t id);

#endif
