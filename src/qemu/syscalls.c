/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The system calls the plugin watches in linux-user, from one callback
 * (QEMU keeps a single system-call callback per plugin), run just before
 * the call:
 * - all of them, since any may change the guest's mappings (guestmem.h);
 * - rt_sigaction, to learn signal handlers (signals.c);
 * - clone, which may start a thread. Until the first one, the guest has a
 *   single thread and the engine changes stacks without locking; the switch
 *   happens here, while that thread is in the system call (so outside the
 *   engine) and before the new thread exists.
 */
#include "plugin.h"
#include "guestmem.h"
#include "signals.h"
#include "syscalls.h"

#define CLONE_VM 0x00000100ull

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    /* Any system call may change the mappings: forget which pages are
     * known readable (guestmem.h). */
    csi_guestmem_forget_all();
    if (num == csi_arch->clone_nr[0] || num == csi_arch->clone_nr[1]) {
        /* clone's first argument is its flags everywhere; clone3 passes a
         * structure: assume a thread. A plain fork makes a process with
         * one thread. */
        bool thread = num == csi_arch->clone_nr[1] || (a1 & CLONE_VM);
        if (thread) {
            csi_engine_set_concurrent(csi_eng, true);
        }
    }
    csi_signals_on_syscall(num, a2);
}

void csi_syscalls_setup(qemu_plugin_id_t id)
{
    if (!csi_cfg.system_mode) {
        qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    }
}
