/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prog_point: a program point (caller, pc, stack id), as in PANDA's
 * callstack_instr, with uint64_t in place of target_ulong so one header
 * serves every guest architecture.
 */
#ifndef CALLSTACK_INSTR_PROG_POINT_H
#define CALLSTACK_INSTR_PROG_POINT_H

#include <stdbool.h>
#include <stdint.h>
#include <inttypes.h>
#include <glib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How stacks are told apart; the values are PANDA's. */
typedef enum stack_type {
    STACK_ASID = 0,   /* one stack per address space (user mode: per process) */
    STACK_HEURISTIC,  /* per address space and stack-pointer region */
    STACK_THREADED,   /* per (process, thread) */
} stack_type;

typedef struct prog_point {
    uint64_t caller;     /* most recent return address on the stack, 0 if none */
    uint64_t pc;         /* where the vCPU is (start of the current block) */
    uint64_t sidFirst;   /* asid, or process id for STACK_THREADED */
    uint64_t sidSecond;  /* stack region for STACK_HEURISTIC and for kernel stacks, thread id
                          * for STACK_THREADED */
    bool isKernelMode;
    stack_type stackKind;
} prog_point;

/*
 * The stack id of a program point as text, in PANDA's formats:
 *   (asid=0x...)                                      STACK_ASID
 *   (asid=0x..., sp=0x...)                            STACK_HEURISTIC
 *   (processID=0x..., threadID=0x..., isKernelMode=false)  STACK_THREADED
 * and, in whole-system mode, for a kernel stack (isKernelMode; sidSecond is
 * the 16 KiB region of the guest's kernel stack):
 *   (kernel, sp=0x...)
 * Numbers are 16 hex digits. Free the result with g_free(). Like PANDA's,
 * this is inline so it works without the plugin loaded.
 */
static inline char *get_stackid_string(prog_point p)
{
    switch (p.stackKind) {
    case STACK_HEURISTIC:
        return g_strdup_printf("(asid=0x%016" PRIx64 ", sp=0x%016" PRIx64 ")",
                               p.sidFirst, p.sidSecond);
    case STACK_THREADED:
        return g_strdup_printf("(processID=0x%016" PRIx64 ", threadID=0x%016" PRIx64
                               ", isKernelMode=%s)", p.sidFirst, p.sidSecond,
                               p.isKernelMode ? "true" : "false");
    case STACK_ASID:
    default:
        if (p.isKernelMode) {
            return g_strdup_printf("(kernel, sp=0x%016" PRIx64 ")", p.sidSecond);
        }
        return g_strdup_printf("(asid=0x%016" PRIx64 ")", p.sidFirst);
    }
}

#ifdef __cplusplus
}
#endif
#endif
