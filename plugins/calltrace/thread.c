/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest threads' names in whole-system mode, from the osi_linux plugin
 * when it is loaded (its API, bound at run time like callstack_instr's).
 * A threaded stack id is (process, thread); the name is the thread's comm,
 * read when the stack is first seen, from the vCPU running that thread.
 */
#include "osi_linux/osi_linux.h"   /* first: it defines _GNU_SOURCE */
#include <string.h>
#include "calltrace.h"

static bool osi_bound;

void ct_threads_bind(void)
{
    if (ct_system_mode && !osi_bound) {
        osi_bound = init_osi_linux_api();
    }
}

bool ct_thread_comm(unsigned vcpu, const prog_point *where, char out[CT_COMM_SIZE])
{
    osi_linux_thread t;
    out[0] = '\0';
    if (!osi_bound || where->stackKind != STACK_THREADED || !osi_linux_current(vcpu, &t) ||
        (uint64_t)t.pid != where->sidSecond || (uint64_t)t.tgid != where->sidFirst) {
        return false;
    }
    /* (osi_linux checked it: printable, NUL-terminated) */
    g_strlcpy(out, t.comm, CT_COMM_SIZE);
    return true;
}
