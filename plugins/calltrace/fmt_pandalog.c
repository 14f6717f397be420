/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=pandalog: PANDA's CallStack messages at calls, in PANDA's own plog
 * container, so PANDA's readers (its Python PLogReader, its C++ PandaLog
 * used by plog_print) open the file as one of PANDA's.
 *
 * The container (facts from PANDA's plog-cc.cpp/plog.c; docs/formats.md):
 *
 *   0    header, 24 bytes little-endian: u32 version (2), u32 pad,
 *        u64 dir_pos, u32 chunk_size, u32 pad; zeros up to byte 128
 *   128  chunks, back to back: each one zlib stream holding entries framed
 *        as u32 length + serialized panda.LogEntry
 *   dir  u32 num_chunks, then per chunk u64 start_instr, u64 pos,
 *        u64 num_entries
 *
 * The directory and then the header are written at exit (and before an
 * execve): until then the header is zero (pandalog-read --salvage reads the chunks of such a file).
 * As PANDA does, the first entry is a placeholder with pc and instr all
 * ones; every later entry has pc = the call site and instr = the number of
 * guest instructions executed so far (icount.c). Entries with the same
 * instr stay in one chunk (PANDA's readers seek by instr), no chunk is
 * empty, and chunk_size is at least the largest uncompressed chunk.
 *
 * One entry per call, or, with callers_at=, per call of those functions.
 * A forked child writes its own container, OUT.<pid>: the parent's chunks
 * and directory are the parent's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "pandalog_entry.pb-c.h"
#include "calltrace.h"

#define HEADER_AREA 128
#define VERSION 2
/* PANDA's chunk size; the header says at least this. */
#define PANDA_CHUNK_SIZE (16u << 20)
/* Chunks are cut smaller than PANDA's: less memory, and compressing one
 * does not stall the guest noticeably. */
#define CHUNK_TARGET (1u << 20)
/* Compression level: 1 keeps up with millions of calls a second at a
 * ratio close to 9's on these repetitive entries; readers accept any. */
#define Z_LEVEL 1

typedef struct dir_entry {
    uint64_t start_instr, pos, num_entries;
} dir_entry;

static char *path;                /* absolute: the guest may chdir */
static int out_fd = -1;
static bool failed;               /* a write failed: reported, output stopped */
static GByteArray *chunk;         /* uncompressed entries of the open chunk */
static uint64_t chunk_entries, chunk_start_instr;
static bool chunk_has_real;       /* holds an entry other than the placeholder */
static GArray *dir;               /* dir_entry, one per chunk written */
static uint64_t file_pos;         /* where the next chunk goes */
static uint32_t largest_chunk;
static uint64_t last_instr;

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* One message per run, whatever fails after. */
static void fail(const char *what)
{
    if (!failed) {
        fprintf(stderr, "calltrace: cannot write the pandalog '%s' (%s): %s; it ends with the "
                "last whole chunk written before\n", path, what, strerror(errno));
        failed = true;
    }
}

static bool pwrite_all(const void *buf, size_t len, uint64_t at)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = pwrite(out_fd, p, len, (off_t)at);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = ENOSPC;
            }
            return false;
        }
        p += w;
        at += (uint64_t)w;
        len -= (size_t)w;
    }
    return true;
}

/* Writes the first `n` entries (`len` bytes) of the open chunk, compressed,
 * after the previous chunk; false if the file refused them (then nothing
 * of them stays in it). */
static bool put_chunk(uint64_t n, size_t len)
{
    uLongf zlen = compressBound(len);
    g_autofree Bytef *z = g_malloc(zlen);
    if (compress2(z, &zlen, chunk->data, len, Z_LEVEL) != Z_OK) {
        errno = ENOMEM;
        return false;
    }
    if (!pwrite_all(z, zlen, file_pos)) {
        /* Cut the partial chunk off: the chunks before it stay whole, and
         * the space freed goes to the directory. */
        int saved = errno;
        if (ftruncate(out_fd, (off_t)file_pos) != 0) {
            /* the directory is written over the partial chunk all the same */
        }
        errno = saved;
        return false;
    }
    dir_entry d = { chunk_start_instr, file_pos, n };
    g_array_append_val(dir, d);
    file_pos += zlen;
    largest_chunk = MAX(largest_chunk, (uint32_t)len);
    return true;
}

