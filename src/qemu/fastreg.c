/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Learning where QEMU keeps each guest register (see fastreg.h).
 */
#define _GNU_SOURCE
#include <sys/uio.h>
#include <unistd.h>
#include <glib.h>
#include "fastreg.h"

#define SLOTS_PER_SCAN (CSI_FASTREG_SCAN_BYTES / 4)

csi_fastreg csi_fastregs[CSI_FASTREG_SLOTS];
bool csi_fastreg_enabled;
static csi_fastreg_learner learners[CSI_FASTREG_SLOTS];
static GMutex learn_lock;

/* A copy of the first CSI_FASTREG_SCAN_BYTES of the state; false if
 * unreadable. */
static bool snapshot(const void *env, uint8_t *buf)
{
    struct iovec local = { .iov_base = buf, .iov_len = CSI_FASTREG_SCAN_BYTES };
    struct iovec remote = { .iov_base = (void *)env, .iov_len = CSI_FASTREG_SCAN_BYTES };
    return env && process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == CSI_FASTREG_SCAN_BYTES;
}

bool csi_fastreg_check_env(const void *env)
{
    uint8_t buf[CSI_FASTREG_SCAN_BYTES];
    return snapshot(env, buf);
}

csi_env_verdict csi_fastreg_verify_env(const struct qemu_plugin_register *h, const void *env,
                                     uint64_t value, unsigned size, uint64_t *direct)
{
    const csi_fastreg *f = csi_fastreg_of(h);
    if (value == 0 || !f || !csi_fastreg_read(h, env, direct) || f->size != size) {
        return CSI_ENV_UNDECIDED;
    }
    return *direct == value ? CSI_ENV_TRUSTED : CSI_ENV_REJECTED;
}

static uint64_t slot_value(const uint8_t *buf, unsigned slot, unsigned size)
{
    if (size == 8) {
        uint64_t x;
        memcpy(&x, buf + slot * 8, 8);
        return x;
    }
    uint32_t x;
    memcpy(&x, buf + slot * 4, 4);
    return x;
}

static csi_learn_result failed(const csi_fastreg_learner *l, const char *why)
{
    return (csi_learn_result){ .outcome = CSI_LEARN_FAILED, .why = why, .reads = l->reads };
}

csi_learn_result csi_fastreg_learn_step(csi_fastreg_learner *l, const uint8_t *snap, uint64_t value,
                                      unsigned size)
{
    if (size != 4 && size != 8) {
        return failed(l, "not 4 or 8 bytes wide");
    }
    if (l->started && size != l->size) {
        return failed(l, "its width changed between reads");
    }
    if (!snap) {
        return failed(l, "the CPU state could not be copied");
    }
    unsigned slots = CSI_FASTREG_SCAN_BYTES / size;
    unsigned live = 0, last_slot = 0;
    for (unsigned s = 0; s < slots; s++) {
        uint64_t bit = 1ull << (s % 64);
        bool was = !l->started || (l->cand[s / 64] & bit);
        if (was && slot_value(snap, s, size) == value) {
            l->cand[s / 64] |= bit;
            live++;
            last_slot = s;
        } else {
            l->cand[s / 64] &= ~bit;
        }
    }
    if (!l->started || value != l->last) {
        l->distinct++;
    }
    l->started = true;
    l->size = size;
    l->last = value;
    l->reads++;
    if (live == 0) {
        return failed(l, "no offset in the CPU state's first 512 bytes held every value read");
    }
    if (live == 1 && l->reads >= CSI_FASTREG_MIN_AGREE && l->distinct >= CSI_FASTREG_MIN_DISTINCT) {
        return (csi_learn_result){ .outcome = CSI_LEARN_FOUND, .offset = (int32_t)(last_slot * size),
                                  .candidates = 1, .reads = l->reads };
    }
    if (l->reads >= CSI_FASTREG_MAX_LEARN) {
        return failed(l, live > 1 ? "several offsets still held every value read"
                                  : "too few different values read");
    }
    return (csi_learn_result){ .outcome = CSI_LEARN_MORE, .candidates = live, .reads = l->reads };
}

csi_learn_result csi_fastreg_learn(const struct qemu_plugin_register *h, const void *env,
                                 uint64_t value, unsigned size)
{
    csi_learn_result r = { .outcome = CSI_LEARN_MORE };
    csi_fastreg *f = csi_fastreg_of(h);
    if (!f || !env || __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != CSI_FASTREG_LEARNING) {
        return r;
    }
    uint8_t buf[CSI_FASTREG_SCAN_BYTES];
    bool copied = snapshot(env, buf);
    g_mutex_lock(&learn_lock);
    if (f->state == CSI_FASTREG_LEARNING) {
        csi_fastreg_learner *l = &learners[f - csi_fastregs];
        r = csi_fastreg_learn_step(l, copied ? buf : NULL, value, size);
        f->size = l->size;
        if (r.outcome == CSI_LEARN_FOUND) {
            f->offset = r.offset;
            __atomic_store_n(&f->state, CSI_FASTREG_FAST, __ATOMIC_RELEASE);
        } else if (r.outcome == CSI_LEARN_FAILED) {
            __atomic_store_n(&f->state, CSI_FASTREG_SLOW, __ATOMIC_RELEASE);
        }
    }
    g_mutex_unlock(&learn_lock);
    return r;
}

unsigned csi_fastreg_count(int state)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CSI_FASTREG_SLOTS; i++) {
        n += learners[i].started && __atomic_load_n(&csi_fastregs[i].state, __ATOMIC_ACQUIRE) == state;
    }
    return n;
}

bool csi_fastreg_progress(const struct qemu_plugin_register *h, unsigned *reads,
                         unsigned *candidates)
{
    csi_fastreg *f = csi_fastreg_of(h);
    bool learning = false;
    g_mutex_lock(&learn_lock);
    if (f && f->state == CSI_FASTREG_LEARNING && learners[f - csi_fastregs].started) {
        const csi_fastreg_learner *l = &learners[f - csi_fastregs];
        learning = true;
        *reads = l->reads;
        *candidates = 0;
        for (size_t i = 0; i < G_N_ELEMENTS(l->cand); i++) {
            *candidates += (unsigned)__builtin_popcountll(l->cand[i]);
        }
    }
    g_mutex_unlock(&learn_lock);
    return learning;
}
