/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/PID/maps parsing: see maps.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "maps.h"

static gint by_start(gconstpointer a, gconstpointer b)
{
    const csi_map_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void region_clear(gpointer p)
{
    g_free(((csi_map_region *)p)->path);
}

/* One line: "start-end perms offset dev inode [path]". */
static bool parse_line(const char *line, uint64_t bias, csi_map_region *out)
{
    char perms[8];
    uint64_t start, end, offset;
    int path_at = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*x:%*x %*u %n",
               &start, &end, perms, &offset, &path_at) < 4 || path_at == 0) {
        return false;
    }
    const char *path = line + path_at;
    /* Only real files have symbols to read. */
    if (path[0] != '/' || g_str_has_suffix(path, " (deleted)")) {
        return false;
    }
    if (start < bias || end <= start) {
        return false;
    }
    out->start = start - bias;
    out->end = end - bias;
    out->offset = offset;
    out->exec = strlen(perms) >= 3 && perms[2] == 'x';
    out->path = g_strdup(path);
    return true;
}

GArray *csi_maps_parse(const char *text, uint64_t bias)
{
    GArray *regions = g_array_new(FALSE, FALSE, sizeof(csi_map_region));
    g_array_set_clear_func(regions, region_clear);
    gchar **lines = g_strsplit(text ? text : "", "\n", -1);
    for (gchar **l = lines; *l; l++) {
        csi_map_region r;
        if (parse_line(*l, bias, &r)) {
            g_array_append_val(regions, r);
        }
    }
    g_strfreev(lines);
    g_array_sort(regions, by_start);
    return regions;
}

void csi_maps_free(GArray *regions)
{
    if (regions) {
        g_array_free(regions, TRUE);
    }
}

const csi_map_region *csi_maps_find(const GArray *regions, uint64_t addr)
{
    guint lo = 0, hi = regions ? regions->len : 0;
    while (lo < hi) {      /* first region starting after addr */
        guint mid = lo + (hi - lo) / 2;
        if (g_array_index(regions, csi_map_region, mid).start <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return NULL;
    }
    const csi_map_region *r = &g_array_index(regions, csi_map_region, lo - 1);
    return addr < r->end ? r : NULL;
}
