/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=uftrace: a uftrace.data directory that uftrace (0.13, Debian 12)
 * reads with replay, report, graph, dump, info and tui. Written from the
 * format as uftrace's documentation and reader describe it (file header
 * version 4); see docs/formats.md for the field by field description.
 *
 *   info                binary header + text lines (exename, cmdline, taskinfo)
 *   task.txt            SESS (one session per traced program), TASK per
 *                       thread, FORK for a forked child's first thread
 *   sid-<SID>.map       one line per module: "start-end r-xp 0 00:00 0 path",
 *                       and a [stack] line (see merge_map)
 *   <module>.sym        "relative-address T name" for every function address
 *                       the trace names in that module, plus an end marker
 *                       (a PLT stub "x@plt" is named "x", as uftrace does)
 *   <tid>.dat           16-byte records: time (ns), then type:2 more:1
 *                       magic:3 depth:10 addr:48 (bit fields, LSB first)
 *
 * One task per guest thread (per process with stack_type=asid). Frames still
 * open when the program exits get no exit record, as in uftrace's own
 * recordings (uftrace reports them as "remaining functions").
 *
 * Several processes (fork) write into one directory: each its own <tid>.dat
 * files; task.txt lines are appended whole; the map, symbol and info files
 * are merged under flock() on the directory by each process at its exit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "calltrace.h"

#define REC_BUF 4096                 /* records buffered per task */
#define RECORD_MAGIC 5u              /* uftrace file version 4 */
#define REC_ENTRY 0u
#define REC_EXIT 1u
#define DEPTH_MAX 1023u              /* the record's depth field has 10 bits */

/* uftrace's header feature bits and info bits used here. */
#define FEAT_TASK_SESSION (1u << 1)
#define FEAT_SYM_REL_ADDR (1u << 5)
#define FEAT_MAX_STACK    (1u << 6)
#define INFO_EXE_NAME (1u << 0)
#define INFO_CMDLINE  (1u << 3)
#define INFO_TASKINFO (1u << 7)

/* Functions a task has noted already (direct-mapped; a miss costs a name
 * lookup and a lock, so room for a large program's hot functions). */
#define NOTED_SLOTS 4096

/* A task's state, changed only by its stack's events (without a lock for
 * a threaded stack: ct_format.lockfree). */
typedef struct task {
    int fd;
    /* Whole-system threaded stacks: a thread's user and kernel stacks share
     * its task (one <tid>.dat), kernel frames nested above the user frames
     * open below them, as the thread ran them (a system call, an interrupt
     * taken in user mode). */
    int refs;
    ct_stack *user, *kernel;
    unsigned n;
    uint64_t max_depth;
    uint64_t buf[REC_BUF * 2];
    uint64_t noted[NOTED_SLOTS];
} task;

/* A module the trace has named functions in. */
typedef struct module {
    const char *path;
    uint64_t start, end;
    GHashTable *addrs;        /* uint64_t run-time address -> const ct_sym * */
} module;

static char *dir;
static int dir_fd = -1;
static char sid[17];
static GMutex meta_lock;           /* guards modules and max_depth, which
                                      every task's events may change */
static GHashTable *modules;        /* path -> module * */
static bool forked, fork_line_written;
static int parent_pid;
static uint64_t max_depth;

static void report_failure(const char *what)
{
    g_autofree char *where = g_strdup_printf("%s in %s", what, dir);
    ct_output_error(where, errno);
}

/* A task file ends at a whole 16-byte record. */
static size_t cut_records(const char *buf, size_t written)
{
    (void)buf;
    return written - written % 16u;
}

/*
 * After a failed write (a full disk), the records written so far are kept,
 * but uftrace cannot read them without the info, map and symbol files
 * written at exit. Room for them is made by dropping the last records of
 * the task file that failed (whole records: the data stays a prefix).
 */
#define META_ROOM (32 * 1024)

static void make_room(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t keep = st.st_size > META_ROOM ? st.st_size - META_ROOM : 0;
        if (ftruncate(fd, keep - keep % 16) < 0) {
            /* the metadata may not fit: the data stays a prefix anyway */
        }
    }
}

