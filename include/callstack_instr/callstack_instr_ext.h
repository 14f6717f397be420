/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run-time binding to callstack_instr for other QEMU plugins.
 *
 * QEMU opens plugins with local symbol binding, so a plugin cannot link
 * against libcallstack_instr.so's functions. Include this header (and not
 * callstack_instr.h) and call init_callstack_instr_api(): it finds the loaded
 * library, whatever its file name, and fills in function pointers named like
 * PANDA's API (get_callers, get_functions, ...), so calls read the same as in
 * PANDA. The pointers are static: bind in every translation unit using them.
 *
 * Plugins are installed in -plugin order. If callstack_instr comes after
 * yours, it is not loaded yet during your qemu_plugin_install(): the call
 * then returns false and you try again from a vCPU-init callback, by which
 * time every plugin is loaded. See plugins/calltrace.c.
 */
#ifndef CALLSTACK_INSTR_EXT_H
#define CALLSTACK_INSTR_EXT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "plugin_bind.h"
#include <stdio.h>
#include <string.h>
#include "callstack_instr_types.h"

#ifdef CALLSTACK_INSTR_H
#error "include callstack_instr_ext.h or callstack_instr.h, not both"
#endif

static int (*callstack_instr_api_version)(void);
static uint32_t (*get_callers)(uint64_t *callers, uint32_t n, unsigned int vcpu_index);
static uint32_t (*get_functions)(uint64_t *functions, uint32_t n, unsigned int vcpu_index);
static void (*get_prog_point)(unsigned int vcpu_index, prog_point *p);
static uint64_t (*get_stack_depth)(unsigned int vcpu_index);
static Panda__CallStack *(*pandalog_callstack_create)(void);
static Panda__CallStack *(*pandalog_callstack_create_vcpu)(unsigned int vcpu_index);
static void (*pandalog_callstack_free)(Panda__CallStack *cs);
static bool (*callstack_instr_symbolize)(uint64_t addr, callstack_symbol *out);
static bool (*ppp_add_cb_on_call)(on_call_t fn);
static bool (*ppp_remove_cb_on_call)(on_call_t fn);
static bool (*ppp_add_cb_on_ret)(on_ret_t fn);
static bool (*ppp_remove_cb_on_ret)(on_ret_t fn);
static bool (*ppp_add_cb_on_event)(on_event_t fn);
static bool (*ppp_remove_cb_on_event)(on_event_t fn);
static bool (*callstack_instr_claim_frames)(on_frame_t on_call, on_frame_t on_ret);
static bool (*callstack_instr_release_frames)(on_frame_t on_call, on_frame_t on_ret);

/* PANDA's spelling: PPP_REG_CB("callstack_instr", on_call, my_fn). */
#define PPP_REG_CB(plugin, cb_name, fn)    ppp_add_cb_##cb_name(fn)
#define PPP_REMOVE_CB(plugin, cb_name, fn) ppp_remove_cb_##cb_name(fn)

/* Why the last init_callstack_instr_api() failed. */
static char callstack_instr_api_error[256];

/* Finds a loaded object exporting callstack_instr_api_version. */
/*
 * Binds the API. Returns true on success; on failure the pointers stay NULL
 * and callstack_instr_api_error says why.
 */
static inline bool init_callstack_instr_api(void)
{
    void *h = plugin_bind_find("callstack_instr_api_version");
    if (!h) {
        snprintf(callstack_instr_api_error, sizeof callstack_instr_api_error,
                 "callstack_instr is not loaded: add -plugin .../libcallstack_instr.so");
        return false;
    }
#define CALLSTACK_INSTR_BIND_(name)                                              \
    do {                                                                       \
        *(void **)(&name) = dlsym(h, #name);                                   \
        if (!name) {                                                           \
            snprintf(callstack_instr_api_error, sizeof callstack_instr_api_error, \
                     "callstack_instr lacks %s: version mismatch?", #name);    \
            return false;                                                      \
        }                                                                      \
    } while (0)
    CALLSTACK_INSTR_BIND_(callstack_instr_api_version);
    if (callstack_instr_api_version() != CALLSTACK_INSTR_API_VERSION) {
        snprintf(callstack_instr_api_error, sizeof callstack_instr_api_error,
                 "callstack_instr API version %d, this plugin was built for %d",
                 callstack_instr_api_version(), CALLSTACK_INSTR_API_VERSION);
        return false;
    }
    CALLSTACK_INSTR_BIND_(get_callers);
    CALLSTACK_INSTR_BIND_(get_functions);
    CALLSTACK_INSTR_BIND_(get_prog_point);
    CALLSTACK_INSTR_BIND_(get_stack_depth);
    CALLSTACK_INSTR_BIND_(pandalog_callstack_create);
    CALLSTACK_INSTR_BIND_(pandalog_callstack_create_vcpu);
    CALLSTACK_INSTR_BIND_(pandalog_callstack_free);
    CALLSTACK_INSTR_BIND_(callstack_instr_symbolize);
    CALLSTACK_INSTR_BIND_(ppp_add_cb_on_call);
    CALLSTACK_INSTR_BIND_(ppp_remove_cb_on_call);
    CALLSTACK_INSTR_BIND_(ppp_add_cb_on_ret);
    CALLSTACK_INSTR_BIND_(ppp_remove_cb_on_ret);
    CALLSTACK_INSTR_BIND_(ppp_add_cb_on_event);
    CALLSTACK_INSTR_BIND_(ppp_remove_cb_on_event);
    CALLSTACK_INSTR_BIND_(callstack_instr_claim_frames);
    CALLSTACK_INSTR_BIND_(callstack_instr_release_frames);
#undef CALLSTACK_INSTR_BIND_
    return true;
}

#endif
