/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Learning where QEMU keeps each guest register (see fastreg.h).
 */
#define _GNU_SOURCE
#include <sys/uio.h>
#include <unistd.h>
#include <glib.h>
#include "fastreg.h"

/* The part of the CPU state searched: every target QEMU has puts its
 * general registers first (x86 regs[], Arm regs[]/xregs[], RISC-V and
 * PowerPC gpr[], MIPS active_tc.gpr[]). */
#define SCAN_BYTES 512
#define SLOTS_PER_SCAN (SCAN_BYTES / 4)
/* Trust an offset after this many agreeing reads, at least MIN_DISTINCT of
 * them with different values (a register that keeps one value could sit
 * next to a copy of it). Give up after MAX_LEARN reads. */
#define MIN_AGREE 64
#define MIN_DISTINCT 8
#define MAX_LEARN 4096

typedef struct learning {
    bool started;
    uint32_t reads, distinct;
    uint64_t last;
    uint64_t cand[SLOTS_PER_SCAN / 64];   /* candidate offsets, in units of size */
} learning;

cs_fastreg cs_fastregs[CS_FASTREG_SLOTS];
bool cs_fastreg_enabled;
static learning learn_state[CS_FASTREG_SLOTS];
static GMutex learn_lock;

/* A copy of the first SCAN_BYTES of the state; false if unreadable. */
static bool snapshot(const void *env, uint8_t *buf)
{
    struct iovec local = { .iov_base = buf, .iov_len = SCAN_BYTES };
    struct iovec remote = { .iov_base = (void *)env, .iov_len = SCAN_BYTES };
    return env && process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == SCAN_BYTES;
}

bool cs_fastreg_check_env(const void *env)
{
    uint8_t buf[SCAN_BYTES];
    return snapshot(env, buf);
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

static void give_up(cs_fastreg *f)
{
    __atomic_store_n(&f->state, CS_FASTREG_SLOW, __ATOMIC_RELEASE);
}

void cs_fastreg_learn(const struct qemu_plugin_register *h, const void *env, uint64_t value,
                      unsigned size)
{
    cs_fastreg *f = cs_fastreg_of(h);
    if (!f || !env || __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != CS_FASTREG_LEARNING) {
        return;
    }
    uint8_t buf[SCAN_BYTES];
    g_mutex_lock(&learn_lock);
    learning *l = &learn_state[f - cs_fastregs];
    if (f->state != CS_FASTREG_LEARNING) {
        goto out;
    }
    if ((size != 4 && size != 8) || (l->started && size != f->size) || !snapshot(env, buf)) {
        give_up(f);
        goto out;
    }
    unsigned slots = SCAN_BYTES / size;
    unsigned live = 0, last_slot = 0;
    for (unsigned s = 0; s < slots; s++) {
        uint64_t bit = 1ull << (s % 64);
        bool was = !l->started || (l->cand[s / 64] & bit);
        if (was && slot_value(buf, s, size) == value) {
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
    f->size = size;
    l->last = value;
    l->reads++;
    if (live == 0) {
        give_up(f);
    } else if (live == 1 && l->reads >= MIN_AGREE && l->distinct >= MIN_DISTINCT) {
        f->offset = (int32_t)(last_slot * size);
        __atomic_store_n(&f->state, CS_FASTREG_FAST, __ATOMIC_RELEASE);
    } else if (l->reads >= MAX_LEARN) {
        give_up(f);
    }
out:
    g_mutex_unlock(&learn_lock);
}

unsigned cs_fastreg_count(int state)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CS_FASTREG_SLOTS; i++) {
        n += learn_state[i].started && __atomic_load_n(&cs_fastregs[i].state, __ATOMIC_ACQUIRE) == state;
    }
    return n;
}
