/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Lazy address -> symbol resolution: see symbolizer.h. */
#include <string.h>
#include <glib.h>
#include "elf_symbols.h"
#include "maps.h"
#include "symbolizer.h"

/* A file at one load bias. */
typedef struct module {
    char *path;
    uint64_t bias, start, end;
    csi_elf_file *elf;        /* NULL if the file could not be read */
} module;

struct csi_symbolizer {
    csi_maps_reader read_maps;
    csi_bias_reader read_bias;
    void *opaque;
    GMutex lock;
    GArray *regions;         /* csi_map_region of the last maps read */
    GPtrArray *region_mod;   /* module * per region (NULL until resolved) */
    GHashTable *elf_files;   /* path -> csi_elf_file * (or a failure marker) */
    GPtrArray *modules;      /* every module ever seen; never freed before the end */
    /*
     * Pages that were in no file region at the last read. Without this a
     * program calling into anonymous code (QEMU's vdso, a JIT) would make
     * every lookup there read the maps again. Cleared at each read, since
     * the read may follow a new mapping.
     */
    GHashTable *not_file_pages;
};

#define PAGE_SHIFT 12
/* elf_files value for a file that cannot be read. */
static char unreadable;

csi_symbolizer *csi_symbolizer_new(csi_maps_reader read_maps, csi_bias_reader read_bias, void *opaque)
{
    csi_symbolizer *s = g_new0(csi_symbolizer, 1);
    s->read_maps = read_maps;
    s->read_bias = read_bias;
    s->opaque = opaque;
    g_mutex_init(&s->lock);
    s->elf_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->modules = g_ptr_array_new();
    s->not_file_pages = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    return s;
}

static void free_elf(gpointer key, gpointer value, gpointer data)
{
    (void)key;
    (void)data;
    if (value != &unreadable) {
        csi_elf_free(value);
    }
}

void csi_symbolizer_free(csi_symbolizer *s)
{
    if (!s) {
        return;
    }
    g_hash_table_foreach(s->elf_files, free_elf, NULL);
    g_hash_table_destroy(s->elf_files);
    for (guint i = 0; i < s->modules->len; i++) {
        module *m = g_ptr_array_index(s->modules, i);
        g_free(m->path);
        g_free(m);
    }
    g_ptr_array_free(s->modules, TRUE);
    if (s->region_mod) {
        g_ptr_array_free(s->region_mod, TRUE);
    }
    csi_maps_free(s->regions);
    g_hash_table_destroy(s->not_file_pages);
    g_mutex_clear(&s->lock);
    g_free(s);
}

static void reread_maps(csi_symbolizer *s)
{
    char *text = s->read_maps(s->opaque);
    uint64_t bias = s->read_bias ? s->read_bias(s->opaque) : 0;
    csi_maps_free(s->regions);
    s->regions = csi_maps_parse(text, bias);
    g_free(text);
    if (s->region_mod) {
        g_ptr_array_free(s->region_mod, TRUE);
    }
    s->region_mod = g_ptr_array_new();
    g_ptr_array_set_size(s->region_mod, (gint)s->regions->len);
    g_hash_table_remove_all(s->not_file_pages);
}

static csi_elf_file *elf_of(csi_symbolizer *s, const char *path)
{
    gpointer v = g_hash_table_lookup(s->elf_files, path);
    if (!v) {
        char *err = NULL;
        csi_elf_file *f = csi_elf_read(path, &err);
        g_free(err);     /* the module is still named by its path */
        v = f ? (gpointer)f : (gpointer)&unreadable;
        g_hash_table_insert(s->elf_files, g_strdup(path), v);
    }
    return v == &unreadable ? NULL : v;
}

/*
 * The load bias of the file mapped by region r. QEMU maps a guest's
 * segments without host execute permission, so the kernel merges adjacent
 * ones and a region's offset alone can be ambiguous (the page holding the
 * end of .rodata and the start of .data appears twice, at different
 * addresses). The file's first mapping (offset 0, its ELF header) is not
 * ambiguous: it gives the bias, and a region belongs to that load of the
 * file if it lies within the segments placed at that bias.
 */