static void fmt_ts(char *out, size_t n, uint64_t ts)
{
    snprintf(out, n, "%" PRIu64 ".%09" PRIu64, ts / 1000000000u, ts % 1000000000u);
}

/* Appends a line to task.txt in one write (processes share the file). */
static void task_line(const char *line)
{
    if (!ct_output_ok()) {
        return;
    }
    int fd = openat(dir_fd, "task.txt", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    g_autofree char *what = g_strdup_printf("task.txt in %s", dir);
    if (fd < 0) {
        report_failure("task.txt");
    } else {
        ct_append(fd, line, strlen(line), ct_cut_lines, what);
    }
    if (fd >= 0) {
        close(fd);
    }
}

static bool is_ours(const char *name)
{
    return strcmp(name, "info") == 0 || strcmp(name, "task.txt") == 0 ||
           g_str_has_suffix(name, ".dat") || g_str_has_suffix(name, ".sym") ||
           (g_str_has_prefix(name, "sid-") && g_str_has_suffix(name, ".map"));
}

/* Earlier recordings in the directory would mix with this one. Only files
 * of uftrace's format are removed. */
static void clean_dir(void)
{
    DIR *d = fdopendir(dup(dir_fd));
    struct dirent *e;
    if (d) {
        rewinddir(d);   /* a dup shares dir_fd's position */
    }
    while (d && (e = readdir(d))) {
        if (e->d_type != DT_DIR && is_ours(e->d_name)) {
            unlinkat(dir_fd, e->d_name, 0);
        }
    }
    if (d) {
        closedir(d);
    }
}

static bool u_open(const char *out)
{
    dir = g_strdup(out && *out ? out : "uftrace.data");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "calltrace: cannot create directory '%s': %s\n", dir, strerror(errno));
        return false;
    }
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        fprintf(stderr, "calltrace: '%s' is not a usable directory: %s\n", dir, strerror(errno));
        return false;
    }
    clean_dir();
    g_mutex_init(&meta_lock);
    modules = g_hash_table_new(g_str_hash, g_str_equal);
    uint64_t ts = ct_now_ns();
    snprintf(sid, sizeof sid, "%016" PRIx64, g_str_hash(ct_program_path()) ^ ts ^ ((uint64_t)getpid() << 32));
    char tsbuf[64];
    fmt_ts(tsbuf, sizeof tsbuf, ts);
    g_autofree char *line = g_strdup_printf("SESS timestamp=%s pid=%d sid=%s exename=\"%s\"\n",
                                            tsbuf, (int)getpid(), sid, ct_program_path());
    task_line(line);
    return true;
}

static __attribute__((noinline)) void flush_task(task *t)
{
    if (t->n && t->fd >= 0 && ct_output_ok()) {
        g_autofree char *what = g_strdup_printf("a task file in %s", dir);
        if (!ct_append(t->fd, (const char *)t->buf, t->n * 2 * sizeof(uint64_t), cut_records,
                       what)) {
            make_room(t->fd);
        }
    }
    t->n = 0;
}

static GHashTable *thread_tasks;   /* whole-system: tid -> task */

static bool shares_task(const ct_stack *s)
{
    return ct_system_mode && s->kind == STACK_THREADED;
}

static void u_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    (void)inherited;
    task *t = shares_task(s) && thread_tasks ? g_hash_table_lookup(thread_tasks,
                                                                    GINT_TO_POINTER(s->tid)) : NULL;
    if (t) {
        t->refs++;
        *(s->kernel ? &t->kernel : &t->user) = s;
        s->fmt = t;
        return;
    }
    t = g_new0(task, 1);
    t->refs = 1;
    if (shares_task(s)) {
        if (!thread_tasks) {
            thread_tasks = g_hash_table_new(g_direct_hash, g_direct_equal);
        }
        g_hash_table_insert(thread_tasks, GINT_TO_POINTER(s->tid), t);
        *(s->kernel ? &t->kernel : &t->user) = s;
    }
    char name[32], tsbuf[64];
    snprintf(name, sizeof name, "%d.dat", s->tid);
    t->fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        report_failure(name);
    }
    s->fmt = t;
    fmt_ts(tsbuf, sizeof tsbuf, ts);
    g_autofree char *line = NULL;
    if (forked && !fork_line_written && s->pid == (int)getpid()) {
        /* uftrace finds a forked child's session through its parent. */
        line = g_strdup_printf("FORK timestamp=%s pid=%d ppid=%d\n", tsbuf, s->pid, parent_pid);
        fork_line_written = true;
    } else {
        line = g_strdup_printf("TASK timestamp=%s tid=%d pid=%d\n", tsbuf, s->tid, s->pid);
    }
    task_line(line);
}

