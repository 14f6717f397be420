/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=chrome: Chrome's trace-event JSON (the object form, with a
 * "traceEvents" array), which chrome://tracing, Perfetto's UI and
 * speedscope open. Each call is a "B" event and its return an "E" event,
 * with the guest's pid and tid; names come from callstack_instr_symbolize.
 * ts is CLOCK_MONOTONIC in microseconds (3 decimals: nanoseconds).
 *
 * Every B gets its E: an unwound frame's E carries "unwound":true; frames
 * open when their thread exits, or when the process exits, are closed then
 * ("at_exit"); a forked child first re-opens the frames it inherited
 * ("inherited"), so its own E events have their B.
 *
 * A forked child writes into the same file: each write (a buffer of whole
 * events) takes an flock(), removes the closing "]}" if a process that
 * already exited wrote it, appends, and closes the array again. The file is
 * thus valid JSON whenever no process is writing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "calltrace.h"

/* (each write of the buffer takes an flock and re-closes the array: a
 * megabyte keeps those few system calls rare) */
#define OUT_BUF (1u << 20)
static const char TAIL[] = "\n]}\n";

static int out_fd = -1;
static bool regular;      /* a file that can be re-closed at each write */
static GString *buf;
static char *out_name;    /* for error messages */

static void fail(void)
{
    g_autofree char *what = g_strdup_printf("the chrome trace %s", out_name);
    ct_output_error(what, errno);
}

/* A cut for ct_append: the end of the last event written whole. Events
 * start with ",\n{" and the buffer ends with TAIL; a newline inside a
 * string is escaped, so these mark the boundaries. (The comparisons stop at
 * the first mismatch, so they never read past the string's end.) */
static size_t cut_events(const char *b, size_t written)
{
    for (size_t i = written; i > 0; i--) {
        if ((b[i] == ',' && b[i + 1] == '\n' && b[i + 2] == '{') ||
            (b[i] == '\n' && b[i + 1] == ']')) {
            return i;
        }
    }
    return 0;
}

/* Appends the buffer to the file, keeping it closed JSON (see above). After
 * a write error the file keeps the whole events written and is closed
 * again; nothing more is written. */
static void flush(bool last)
{
    if (out_fd < 0 || !ct_output_ok()) {
        g_string_truncate(buf, 0);
        return;
    }
    if (!regular) {
        /* A pipe or terminal: close the array once, at the end. */
        if (last) {
            g_string_append(buf, TAIL);
        }
        if (!ct_write_all(out_fd, buf->str, buf->len)) {
            fail();
        }
        g_string_truncate(buf, 0);
        return;
    }
    flock(out_fd, LOCK_EX);
    struct stat st;
    char tail[sizeof TAIL - 1];
    size_t tl = sizeof TAIL - 1;
    off_t body = -1;       /* where the events end, once the tail is removed */
    if (fstat(out_fd, &st) == 0) {
        body = st.st_size;
        if ((size_t)st.st_size >= tl &&
            pread(out_fd, tail, tl, st.st_size - (off_t)tl) == (ssize_t)tl &&
            memcmp(tail, TAIL, tl) == 0) {
            body = st.st_size - (off_t)tl;
        }
    }
    if (body < 0 || ftruncate(out_fd, body) < 0 || lseek(out_fd, 0, SEEK_END) < 0) {
        fail();
    } else {
        g_string_append(buf, TAIL);
        if (!ct_append(out_fd, buf->str, buf->len, cut_events, out_name)) {
            /* Cut back to whole events: close the array again (the space
             * the cut freed holds the tail). */
            if (lseek(out_fd, 0, SEEK_END) >= 0) {
                ssize_t w = write(out_fd, TAIL, tl);
                (void)w;
            }
        }
    }
    flock(out_fd, LOCK_UN);
    g_string_truncate(buf, 0);
}

static void json_string(GString *s, const char *v)
{
    g_string_append_c(s, '"');
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\') {
            g_string_append_c(s, '\\');
            g_string_append_c(s, *c);
        } else if ((unsigned char)*c < 0x20) {
            g_string_append_printf(s, "\\u%04x", (unsigned char)*c);
        } else {
            g_string_append_c(s, *c);
        }
    }
    g_string_append_c(s, '"');
}

