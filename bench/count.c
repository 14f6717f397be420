/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_count: the smallest useful consumer of callstack_instr. It binds
 * through callstack_instr_ext.h like any user's plugin, subscribes to
 * on_call and on_ret and counts the events in per-vCPU counters, without
 * locks: a callback only touches its own vCPU's cache line.
 *
 *   -plugin libbench_count.so[,out=PATH]
 *
 * At exit it appends one line per process to PATH (default: stderr):
 *   bench_count <TAB> pid=N <TAB> calls=N <TAB> returns=N
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "callstack_instr/callstack_instr_ext.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* One cache line per vCPU, so that vCPU threads never share a line. */
typedef struct counter {
    uint64_t calls;
    uint64_t returns;
    char pad[64 - 2 * sizeof(uint64_t)];
} __attribute__((aligned(64))) counter;

/* vCPU indexes are dense but unbounded (one per guest thread): chunks that
 * are allocated at vCPU init and never move, so the callbacks need no lock. */
#define CHUNK_BITS 6
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

static counter *chunks[MAX_CHUNKS];
static GMutex init_lock;
static bool bound;
static char *out_path;

static inline counter *counter_of(unsigned vcpu)
{
    counter *c = chunks[vcpu >> CHUNK_BITS];   /* published before the vCPU runs */
    return &c[vcpu & (CHUNK_SIZE - 1)];
}

static void on_call(unsigned int vcpu, uint64_t func)
{
    (void)func;
    counter_of(vcpu)->calls++;
}

static void on_ret(unsigned int vcpu, uint64_t func)
{
    (void)func;
    counter_of(vcpu)->returns++;
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    (void)id;
    unsigned c = vcpu >> CHUNK_BITS;
    if (c >= MAX_CHUNKS) {
        fprintf(stderr, "bench_count: vCPU %u beyond %u\n", vcpu, MAX_CHUNKS * CHUNK_SIZE);
        exit(1);
    }
    g_mutex_lock(&init_lock);
    if (!chunks[c]) {
        /* Aligned and zeroed: counters start at 0. */
        counter *chunk = NULL;
        if (posix_memalign((void **)&chunk, 64, CHUNK_SIZE * sizeof *chunk) != 0) {
            abort();
        }
        memset(chunk, 0, CHUNK_SIZE * sizeof *chunk);
        __atomic_store_n(&chunks[c], chunk, __ATOMIC_RELEASE);
    }
    if (!bound) {
        /* callstack_instr may be listed after us: every plugin is loaded by
         * the time the first vCPU is created. */
        if (!init_callstack_instr_api()) {
            fprintf(stderr, "bench_count: %s\n", callstack_instr_api_error);
            exit(1);
        }
        if (!PPP_REG_CB("callstack_instr", on_call, on_call) ||
            !PPP_REG_CB("callstack_instr", on_ret, on_ret)) {
            fprintf(stderr, "bench_count: cannot subscribe to on_call/on_ret\n");
            exit(1);
        }
        bound = true;
    }
    g_mutex_unlock(&init_lock);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    uint64_t calls = 0, returns = 0;
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
            calls += chunks[c][i].calls;
            returns += chunks[c][i].returns;
        }
    }
    char line[160];
    int n = snprintf(line, sizeof line, "bench_count\tpid=%d\tcalls=%" PRIu64 "\treturns=%" PRIu64 "\n",
                     (int)getpid(), calls, returns);
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

/* A forked child counts from zero. */
static void after_fork_child(void)
{
    g_mutex_init(&init_lock);
    for (unsigned c = 0; c < MAX_CHUNKS; c++) {
        for (unsigned i = 0; chunks[c] && i < CHUNK_SIZE; i++) {
            chunks[c][i].calls = chunks[c][i].returns = 0;
        }
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=") && argv[i][4]) {
            out_path = g_strdup(argv[i] + 4);
        } else {
            fprintf(stderr, "bench_count: unknown argument '%s'; accepted: out=PATH\n", argv[i]);
            return -1;
        }
    }
    g_mutex_init(&init_lock);
    pthread_atfork(NULL, NULL, after_fork_child);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
