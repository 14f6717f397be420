/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_pandaref: PANDA's callstack_instr algorithm written as a QEMU 10
 * plugin, as a reference point for the benchmark. Not part of the product.
 *
 * PANDA's plugin works per executed block:
 *   - at translation, the block's last instruction is classified with
 *     Capstone (call, return, other);
 *   - before every block: look up the stack of the current stack id in a
 *     map, and search its top 10 saved return addresses for the block's pc;
 *     a match is a return (on_ret), the stack is cut there;
 *   - after a block that ends in a call: push (block end, called pc) on the
 *     stack of the current stack id (on_call).
 *
 * QEMU plugins have no "after block" callback: the push of a call block is
 * done at the start of the next block this vCPU executes (the callee), in
 * the same order as PANDA (push, then the return search of the next
 * block). The stack id is the asid; in linux-user that is the process id,
 * read once (and again after fork), as PANDA reads CR3 cheaply.
 *
 * Differences from PANDA, both in PANDA's favour (they make this reference
 * cheaper than a literal port): the classification travels with the block
 * as callback data instead of a per-block std::map lookup by pc, and the
 * two parallel vectors are one array looked up once. PANDA is single-
 * threaded; to run multi-threaded guests without a lock per block the map
 * is kept per vCPU (each thread then has its own stacks per asid).
 *
 * In whole-system mode (qemu-system-x86_64) the process id means nothing:
 * by default the stack id is then constant (one stack per vCPU, which the
 * map lookup per block still finds: a lower bound of PANDA's cost), and
 * with asid=cr3 it is CR3 read before every block as PANDA does, but
 * through the plugin API (QEMU_PLUGIN_CB_R_REGS and a register read per
 * block, dearer than PANDA's load from its CPU state).
 *
 *   -plugin libbench_pandaref.so[,out=PATH][,asid=cr3]
 * At exit it appends "bench_pandaref <TAB> pid=N <TAB> blocks=N <TAB>
 * calls=N <TAB> returns=N" to PATH (default: stderr).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <capstone/capstone.h>
#include <glib.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SEARCH_DEPTH 10

typedef enum { BLK_OTHER, BLK_CALL, BLK_RET } blk_type;

/* What translation learnt about a block; interned by (pc, end, type). */
typedef struct blk_info {
    uint64_t pc;
    uint64_t end;     /* address after the last instruction */
    blk_type type;
} blk_info;

typedef struct frame {
    uint64_t ret_pc;  /* PANDA's stack_entry.pc: where the return lands */
    uint64_t func;    /* PANDA's function_stacks entry */
} frame;

typedef struct stack {
    frame *frames;
    uint32_t n, cap;
} stack;

typedef struct vcpu_state {
    GHashTable *stacks;       /* asid (uint64_t*) -> stack*; this vCPU's own */
    bool pending_call;        /* the last block ended in a call */
    uint64_t pending_ret;
    uint64_t blocks, calls, returns;
    char pad[64];
} vcpu_state;

#define CHUNK_BITS 6
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

static vcpu_state *chunks[MAX_CHUNKS];
static GMutex lock;               /* vCPU init and the block table */
static GHashTable *blocks;        /* blk_info* interned */
static uint64_t asid;             /* getpid(), cached */
static bool asid_cr3;             /* system mode, asid=cr3 */
static struct qemu_plugin_register *cr3_reg;   /* the same handle on every vCPU */
static __thread GByteArray *cr3_buf;
static char *out_path;
static __thread csh csi_handle;
static __thread bool csi_ok;

static inline vcpu_state *vcpu_of(unsigned i)
{
    return &chunks[i >> CHUNK_BITS][i & (CHUNK_SIZE - 1)];
}

static stack *stack_of(vcpu_state *v, uint64_t id)
{
    stack *s = g_hash_table_lookup(v->stacks, &id);
    if (!s) {
        s = g_new0(stack, 1);
        uint64_t *key = g_new(uint64_t, 1);
        *key = id;
        g_hash_table_insert(v->stacks, key, s);
    }
    return s;
}

static void push(stack *s, uint64_t ret_pc, uint64_t func)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->frames = g_renew(frame, s->frames, s->cap);
    }
    s->frames[s->n++] = (frame){ ret_pc, func };
}

/* CR3 of the vCPU this thread runs (MTTCG: one thread per vCPU). */
static uint64_t read_cr3(void)
{
    uint64_t v = 0;
    if (!cr3_buf) {
        cr3_buf = g_byte_array_sized_new(16);
    }
    g_byte_array_set_size(cr3_buf, 0);
    if (cr3_reg && qemu_plugin_read_register(cr3_reg, cr3_buf) == 8) {
        memcpy(&v, cr3_buf->data, 8);
    }
    return v;
}

static void block_exec(unsigned int vcpu_index, void *udata)
{
    const blk_info *b = udata;
    vcpu_state *v = vcpu_of(vcpu_index);
    v->blocks++;
    /* PANDA's after_block_exec of the previous block. */
    if (v->pending_call) {
        v->pending_call = false;
        push(stack_of(v, asid_cr3 ? read_cr3() : asid), v->pending_ret, b->pc);
        v->calls++;
    }
    /* PANDA's before_block_exec of this one. */
    stack *s = stack_of(v, asid_cr3 ? read_cr3() : asid);
    for (int64_t i = (int64_t)s->n - 1; i > (int64_t)s->n - SEARCH_DEPTH && i >= 0; i--) {
        if (s->frames[i].ret_pc == b->pc) {
            s->n = (uint32_t)i;
            v->returns++;
            break;
        }
    }
    if (b->type == BLK_CALL) {
        v->pending_call = true;
        v->pending_ret = b->end;
    }
}

