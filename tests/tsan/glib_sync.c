/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libtsan_glib.so: teaches ThreadSanitizer GLib's locks, for runs of the
 * TSan-instrumented plugins inside an uninstrumented QEMU (scripts/tsan.sh).
 *
 * On Linux, GLib's GMutex, GRecMutex, GRWLock and GCond are built on raw
 * futex system calls, not on pthread functions, so TSan's interceptors never
 * see them and every section they guard looks unsynchronised. Preloaded
 * after libtsan, this library interposes those functions: each calls GLib's
 * own (found with dlsym(RTLD_NEXT)) and reports the acquire/release edge to
 * TSan on the lock's address. It changes no behaviour and adds no
 * synchronisation; it only tells TSan about what GLib already does.
 * (GOnce's fast path is an inline read in the caller that no wrapper can
 * see: the plugins do not use it for data other threads read.)
 *
 * It also carries the one workaround whole-system QEMU needs (enabled by
 * CSI_TSAN_DIRECT_LONGJMP=1 in the environment, and this library preloaded
 * before the TSan runtime): QEMU's coroutines switch stacks with
 * sigsetjmp/siglongjmp (util/coroutine-ucontext.c), and TSan's siglongjmp
 * interceptor, which looks the target up among the jumps buffers it saw set
 * on the current stack, aborts ("can't find longjmp buf") when the target is
 * on another stack. A QEMU built with TSan announces its switches
 * (__tsan_switch_to_fiber); ours is not. siglongjmp then goes straight to
 * the C library's. Only QEMU's own code jumps (coroutine switches, and
 * cpu_loop_exit leaving generated code), never from inside an instrumented
 * function, so TSan's view of instrumented calls is not disturbed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>

/* (the project builds with -fvisibility=hidden; these must interpose) */
#define EXPORT __attribute__((visibility("default")))

void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

#define REAL(ret, name, params)                                                  \
    static ret(*real_##name) params;                                             \
    static void resolve_##name(void)                                             \
    {                                                                            \
        if (!real_##name) {                                                      \
            real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name);                \
            if (!real_##name) {                                                  \
                fprintf(stderr, "libtsan_glib: no %s in the process\n", #name); \
                abort();                                                         \
            }                                                                    \
        }                                                                        \
    }

REAL(void, g_mutex_lock, (GMutex *))
REAL(void, g_mutex_unlock, (GMutex *))
REAL(gboolean, g_mutex_trylock, (GMutex *))
REAL(void, g_rec_mutex_lock, (GRecMutex *))
REAL(void, g_rec_mutex_unlock, (GRecMutex *))
REAL(gboolean, g_rec_mutex_trylock, (GRecMutex *))
REAL(void, g_rw_lock_writer_lock, (GRWLock *))
REAL(void, g_rw_lock_writer_unlock, (GRWLock *))
REAL(gboolean, g_rw_lock_writer_trylock, (GRWLock *))
REAL(void, g_rw_lock_reader_lock, (GRWLock *))
REAL(void, g_rw_lock_reader_unlock, (GRWLock *))
REAL(gboolean, g_rw_lock_reader_trylock, (GRWLock *))
REAL(void, g_cond_wait, (GCond *, GMutex *))
REAL(gboolean, g_cond_wait_until, (GCond *, GMutex *, gint64))

#define LOCK(name, type)                        \
    EXPORT void name(type *m)                   \
    {                                           \
        resolve_##name();                       \
        real_##name(m);                         \
        __tsan_acquire(m);                      \
    }
#define UNLOCK(name, type)                      \
    EXPORT void name(type *m)                   \
    {                                           \
        resolve_##name();                       \
        __tsan_release(m);                      \
        real_##name(m);                         \
    }
#define TRYLOCK(name, type)                     \
    EXPORT gboolean name(type *m)               \
    {                                           \
        resolve_##name();                       \
        gboolean ok = real_##name(m);           \
        if (ok) {                               \
            __tsan_acquire(m);                  \
        }                                       \
        return ok;                              \
    }

LOCK(g_mutex_lock, GMutex)
UNLOCK(g_mutex_unlock, GMutex)
TRYLOCK(g_mutex_trylock, GMutex)
LOCK(g_rec_mutex_lock, GRecMutex)
UNLOCK(g_rec_mutex_unlock, GRecMutex)
TRYLOCK(g_rec_mutex_trylock, GRecMutex)
LOCK(g_rw_lock_writer_lock, GRWLock)
UNLOCK(g_rw_lock_writer_unlock, GRWLock)
TRYLOCK(g_rw_lock_writer_trylock, GRWLock)
LOCK(g_rw_lock_reader_lock, GRWLock)
UNLOCK(g_rw_lock_reader_unlock, GRWLock)
TRYLOCK(g_rw_lock_reader_trylock, GRWLock)

EXPORT void g_cond_wait(GCond *c, GMutex *m)
{
    resolve_g_cond_wait();
    __tsan_release(m);
    real_g_cond_wait(c, m);
    __tsan_acquire(m);
}

EXPORT gboolean g_cond_wait_until(GCond *c, GMutex *m, gint64 end)
{
    resolve_g_cond_wait_until();
    __tsan_release(m);
    gboolean r = real_g_cond_wait_until(c, m, end);
    __tsan_acquire(m);
    return r;
}

EXPORT void siglongjmp(sigjmp_buf env, int val)
{
    static void (*jump)(sigjmp_buf, int);
    if (!jump) {
        void *from = RTLD_NEXT;   /* the TSan runtime's interceptor */
        const char *direct = getenv("CSI_TSAN_DIRECT_LONGJMP");
        if (direct && direct[0] == '1') {
            from = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        }
        jump = (void (*)(sigjmp_buf, int))(from ? dlsym(from, "siglongjmp") : NULL);
        if (!jump) {
            fprintf(stderr, "libtsan_glib: no siglongjmp in the process\n");
            abort();
        }
    }
    jump(env, val);
    __builtin_unreachable();
}