static __attribute__((noinline)) void note_function_slow(uint64_t *slot, uint64_t func)
{
    const ct_sym *sym = ct_sym_of(func);
    *slot = func;
    if (!sym->module) {
        return;      /* no file: uftrace prints the address */
    }
    g_mutex_lock(&meta_lock);
    module *m = g_hash_table_lookup(modules, sym->module);
    if (!m) {
        m = g_new0(module, 1);
        m->path = sym->module;
        m->addrs = g_hash_table_new(g_int64_hash, g_int64_equal);
        g_hash_table_insert(modules, (gpointer)m->path, m);
    }
    m->start = sym->module_start;
    m->end = sym->module_end;
    g_hash_table_insert(m->addrs, (gpointer)&sym->addr, (gpointer)sym);
    g_mutex_unlock(&meta_lock);
}

/* The function goes into its module's symbol file (looked up once per
 * task, as far as the task's slots remember). */
static inline void note_function(task *t, uint64_t func)
{
    uint64_t *slot = &t->noted[((func * 0x9e3779b97f4a7c15ull) >> 40) & (NOTED_SLOTS - 1)];
    if (*slot != func) {
        note_function_slow(slot, func);
    }
}

/* The deepest frame any task wrote, for the info file. */
static __attribute__((noinline)) void raise_depth(task *t, uint64_t depth)
{
    t->max_depth = depth;
    g_mutex_lock(&meta_lock);
    max_depth = MAX(max_depth, depth);
    g_mutex_unlock(&meta_lock);
}

/* One entry or exit record; `depth` is uftrace's (0: the outermost frame).
 * Inlined: a few stores into the task's buffer, the rest out of line. */
static inline __attribute__((always_inline)) void put_record(task *t, uint64_t ts, bool entry,
                                                             uint64_t depth, uint64_t func)
{
    if (__builtin_expect(depth + 1 > t->max_depth, 0)) {
        raise_depth(t, depth + 1);
    }
    if (depth > DEPTH_MAX) {
        /* The record cannot say so deep; uftrace's reader then loses its
         * place. Frames below 1024 are left out, entry and exit alike, as
         * a depth limit does. */
        return;
    }
    note_function(t, func);
    uint64_t word = (entry ? REC_ENTRY : REC_EXIT) | ((uint64_t)RECORD_MAGIC << 3) |
                    (depth << 6) | ((func & ((1ull << 48) - 1)) << 16);
    t->buf[2 * t->n] = ts;
    t->buf[2 * t->n + 1] = word;
    if (++t->n == REC_BUF) {
        flush_task(t);
    }
}

/* uftrace's depth of s's frames: above the user frames for a kernel stack. */
static inline uint64_t base_depth(const ct_stack *s, const task *t)
{
    return s->kernel && t->user ? t->user->n_frames : 0;
}

static void u_event(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts)
{
    (void)vcpu;
    task *t = s->fmt;
    bool call = ev->kind == CALLSTACK_EVENT_CALL;
    put_record(t, ts, call, (call ? ev->depth - 1 : ev->depth) + base_depth(s, t), ev->func);
}

/*
 * Word mode (threaded stacks in user mode: no kernel stacks, so uftrace's
 * depth is the stack's): the stack comes from its word, and the frames
 * mirror is kept here for close_frames.
 */
static inline void u_word(ct_stack *s, const callstack_frame_event *fe)
{
    task *t = s->fmt;
    uint64_t ts = ct_clock_ns(&s->clock);
    if (fe->kind == CALLSTACK_EVENT_CALL) {
        ct_mirror_push(s, fe->depth, fe->func, 0);
        put_record(t, ts, true, fe->depth - 1, fe->func);
    } else {
        put_record(t, ts, false, fe->depth, fe->func);
        ct_mirror_pop(s, fe->depth);
    }
}

