/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * callstack_instr's API, as exported by libcallstack_instr.so.
 *
 * QEMU loads plugins with local symbol binding, so another plugin cannot
 * link against these names directly: it includes callstack_instr_ext.h and
 * calls init_callstack_instr_api(), which binds pointers with the same names
 * at run time. This header is for code linked into the plugin itself and for
 * hosts that load the library with global binding.
 */
#ifndef CALLSTACK_INSTR_H
#define CALLSTACK_INSTR_H

#include "callstack_instr_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value of CALLSTACK_INSTR_API_VERSION the library was built with. */
int callstack_instr_api_version(void);

/*
 * Up to n return addresses of the stack the vCPU is on now, most recent
 * first. Returns how many were stored.
 */
uint32_t get_callers(uint64_t *callers, uint32_t n, unsigned int vcpu_index);

/* Up to n functions of the stack the vCPU is on now, most recent first. */
uint32_t get_functions(uint64_t *functions, uint32_t n, unsigned int vcpu_index);

/*
 * The current program point: caller (most recent return address, 0 if the
 * stack is empty), pc, and the stack id. pc is the guest pc when called from
 * the vCPU's own thread inside a callback that may read registers, otherwise
 * the start of the block where this vCPU's last call or return was seen.
 */
void get_prog_point(unsigned int vcpu_index, prog_point *p);

/* Depth of the vCPU's current stack (an extension over PANDA). */
uint64_t get_stack_depth(unsigned int vcpu_index);

/*
 * A pandalog CallStack with up to 16 return addresses of the calling
 * thread's vCPU, most recent first (PANDA's behaviour). NULL if this thread
 * runs no vCPU. Free with pandalog_callstack_free().
 */
Panda__CallStack *pandalog_callstack_create(void);
/* The same for a given vCPU. */
Panda__CallStack *pandalog_callstack_create_vcpu(unsigned int vcpu_index);
void pandalog_callstack_free(Panda__CallStack *cs);

/*
 * Names an address of the guest (user mode): the file mapped there (main
 * program or shared library) and the function containing it, from the
 * file's .symtab, or .dynsym when it is stripped, plus "name@plt" for PLT
 * stubs (x86, x86_64). Returns false, with *out zeroed, if the
 * address lies in no file mapping (anonymous or JIT code, QEMU's vdso) or
 * in whole-system mode; a true return may still have name NULL (a function
 * the file does not name). Files are read lazily, the first time an
 * address falls in them, and cached; any thread may call it. Strings stay
 * valid until QEMU exits (see callstack_symbol). An extension over PANDA.
 */
bool callstack_instr_symbolize(uint64_t addr, callstack_symbol *out);

/*
 * Callback registration, named as PANDA's PPP macros name them. Callbacks
 * run on the vCPU's thread, and concurrently for different vCPUs. Adding the
 * same function twice has no effect; remove returns false if it was absent.
 */
bool ppp_add_cb_on_call(on_call_t fn);
bool ppp_remove_cb_on_call(on_call_t fn);
bool ppp_add_cb_on_ret(on_ret_t fn);
bool ppp_remove_cb_on_ret(on_ret_t fn);
bool ppp_add_cb_on_event(on_event_t fn);
bool ppp_remove_cb_on_event(on_event_t fn);

/*
 * Frame words (see callstack_frame_event): makes the caller the one
 * consumer of the words, called with each call (on_call) and each return
 * (on_ret) on the vCPU's thread, after the push or pop, like the other
 * callbacks; either may be NULL (not called: a consumer that only counts
 * calls pays nothing at returns). Returns false if another consumer holds
 * them. Claim before the guest runs (at install or at a vCPU's init):
 * frames pushed earlier have word 0. callstack_instr_release_frames(fn,
 * ...) with the same pair gives them up; events already being delivered
 * may still reach the callbacks. Extensions over PANDA.
 */
bool callstack_instr_claim_frames(on_frame_t on_call, on_frame_t on_ret);
bool callstack_instr_release_frames(on_frame_t on_call, on_frame_t on_ret);

#ifdef __cplusplus
}
#endif
#endif
