/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_probe: instruments exactly the instructions callstack_instr
 * instruments (calls and returns, found with Capstone at translation) but
 * does a fixed, growing amount of work there, to split the plugin's cost
 * into QEMU's share and ours. Not part of the product.
 *
 *   -plugin libbench_probe.so,mode=MODE[,out=PATH]
 *
 * MODE:
 *   inline  an inline counter increment (no callback at all)
 *   empty   a callback with QEMU_PLUGIN_CB_NO_REGS that counts
 *   regs    the same with QEMU_PLUGIN_CB_R_REGS (what callstack_instr asks)
 *   sp      + reads the stack pointer (qemu_plugin_read_register)
 *   sp_mem  + at returns, reads the return address at [sp]
 *           (qemu_plugin_read_memory_vaddr): the QEMU API work callstack_instr
 *           does for a direct call and a return
 *   retsite a different design, to price it: no register or memory reads.
 *           A call pushes its (constant) return address on a per-vCPU
 *           stack; returns are not instrumented, instead a block that
 *           starts at a known return address (the address after a call
 *           seen at translation) gets a callback that pops when it matches
 *           one of the top 4 entries. Events: calls + matched returns.
 *
 * At exit: "bench_probe <TAB> pid=N <TAB> mode=M <TAB> events=N <TAB> xor=X"
 * to PATH (default stderr); xor folds the values read so they are used.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <capstone/capstone.h>
#include <glib.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

typedef enum { M_INLINE, M_EMPTY, M_REGS, M_SP, M_SP_MEM, M_RETSITE } probe_mode;
static const char *const mode_names[] = { "inline", "empty", "regs", "sp", "sp_mem", "retsite" };

typedef struct vcpu_state {
    uint64_t events;
    uint64_t xor;
    GByteArray *buf;
    uint64_t *stack;          /* retsite: return addresses */
    uint32_t depth, cap;
    uint64_t site_hits;       /* retsite: return-site blocks executed */
    char pad[64];
} vcpu_state;

#define CHUNK_BITS 6
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

static vcpu_state *chunks[MAX_CHUNKS];
static GMutex lock;
static probe_mode mode = M_EMPTY;
static char *out_path;
static struct qemu_plugin_register *sp_reg;
static GHashTable *ret_sites;      /* retsite: addresses after call instructions */
static struct qemu_plugin_scoreboard *score;
static qemu_plugin_u64 score_events;
static __thread csh csi_handle;
static __thread bool csi_ok;

static inline vcpu_state *vcpu_of(unsigned i)
{
    return &chunks[i >> CHUNK_BITS][i & (CHUNK_SIZE - 1)];
}

static uint64_t read_sp(vcpu_state *v)
{
    g_byte_array_set_size(v->buf, 0);
    int n = qemu_plugin_read_register(sp_reg, v->buf);
    uint64_t x = 0;
    if (n > 0 && n <= 8) {
        memcpy(&x, v->buf->data, (size_t)n);
    }
    return x;
}

static void on_exec(unsigned int vcpu_index, void *udata)
{
    vcpu_state *v = vcpu_of(vcpu_index);
    v->events++;
    if (mode < M_SP) {
        return;
    }
    uint64_t sp = read_sp(v);
    v->xor ^= sp;
    if (mode == M_SP_MEM && udata) {   /* udata != NULL: a return */
        g_byte_array_set_size(v->buf, 0);
        if (qemu_plugin_read_memory_vaddr(sp, v->buf, 8) && v->buf->len == 8) {
            uint64_t ret;
            memcpy(&ret, v->buf->data, 8);
            v->xor ^= ret;
        }
    }
}

static void on_retsite_call(unsigned int vcpu_index, void *udata)
{
    vcpu_state *v = vcpu_of(vcpu_index);
    if (v->depth == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 256;
        v->stack = g_renew(uint64_t, v->stack, v->cap);
    }
    v->stack[v->depth++] = (uint64_t)(uintptr_t)udata;
    v->events++;
}

static void on_retsite_block(unsigned int vcpu_index, void *udata)
{
    vcpu_state *v = vcpu_of(vcpu_index);
    uint64_t pc = (uint64_t)(uintptr_t)udata;
    v->site_hits++;
    for (uint32_t i = 0; i < 4 && i < v->depth; i++) {
        if (v->stack[v->depth - 1 - i] == pc) {
            v->depth -= i + 1;
            v->events++;
            return;
        }
    }
}