/* Every event starts with ",\n": the array's first element is written at open. */
static void event(char ph, const char *name, int pid, int tid, uint64_t ts, const char *args)
{
    g_string_append_printf(buf, ",\n{\"ph\":\"%c\",\"name\":", ph);
    json_string(buf, name);
    g_string_append_printf(buf, ",\"cat\":\"call\",\"pid\":%d,\"tid\":%d,\"ts\":%" PRIu64 ".%03u",
                           pid, tid, ts / 1000u, (unsigned)(ts % 1000u));
    if (args) {
        g_string_append_printf(buf, ",\"args\":{%s}", args);
    }
    g_string_append_c(buf, '}');
    if (buf->len >= OUT_BUF) {
        flush(false);
    }
}

/*
 * The common events, a call's B and a return's E without extra arguments,
 * are copies of their function's fixed text with three numbers put in
 * between: the text is made once per function (the name and the module
 * path escaped, the address formatted), where building it per event cost
 * thousands of instructions. The output is the same as event()'s.
 */
typedef struct fixed_text {
    char *b_head, *e_head;    /* ",\n{\"ph\":\"B\",\"name\":...,\"pid\":" */
    char *b_tail;             /* ",\"args\":{\"addr\":...}}" */
    size_t b_head_len, e_head_len, b_tail_len;
} fixed_text;

static void args_text(GString *s, const ct_sym *sym)
{
    g_string_append_printf(s, "\"addr\":\"0x%" PRIx64 "\"", sym->addr);
    if (sym->module) {
        g_string_append(s, ",\"module\":");
        json_string(s, sym->module);
    }
}

static char *head_text(char ph, const char *name, size_t *len)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, ",\n{\"ph\":\"%c\",\"name\":", ph);
    json_string(s, name);
    g_string_append(s, ",\"cat\":\"call\",\"pid\":");
    *len = s->len;
    return g_string_free(s, FALSE);
}

static const fixed_text *fixed_text_of(const ct_sym *sym)
{
    const fixed_text *t = __atomic_load_n(&sym->fmt_text, __ATOMIC_ACQUIRE);
    if (t) {
        return t;
    }
    fixed_text *n = g_new0(fixed_text, 1);
    n->b_head = head_text('B', sym->display, &n->b_head_len);
    n->e_head = head_text('E', sym->display, &n->e_head_len);
    GString *tail = g_string_new(",\"args\":{");
    args_text(tail, sym);
    g_string_append(tail, "}}");
    n->b_tail_len = tail->len;
    n->b_tail = g_string_free(tail, FALSE);
    /* (names live as long as the run: so do their texts) */
    __atomic_store_n(&((ct_sym *)sym)->fmt_text, n, __ATOMIC_RELEASE);
    return n;
}

static char *put_int(char *p, int v)
{
    if (v < 0) {
        *p++ = '-';
        return ct_put_dec(p, (uint64_t)-(int64_t)v);
    }
    return ct_put_dec(p, (uint64_t)v);
}

/* pid, tid and ts (microseconds with 3 decimals), as event() prints them. */
static void fixed_event(const char *head, size_t head_len, const char *tail, size_t tail_len,
                        int pid, int tid, uint64_t ts)
{
    char mid[96], *p = mid;
    p = put_int(p, pid);
    memcpy(p, ",\"tid\":", 7);
    p = put_int(p + 7, tid);
    memcpy(p, ",\"ts\":", 6);
    p = ct_put_dec(p + 6, ts / 1000u);
    unsigned frac = (unsigned)(ts % 1000u);
    p[0] = '.';
    p[1] = (char)('0' + frac / 100);
    p[2] = (char)('0' + frac / 10 % 10);
    p[3] = (char)('0' + frac % 10);
    p += 4;
    g_string_append_len(buf, head, (gssize)head_len);
    g_string_append_len(buf, mid, p - mid);
    g_string_append_len(buf, tail, (gssize)tail_len);
    if (buf->len >= OUT_BUF) {
        flush(false);
    }
}

static void begin(const ct_stack *s, uint64_t func, uint64_t ts, const char *extra)
{
    if (!extra) {
        const fixed_text *t = fixed_text_of(ct_sym_of(func));
        fixed_event(t->b_head, t->b_head_len, t->b_tail, t->b_tail_len, s->pid, s->tid, ts);
        return;
    }
    const ct_sym *sym = ct_sym_of(func);
    GString *args = g_string_new(NULL);
    args_text(args, sym);
    g_string_append_printf(args, ",%s", extra);
    event('B', sym->display, s->pid, s->tid, ts, args->str);
    g_string_free(args, TRUE);
}