static uint64_t region_bias(csi_symbolizer *s, const csi_map_region *r, const csi_elf_file *elf)
{
    uint64_t bias;
    if (!elf) {
        return r->start - r->offset;   /* unreadable file: a guess */
    }
    for (guint k = 0; k < s->regions->len; k++) {
        const csi_map_region *o = &g_array_index(s->regions, csi_map_region, k);
        if (o->offset == 0 && strcmp(o->path, r->path) == 0 &&
            csi_elf_bias(elf, o->start, 0, o->end - o->start, &bias) &&
            csi_elf_covers(elf, bias, r->start)) {
            return bias;
        }
    }
    if (csi_elf_bias(elf, r->start, r->offset, r->end - r->start, &bias)) {
        return bias;
    }
    return r->start - r->offset;
}

/* The module of region i, created (with its extent over every region of
 * the same file and bias) the first time. */
static module *module_of(csi_symbolizer *s, guint i)
{
    module *m = g_ptr_array_index(s->region_mod, i);
    if (m) {
        return m;
    }
    const csi_map_region *r = &g_array_index(s->regions, csi_map_region, i);
    csi_elf_file *elf = elf_of(s, r->path);
    uint64_t bias = region_bias(s, r, elf);
    for (guint k = 0; k < s->modules->len; k++) {
        module *old = g_ptr_array_index(s->modules, k);
        if (old->bias == bias && strcmp(old->path, r->path) == 0) {
            m = old;
            break;
        }
    }
    if (!m) {
        m = g_new0(module, 1);
        m->path = g_strdup(r->path);
        m->bias = bias;
        m->elf = elf;
        m->start = UINT64_MAX;
        g_ptr_array_add(s->modules, m);
    }
    /* Every region of this file at this bias belongs to the module. */
    for (guint k = 0; k < s->regions->len; k++) {
        const csi_map_region *o = &g_array_index(s->regions, csi_map_region, k);
        if (strcmp(o->path, m->path) == 0 && region_bias(s, o, elf) == m->bias) {
            m->start = MIN(m->start, o->start);
            m->end = MAX(m->end, o->end);
            g_ptr_array_index(s->region_mod, k) = m;
        }
    }
    return m;
}

static bool find_region(csi_symbolizer *s, uint64_t addr, guint *index)
{
    const csi_map_region *r = csi_maps_find(s->regions, addr);
    if (!r) {
        return false;
    }
    *index = (guint)(r - &g_array_index(s->regions, csi_map_region, 0));
    return true;
}

bool csi_symbolizer_lookup(csi_symbolizer *s, uint64_t addr, csi_sym_result *out)
{
    memset(out, 0, sizeof *out);
    g_mutex_lock(&s->lock);
    guint i;
    bool found = s->regions && find_region(s, addr, &i);
    if (!found) {
        gint64 page = (gint64)(addr >> PAGE_SHIFT);
        if (!s->regions || !g_hash_table_contains(s->not_file_pages, &page)) {
            reread_maps(s);
            found = find_region(s, addr, &i);
            if (!found) {
                gint64 *key = g_new(gint64, 1);
                *key = page;
                g_hash_table_add(s->not_file_pages, key);
            }
        }
    }
    if (found) {
        module *m = module_of(s, i);
        out->module = m->path;
        out->module_base = m->bias;
        out->module_start = m->start;
        out->module_end = m->end;
        const csi_elf_sym *sym = m->elf ? csi_elf_find(m->elf, addr - m->bias) : NULL;
        if (sym) {
            out->name = sym->name;
            out->sym_addr = sym->addr + m->bias;
            out->sym_size = sym->size;
            out->local_entry = sym->local_entry;
        }
    }
    g_mutex_unlock(&s->lock);
    return found;
}

void csi_symbolizer_after_fork(csi_symbolizer *s)
{
    if (s) {
        g_mutex_init(&s->lock);
    }
}
