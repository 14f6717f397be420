/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pandalog-read: prints a file written by calltrace's format=pandalog, one
 * line per entry, tab-separated key=value fields:
 *
 *   instr=N  pc=0x...  function=NAME  module=PATH  depth=N  stack=STACKID
 *   return=0x...  callers=0x...,0x...
 *
 * callers is PANDA's CallStack (most recent first). Fields an entry lacks
 * are left out. The file is a sequence of varint-length-prefixed
 * panda.LogEntry messages (proto/pandalog_entry.proto).
 *
 *   pandalog-read FILE      (or - for standard input)
 *
 * Exit status 0, or 1 with a message if the file is not such a sequence.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pandalog_entry.pb-c.h"

/* Reads a varint; 0 at a clean end of file, -1 on a truncated one. */
static int read_varint(FILE *f, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        int c = getc(f);
        if (c == EOF) {
            return shift == 0 ? 0 : -1;
        }
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            return 1;
        }
    }
    return -1;
}

static void print_entry(const Panda__LogEntry *e)
{
    printf("instr=%" PRIu64 "\tpc=0x%" PRIx64, e->instr, e->pc);
    const Panda__CallstackInstrEvent *x = e->callstack_instr_event;
    if (x) {
        if (x->function) {
            printf("\tfunction=%s", x->function);
        }
        if (x->module) {
            printf("\tmodule=%s", x->module);
        }
        printf("\tdepth=%" PRIu64 "\tstack=%s", x->depth, x->stack_id);
        if (x->has_return_address) {
            printf("\treturn=0x%" PRIx64, x->return_address);
        }
    }
    if (e->call_stack) {
        printf("\tcallers=");
        for (size_t i = 0; i < e->call_stack->n_addr; i++) {
            printf("%s0x%" PRIx64, i ? "," : "", e->call_stack->addr[i]);
        }
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pandalog-read FILE   (- for standard input)\n");
        return 2;
    }
    FILE *f = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    uint64_t n = 0, len;
    uint8_t *buf = NULL;
    long at = 0;
    int r;
    while ((r = read_varint(f, &len)) == 1) {
        if (len > (1u << 30)) {
            fprintf(stderr, "pandalog-read: entry %" PRIu64 " claims %" PRIu64 " bytes: not a pandalog\n",
                    n + 1, len);
            return 1;
        }
        buf = realloc(buf, len ? len : 1);
        if (fread(buf, 1, len, f) != len) {
            fprintf(stderr, "pandalog-read: entry %" PRIu64 " is truncated\n", n + 1);
            return 1;
        }
        Panda__LogEntry *e = panda__log_entry__unpack(NULL, len, buf);
        if (!e) {
            fprintf(stderr, "pandalog-read: entry %" PRIu64 " is not a panda.LogEntry\n", n + 1);
            return 1;
        }
        print_entry(e);
        panda__log_entry__free_unpacked(e, NULL);
        n++;
        at = ftell(f);
    }
    if (r < 0) {
        fprintf(stderr, "pandalog-read: truncated length after byte %ld\n", at);
        return 1;
    }
    free(buf);
    return 0;
}
