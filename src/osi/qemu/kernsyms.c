/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel symbol names at run time: a System.map or /proc/kallsyms dump
 * (kallsyms.c), shifted by this boot's KASLR slide.
 *
 * The map may come from another boot (or from the -dbg package's
 * System.map, slide 0), so the slide is measured: the start address of
 * every kernel block QEMU translates goes to the slide finder, which votes
 * over the function starts that address could be (kallsyms.c). This costs
 * nothing per executed block, only at translation, and only until the
 * slide is known; names are available from then on.
 */
#include <stdio.h>
#include <glib.h>
#include "osi.h"
#include "osi/kallsyms.h"

static osi_ksyms *ksyms;
static osi_slide *finder;
static GMutex finder_lock;
static int64_t slide;
static bool slide_known;       /* atomic; slide is written before it */
static uint64_t blocks_fed;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    if (__atomic_load_n(&slide_known, __ATOMIC_ACQUIRE) || !osi_kernel_addr(pc)) {
        return;
    }
    g_mutex_lock(&finder_lock);
    int64_t s;
    if (!slide_known) {
        blocks_fed++;
        if (osi_slide_feed(finder, pc, &s)) {
            slide = s;
            __atomic_store_n(&slide_known, true, __ATOMIC_RELEASE);
            if (osi_verbose) {
                fprintf(stderr, "osi_linux: KASLR slide %s0x%" PRIx64 " (from %" PRIu64
                        " translated kernel blocks)\n", s < 0 ? "-" : "",
                        s < 0 ? -(uint64_t)s : (uint64_t)s, blocks_fed);
            }
        }
    }
    g_mutex_unlock(&finder_lock);
}

bool osi_kernsyms_setup(qemu_plugin_id_t id, osi_arch arch, const char *path)
{
    char err[512];
    ksyms = osi_ksyms_load(path, err, sizeof err);
    if (!ksyms) {
        fprintf(stderr, "osi_linux: %s\n", err);
        return false;
    }
    /* KASLR moves the x86_64 kernel in 2 MiB steps (CONFIG_PHYSICAL_ALIGN);
     * arm64's offset keeps a 64 KiB alignment. */
    finder = osi_slide_new(ksyms, arch == OSI_X86_64 ? 0x200000 : 0x10000);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    return true;
}

bool osi_kernsyms_slide(int64_t *out)
{
    if (!ksyms || !__atomic_load_n(&slide_known, __ATOMIC_ACQUIRE)) {
        return false;
    }
    *out = slide;
    return true;
}

bool osi_kernsyms_symbolize(uint64_t addr, osi_linux_symbol *out)
{
    int64_t s;
    const char *name;
    uint64_t at;
    if (!osi_kernsyms_slide(&s) || !osi_ksyms_find(ksyms, addr - (uint64_t)s, &name, &at)) {
        return false;
    }
    out->name = name;
    out->addr = at + (uint64_t)s;
    out->offset = addr - out->addr;
    return true;
}

bool osi_kernsyms_lookup(const char *name, uint64_t *addr)
{
    int64_t s;
    uint64_t at;
    if (!name || !osi_kernsyms_slide(&s) || !osi_ksyms_lookup(ksyms, name, &at)) {
        return false;
    }
    *addr = at + (uint64_t)s;
    return true;
}

void osi_kernsyms_report(void)
{
    if (ksyms && !__atomic_load_n(&slide_known, __ATOMIC_ACQUIRE)) {
        fprintf(stderr, "osi_linux: the KASLR slide was never found (%" PRIu64 " kernel blocks "
                "seen): does kallsyms= list the kernel the guest ran? No kernel names\n",
                blocks_fed);
    }
}