static void u_frame(unsigned vcpu, const callstack_frame_event *fe)
{
    ct_stack *s = ct_word_stack(fe);
    if (__builtin_expect(s != NULL, 1)) {
        u_word(s, fe);
    } else {
        ct_stacks_frame_slow(vcpu, fe);
    }
}

static void u_frame_event(ct_stack *s, const callstack_frame_event *fe)
{
    u_word(s, fe);
}

static void drop_task(ct_stack *s, bool write)
{
    task *t = s->fmt;
    if (!t) {
        return;
    }
    s->fmt = NULL;
    if (t->user == s) {
        t->user = NULL;
    }
    if (t->kernel == s) {
        t->kernel = NULL;
    }
    if (--t->refs > 0) {
        return;
    }
    if (thread_tasks && g_hash_table_lookup(thread_tasks, GINT_TO_POINTER(s->tid)) == t) {
        g_hash_table_remove(thread_tasks, GINT_TO_POINTER(s->tid));
    }
    if (write) {
        flush_task(t);
    }
    if (t->fd >= 0) {
        close(t->fd);
    }
    g_free(t);
}

/*
 * The thread or process ends with frames still open (exit() is called from
 * inside main, a thread exits from deep inside its function): each gets an
 * exit record now, innermost first, as if it returned at the end, so
 * uftrace's replay and report close every function instead of listing the
 * task's "remaining functions". Frames never seen entered have no name and
 * are left out.
 */
static void close_frames(ct_stack *s, task *t, uint64_t ts)
{
    uint64_t base = base_depth(s, t);
    for (guint i = s->n_frames; i-- > 0;) {
        const ct_frame *f = &s->frames[i];
        if (f->seen) {
            put_record(t, ts, false, i + base, f->func);
        }
    }
}

static void u_stack_end(ct_stack *s, uint64_t ts, bool at_exit)
{
    (void)at_exit;
    task *t = s->fmt;
    if (t && t->user == s && t->kernel) {
        /* the kernel frames above close first; they are gone then */
        close_frames(t->kernel, t, ts);
        t->kernel->n_frames = 0;
    }
    if (t) {
        close_frames(s, t, ts);
    }
    drop_task(s, true);
}

static void u_stack_discard(ct_stack *s)
{
    drop_task(s, false);
}

/* Nothing to do: the child never writes what its parent buffered (it
 * discards the parent's tasks, stacks.c), and the parent writes it later. */
static void u_before_fork(void)
{
}

/* Before an execve: the tasks of stacks that can be read now (stacks.c)
 * are flushed. Another thread's buffered records are lost if the execve
 * succeeds (the thread ends with it) and written later if it fails. */
static void u_exec_stack(ct_stack *s)
{
    if (s->fmt) {
        flush_task(s->fmt);
    }
}

static void u_after_fork_child(void)
{
    forked = true;
    fork_line_written = false;
    parent_pid = (int)getppid();
    /* The parent names its own functions; the child adds what it calls. */
    g_hash_table_remove_all(modules);
}

/* ---- files merged at exit ------------------------------------------------- */

/* Lines of a text file in the directory (empty if absent). Through
 * dir_fd: the guest may have changed the working directory. */
static gchar **read_lines(const char *name)
{
    GString *text = g_string_new(NULL);
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    char chunk[65536];
    ssize_t n;
    while (fd >= 0 && ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))) {
        if (n > 0) {
            g_string_append_len(text, chunk, n);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    gchar **lines = g_strsplit(text->str, "\n", -1);
    g_string_free(text, TRUE);
    return lines;
}

/* Replaces a file of the directory atomically: complete or not at all.
 * Written even after an output error (the files describe the records
 * kept); a failure is reported once. */
static void write_file(const char *name, const char *data, size_t len)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp%d", name, (int)getpid());
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            if (w == 0) {
                errno = ENOSPC;
            }
            break;
        }
        done += (size_t)w;
    }
    if (fd < 0 || done < len) {
        report_failure(name);
    }
    if (fd >= 0) {
        close(fd);
        if (done == len) {
            renameat(dir_fd, tmp, dir_fd, name);
        } else {
            unlinkat(dir_fd, tmp, 0);
        }
    }
}

