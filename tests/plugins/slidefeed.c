/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_slidefeed: the KASLR slide finder (src/osi/kallsyms.c) fed by a
 * real boot, for tests/e2e/test_ksyms.py. Every translated block's address
 * goes to osi_slide_feed until it decides; then it prints on stderr
 *
 *   slidefeed <TAB> slide=0x... <TAB> after=N <TAB> kernel_blocks=K
 *
 * (N blocks translated in all, K of them in the map's half of the address
 * space), or at exit "slidefeed <TAB> slide=- <TAB> after=N ...".
 *
 *   -plugin libtest_slidefeed.so,map=KALLSYMS,align=0x200000
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "osi/kallsyms.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static GMutex lock;
static osi_ksyms *map;
static osi_slide *finder;
static uint64_t blocks, kernel_blocks, half;
static bool reported;

static void report(const char *slide)
{
    fprintf(stderr, "slidefeed\tslide=%s\tafter=%" PRIu64 "\tkernel_blocks=%" PRIu64 "\n", slide,
            blocks, kernel_blocks);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    int64_t slide;
    g_mutex_lock(&lock);
    if (!reported) {
        blocks++;
        kernel_blocks += pc >> 63 == half;
        if (osi_slide_feed(finder, pc, &slide)) {
            char buf[32];
            snprintf(buf, sizeof buf, "%#" PRIx64, (uint64_t)slide);
            report(buf);
            reported = true;
        }
    }
    g_mutex_unlock(&lock);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    if (!reported) {
        report("-");
    }
    osi_slide_free(finder);
    osi_ksyms_free(map);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    const char *path = NULL;
    uint64_t align = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "map=", 4) == 0) {
            path = argv[i] + 4;
        } else if (strncmp(argv[i], "align=", 6) == 0) {
            align = strtoull(argv[i] + 6, NULL, 0);
        }
    }
    char err[512];
    if (!path || !(map = osi_ksyms_load(path, err, sizeof err))) {
        fprintf(stderr, "slidefeed: %s\n", path ? err : "map=PATH is required");
        return -1;
    }
    uint64_t addr;
    half = osi_ksyms_lookup(map, "_stext", &addr) ? addr >> 63 : 1;
    if (!(finder = osi_slide_new(map, align))) {
        fprintf(stderr, "slidefeed: align=N (N > 0) is required\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
