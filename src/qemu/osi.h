/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Whole-system mode's operating-system view: the binding to the osi_linux
 * plugin (osi.c), when it is loaded. The rest of callstack_instr sees only
 * these functions, not osi_linux's header.
 */
#ifndef CSI_QEMU_OSI_H
#define CSI_QEMU_OSI_H

#include <stdbool.h>
#include <stdint.h>

typedef struct csi_osi_thread {
    uint64_t task;
    uint64_t kstack, kstack_size;   /* the task's kernel stack */
    int32_t pid, tgid;
    bool fresh;                     /* read now (else the vCPU's last identity) */
} csi_osi_thread;

/* Binds osi_linux if it is loaded; false (and *why set) if not. */
bool csi_osi_bind(const char **why);
bool csi_osi_bound(void);
/* The thread vCPU `vcpu` runs, from one of its callbacks. */
bool csi_osi_current(unsigned vcpu, csi_osi_thread *out);
/* Only the address of the task vCPU `vcpu` runs (cheaper). */
bool csi_osi_current_task(unsigned vcpu, uint64_t *task);
/* A kernel address's symbol (name valid until exit). */
bool csi_osi_symbolize(uint64_t addr, const char **name, uint64_t *sym_addr);

#endif