static gint cmp_u64_data(gconstpointer a, gconstpointer b, gpointer data)
{
    (void)data;
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* sid-<SID>.map: one line per module, by address; uftrace takes a module's
 * first line as its base. Lines of other processes of the session stay. */
static void merge_map(void)
{
    g_autofree char *name = g_strdup_printf("sid-%s.map", sid);
    gchar **old = read_lines(name);
    GTree *lines = g_tree_new_full(cmp_u64_data, NULL, g_free, g_free);
    for (gchar **l = old; *l; l++) {
        uint64_t start;
        if (sscanf(*l, "%" SCNx64 "-", &start) == 1) {
            uint64_t *k = g_new(uint64_t, 1);
            *k = start;
            g_tree_insert(lines, k, g_strdup_printf("%s\n", *l));
        }
    }
    g_strfreev(old);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, modules);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        module *m = v;
        uint64_t *k = g_new(uint64_t, 1);
        *k = m->start;
        g_tree_insert(lines, k, g_strdup_printf("%" PRIx64 "-%" PRIx64 " r-xp 00000000 00:00 0 %s\n",
                                                m->start, m->end, m->path));
    }
    GString *out = g_string_new(NULL);
    GTreeNode *n = g_tree_node_first(lines);
    for (; n; n = g_tree_node_next(n)) {
        if (!strstr(g_tree_node_value(n), "[stack]")) {
            g_string_append(out, g_tree_node_value(n));
        }
    }
    /* uftrace takes every address at or above a kernel base guessed from
     * the [stack] line as the kernel's (no line: every address). This
     * line puts that base above any user address, 0xffff800000000000. */
    g_string_append(out, "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n");
    write_file(name, out->str, out->len);
    g_string_free(out, TRUE);
    g_tree_destroy(lines);
}

/*
 * <basename>.sym: "relative-address T name" per function address of the
 * trace, relative to the module's first mapping (uftrace's SYM_REL_ADDR).
 * uftrace sizes a symbol up to the next line, so only addresses the trace
 * contains are listed, each with exactly the name calltrace gives it, and
 * an end marker follows the last.
 */
static void merge_symbols(module *m)
{
    g_autofree char *base = g_path_get_basename(m->path);
    g_autofree char *name = g_strdup_printf("%s.sym", base);
    GTree *syms = g_tree_new_full(cmp_u64_data, NULL, g_free, g_free);
    gchar **old = read_lines(name);
    for (gchar **l = old; *l; l++) {
        uint64_t rel;
        char type;
        int at = 0;
        if ((*l)[0] != '#' && sscanf(*l, "%" SCNx64 " %c %n", &rel, &type, &at) == 2 && at &&
            strcmp(*l + at, "__sym_end") != 0) {
            uint64_t *k = g_new(uint64_t, 1);
            *k = rel;
            g_tree_insert(syms, k, g_strdup(*l + at));
        }
    }
    g_strfreev(old);
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, m->addrs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const ct_sym *sym = v;
        uint64_t *k = g_new(uint64_t, 1);
        *k = sym->addr - m->start;
        /* uftrace names a PLT stub by its target alone (its own recordings
         * do), and its filters read "@" as a module: "qsort@plt" would be
         * function "qsort" of a module "plt". */
        g_tree_insert(syms, k, g_str_has_suffix(sym->display, "@plt")
                                   ? g_strndup(sym->display, strlen(sym->display) - 4)
                                   : g_strdup(sym->display));
    }
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "# symbols: %d\n# path name: %s\n", g_tree_nnodes(syms), m->path);
    uint64_t last = 0;
    for (GTreeNode *n = g_tree_node_first(syms); n; n = g_tree_node_next(n)) {
        last = *(uint64_t *)g_tree_node_key(n);
        g_string_append_printf(out, "%016" PRIx64 " T %s\n", last, (char *)g_tree_node_value(n));
    }
    if (g_tree_nnodes(syms)) {
        g_string_append_printf(out, "%016" PRIx64 " T __sym_end\n", last + 1);
    }
    write_file(name, out->str, out->len);
    g_string_free(out, TRUE);
    g_tree_destroy(syms);
}

