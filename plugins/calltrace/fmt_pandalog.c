/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format=pandalog: PANDA's CallStack messages at calls, the way PANDA
 * plugins log them: each entry is a panda.LogEntry (proto/pandalog_entry.proto)
 * with pc = the function entered, call_stack = pandalog_callstack_create()
 * at that moment (up to 16 return addresses, most recent first: the new
 * frame's own return address is the first), and an extension carrying the
 * stack id, depth and names. One entry per call, or, with callers_at=, per
 * call of those functions only.
 *
 * The file is a plain sequence of length-delimited entries: a protobuf
 * varint byte count, then the message (what protobuf's
 * writeDelimitedTo/parseDelimitedFrom use), not PANDA's chunked,
 * zlib-compressed plog container. tools/pandalog-read prints it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "pandalog_entry.pb-c.h"
#include "calltrace.h"

#define OUT_BUF 65536

static int out_fd = -1;
static GByteArray *buf;
static uint64_t seq;

static void flush(void)
{
    if (buf->len && !ct_write_all(out_fd, buf->data, buf->len)) {
        fprintf(stderr, "calltrace: cannot write the pandalog: %s\n", strerror(errno));
    }
    g_byte_array_set_size(buf, 0);
}

static bool p_open(const char *out)
{
    if (!out || !*out) {
        fprintf(stderr, "calltrace: format=pandalog needs out=PATH (its output is binary)\n");
        return false;
    }
    /* O_APPEND: a forked child's entries go after whole entries only. */
    out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
        fprintf(stderr, "calltrace: cannot open '%s': %s\n", out, strerror(errno));
        return false;
    }
    buf = g_byte_array_sized_new(OUT_BUF + 4096);
    return true;
}

static void p_stack_begin(ct_stack *s, uint64_t ts, bool inherited)
{
    (void)s;
    (void)ts;
    (void)inherited;
}

static void put_varint(uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    g_byte_array_append(buf, b, (guint)n);
}

static void p_event(ct_stack *s, const callstack_event *ev, unsigned vcpu, uint64_t ts)
{
    (void)s;
    (void)ts;
    if (ev->kind != CALLSTACK_EVENT_CALL || (ct_callers_at_given() && !ct_callers_at_has(ev->func))) {
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
    Panda__LogEntry e = PANDA__LOG_ENTRY__INIT;
    e.pc = ev->func;
    e.instr = ++seq;
    e.call_stack = ct_callstack.callstack_create_vcpu(vcpu);
    e.callstack_instr_event = &ext;
    size_t len = panda__log_entry__get_packed_size(&e);
    put_varint(len);
    guint at = buf->len;
    g_byte_array_set_size(buf, at + (guint)len);
    panda__log_entry__pack(&e, buf->data + at);
    ct_callstack.callstack_free(e.call_stack);
    if (buf->len >= OUT_BUF) {
        flush();
    }
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
    flush();
}

static void p_after_fork_child(void)
{
}

static void p_finish(uint64_t ts)
{
    (void)ts;
    flush();
}

const ct_format ct_format_pandalog = {
    .name = "pandalog",
    .open = p_open,
    .stack_begin = p_stack_begin,
    .event = p_event,
    .stack_end = p_stack_end,
    .stack_discard = p_stack_discard,
    .before_fork = p_before_fork,
    .after_fork_child = p_after_fork_child,
    .finish = p_finish,
};
