/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A lock of one word, header only: for state a consumer keeps per guest
 * stack, which callbacks on several vCPU threads may change (the engine
 * guards its own stacks with it). Taken with one atomic exchange and
 * released with one store, where a pthread or GLib mutex costs two atomic
 * operations and two calls: at a call or return every few nanoseconds,
 * that difference shows. For short sections that are rarely contended: a
 * waiter spins a little, then yields (the holder may have been preempted,
 * or be writing a buffer out). Zero is unlocked; a forked child whose
 * parent had another thread holding it sets it to zero.
 */
#ifndef CALLSTACK_INSTR_SPIN_H
#define CALLSTACK_INSTR_SPIN_H

#include <sched.h>
#include <stdint.h>

typedef uint32_t callstack_spin;

static inline void callstack_spin_wait(callstack_spin *lock)
{
    for (unsigned spins = 0;; spins++) {
        if (__atomic_load_n(lock, __ATOMIC_RELAXED) == 0 &&
            __atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE) == 0) {
            return;
        }
        if (spins < 100) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

static inline void callstack_spin_lock(callstack_spin *lock)
{
    if (__builtin_expect(__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE) != 0, 0)) {
        callstack_spin_wait(lock);
    }
}

static inline void callstack_spin_unlock(callstack_spin *lock)
{
    __atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

#endif
