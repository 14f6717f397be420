/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Register reads without the plugin API on the hot path.
 *
 * qemu_plugin_read_register() goes through QEMU's gdbstub (a checked QOM
 * cast, a GByteArray append with a division in it): about 20 ns, more than
 * everything else a call or return costs us. Yet inside a callback from
 * translated code the guest registers sit in QEMU's CPU state (the callbacks
 * ask for QEMU_PLUGIN_CB_R_REGS, so TCG has stored them there), and TCG
 * keeps the address of that state in a fixed host register (TCG_AREG0: rbp
 * on x86_64 hosts, x19 on aarch64 hosts) that the C calling convention
 * preserves. A two-instruction trampoline (trampoline.c) hands it to our
 * callbacks as a third argument.
 *
 * Where each register lives in that state is learnt, not assumed: for its
 * first reads a register is read through the API as before and its value
 * searched for in a copy of the state taken with process_vm_readv (which
 * cannot fault); once a single offset has agreed with the API on enough
 * reads of different values, later reads are one load. A register whose
 * offset cannot be established stays on the API, and so does everything on
 * hosts without a trampoline. The vCPU's state pointer is checked the same
 * way once per vCPU (QEMU never moves it), and compared on every event.
 */
#ifndef CS_QEMU_FASTREG_H
#define CS_QEMU_FASTREG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <qemu-plugin.h>

#define CS_FASTREG_SLOTS 512   /* QEMU's handles are gdb register numbers + 1 */

enum { CS_FASTREG_LEARNING, CS_FASTREG_FAST, CS_FASTREG_SLOW };

typedef struct cs_fastreg {
    int state;          /* CS_FASTREG_*; read without lock */
    int32_t offset;     /* FAST: byte offset in the CPU state */
    uint32_t size;      /* bytes, as the API returns them */
} cs_fastreg;

extern cs_fastreg cs_fastregs[CS_FASTREG_SLOTS];
extern bool cs_fastreg_enabled;

static inline cs_fastreg *cs_fastreg_of(const struct qemu_plugin_register *h)
{
    uintptr_t i = (uintptr_t)h;
    return i < CS_FASTREG_SLOTS ? &cs_fastregs[i] : NULL;
}

/* Fast read: true and *out set if the register's offset is known and env is
 * a checked CPU state pointer (non-NULL). */
static inline bool cs_fastreg_read(const struct qemu_plugin_register *h, const void *env,
                                   uint64_t *out)
{
    cs_fastreg *f = cs_fastreg_of(h);
    if (!env || !f || __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != CS_FASTREG_FAST) {
        return false;
    }
    if (f->size == 8) {
        memcpy(out, (const char *)env + f->offset, 8);
    } else {
        uint32_t x;
        memcpy(&x, (const char *)env + f->offset, 4);
        *out = x;
    }
    return true;
}

/* Is this pointer a readable CPU state, as far as a copy can tell? Called
 * once per vCPU (and whenever the pointer changes). */
bool cs_fastreg_check_env(const void *env);

/* After an API read of `h` gave `value` (`size` bytes), learn from it. */
void cs_fastreg_learn(const struct qemu_plugin_register *h, const void *env, uint64_t value,
                      unsigned size);

/* How many registers read so far are in this state (for verbose=on). */
unsigned cs_fastreg_count(int state);

#endif
