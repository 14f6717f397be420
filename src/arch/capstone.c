/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Capstone handles the decoders share (declared in arch.h). Apart from
 * the table in arch.c, which refers to the decoders, so that arch.c and the
 * decoders do not call each other.
 */
#include <capstone/capstone.h>
#include "arch.h"

/*
 * One handle per thread and arch: Capstone handles are not thread-safe, and
 * QEMU may translate on several vCPU threads at once in system mode. Handles
 * live as long as their thread; translation threads are few.
 */
typedef struct csi_handle_slot {
    const csi_arch_desc *arch;
    csh handle;
    bool ok;
} csi_handle_slot;

static __thread csi_handle_slot tls_slot;

void *csi_arch_capstone(const csi_arch_desc *a)
{
    if (tls_slot.arch != a) {
        if (tls_slot.ok) {
            cs_close(&tls_slot.handle);
        }
        tls_slot.arch = a;
        tls_slot.ok = cs_open(a->capstone_arch, a->capstone_mode, &tls_slot.handle) == CS_ERR_OK;
        if (tls_slot.ok) {
            cs_option(tls_slot.handle, CS_OPT_DETAIL, CS_OPT_ON);
            /* ARM: r9..r12 by number, as QEMU lists them, not sb, sl,
             * fp, ip (Capstone's default): a call through one of them
             * (`blx ip`) would otherwise have an unknown target. */
            if (a->capstone_arch == CS_ARCH_ARM) {
                cs_option(tls_slot.handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_NOREGNAME);
            }
        }
    }
    return tls_slot.ok ? &tls_slot.handle : NULL;
}
