/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pandalog-read: prints a file written by calltrace's format=pandalog (PANDA's
 * plog container, docs/formats.md), one line per entry, tab-separated
 * key=value fields:
 *
 *   instr=N  pc=0x...  func=0x...  function=NAME  module=PATH  depth=N
 *   stack=STACKID  return=0x...  callers=0x...,0x...
 *
 * callers is PANDA's CallStack (most recent first). Fields an entry lacks
 * are left out; PANDA's placeholder first entry (pc and instr all ones) is
 * not printed.
 *
 *   pandalog-read FILE            checks the container while reading it
 *   pandalog-read --salvage FILE  a file whose writer never finished (no
 *                                 header or directory): reads its chunks
 *                                 in order until the first incomplete one
 *
 * Checked: the header (version 2, a directory inside the file), the
 * directory (chunks in order, inside the chunk area, none empty), each
 * chunk (one whole zlib stream, no larger than the header's chunk_size,
 * holding exactly the directory's number of whole entries, each a
 * panda.LogEntry), and instr (never decreasing; a chunk's start_instr is
 * its first entry's). Exit status 0, or 1 with one line saying what is
 * wrong (after printing the entries before it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "pandalog_entry.pb-c.h"

#define HEADER_AREA 128
/* Larger chunks than this are refused rather than allocated. */
#define MAX_CHUNK (1u << 30)

static const char *file_name;
static int fd;
static uint64_t file_size;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "pandalog-read: %s: ", file_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static bool read_at(void *buf, size_t len, uint64_t at)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)at);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        p += r;
        at += (uint64_t)r;
        len -= (size_t)r;
    }
    return true;
}

/*
 * Inflates the zlib stream starting at `pos`, reading no further than
 * `end`. Returns the data (length in *out_len) and sets *consumed to the
 * stream's compressed length; NULL if the stream is damaged, incomplete,
 * or would exceed `limit` bytes (then *why says which).
 */
