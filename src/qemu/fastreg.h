/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Register reads without the plugin API on the hot path.
 *
 * qemu_plugin_read_register() goes through QEMU's gdbstub (a checked QOM
 * cast, a GByteArray append with a division in it): about 20 ns, more than
 * everything else a call or return costs us. Yet inside a callback from
 * translated code the guest registers sit in QEMU's CPU state (the callbacks
 * ask for QEMU_PLUGIN_CB_R_REGS, so TCG has stored them there), and TCG
 * keeps the address of that state in a fixed host register (TCG_AREG0) that
 * the C calling convention preserves. A two-instruction trampoline
 * (trampoline.c, which names that register per host) hands it to our
 * callbacks as a third argument, `env`.
 *
 * Two things are learnt, not assumed, and each falls back to the API on its
 * own:
 *  - Where each register lives in that state (this file). For its first
 *    reads a register is read through the API as before and its value
 *    searched for in a copy of the state taken with process_vm_readv (which
 *    cannot fault); once a single offset has agreed with the API on enough
 *    reads of different values, later reads are one load. A register whose
 *    offset cannot be established stays on the API, and so does everything
 *    on hosts without a trampoline.
 *  - Whether a vCPU's `env` is its CPU state (guestio.c): the pointer is
 *    first checked to be readable (so that copies of it can teach offsets),
 *    and read through only once a register read through it at a learnt
 *    offset has equalled an API read of the same register on that vCPU.
 *    QEMU never moves a vCPU's state; a pointer that changes is checked
 *    again.
 * verbose=on says, per register and per vCPU, which way it went and why.
 */
#ifndef CSI_QEMU_FASTREG_H
#define CSI_QEMU_FASTREG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct qemu_plugin_register;   /* QEMU's handle: a gdb register number + 1 */

#define CSI_FASTREG_SLOTS 512   /* handles below this have a slot */
/* The part of the CPU state searched: every target QEMU has puts its
 * general registers first (x86 regs[], Arm regs[]/xregs[], RISC-V and
 * PowerPC gpr[], MIPS active_tc.gpr[]). */
#define CSI_FASTREG_SCAN_BYTES 512

enum { CSI_FASTREG_LEARNING, CSI_FASTREG_FAST, CSI_FASTREG_SLOW };

typedef struct csi_fastreg {
    int state;          /* CSI_FASTREG_*; read without lock */
    int32_t offset;     /* FAST: byte offset in the CPU state */
    uint32_t size;      /* bytes, as the API returns them */
} csi_fastreg;

extern csi_fastreg csi_fastregs[CSI_FASTREG_SLOTS];
extern bool csi_fastreg_enabled;

static inline csi_fastreg *csi_fastreg_of(const struct qemu_plugin_register *h)
{
    uintptr_t i = (uintptr_t)h;
    return i < CSI_FASTREG_SLOTS ? &csi_fastregs[i] : NULL;
}

/* Fast read: true and *out set if the register's offset is known and env is
 * a trusted CPU state pointer (non-NULL). */
static inline bool csi_fastreg_read(const struct qemu_plugin_register *h, const void *env,
                                   uint64_t *out)
{
    csi_fastreg *f = csi_fastreg_of(h);
    if (!env || !f || __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != CSI_FASTREG_FAST) {
        return false;
    }
    if (f->size == 8) {
        memcpy(out, (const char *)env + f->offset, 8);
    } else {
        uint32_t x;
        memcpy(&x, (const char *)env + f->offset, 4);
        *out = x;
    }
    return true;
}

/*
 * Learning one register's offset: a pure function of the API reads and the
 * copies of the CPU state taken with them.
 */
typedef struct csi_fastreg_learner {
    bool started;
    uint32_t size;       /* bytes per read, from the first */
    uint32_t reads, distinct;
    uint64_t last;
    /* offsets (in units of size) that have held every value so far */
    uint64_t cand[CSI_FASTREG_SCAN_BYTES / 4 / 64];
} csi_fastreg_learner;

typedef enum { CSI_LEARN_MORE, CSI_LEARN_FOUND, CSI_LEARN_FAILED } csi_learn_outcome;

typedef struct csi_learn_result {
    csi_learn_outcome outcome;
    int32_t offset;         /* FOUND: byte offset in the CPU state */
    const char *why;        /* FAILED: why the register stays on the API */
    unsigned candidates;    /* offsets still agreeing after this read */
    uint32_t reads;         /* reads so far, this one included */
} csi_learn_result;

/* Trust an offset after this many agreeing reads, at least MIN_DISTINCT of
 * them with different values (a register that keeps one value could sit
 * next to a copy of it). Give up after MAX_LEARN reads. */
#define CSI_FASTREG_MIN_AGREE 64
#define CSI_FASTREG_MIN_DISTINCT 8
#define CSI_FASTREG_MAX_LEARN 4096

/* One API read of the register (`value`, `size` bytes) against `snapshot`,
 * the first CSI_FASTREG_SCAN_BYTES of the CPU state copied at the same time
 * (NULL: the state could not be copied). A learner starts zeroed; once it
 * has returned FOUND or FAILED it must not be fed again. */
csi_learn_result csi_fastreg_learn_step(csi_fastreg_learner *l, const uint8_t *snapshot,
                                      uint64_t value, unsigned size);

/*
 * Is a readable CPU-state pointer the vCPU's? An API read of general
 * register `h` on the vCPU gave `value` (`size` bytes); if h's offset is
 * known, the same register read through env decides (*direct: that read).
 * A zero proves little (much of the state is zero) and decides nothing.
 */
typedef enum { CSI_ENV_UNDECIDED, CSI_ENV_TRUSTED, CSI_ENV_REJECTED } csi_env_verdict;
csi_env_verdict csi_fastreg_verify_env(const struct qemu_plugin_register *h, const void *env,
                                     uint64_t value, unsigned size, uint64_t *direct);

/* Is this pointer a readable CPU state, as far as a copy can tell? */
bool csi_fastreg_check_env(const void *env);

/* After an API read of `h` gave `value` (`size` bytes) with `env` a
 * readable CPU-state pointer: learn from it. The result is this read's
 * (MORE if the register was not being learnt any more). */
csi_learn_result csi_fastreg_learn(const struct qemu_plugin_register *h, const void *env,
                                 uint64_t value, unsigned size);

/* How many registers read so far are in this state (for verbose=on). */
unsigned csi_fastreg_count(int state);
/* Is `h` still being learnt, after how many reads, with how many offsets
 * still agreeing (for verbose=on)? */
bool csi_fastreg_progress(const struct qemu_plugin_register *h, unsigned *reads,
                         unsigned *candidates);

#endif