/* Whether the directory fits after the chunks written (tried with zeros,
 * then given back). */
static bool room_for_directory(void)
{
    size_t len = 4 + 24 * (size_t)dir->len;
    g_autofree uint8_t *zero = g_malloc0(len);
    bool ok = pwrite_all(zero, len, file_pos);
    return ftruncate(out_fd, (off_t)file_pos) == 0 && ok;
}

/* Byte length of the first `n` entries of the open chunk. */
static size_t entries_len(uint64_t n)
{
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t len = 0;
        for (int b = 0; b < 4; b++) {
            len |= (uint32_t)chunk->data[off + b] << (8 * b);
        }
        off += 4 + len;
    }
    return off;
}

/*
 * Compresses the open chunk and writes it after the previous one. When the
 * file refuses it (a full disk), ever smaller leading parts of it are
 * tried, so the log keeps as many whole entries as fit.
 */
static void write_chunk(void)
{
    if (!chunk_entries || failed) {
        return;
    }
    if (!put_chunk(chunk_entries, chunk->len)) {
        fail("chunk");
        for (uint64_t n = chunk_entries / 2; n > 0; n /= 2) {
            if (put_chunk(n, entries_len(n))) {
                if (room_for_directory()) {
                    break;
                }
                file_pos = g_array_index(dir, dir_entry, dir->len - 1).pos;
                g_array_set_size(dir, dir->len - 1);
                if (ftruncate(out_fd, (off_t)file_pos) != 0) {
                    break;
                }
            }
        }
    }
    g_byte_array_set_size(chunk, 0);
    chunk_entries = 0;
    chunk_has_real = false;
}

static void add_entry(Panda__LogEntry *e, bool placeholder)
{
    if (failed) {
        return;
    }
    /* PANDA keeps every entry of one instruction count in one chunk. */
    if (chunk->len >= CHUNK_TARGET && e->instr != last_instr) {
        write_chunk();
    }
    if (!placeholder) {
        if (!chunk_has_real) {
            chunk_start_instr = e->instr;
            chunk_has_real = true;
        }
        last_instr = e->instr;
    }
    size_t len = panda__log_entry__get_packed_size(e);
    guint at = chunk->len;
    g_byte_array_set_size(chunk, at + 4 + (guint)len);
    put_le(chunk->data + at, len, 4);
    panda__log_entry__pack(e, chunk->data + at + 4);
    chunk_entries++;
}

/* A fresh container at `path`: header area, then PANDA's placeholder entry. */
static bool start_file(void)
{
    out_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        fprintf(stderr, "calltrace: cannot open '%s': %s\n", path, strerror(errno));
        return false;
    }
    uint8_t zero[HEADER_AREA] = { 0 };
    if (!pwrite_all(zero, sizeof zero, 0)) {
        fail("header");
    }
    file_pos = HEADER_AREA;
    g_array_set_size(dir, 0);
    g_byte_array_set_size(chunk, 0);
    chunk_entries = chunk_start_instr = 0;
    chunk_has_real = false;
    largest_chunk = 0;
    Panda__LogEntry e = PANDA__LOG_ENTRY__INIT;
    e.pc = UINT64_MAX;
    e.instr = UINT64_MAX;
    add_entry(&e, true);
    return true;
}

static bool p_open(const char *out)
{
    if (!out || !*out) {
        fprintf(stderr, "calltrace: format=pandalog needs out=PATH (its output is binary)\n");
        return false;
    }
    if (g_path_is_absolute(out)) {
        path = g_strdup(out);
    } else {
        g_autofree char *cwd = g_get_current_dir();
        path = g_build_filename(cwd, out, NULL);
    }
    chunk = g_byte_array_sized_new(CHUNK_TARGET + 65536);
    dir = g_array_new(FALSE, FALSE, sizeof(dir_entry));
    return start_file();
}

static void p_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    (void)s;
    (void)ts;
    (void)inherited;
}