/* The guest command line is not known to a plugin; QEMU's is recorded. */
static char *host_cmdline(void)
{
    char *raw = NULL;
    gsize len = 0;
    if (!g_file_get_contents("/proc/self/cmdline", &raw, &len, NULL)) {
        return g_strdup("qemu");
    }
    for (gsize i = 0; i + 1 < len; i++) {
        if (raw[i] == '\0' || raw[i] == '\n') {
            raw[i] = ' ';
        }
    }
    return raw;
}

/* info: the header, then the text of each info bit set, in bit order. */
static void write_info(void)
{
    GArray *tids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    DIR *d = fdopendir(dup(dir_fd));
    struct dirent *e;
    if (d) {
        rewinddir(d);   /* a dup shares dir_fd's position */
    }
    while (d && (e = readdir(d))) {
        char *end;
        uint64_t tid = g_ascii_strtoull(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".dat") == 0) {
            g_array_append_val(tids, tid);
        }
    }
    if (d) {
        closedir(d);
    }
    g_array_sort(tids, cmp_u64);
    GString *text = g_string_new(NULL);
    g_autofree char *cmdline = host_cmdline();
    g_string_append_printf(text, "exename:%s\ncmdline:%s\n", ct_program_path(), cmdline);
    g_string_append_printf(text, "taskinfo:lines=2\ntaskinfo:nr_tid=%u\ntaskinfo:tids=", tids->len);
    for (guint i = 0; i < tids->len; i++) {
        g_string_append_printf(text, "%s%" PRIu64, i ? "," : "", g_array_index(tids, uint64_t, i));
    }
    g_string_append_c(text, '\n');
    g_array_free(tids, TRUE);

    /* struct uftrace_file_header, little-endian as the host writes it. */
    uint8_t hdr[40] = { 'F', 't', 'r', 'a', 'c', 'e', '!', 0 };
    uint32_t version = 4;
    uint16_t hsize = sizeof hdr;
    uint64_t feat = FEAT_TASK_SESSION | FEAT_SYM_REL_ADDR | FEAT_MAX_STACK;
    uint64_t info = INFO_EXE_NAME | INFO_CMDLINE | INFO_TASKINFO;
    uint16_t max_stack = (uint16_t)MIN(MAX(max_depth, 1024u), DEPTH_MAX + 1);
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &hsize, 2);
    hdr[14] = G_BYTE_ORDER == G_LITTLE_ENDIAN ? 1 : 2;   /* ELFDATA2LSB / MSB */
    hdr[15] = sizeof(void *) == 8 ? 2 : 1;               /* ELFCLASS64 / 32 */
    memcpy(hdr + 16, &feat, 8);
    memcpy(hdr + 24, &info, 8);
    memcpy(hdr + 32, &max_stack, 2);
    g_string_prepend_len(text, (const char *)hdr, sizeof hdr);
    write_file("info", text->str, text->len);
    g_string_free(text, TRUE);
}

static void u_finish(uint64_t ts)
{
    (void)ts;
    /* Processes of one recording (fork) merge one at a time. */
    if (flock(dir_fd, LOCK_EX) < 0) {
        report_failure("(lock)");
    }
    merge_map();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, modules);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        merge_symbols(v);
    }
    write_info();
    flock(dir_fd, LOCK_UN);
}

/* Before an execve: the buffered records out and the files merged, as at
 * exit; the tasks stay open in case the execve fails. */
static void u_exec(uint64_t ts)
{
    g_mutex_lock(&meta_lock);
    u_finish(ts);
    g_mutex_unlock(&meta_lock);
}

const ct_format ct_format_uftrace = {
    .name = "uftrace",
    CT_FOLLOWS_STACKS,
    .needs_ts = true,
    .lockfree = true,
    .open = u_open,
    .stack_begin = u_stack_begin,
    .event = u_event,
    .stack_end = u_stack_end,
    .stack_discard = u_stack_discard,
    .exec_stack = u_exec_stack,
    .before_fork = u_before_fork,
    .after_fork_child = u_after_fork_child,
    .finish = u_finish,
    .exec = u_exec,
    .on_frame_call = u_frame,
    .on_frame_ret = u_frame,
    .frame_event = u_frame_event,
};
