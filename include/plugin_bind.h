/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Finding another QEMU plugin at run time, for the run-time bindings of
 * callstack_instr (callstack_instr/callstack_instr_ext.h) and osi_linux
 * (osi_linux/osi_linux.h). QEMU opens plugins with local symbol binding, so
 * a plugin cannot link against another's functions: it finds the loaded
 * library exporting a known symbol, whatever its file name, and looks its
 * functions up there.
 */
#ifndef PLUGIN_BIND_H
#define PLUGIN_BIND_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>

typedef struct plugin_bind_search_ {
    const char *symbol;
    void *handle;
} plugin_bind_search_;

static int plugin_bind_find_cb_(struct dl_phdr_info *info, size_t size, void *data)
{
    plugin_bind_search_ *s = (plugin_bind_search_ *)data;
    void *h;
    (void)size;
    if (!info->dlpi_name || !info->dlpi_name[0]) {
        return 0;
    }
    h = dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        return 0;
    }
    if (dlsym(h, s->symbol)) {
        s->handle = h;
        return 1;
    }
    dlclose(h);
    return 0;
}

/* The handle of the loaded object exporting `symbol`, or NULL. */
static inline void *plugin_bind_find(const char *symbol)
{
    plugin_bind_search_ s = { symbol, NULL };
    dl_iterate_phdr(plugin_bind_find_cb_, &s);
    return s.handle;
}

#endif