static blk_type classify(const uint8_t *code, size_t len, uint64_t addr)
{
    if (!csi_ok) {
        csi_ok = cs_open(CS_ARCH_X86, CS_MODE_64, &csi_handle) == CS_ERR_OK;
        if (!csi_ok) {
            return BLK_OTHER;
        }
        cs_option(csi_handle, CS_OPT_DETAIL, CS_OPT_ON);
    }
    cs_insn *insn = NULL;
    blk_type t = BLK_OTHER;
    if (cs_disasm(csi_handle, code, len, addr, 1, &insn) == 1) {
        if (cs_insn_group(csi_handle, insn, CS_GRP_CALL)) {
            t = BLK_CALL;
        } else if (cs_insn_group(csi_handle, insn, CS_GRP_RET)) {
            t = BLK_RET;
        }
        cs_free(insn, 1);
    }
    return t;
}

static guint blk_hash(gconstpointer p)
{
    const blk_info *b = p;
    return (guint)(b->pc ^ (b->pc >> 29) ^ b->end ^ (uint64_t)b->type);
}

static gboolean blk_equal(gconstpointer a, gconstpointer b)
{
    const blk_info *x = a, *y = b;
    return x->pc == y->pc && x->end == y->end && x->type == y->type;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0) {
        return;
    }
    struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    uint8_t code[16];
    size_t len = qemu_plugin_insn_data(last, code, sizeof code);
    uint64_t vaddr = qemu_plugin_insn_vaddr(last);
    blk_info key = { .pc = qemu_plugin_tb_vaddr(tb), .end = vaddr + qemu_plugin_insn_size(last),
                     .type = classify(code, len, vaddr) };
    g_mutex_lock(&lock);
    blk_info *b = g_hash_table_lookup(blocks, &key);
    if (!b) {
        b = g_memdup2(&key, sizeof key);
        g_hash_table_add(blocks, b);
    }
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_exec,
                                         asid_cr3 ? QEMU_PLUGIN_CB_R_REGS : QEMU_PLUGIN_CB_NO_REGS, b);
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    unsigned c = vcpu_index >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) {
        fprintf(stderr, "bench_pandaref: vCPU %u beyond %u\n", vcpu_index, MAX_CHUNKS * CHUNK_SIZE);
        exit(1);
    }
    g_mutex_lock(&lock);
    if (!chunks[c]) {
        chunks[c] = g_new0(vcpu_state, CHUNK_SIZE);
    }
    vcpu_state *v = vcpu_of(vcpu_index);
    if (!v->stacks) {
        v->stacks = g_hash_table_new(g_int64_hash, g_int64_equal);
    }
    v->pending_call = false;
    g_mutex_unlock(&lock);
    if (asid_cr3) {
        /* (the register list needs a current vCPU: here there is one) */
        GArray *regs = qemu_plugin_get_registers();
        for (guint i = 0; i < regs->len; i++) {
            qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
            if (strcmp(d->name, "cr3") == 0) {
                cr3_reg = d->handle;
            }
        }
        g_array_free(regs, true);
        if (!cr3_reg) {
            fprintf(stderr, "bench_pandaref: no cr3 register\n");
            exit(1);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    uint64_t nb = 0, nc = 0, nr = 0;
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
            nb += chunks[c][i].blocks;
            nc += chunks[c][i].calls;
            nr += chunks[c][i].returns;
        }
    }
    char line[200];
    int n = snprintf(line, sizeof line,
                     "bench_pandaref\tpid=%d\tblocks=%" PRIu64 "\tcalls=%" PRIu64 "\treturns=%" PRIu64 "\n",
                     (int)getpid(), nb, nc, nr);
    int fd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
                      : STDERR_FILENO;
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
        if (out_path) {
            close(fd);
        }
    }
}

static void after_fork_child(void)
{
    g_mutex_init(&lock);
    asid = (uint64_t)getpid();
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
            chunks[c][i].blocks = chunks[c][i].calls = chunks[c][i].returns = 0;
        }
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (strcmp(info->target_name, "x86_64") != 0) {
        fprintf(stderr, "bench_pandaref: x86_64 guests only (got %s)\n", info->target_name);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=") && argv[i][4]) {
            out_path = g_strdup(argv[i] + 4);
        } else if (strcmp(argv[i], "asid=cr3") == 0 && info->system_emulation) {
            asid_cr3 = true;
        } else {
            fprintf(stderr, "bench_pandaref: unknown argument '%s'; accepted: out=PATH, "
                    "asid=cr3 (whole-system mode)\n", argv[i]);
            return -1;
        }
    }
    g_mutex_init(&lock);
    blocks = g_hash_table_new(blk_hash, blk_equal);
    asid = (uint64_t)getpid();
    pthread_atfork(NULL, NULL, after_fork_child);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
