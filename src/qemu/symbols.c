/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * callstack_instr_symbolize: names guest addresses with src/symbols/.
 *
 * Where the guest's files are mapped. In linux-user the guest runs inside
 * the QEMU process: every guest mapping is a host mapping of the same file
 * at guest address + guest_base (QEMU's target_mmap maps the guest's files
 * with the host's mmap there, and its ELF loader does the same for the
 * program and its interpreter). So the host's /proc/self/maps, shifted by
 * guest_base, is the guest's view: it is what QEMU itself does to emulate
 * /proc/self/maps for the guest (open_self_maps keeps the host ranges that
 * are guest memory and translates them). The alternatives are worse:
 * tracking the guest's mmap syscalls misses the program and ld.so (mapped
 * by QEMU's loader, not by a guest syscall) and needs per-architecture
 * syscall numbers; reading the guest's own /proc/self/maps is not possible
 * from host code. A host library's range never holds a guest address, so
 * host mappings in the text do no harm. (Where the host page size exceeds
 * the guest's, QEMU may copy a file into anonymous memory instead of
 * mapping it; such code has no module. Not the case on x86 hosts.)
 *
 * Lazy: nothing is read until a name is asked for (see symbolizer.h).
 */
#include <pthread.h>
#include <string.h>
#include <glib.h>
#include "callstack_instr/callstack_instr.h"
#include "symbols/symbolizer.h"
#include "plugin.h"
#include "guestmem.h"
#include "symbols.h"
#include "osi.h"

#define CSI_API __attribute__((visibility("default")))

static csi_symbolizer *symbolizer;

static char *read_host_maps(void *opaque)
{
    (void)opaque;
    char *text = NULL;
    if (!g_file_get_contents("/proc/self/maps", &text, NULL, NULL)) {
        return NULL;
    }
    return text;
}

static uint64_t read_guest_base(void *opaque)
{
    (void)opaque;
    return csi_guestmem_guest_base();
}

static void after_fork_child(void)
{
    csi_symbolizer_after_fork(symbolizer);
}

void csi_symbols_setup(void)
{
    if (!csi_cfg.system_mode) {
        symbolizer = csi_symbolizer_new(read_host_maps, read_guest_base, NULL);
        /* A thread holding the symbolizer's lock at fork() is not in the
         * child: the child re-initialises it. */
        pthread_atfork(NULL, NULL, after_fork_child);
    }
}

uint64_t csi_symbols_function_entry(uint64_t addr)
{
    csi_sym_result r;
    if (symbolizer && csi_symbolizer_lookup(symbolizer, addr, &r) && r.name && r.local_entry &&
        addr == r.sym_addr + r.local_entry) {
        return r.sym_addr;
    }
    return addr;
}

CSI_API bool callstack_instr_symbolize(uint64_t addr, callstack_symbol *out)
{
    csi_sym_result r;
    if (!out) {
        return false;
    }
    memset(out, 0, sizeof *out);
    if (!symbolizer) {
        /* Whole-system mode: the kernel's symbols, through osi_linux. */
        const char *name;
        uint64_t sym;
        if (!csi_osi_symbolize(addr, &name, &sym)) {
            return false;
        }
        out->module = "[kernel]";
        out->name = name;
        out->symbol_addr = sym;
        out->offset = addr - sym;
        return true;
    }
    if (!csi_symbolizer_lookup(symbolizer, addr, &r)) {
        return false;
    }
    out->module = r.module;
    out->module_base = r.module_base;
    out->module_start = r.module_start;
    out->module_end = r.module_end;
    out->name = r.name;
    out->symbol_addr = r.name ? r.sym_addr : 0;
    out->symbol_size = r.name ? r.sym_size : 0;
    out->offset = r.name ? addr - r.sym_addr : addr - r.module_base;
    return true;
}