static void metadata(const char *what, int pid, int tid, const char *value)
{
    g_string_append_printf(buf, ",\n{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":",
                           what, pid, tid);
    json_string(buf, value);
    g_string_append(buf, "}}");
}

static bool c_open(const char *out)
{
    if (out && *out) {
        out_fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            fprintf(stderr, "calltrace: cannot open '%s': %s\n", out, strerror(errno));
            return false;
        }
    } else {
        out_fd = dup(STDERR_FILENO);
    }
    out_name = out && *out ? g_strdup_printf("'%s'", out) : g_strdup("stderr");
    struct stat st;
    regular = fstat(out_fd, &st) == 0 && S_ISREG(st.st_mode);
    buf = g_string_sized_new(OUT_BUF + 4096);
    g_autofree char *prog = g_path_get_basename(ct_program_path());
    g_string_append(buf, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    g_string_append_printf(buf, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":%d,"
                           "\"args\":{\"name\":", (int)getpid(), (int)getpid());
    json_string(buf, prog);
    g_string_append(buf, "}}");
    return true;
}

/* Whole-system threaded stacks: the guest thread's name (its comm). */
static void c_stack_named(ct_stack *s)
{
    g_autofree char *name = g_strdup_printf("%s [%d]", s->comm, s->tid);
    metadata("thread_name", s->pid, s->tid, name);
    if (s->pid == s->tid) {
        metadata("process_name", s->pid, s->pid, s->comm);
    }
}

static void c_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    if (ct_system_mode) {
        if (s->comm_known) {
            c_stack_named(s);
        }
        return;
    }
    g_autofree char *prog = g_path_get_basename(ct_program_path());
    if (s->pid != s->tid || inherited) {
        g_autofree char *name = g_strdup_printf("%s [%d]", prog, s->tid);
        metadata("thread_name", s->pid, s->tid, name);
    }
    if (inherited) {
        metadata("process_name", s->pid, s->pid, prog);
        for (guint i = 0; i < s->n_frames; i++) {
            const ct_frame *f = &s->frames[i];
            if (f->seen) {
                begin(s, f->func, ts, "\"inherited\":true");
            }
        }
    }
}

static void c_event(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts)
{
    (void)vcpu;
    if (ev->kind == CALLSTACK_EVENT_CALL) {
        /* Frames below the new one that were never entered here cannot be
         * opened now; their returns are dropped below. */
        begin(s, ev->func, ts, NULL);
    } else if (s->n_frames > ev->depth &&
               s->frames[ev->depth].seen) {
        if (ev->unwound) {
            event('E', ct_sym_of(ev->func)->display, s->pid, s->tid, ts, "\"unwound\":true");
        } else {
            const fixed_text *t = fixed_text_of(ct_sym_of(ev->func));
            fixed_event(t->e_head, t->e_head_len, "}", 1, s->pid, s->tid, ts);
        }
    }
}

static void c_stack_end(ct_stack *s, uint64_t ts, bool at_exit)
{
    for (guint i = s->n_frames; i-- > 0;) {
        const ct_frame *f = &s->frames[i];
        if (f->seen) {
            event('E', ct_sym_of(f->func)->display, s->pid, s->tid, ts,
                  at_exit ? "\"at_exit\":true" : "\"thread_exit\":true");
        }
    }
}

static void c_stack_discard(ct_stack *s)
{
    (void)s;
}

static void c_before_fork(void)
{
    flush(false);
}

static void c_after_fork_child(void)
{
}

static void c_finish(uint64_t ts)
{
    (void)ts;
    flush(true);
}

const ct_format ct_format_chrome = {
    .name = "chrome",
    CT_FOLLOWS_STACKS,
    .needs_ts = true,
    .open = c_open,
    .stack_begin = c_stack_begin,
    .stack_named = c_stack_named,
    .event = c_event,
    .stack_end = c_stack_end,
    .stack_discard = c_stack_discard,
    .before_fork = c_before_fork,
    .after_fork_child = c_after_fork_child,
    .finish = c_finish,
};
