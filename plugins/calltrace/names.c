/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Function names for calltrace's outputs, from callstack_instr_symbolize.
 * Each address is resolved once, the first time an event names it (so a
 * library is still mapped when its functions are named), and kept.
 */
#include <inttypes.h>
#include <string.h>
#include "calltrace.h"

ct_api ct_callstack;

static GMutex lock;
static GHashTable *cache;     /* uint64_t addr -> ct_sym */
static GStringChunk *strings;

/*
 * In front of `cache`, read without the lock: a direct-mapped table of
 * symbols already resolved (never freed), published with a release store,
 * so a thread that finds its address there sees the whole ct_sym.
 */
#define FRONT_SLOTS 16384
static const ct_sym *front[FRONT_SLOTS];

static inline const ct_sym **front_slot(uint64_t addr)
{
    return &front[((addr * 0x9e3779b97f4a7c15ull) >> 40) & (FRONT_SLOTS - 1)];
}

/*
 * Names and paths come from the guest's files: a symbol table or a file
 * name may hold tabs, newlines or other control bytes, which would tear
 * the line-based formats (tsv columns, uftrace's map and symbol files).
 * They are replaced by '?'.
 */
static const char *clean(const char *text)
{
    char *c = g_strdup(text);
    for (char *p = c; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    const char *kept = g_string_chunk_insert_const(strings, c);
    g_free(c);
    return kept;
}

static ct_sym *resolve(uint64_t addr)
{
    ct_sym *s = g_new0(ct_sym, 1);
    callstack_symbol cs;
    g_autofree char *display = NULL;
    s->addr = addr;
    if (ct_callstack.symbolize && ct_callstack.symbolize(addr, &cs)) {
        s->module = clean(cs.module);
        s->module_start = cs.module_start;
        s->module_end = cs.module_end;
        if (cs.name) {
            display = cs.offset ? g_strdup_printf("%s+0x%" PRIx64, cs.name, cs.offset)
                                : g_strdup(cs.name);
        } else {
            /* No symbol: the file and the link-time address, which
             * addr2line and objdump take as they are. */
            g_autofree char *base = g_path_get_basename(cs.module);
            display = g_strdup_printf("%s+0x%" PRIx64, base, cs.offset);
        }
    } else {
        display = g_strdup_printf("0x%" PRIx64, addr);
    }
    s->display = clean(display);
    return s;
}

const ct_sym *ct_sym_of(uint64_t addr)
{
    const ct_sym *f = __atomic_load_n(front_slot(addr), __ATOMIC_ACQUIRE);
    if (f && f->addr == addr) {
        return f;
    }
    g_mutex_lock(&lock);
    if (!cache) {
        cache = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
        strings = g_string_chunk_new(4096);
    }
    ct_sym *s = g_hash_table_lookup(cache, &addr);
    if (!s) {
        s = resolve(addr);
        g_hash_table_insert(cache, &s->addr, s);
    }
    __atomic_store_n(front_slot(addr), s, __ATOMIC_RELEASE);
    g_mutex_unlock(&lock);
    return s;
}

void ct_names_after_fork_child(void)
{
    g_mutex_init(&lock);
}
