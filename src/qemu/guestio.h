/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading the guest (guestio.c): its registers, by QEMU handle, and its
 * virtual memory. Each read is direct where that is verified (registers:
 * fastreg.h; memory: guestmem.h) and through the plugin API otherwise;
 * an API read is what teaches the direct one.
 */
/* csi_vcpu's fields, for csi_reg_read_gpr; vcpu.h includes this header in
 * turn once they are defined (hence outside the guard). */
#include "vcpu.h"

#ifndef CSI_QEMU_GUESTIO_H
#define CSI_QEMU_GUESTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <qemu-plugin.h>
#include "fastreg.h"

/* The handles of the stack pointer and the pc (NULL if QEMU does not list
 * them), valid after csi_reg_find_all. (hidden: read at every event, by
 * address, not through the GOT) */
extern struct qemu_plugin_register *csi_reg_sp __attribute__((visibility("hidden")));
extern struct qemu_plugin_register *csi_reg_pc;

/* Learns QEMU's register names (at the first vCPU's init). */
void csi_reg_find_all(void);
/* A QEMU register handle by name, or NULL (valid after csi_reg_find_all). */
struct qemu_plugin_register *csi_reg_handle(const char *name);
/* verbose=on, at exit: the registers whose offset is still being learnt,
 * hence read through the API so far. */
void csi_reg_report_learning(void);

/* Any register of this vCPU (on its thread, from a callback), through the
 * API: flags and system registers, which the gdbstub may compose from
 * several fields. */
bool csi_reg_read(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t *out);
bool csi_reg_read_pc(csi_vcpu *v, uint64_t *out);
/* A register of the vCPU this thread is running, by name (translation
 * time). */
bool csi_reg_read_current(const char *name, uint64_t *out);

/* A general register (whose gdbstub value is a plain copy of one field:
 * the stack pointer, a target's base and index): through the CPU state
 * while a callback runs on a trusted pointer and the register's offset is
 * known, else through the API, learning the offset. */
bool csi_reg_read_gpr_api(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t *out);
static inline bool csi_reg_read_gpr(csi_vcpu *v, struct qemu_plugin_register *h, uint64_t *out)
{
    return csi_fastreg_read(h, v->env_now, out) || csi_reg_read_gpr_api(v, h, out);
}

/*
 * The CPU-state pointer `env` of a callback (fastreg.h), per vCPU:
 * examined once per pointer value (csi_reg_examine_env: readable?), a
 * candidate while readable (copies of it teach offsets; env_probe during a
 * callback), trusted once a read through it equalled an API read
 * (env_trusted; env_now during a callback, and direct reads use only that).
 * At the entry of a callback in the slow lane (csi_vcpu_begin):
 */
void csi_reg_examine_env(csi_vcpu *v, const void *env);
static inline void csi_reg_accept_env(csi_vcpu *v, const void *env)
{
    if (env && env != v->env_checked) {
        csi_reg_examine_env(v, env);
    }
    v->env_probe = env && env == v->env_candidate ? env : NULL;
    v->env_now = env && env == v->env_trusted ? env : NULL;
}

/* `size` bytes of guest virtual memory at addr, as a number. */
bool csi_mem_read(csi_vcpu *v, uint64_t addr, unsigned size, uint64_t *out);

#endif
