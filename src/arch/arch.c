/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include <capstone/capstone.h>
#include <glib.h>
#include "arch.h"

static const cs_arch_desc arches[] = {
    { .name = "x86_64", .sp_reg = "rsp", .pc_reg = "rip", .word_bytes = 8,
      .ret_addr_on_stack = true, .tail_insns = 1, .classify = cs_arch_x86_classify,
      .cs_arch = CS_ARCH_X86, .cs_mode = CS_MODE_64 },
    { .name = "i386", .sp_reg = "esp", .pc_reg = "eip", .word_bytes = 4,
      .ret_addr_on_stack = true, .tail_insns = 1, .classify = cs_arch_x86_classify,
      .cs_arch = CS_ARCH_X86, .cs_mode = CS_MODE_32 },
    { .name = "aarch64", .sp_reg = "sp", .pc_reg = "pc", .word_bytes = 8,
      .ret_addr_on_stack = false, .tail_insns = 1, .classify = cs_arch_a64_classify,
      .cs_arch = CS_ARCH_ARM64, .cs_mode = CS_MODE_ARM },
};

const cs_arch_desc *cs_arch_find(const char *target_name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(arches); i++) {
        if (strcmp(arches[i].name, target_name) == 0) {
            return &arches[i];
        }
    }
    return NULL;
}

const char *cs_arch_supported(void)
{
    static char buf[256];
    if (!buf[0]) {
        for (size_t i = 0; i < G_N_ELEMENTS(arches); i++) {
            g_strlcat(buf, i ? ", " : "", sizeof buf);
            g_strlcat(buf, arches[i].name, sizeof buf);
        }
    }
    return buf;
}

/*
 * One handle per thread and arch: Capstone handles are not thread-safe, and
 * QEMU may translate on several vCPU threads at once in system mode. Handles
 * live as long as their thread; translation threads are few.
 */
typedef struct cs_handle_slot {
    const cs_arch_desc *arch;
    csh handle;
    bool ok;
} cs_handle_slot;

static __thread cs_handle_slot tls_slot;

void *cs_arch_capstone(const cs_arch_desc *a)
{
    if (tls_slot.arch != a) {
        if (tls_slot.ok) {
            cs_close(&tls_slot.handle);
        }
        tls_slot.arch = a;
        tls_slot.ok = cs_open(a->cs_arch, a->cs_mode, &tls_slot.handle) == CS_ERR_OK;
        if (tls_slot.ok) {
            cs_option(tls_slot.handle, CS_OPT_DETAIL, CS_OPT_ON);
        }
    }
    return tls_slot.ok ? &tls_slot.handle : NULL;
}