static uint8_t *inflate_at(uint64_t pos, uint64_t end, uint64_t limit, size_t *out_len,
                           uint64_t *consumed, const char **why)
{
    z_stream z = { 0 };
    if (inflateInit(&z) != Z_OK) {
        *why = "zlib cannot start";
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *out = malloc(cap), in[1 << 16];
    uint64_t at = pos;
    int r = Z_OK;
    *why = NULL;
    while (r != Z_STREAM_END) {
        if (z.avail_in == 0) {
            size_t n = end - at < sizeof in ? (size_t)(end - at) : sizeof in;
            if (n == 0 || !read_at(in, n, at)) {
                *why = "incomplete zlib stream";
                break;
            }
            z.next_in = in;
            z.avail_in = (uInt)n;
            at += n;
        }
        if (len == cap) {
            if (cap >= limit) {
                *why = "larger than the header's chunk_size";
                break;
            }
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        r = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
            *why = "damaged zlib stream";
            break;
        }
    }
    if (!*why && len > limit) {
        *why = "larger than the header's chunk_size";
    }
    inflateEnd(&z);
    if (*why) {
        free(out);
        return NULL;
    }
    *consumed = at - z.avail_in - pos;
    *out_len = len;
    return out;
}

static void print_entry(const Panda__LogEntry *e)
{
    printf("instr=%" PRIu64 "\tpc=0x%" PRIx64, e->instr, e->pc);
    const Panda__CallstackInstrEvent *x = e->callstack_instr_event;
    if (x) {
        if (x->has_function_address) {
            printf("\tfunc=0x%" PRIx64, x->function_address);
        }
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

static uint64_t n_entries, last_instr;

/* Prints a chunk's entries; returns how many there were. */
static uint64_t read_chunk(unsigned idx, const uint8_t *data, size_t len, bool check_start,
                           uint64_t start_instr)
{
    uint64_t n = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < 4) {
            die("chunk %u: entry %" PRIu64 " has a truncated length", idx, n + 1);
        }
        uint64_t el = get_le(data + off, 4);
        off += 4;
        if (el > len - off) {
            die("chunk %u: entry %" PRIu64 " is truncated (%" PRIu64 " bytes claimed, %zu left)",
                idx, n + 1, el, len - off);
        }
        Panda__LogEntry *e = panda__log_entry__unpack(NULL, el, data + off);
        if (!e) {
            die("chunk %u: entry %" PRIu64 " is not a panda.LogEntry", idx, n + 1);
        }
        off += el;
        bool placeholder = n_entries == 0 && e->pc == UINT64_MAX && e->instr == UINT64_MAX;
        if (!placeholder) {
            if (e->instr < last_instr) {
                die("chunk %u: entry %" PRIu64 " goes back in instr (%" PRIu64 " after %" PRIu64
                    ")", idx, n + 1, e->instr, last_instr);
            }
            /* PANDA's placeholder aside, the first entry starts the chunk */
            if (check_start && e->instr != start_instr) {
                die("chunk %u: start_instr %" PRIu64 " but its first entry has instr %" PRIu64,
                    idx, start_instr, e->instr);
            }
            check_start = false;
            last_instr = e->instr;
            print_entry(e);
        }
        n_entries++;
        n++;
        panda__log_entry__free_unpacked(e, NULL);
    }
    return n;
}

static int salvage(void)
{
    uint64_t pos = HEADER_AREA;
    unsigned idx = 0;
    while (pos < file_size) {
        size_t len;
        uint64_t used;
        const char *why;
        uint8_t *data = inflate_at(pos, file_size, MAX_CHUNK, &len, &used, &why);
        if (!data) {
            break;
        }
        read_chunk(idx++, data, len, false, 0);
        free(data);
        pos += used;
    }
    fflush(stdout);
    fprintf(stderr, "pandalog-read: %s: salvaged %u whole chunks, %" PRIu64 " entries\n",
            file_name, idx, n_entries);
    return 0;
}

int main(int argc, char **argv)
{
    bool salvaging = argc == 3 && strcmp(argv[1], "--salvage") == 0;
    if (argc != 2 && !salvaging) {
        fprintf(stderr, "usage: pandalog-read [--salvage] FILE\n");
        return 2;
    }
    file_name = argv[argc - 1];
    fd = open(file_name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "pandalog-read: %s: %s\n", file_name, strerror(errno));
        return 1;
    }
    file_size = (uint64_t)st.st_size;
    if (salvaging) {
        return salvage();
    }

    uint8_t h[24];
    if (file_size < HEADER_AREA || !read_at(h, sizeof h, 0)) {
        die("shorter than a pandalog header (%" PRIu64 " bytes)", file_size);
    }
    uint32_t version = (uint32_t)get_le(h, 4), chunk_size = (uint32_t)get_le(h + 16, 4);
    uint64_t dir_pos = get_le(h + 8, 8);
    if (version == 0 && dir_pos == 0) {
        die("no header: its writer did not finish (try --salvage)");
    }
    if (version != 2) {
        die("version %u, not a PANDA plog version 2", version);
    }
    if (dir_pos < HEADER_AREA || dir_pos > file_size - 4) {
        die("directory position %" PRIu64 " outside the file (%" PRIu64 " bytes)", dir_pos,
            file_size);
    }
    uint8_t nb[4];
    if (!read_at(nb, 4, dir_pos)) {
        die("cannot read the directory");
    }
    uint64_t n_chunks = get_le(nb, 4);
    if (n_chunks == 0 || n_chunks > (file_size - dir_pos - 4) / 24) {
        die("directory of %" PRIu64 " chunks does not fit the file", n_chunks);
    }
    if (dir_pos + 4 + 24 * n_chunks != file_size) {
        die("%" PRIu64 " bytes after the directory", file_size - dir_pos - 4 - 24 * n_chunks);
    }
    uint8_t *d = malloc(24 * n_chunks);
    if (!read_at(d, 24 * n_chunks, dir_pos + 4)) {
        die("cannot read the directory");
    }
    uint64_t expect_pos = HEADER_AREA, prev_start = 0;
    for (uint64_t i = 0; i < n_chunks; i++) {
        uint64_t start = get_le(d + 24 * i, 8), pos = get_le(d + 24 * i + 8, 8);
        uint64_t num = get_le(d + 24 * i + 16, 8);
        if (pos != expect_pos) {
            die("chunk %" PRIu64 " at %" PRIu64 ", expected at %" PRIu64 " (after chunk %" PRIu64
                ")", i, pos, expect_pos, i ? i - 1 : 0);
        }
        if (num == 0) {
            die("chunk %" PRIu64 " is empty", i);
        }
        if (i && start < prev_start) {
            die("chunk %" PRIu64 " starts at instr %" PRIu64 ", before chunk %" PRIu64 " (%" PRIu64
                ")", i, start, i - 1, prev_start);
        }
        uint64_t end = i + 1 < n_chunks ? get_le(d + 24 * (i + 1) + 8, 8) : dir_pos;
        if (end <= pos || end > dir_pos) {
            die("chunk %" PRIu64 " ends at %" PRIu64 ", outside [%" PRIu64 ", %" PRIu64 "]", i,
                end, pos, dir_pos);
        }
        size_t len;
        uint64_t used;
        const char *why;
        uint8_t *data = inflate_at(pos, end, chunk_size, &len, &used, &why);
        if (!data) {
            die("chunk %" PRIu64 ": %s", i, why);
        }
        if (used != end - pos) {
            die("chunk %" PRIu64 ": %" PRIu64 " bytes after its zlib stream", i, end - pos - used);
        }
        uint64_t got = read_chunk((unsigned)i, data, len, true, start);
        if (got != num) {
            die("chunk %" PRIu64 " holds %" PRIu64 " entries, the directory says %" PRIu64, i, got,
                num);
        }
        free(data);
        expect_pos = end;
        prev_start = start;
    }
    free(d);
    return 0;
}
