/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * osi_linux: Linux introspection for whole-system QEMU plugins, read from
 * the kernel image the guest boots (its BTF type information) instead of a
 * hand-made profile; kernel symbol names from a System.map or a
 * /proc/kallsyms dump, with the KASLR slide of the running boot found at
 * run time.
 *
 * Other plugins bind to it at run time (QEMU loads plugins with local
 * symbol binding): include this header and call init_osi_linux_api(),
 * which finds the loaded libosi_linux.so, whatever its file name, and fills
 * in the function pointers below. If osi_linux comes later in the -plugin
 * order it is not loaded during your qemu_plugin_install(): the call then
 * returns false; try again from a vCPU-init callback, by which time every
 * plugin is loaded.
 *
 * Thread contract: osi_linux_current() reads the vCPU's registers and
 * memory, so call it only from a callback running on that vCPU (one
 * registered with QEMU_PLUGIN_CB_R_REGS). The symbol functions may be
 * called from any thread at any time after binding.
 */
#ifndef OSI_LINUX_H
#define OSI_LINUX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "plugin_bind.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "osi_linux_types.h"

static int (*osi_linux_api_version)(void);
/*
 * The thread vCPU `vcpu_index` runs now (see the thread contract above).
 * False when no identity is known yet (no kernel-mode read so far) or the
 * task read made no sense (then osi_linux has said so once on stderr).
 */
static bool (*osi_linux_current)(unsigned int vcpu_index, osi_linux_thread *out);
/*
 * Only the address of the task_struct the vCPU runs now (one register and
 * one memory read; same contract as osi_linux_current): to tell cheaply
 * whether the thread changed. False when it cannot be read now.
 */
static bool (*osi_linux_current_task)(unsigned int vcpu_index, uint64_t *task);
/*
 * Address to symbol: false without kallsyms=, before the KASLR slide is
 * known, or outside the kernel's symbols.
 */
static bool (*osi_linux_symbolize)(uint64_t addr, osi_linux_symbol *out);
/* Name to run-time address (the first symbol of that name). */
static bool (*osi_linux_lookup)(const char *name, uint64_t *addr);
/* The KASLR slide in use: run-time minus map address; false until known. */
static bool (*osi_linux_kaslr_slide)(int64_t *slide);

/* Why the last init_osi_linux_api() failed. */
static char osi_linux_api_error[256];

/* Binds the API; on failure the pointers stay NULL and osi_linux_api_error says why. */
static inline bool init_osi_linux_api(void)
{
    void *h = plugin_bind_find("osi_linux_api_version_impl");
    if (!h) {
        snprintf(osi_linux_api_error, sizeof osi_linux_api_error,
                 "osi_linux is not loaded: add -plugin .../libosi_linux.so,kernel=IMAGE");
        return false;
    }
#define OSI_LINUX_BIND_(name)                                                  \
    do {                                                                       \
        *(void **)(&name) = dlsym(h, #name "_impl");                           \
        if (!name) {                                                           \
            snprintf(osi_linux_api_error, sizeof osi_linux_api_error,          \
                     "osi_linux lacks %s: version mismatch?", #name);          \
            return false;                                                      \
        }                                                                      \
    } while (0)
    OSI_LINUX_BIND_(osi_linux_api_version);
    if (osi_linux_api_version() != OSI_LINUX_API_VERSION) {
        snprintf(osi_linux_api_error, sizeof osi_linux_api_error,
                 "osi_linux API version %d, this plugin was built for %d",
                 osi_linux_api_version(), OSI_LINUX_API_VERSION);
        return false;
    }
    OSI_LINUX_BIND_(osi_linux_current);
    OSI_LINUX_BIND_(osi_linux_current_task);
    OSI_LINUX_BIND_(osi_linux_symbolize);
    OSI_LINUX_BIND_(osi_linux_lookup);
    OSI_LINUX_BIND_(osi_linux_kaslr_slide);
#undef OSI_LINUX_BIND_
    return true;
}

#ifdef __cplusplus
}
#endif
#endif