static void p_event(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts)
{
    (void)s;
    (void)ts;
    if (failed || ev->kind != CALLSTACK_EVENT_CALL ||
        (ct_callers_at_given() && !ct_callers_at_has(ev->func))) {
        return;
    }
    const ct_sym *sym = ct_sym_of(ev->func);
    g_autofree char *sid = get_stackid_string(ev->where);
    Panda__CallstackInstrEvent ext = PANDA__CALLSTACK_INSTR_EVENT__INIT;
    ext.stack_id = sid;
    ext.depth = ev->depth;
    ext.function = (char *)sym->display;
    ext.module = (char *)sym->module;
    ext.has_return_address = true;
    ext.return_address = ev->ret_addr;
    ext.has_function_address = true;
    ext.function_address = ev->func;
    Panda__LogEntry e = PANDA__LOG_ENTRY__INIT;
    /* A signal handler is entered without a call instruction: its pc is
     * then the handler's first, the pc when PANDA would log. */
    e.pc = ev->call_site ? ev->call_site : ev->func;
    /* Entries of different vCPUs interleave: never let instr go back. */
    e.instr = MAX(ct_icount_total(), last_instr);
    e.call_stack = ct_callstack.callstack_create_vcpu(vcpu);
    e.callstack_instr_event = &ext;
    add_entry(&e, false);
    ct_callstack.callstack_free(e.call_stack);
}

static void p_stack_end(ct_stack *s, uint64_t ts, bool at_exit)
{
    (void)s;
    (void)ts;
    (void)at_exit;
}

static void p_stack_discard(ct_stack *s)
{
    (void)s;
}

static void p_before_fork(void)
{
}

/* The child's entries go to a container of its own; the parent writes
 * what was buffered before the fork. */
static void p_after_fork_child(void)
{
    g_autofree char *parent_path = path;
    path = g_strdup_printf("%s.%d", parent_path, (int)getpid());
    close(out_fd);
    failed = false;
    uint64_t keep_last = last_instr;
    start_file();
    last_instr = keep_last;
}

/* The last chunk, the directory, then the header that points to it. The
 * next chunk, if any, goes over this directory: file_pos stays. */
static void write_directory(void)
{
    write_chunk();
    /* Also after a failed write: the chunks written before it are a
     * complete, readable prefix of the log. */
    if (!dir->len) {
        return;
    }
    g_autofree uint8_t *d = g_malloc(4 + 24 * (size_t)dir->len);
    put_le(d, dir->len, 4);
    for (guint i = 0; i < dir->len; i++) {
        const dir_entry *e = &g_array_index(dir, dir_entry, i);
        put_le(d + 4 + 24 * i, e->start_instr, 8);
        put_le(d + 12 + 24 * i, e->pos, 8);
        put_le(d + 20 + 24 * i, e->num_entries, 8);
    }
    uint8_t h[24] = { 0 };
    put_le(h, VERSION, 4);
    put_le(h + 8, file_pos, 8);
    put_le(h + 16, MAX(PANDA_CHUNK_SIZE, largest_chunk), 4);
    if (!pwrite_all(d, 4 + 24 * (size_t)dir->len, file_pos)) {
        fail("directory");
    } else if (!pwrite_all(h, sizeof h, 0)) {
        fail("header");
    }
}

/* execve replaces the process without an exit callback: the log is made
 * whole now, and grows on if the execve fails. */
static void p_exec(uint64_t ts)
{
    (void)ts;
    if (out_fd >= 0) {
        write_directory();
    }
}

static void p_finish(uint64_t ts)
{
    (void)ts;
    if (out_fd < 0) {
        return;
    }
    write_directory();
    close(out_fd);
    out_fd = -1;
}

const ct_format ct_format_pandalog = {
    .name = "pandalog",
    CT_FOLLOWS_STACKS,
    .needs_icount = true,
    .open = p_open,
    .stack_begin = p_stack_begin,
    .event = p_event,
    .stack_end = p_stack_end,
    .stack_discard = p_stack_discard,
    .before_fork = p_before_fork,
    .after_fork_child = p_after_fork_child,
    .exec = p_exec,
    .finish = p_finish,
};