/* 0: neither, 1: call, 2: return. */
static int classify(const uint8_t *code, size_t len, uint64_t addr)
{
    if (!csi_ok) {
        csi_ok = cs_open(CS_ARCH_X86, CS_MODE_64, &csi_handle) == CS_ERR_OK;
        if (!csi_ok) {
            return 0;
        }
        cs_option(csi_handle, CS_OPT_DETAIL, CS_OPT_ON);
    }
    cs_insn *insn = NULL;
    int t = 0;
    if (cs_disasm(csi_handle, code, len, addr, 1, &insn) == 1) {
        if (insn->id == X86_INS_CALL) {
            t = 1;
        } else if (insn->id == X86_INS_RET) {
            t = 2;
        }
        cs_free(insn, 1);
    }
    return t;
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
    int t = classify(code, len, qemu_plugin_insn_vaddr(last));
    if (mode == M_RETSITE) {
        uint64_t start = qemu_plugin_tb_vaddr(tb);
        uint64_t next = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
        g_mutex_lock(&lock);
        bool is_site = g_hash_table_contains(ret_sites, &start);
        if (t == 1 && !g_hash_table_contains(ret_sites, &next)) {
            uint64_t *k = g_new(uint64_t, 1);
            *k = next;
            g_hash_table_add(ret_sites, k);
        }
        g_mutex_unlock(&lock);
        if (is_site) {
            qemu_plugin_register_vcpu_tb_exec_cb(tb, on_retsite_block, QEMU_PLUGIN_CB_NO_REGS,
                                                 (void *)(uintptr_t)start);
        }
        if (t == 1) {
            qemu_plugin_register_vcpu_insn_exec_cb(last, on_retsite_call, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)next);
        }
        return;
    }
    if (t == 0) {
        return;
    }
    if (mode == M_INLINE) {
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(last, QEMU_PLUGIN_INLINE_ADD_U64,
                                                            score_events, 1);
        return;
    }
    qemu_plugin_register_vcpu_insn_exec_cb(last, on_exec,
                                           mode == M_EMPTY ? QEMU_PLUGIN_CB_NO_REGS
                                                           : QEMU_PLUGIN_CB_R_REGS,
                                           t == 2 ? (void *)1 : NULL);
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    unsigned c = vcpu_index >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) {
        fprintf(stderr, "bench_probe: vCPU %u beyond %u\n", vcpu_index, MAX_CHUNKS * CHUNK_SIZE);
        exit(1);
    }
    g_mutex_lock(&lock);
    if (!sp_reg) {
        GArray *regs = qemu_plugin_get_registers();
        for (guint i = 0; regs && i < regs->len; i++) {
            qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);
            if (strcmp(d->name, "rsp") == 0) {
                sp_reg = d->handle;
                break;
            }
        }
        if (regs) {
            g_array_free(regs, TRUE);
        }
        if (!sp_reg && mode >= M_SP) {
            fprintf(stderr, "bench_probe: no register rsp\n");
            exit(1);
        }
    }
    if (!chunks[c]) {
        chunks[c] = g_new0(vcpu_state, CHUNK_SIZE);
        for (unsigned i = 0; i < CHUNK_SIZE; i++) {
            chunks[c][i].buf = g_byte_array_sized_new(16);
        }
    }
    g_mutex_unlock(&lock);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    uint64_t events = 0, x = 0, hits = 0;
    if (mode == M_INLINE) {
        events = qemu_plugin_u64_sum(score_events);
    } else {
        for (unsigned c = 0; c < MAX_CHUNKS; c++) {
            for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
                events += chunks[c][i].events;
                x ^= chunks[c][i].xor;
                hits += chunks[c][i].site_hits;
            }
        }
    }
    char line[240];
    int n = snprintf(line, sizeof line,
                     "bench_probe\tpid=%d\tmode=%s\tevents=%" PRIu64 "\txor=%" PRIx64
                     "\tsite_blocks=%" PRIu64 "\n",
                     (int)getpid(), mode_names[mode], events, x, hits);
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

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (strcmp(info->target_name, "x86_64") != 0) {
        fprintf(stderr, "bench_probe: x86_64 guests only (got %s)\n", info->target_name);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        bool ok = false;
        if (g_str_has_prefix(argv[i], "mode=")) {
            for (unsigned m = 0; m < G_N_ELEMENTS(mode_names); m++) {
                if (strcmp(argv[i] + 5, mode_names[m]) == 0) {
                    mode = (probe_mode)m;
                    ok = true;
                }
            }
        } else if (g_str_has_prefix(argv[i], "out=") && argv[i][4]) {
            out_path = g_strdup(argv[i] + 4);
            ok = true;
        }
        if (!ok) {
            fprintf(stderr, "bench_probe: bad argument '%s'; accepted: "
                    "mode=inline|empty|regs|sp|sp_mem|retsite, out=PATH\n", argv[i]);
            return -1;
        }
    }
    g_mutex_init(&lock);
    ret_sites = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    score = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    score_events = qemu_plugin_scoreboard_u64(score);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
