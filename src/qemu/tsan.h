/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ThreadSanitizer annotations for synchronisation that QEMU does and TSan
 * cannot see (QEMU is not instrumented; see docs/reliability-tsan.md).
 * Empty, hence free, in every other build.
 *
 * A site (csi_site) is written at translation, on the translating thread,
 * and read by the callbacks of the translated block on whichever vCPU
 * thread executes it. QEMU publishes the block to that thread through its
 * own lock-free tables (QHT, the jump cache), with atomics TSan does not
 * see: CSI_TSAN_PUBLISH after the site is written and CSI_TSAN_RECEIVE in the
 * callbacks report that edge.
 */
#ifndef CSI_QEMU_TSAN_H
#define CSI_QEMU_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define CSI_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CSI_TSAN 1
#endif
#endif

#ifdef CSI_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define CSI_TSAN_PUBLISH(p) __tsan_release((void *)(p))
#define CSI_TSAN_RECEIVE(p) __tsan_acquire((void *)(p))
#else
#define CSI_TSAN_PUBLISH(p) ((void)(p))
#define CSI_TSAN_RECEIVE(p) ((void)(p))
#endif

#endif
