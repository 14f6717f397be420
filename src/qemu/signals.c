/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Signal handlers as frames (user mode).
 *
 * The kernel (here QEMU's linux-user) enters a signal handler without a
 * call instruction, with the return address of its trampoline where a call
 * would have put it. Without help the handler would get no frame: its
 * return would match nothing, and tools comparing with a native trace (where
 * the handler is a function like any other) would miss its entry.
 *
 * So we learn handler addresses from rt_sigaction system calls and, at
 * translation time, give a block starting at a handler address a callback
 * that pushes a frame, unless the handler was just called directly (a frame
 * for it is already on top). Only handler blocks are instrumented. A
 * handler's block translated before its rt_sigaction (the function was also
 * run directly first) keeps no hook: see the README's limitations.
 */
#include <stdio.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "plugin.h"
#include "signals.h"

static GHashTable *handlers;   /* guest addresses (as pointers' worth of uint64) */
static GMutex handlers_lock;
static unsigned n_handlers;    /* read without the lock as a quick "any?" */

void csi_signals_on_syscall(int64_t num, uint64_t a2)
{
    if (!handlers || num != csi_arch->sigaction_nr || a2 == 0) {
        return;
    }
    GByteArray *buf = g_byte_array_new();
    unsigned w = csi_arch->word_bytes;
    if (qemu_plugin_read_memory_vaddr(a2 + csi_arch->sigaction_handler_offset, buf, w) &&
        buf->len >= w) {
        uint64_t h = 0;
        for (unsigned i = 0; i < w; i++) {
            h |= (uint64_t)buf->data[i] << (csi_arch->big_endian ? 8 * (w - 1 - i) : 8 * i);
        }
        if (h > 1) {   /* not SIG_DFL (0) or SIG_IGN (1) */
            g_mutex_lock(&handlers_lock);
            if (g_hash_table_add(handlers, g_memdup2(&h, sizeof h))) {
                __atomic_store_n(&n_handlers, g_hash_table_size(handlers), __ATOMIC_RELEASE);
            }
            g_mutex_unlock(&handlers_lock);
        }
    }
    g_byte_array_free(buf, TRUE);
}

bool csi_signals_is_handler(uint64_t pc)
{
    if (!handlers || __atomic_load_n(&n_handlers, __ATOMIC_ACQUIRE) == 0) {
        return false;
    }
    g_mutex_lock(&handlers_lock);
    bool r = g_hash_table_contains(handlers, &pc);
    g_mutex_unlock(&handlers_lock);
    return r;
}

void csi_signals_setup(void)
{
    if (csi_cfg.system_mode || csi_arch->sigaction_nr == 0 || csi_arch->entry_ret.kind == CSI_TARGET_NONE) {
        return;
    }
    g_mutex_init(&handlers_lock);
    handlers = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}
