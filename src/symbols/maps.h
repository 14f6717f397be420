/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsing of /proc/PID/maps text into file-backed regions. No QEMU headers:
 * the QEMU glue decides where the text comes from.
 */
#ifndef CSI_SYMBOLS_MAPS_H
#define CSI_SYMBOLS_MAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct csi_map_region {
    uint64_t start, end;   /* [start, end) */
    uint64_t offset;       /* file offset mapped at start */
    bool exec;
    char *path;            /* absolute path of the mapped file (g_malloc) */
} csi_map_region;

/*
 * The file-backed regions of a maps text, sorted by start. Anonymous and
 * pseudo mappings ([heap], [vdso], ...) and files shown as "(deleted)" are
 * left out: no file can be read for them. Each address is shifted down by
 * `bias` (QEMU's guest_base: host address minus guest address); regions
 * below `bias` are not guest memory and are left out too.
 * Free with csi_maps_free().
 */
GArray *csi_maps_parse(const char *text, uint64_t bias);
void csi_maps_free(GArray *regions);

/* The region containing addr, or NULL. */
const csi_map_region *csi_maps_find(const GArray *regions, uint64_t addr);

#endif
