/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel image -> BTF blob (see image.h). Every length read from the image
 * is checked against what is there; decompressed output is capped
 * (osi_image_set_limit), so hostile images end in one line of error.
 */
#define _GNU_SOURCE   /* memmem */
#include "osi/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include "osi/btf_util.h"

static size_t limit = OSI_IMAGE_MAX_BYTES;

void osi_image_set_limit(size_t bytes)
{
    limit = bytes && bytes < OSI_IMAGE_MAX_BYTES ? bytes : OSI_IMAGE_MAX_BYTES;
}

/* One load: where messages go and what has been read so far. */
typedef struct ctx {
    const char *name;
    char *err;
    size_t errlen;
    char format[64];
    osi_image *out;
} ctx;

#define fail(c, ...) osi_errf((c)->err, (c)->errlen, __VA_ARGS__)

static void add_format(ctx *c, const char *part)
{
    size_t n = strlen(c->format);
    snprintf(c->format + n, sizeof c->format - n, "%s%s", n ? ", " : "", part);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* The first four bytes, for messages ("1f 8b 08 00"). */
static const char *magic_str(const uint8_t *p, size_t n, char buf[16])
{
    buf[0] = 0;
    for (size_t i = 0; i < n && i < 4; i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, 16 - at, i ? " %02x" : "%02x", p[i]);
    }
    if (!n) {
        snprintf(buf, 16, "none: empty");
    }
    return buf;
}

/* ---- Decompression into a growing buffer, capped at `limit`. ---- */

typedef struct obuf {
    uint8_t *p;
    size_t len, cap;
} obuf;

/* At least `want` free bytes (fewer when the limit is nearer); false at the limit. */
static bool ob_room(ctx *c, obuf *b, size_t want)
{
    if (b->cap - b->len >= want) {
        return true;
    }
    if (b->len >= limit) {
        return fail(c, "%s: decompresses to more than %zu MiB: not a kernel image", c->name,
                    limit >> 20);
    }
    size_t cap = b->cap ? b->cap : ((size_t)1 << 20);
    while (cap - b->len < want && cap < limit) {
        cap = cap > limit / 2 ? limit : cap * 2;
    }
    if (cap > limit) {
        cap = limit;
    }
    b->p = g_realloc(b->p, cap);
    b->cap = cap;
    return true;
}

typedef enum codec {
    C_NONE, C_GZIP, C_XZ, C_LZMA, C_BZIP2, C_LZ4, C_ZSTD, C_LZO,
} codec;

static const char *const codec_names[] = {
    [C_NONE] = "none", [C_GZIP] = "gzip", [C_XZ] = "xz", [C_LZMA] = "lzma",
    [C_BZIP2] = "bzip2", [C_LZ4] = "lz4", [C_ZSTD] = "zstd", [C_LZO] = "lzo",
};

static const uint8_t lzop_magic[9] = { 0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a, 0x0a };

/* The codec by its magic (the same magics Linux's decompressors check). */
static codec codec_of(const uint8_t *p, size_t n)
{
    if (n >= 3 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e) && p[2] == 8) {
        return C_GZIP;
    }
    if (n >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6)) {
        return C_XZ;
    }
    if (n >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0) {
        return C_LZMA;
    }
    if (n >= 4 && !memcmp(p, "BZh", 3) && p[3] >= '1' && p[3] <= '9') {
        return C_BZIP2;
    }
    if (n >= 4 && le32(p) == 0x184c2102) {
        return C_LZ4;
    }
    if (n >= 4 && le32(p) == 0xfd2fb528) {
        return C_ZSTD;
    }
    if (n >= sizeof lzop_magic && !memcmp(p, lzop_magic, sizeof lzop_magic)) {
        return C_LZO;
    }
    return C_NONE;
}

#define CHUNK ((size_t)4 << 20)

static bool truncated(ctx *c, codec k)
{
    return fail(c, "%s: truncated %s data", c->name, codec_names[k]);
}

static bool corrupt(ctx *c, codec k, const char *why)
{
    return fail(c, "%s: corrupt %s data (%s)", c->name, codec_names[k], why);
}

/* Each decoder stops at the end of its stream: what follows (Linux appends
 * the uncompressed size to most payloads) is ignored. */
static bool un_gzip(ctx *c, const uint8_t *in, size_t n, obuf *b)
{
    z_stream s = { 0 };
    bool ok = false;
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) {
        return fail(c, "%s: zlib initialisation failed", c->name);
    }
    s.next_in = (Bytef *)in;
    s.avail_in = (uInt)n;
    for (;;) {
        if (!ob_room(c, b, CHUNK)) {
            goto out;
        }
        s.next_out = b->p + b->len;
        s.avail_out = (uInt)(b->cap - b->len);
        int r = inflate(&s, Z_NO_FLUSH);
        b->len = b->cap - s.avail_out;
        if (r == Z_STREAM_END) {
            break;
        }
        if (r == Z_BUF_ERROR && s.avail_in == 0) {
            truncated(c, C_GZIP);
            goto out;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            corrupt(c, C_GZIP, s.msg ? s.msg : "inflate failed");
            goto out;
        }
    }
    ok = true;
out:
    inflateEnd(&s);
    return ok;
}

static bool un_xz(ctx *c, codec k, const uint8_t *in, size_t n, obuf *b)
{
    lzma_stream s = LZMA_STREAM_INIT;
    bool ok = false;
    lzma_ret r = k == C_XZ ? lzma_stream_decoder(&s, (uint64_t)1 << 30, 0)
                           : lzma_alone_decoder(&s, (uint64_t)1 << 30);
    if (r != LZMA_OK) {
        return fail(c, "%s: liblzma initialisation failed", c->name);
    }
    s.next_in = in;
    s.avail_in = n;
    for (;;) {
        if (!ob_room(c, b, CHUNK)) {
            goto out;
        }
        s.next_out = b->p + b->len;
        s.avail_out = b->cap - b->len;
        r = lzma_code(&s, LZMA_FINISH);
        b->len = b->cap - s.avail_out;
        if (r == LZMA_STREAM_END) {
            break;
        }
        if (r == LZMA_BUF_ERROR || (r == LZMA_OK && s.avail_in == 0 && s.avail_out)) {
            truncated(c, k);
            goto out;
        }
        if (r != LZMA_OK) {
            corrupt(c, k, r == LZMA_MEMLIMIT_ERROR ? "dictionary larger than 1 GiB"
                          : r == LZMA_FORMAT_ERROR ? "bad header" : "bad stream");
            goto out;
        }
    }
    ok = true;
out:
    lzma_end(&s);
    return ok;
}

static bool un_bzip2(ctx *c, const uint8_t *in, size_t n, obuf *b)
{
    bz_stream s = { 0 };
    bool ok = false;
    if (n > UINT_MAX || BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) {
        return fail(c, "%s: libbz2 initialisation failed", c->name);
    }
    s.next_in = (char *)in;
    s.avail_in = (unsigned)n;
    for (;;) {
        if (!ob_room(c, b, CHUNK)) {
            goto out;
        }
        size_t room = b->cap - b->len;
        s.next_out = (char *)b->p + b->len;
        s.avail_out = room > UINT_MAX ? UINT_MAX : (unsigned)room;
        unsigned before = s.avail_out;
        int r = BZ2_bzDecompress(&s);
        b->len += before - s.avail_out;
        if (r == BZ_STREAM_END) {
            break;
        }
        if (r != BZ_OK) {
            corrupt(c, C_BZIP2, "bad block");
            goto out;
        }
        if (s.avail_in == 0 && s.avail_out) {
            truncated(c, C_BZIP2);
            goto out;
        }
    }
    ok = true;
out:
    BZ2_bzDecompressEnd(&s);
    return ok;
}

static bool un_zstd(ctx *c, const uint8_t *in, size_t n, obuf *b)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    bool ok = false;
    if (!d) {
        return fail(c, "%s: libzstd initialisation failed", c->name);
    }
    ZSTD_inBuffer ib = { in, n, 0 };
    for (;;) {
        if (!ob_room(c, b, CHUNK)) {
            goto out;
        }
        ZSTD_outBuffer ob = { b->p + b->len, b->cap - b->len, 0 };
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        b->len += ob.pos;
        if (ZSTD_isError(r)) {
            corrupt(c, C_ZSTD, ZSTD_getErrorName(r));
            goto out;
        }
        if (r == 0) {
            break;   /* the frame is complete */
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            truncated(c, C_ZSTD);
            goto out;
        }
    }
    ok = true;
out:
    ZSTD_freeDCtx(d);
    return ok;
}

/*
 * LZ4 "legacy" frames, as Linux builds them (lz4 -l): the magic, then
 * blocks each of a little-endian compressed size and data decompressing to
 * at most 8 MiB. A repeated magic starts another stream; the appended
 * uncompressed size (4 bytes at the very end), a zero size or bytes too
 * few for a size end the data.
 */
#define LZ4_LEGACY_BLOCK ((size_t)8 << 20)

static bool un_lz4(ctx *c, const uint8_t *in, size_t n, obuf *b)
{
    size_t pos = 4, blocks = 0;
    while (n - pos >= 4 && pos + 4 != n) {
        uint32_t size = le32(in + pos);
        pos += 4;
        if (size == 0x184c2102) {
            continue;
        }
        if (size == 0) {
            break;
        }
        if (size > n - pos) {
            return truncated(c, C_LZ4);
        }
        if (size > (uint32_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK)) {
            return corrupt(c, C_LZ4, "block larger than the format allows");
        }
        if (!ob_room(c, b, LZ4_LEGACY_BLOCK)) {
            return false;
        }
        size_t room = b->cap - b->len;
        int r = LZ4_decompress_safe((const char *)in + pos, (char *)b->p + b->len, (int)size,
                                    (int)(room < LZ4_LEGACY_BLOCK ? room : LZ4_LEGACY_BLOCK));
        if (r < 0) {
            if (room < LZ4_LEGACY_BLOCK && b->len + room >= limit) {
                return ob_room(c, b, room + 1);   /* reports the limit */
            }
            return corrupt(c, C_LZ4, "bad block");
        }
        b->len += (size_t)r;
        pos += size;
        blocks++;
    }
    return blocks ? true : truncated(c, C_LZ4);
}

/* lzop's file format (header flags and fields as lzop writes them). */
#define LZOP_ADLER32_D 0x1
#define LZOP_ADLER32_C 0x2
#define LZOP_EXTRA_FIELD 0x40
#define LZOP_CRC32_D 0x100
#define LZOP_CRC32_C 0x200
#define LZOP_FILTER 0x800
#define LZOP_MAX_BLOCK ((uint32_t)64 << 20)

typedef struct cursor {
    const uint8_t *p;
    size_t n, pos;
    bool short_read;
} cursor;

static const uint8_t *take(cursor *r, size_t k)
{
    if (r->short_read || r->n - r->pos < k) {
        r->short_read = true;
        return NULL;
    }
    r->pos += k;
    return r->p + r->pos - k;
}

static uint32_t take_be(cursor *r, size_t k)
{
    const uint8_t *p = take(r, k);
    uint32_t v = 0;
    for (size_t i = 0; p && i < k; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static bool un_lzo(ctx *c, const uint8_t *in, size_t n, obuf *b)
{
    cursor r = { in, n, sizeof lzop_magic, false };
    if (lzo_init() != LZO_E_OK) {
        return fail(c, "%s: liblzo2 initialisation failed", c->name);
    }
    uint32_t version = take_be(&r, 2);
    take_be(&r, 2);                        /* library version */
    if (version >= 0x0940) {
        take_be(&r, 2);                    /* version needed to extract */
    }
    uint32_t method = take_be(&r, 1);
    if (version >= 0x0940) {
        take_be(&r, 1);                    /* level */
    }
    uint32_t flags = take_be(&r, 4);
    if (flags & LZOP_FILTER) {
        take_be(&r, 4);
    }
    take_be(&r, 4);                        /* mode */
    take_be(&r, 4);                        /* mtime */
    if (version >= 0x0940) {
        take_be(&r, 4);                    /* mtime, high half */
    }
    take(&r, take_be(&r, 1));              /* file name */
    take_be(&r, 4);                        /* header checksum */
    if (flags & LZOP_EXTRA_FIELD) {
        take(&r, take_be(&r, 4));
        take_be(&r, 4);
    }
    if (r.short_read) {
        return truncated(c, C_LZO);
    }
    if (method < 1 || method > 3) {
        return corrupt(c, C_LZO, "not an LZO1X method");
    }
    for (;;) {
        uint32_t dst_len = take_be(&r, 4);
        if (r.short_read) {
            return truncated(c, C_LZO);
        }
        if (dst_len == 0) {
            break;
        }
        uint32_t src_len = take_be(&r, 4);
        take(&r, (flags & LZOP_ADLER32_D ? 4 : 0) + (flags & LZOP_CRC32_D ? 4 : 0));
        if (src_len < dst_len) {
            take(&r, (flags & LZOP_ADLER32_C ? 4 : 0) + (flags & LZOP_CRC32_C ? 4 : 0));
        }
        const uint8_t *src = take(&r, src_len);
        if (r.short_read) {
            return truncated(c, C_LZO);
        }
        if (dst_len > LZOP_MAX_BLOCK || src_len > dst_len) {
            return corrupt(c, C_LZO, "bad block sizes");
        }
        if (!ob_room(c, b, dst_len)) {
            return false;
        }
        if (b->cap - b->len < dst_len) {
            return ob_room(c, b, b->cap - b->len + 1);   /* reports the limit */
        }
        if (src_len == dst_len) {
            memcpy(b->p + b->len, src, dst_len);   /* stored uncompressed */
        } else {
            lzo_uint got = dst_len;
            if (lzo1x_decompress_safe(src, src_len, b->p + b->len, &got, NULL) != LZO_E_OK
                || got != dst_len) {
                return corrupt(c, C_LZO, "bad block");
            }
        }
        b->len += dst_len;
    }
    return true;
}

static bool decompress(ctx *c, codec k, const uint8_t *in, size_t n, obuf *b)
{
    /* A first guess at the output size: kernels compress about 4:1. */
    size_t guess = n < limit / 4 ? n * 4 : limit;
    b->p = g_malloc(guess ? guess : 1);
    b->cap = guess ? guess : 1;
    b->len = 0;
    switch (k) {
    case C_GZIP: return un_gzip(c, in, n, b);
    case C_XZ:
    case C_LZMA: return un_xz(c, k, in, n, b);
    case C_BZIP2: return un_bzip2(c, in, n, b);
    case C_LZ4: return un_lz4(c, in, n, b);
    case C_ZSTD: return un_zstd(c, in, n, b);
    case C_LZO: return un_lzo(c, in, n, b);
    case C_NONE: break;
    }
    return fail(c, "%s: no decompressor", c->name);
}

/* ---- BTF ---- */

/* Whether libbpf accepts the blob (its own full validation). */
static bool btf_valid(const uint8_t *p, size_t n)
{
    struct btf *btf = osi_btf_parse(p, n);
    btf__free(btf);
    return btf != NULL;
}

/*
 * The size of the BTF blob starting at p, if its header is consistent
 * (magic 0xeB9F in either byte order, version 1, flags 0, sections inside
 * what is there, the string section NUL-delimited), else 0.
 */
static size_t btf_blob_at(const uint8_t *p, size_t avail)
{
    if (avail < 24 || p[2] != 1 || p[3] != 0) {
        return 0;
    }
    bool le = p[0] == 0x9f && p[1] == 0xeb, be = p[0] == 0xeb && p[1] == 0x9f;
    if (!le && !be) {
        return 0;
    }
    uint32_t f[5];   /* hdr_len, type_off, type_len, str_off, str_len */
    for (int i = 0; i < 5; i++) {
        f[i] = le ? le32(p + 4 + 4 * i) : be32(p + 4 + 4 * i);
    }
    uint64_t hdr = f[0], types_end = (uint64_t)f[1] + f[2], strs_end = (uint64_t)f[3] + f[4];
    if (hdr < 24 || hdr > 256 || hdr % 4 || f[1] % 4 || f[4] == 0
        || (f[1] < f[3] ? types_end > f[3] : strs_end > f[1])) {
        return 0;
    }
    uint64_t size = hdr + (types_end > strs_end ? types_end : strs_end);
    if (size > avail) {
        return 0;
    }
    const uint8_t *strs = p + hdr + f[3];
    if (strs[0] != 0 || strs[f[4] - 1] != 0) {
        return 0;
    }
    return (size_t)size;
}

static bool take_btf(ctx *c, const uint8_t *p, size_t n)
{
    c->out->btf = g_memdup2(p, n);
    c->out->btf_size = n;
    return true;
}

/*
 * The first blob in data with a consistent header that libbpf accepts,
 * little-endian ones first; libbpf is asked at most 16 times.
 */
static bool scan_btf(ctx *c, const uint8_t *data, size_t n)
{
    static const uint8_t magics[2][4] = { { 0x9f, 0xeb, 1, 0 }, { 0xeb, 0x9f, 1, 0 } };
    int tries = 0;
    for (int m = 0; m < 2; m++) {
        const uint8_t *q = data;
        while (tries < 16 && (q = memmem(q, n - (size_t)(q - data), magics[m], 4))) {
            size_t size = btf_blob_at(q, n - (size_t)(q - data));
            if (size) {
                tries++;
                if (btf_valid(q, size)) {
                    return take_btf(c, q, size);
                }
            }
            q++;
        }
    }
    return false;
}

/* ---- ELF: the .BTF section, by a small bounds-checked reader. ---- */

typedef struct elf_rd {
    const uint8_t *p;
    size_t n;
    bool is64, be, bad;
} elf_rd;

static uint64_t eget(elf_rd *e, uint64_t off, unsigned size)
{
    if (e->bad || off > e->n || e->n - off < size) {
        e->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)e->p[off + (e->be ? size - 1 - i : i)] << (8 * i);
    }
    return v;
}

/* 1: found (taken), 0: the ELF has no .BTF, -1: no usable section headers. */
static int elf_btf(ctx *c, const uint8_t *p, size_t n)
{
    elf_rd e = { p, n, p[4] == 2, p[5] == 2, false };
    if ((p[4] != 1 && p[4] != 2) || (p[5] != 1 && p[5] != 2)) {
        return -1;
    }
    unsigned w = e.is64 ? 8 : 4;
    uint64_t shoff = eget(&e, e.is64 ? 0x28 : 0x20, w);
    uint64_t shentsize = eget(&e, e.is64 ? 0x3a : 0x2e, 2);
    uint64_t shnum = eget(&e, e.is64 ? 0x3c : 0x30, 2);
    uint64_t shstrndx = eget(&e, e.is64 ? 0x3e : 0x32, 2);
    if (e.bad || shoff == 0 || shentsize < (e.is64 ? 64u : 40u)) {
        return -1;
    }
    /* Offsets in a section header. */
    unsigned o_link = e.is64 ? 0x28 : 0x18, o_type = 4;
    unsigned o_off = e.is64 ? 0x18 : 0x10, o_size = e.is64 ? 0x20 : 0x14;
    if (shnum == 0) {   /* more than 0xff00 sections: the count is in section 0 */
        shnum = eget(&e, shoff + o_size, w);
    }
    if (shstrndx == 0xffff) {
        shstrndx = eget(&e, shoff + o_link, 4);
    }
    if (shoff > n || (!e.bad && shnum > (n - shoff) / shentsize)) {
        fail(c, "%s: truncated: the ELF's section headers end past the end of the file", c->name);
        return 1;
    }
    if (e.bad || shnum == 0 || shstrndx >= shnum) {
        return -1;
    }
    uint64_t str_sh = shoff + shstrndx * shentsize;
    uint64_t str_off = eget(&e, str_sh + o_off, w), str_size = eget(&e, str_sh + o_size, w);
    if (e.bad || str_off > n || str_size > n - str_off) {
        return -1;
    }
    for (uint64_t i = 0; i < shnum; i++) {
        uint64_t sh = shoff + i * shentsize;
        uint64_t name = eget(&e, sh, 4), type = eget(&e, sh + o_type, 4);
        uint64_t off = eget(&e, sh + o_off, w), size = eget(&e, sh + o_size, w);
        if (e.bad) {
            return -1;
        }
        if (name + 5 > str_size || memcmp(p + str_off + name, ".BTF", 5) || type == 8 /* NOBITS */) {
            continue;
        }
        if (off > n || size > n - off) {
            fail(c, "%s: truncated: the .BTF section ends past the end of the ELF", c->name);
        } else if (btf_blob_at(p + off, size) != size || !btf_valid(p + off, size)) {
            fail(c, "%s: the .BTF section is not valid BTF", c->name);
        } else {
            take_btf(c, p + off, size);
        }
        return 1;
    }
    return 0;
}

/* ---- The image formats ---- */

/*
 * The "Linux version ..." banner. Linux 6.1+ holds two: a fallback without
 * the build number ("# SMP ...") and the one in use ("#1 SMP ..."): the
 * first with a build number wins, else the first.
 */
static void find_version(ctx *c, const uint8_t *p, size_t n)
{
    static const char banner[] = "Linux version ";
    const size_t bl = sizeof banner - 1;
    bool found = false;
    for (const uint8_t *q = p; (q = memmem(q, n - (size_t)(q - p), banner, bl)); q++) {
        size_t avail = n - (size_t)(q - p), k = bl;
        if (avail == bl || !g_ascii_isdigit(q[bl])) {
            continue;
        }
        while (k < avail && q[k] >= 0x20 && q[k] < 0x7f) {
            k++;
        }
        const uint8_t *hash = memchr(q, '#', k);
        bool numbered = hash && hash + 1 < q + k && g_ascii_isdigit(hash[1]);
        if (!found || numbered) {
            size_t keep = k < sizeof c->out->version ? k : sizeof c->out->version - 1;
            memcpy(c->out->version, q, keep);
            c->out->version[keep] = 0;
            found = true;
        }
        if (numbered) {
            return;
        }
    }
}

static bool no_btf(ctx *c)
{
    return fail(c, "no BTF in %s (%s): the kernel was built without CONFIG_DEBUG_INFO_BTF",
                c->name, c->format);
}

static bool examine(ctx *c, const uint8_t *p, size_t n, int depth);

/* Decompresses a payload (or a whole file) with codec k and reads the result. */
static bool unpack(ctx *c, codec k, const uint8_t *p, size_t n, const char *what, int depth)
{
    char part[48];
    obuf b = { 0 };
    snprintf(part, sizeof part, "%s%s", codec_names[k], what);
    add_format(c, part);
    bool ok = decompress(c, k, p, n, &b) && examine(c, b.p, b.len, depth + 1);
    g_free(b.p);
    return ok;
}

/* A boot wrapper's compressed payload: len bytes at off in the file. */
static bool payload(ctx *c, const uint8_t *p, size_t n, uint64_t off, uint64_t len, int depth)
{
    char m[16];
    if (off > n || len > n - off) {
        return fail(c, "%s: truncated: the %s payload ends at byte %" PRIu64 ", the file has %zu",
                    c->name, c->format, off + len, n);
    }
    codec k = codec_of(p + off, len);
    if (k == C_NONE) {
        return fail(c, "%s: unknown payload compression (magic %s)", c->name,
                    magic_str(p + off, len, m));
    }
    return unpack(c, k, p + off, len, " payload", depth);
}

/* An x86 bzImage's payload (boot protocol 2.08+ setup header: setup_sects
 * at 0x1f1, payload_offset and payload_length at 0x248 and 0x24c). */
static bool bzimage(ctx *c, const uint8_t *p, size_t n, int depth)
{
    add_format(c, "bzImage");
    if (n < 0x250 || (p[0x206] | p[0x207] << 8) < 0x208) {
        return fail(c, "%s: bzImage boot protocol older than 2.08 (no payload fields)", c->name);
    }
    uint64_t setup = p[0x1f1] ? p[0x1f1] : 4;
    return payload(c, p, n, (setup + 1) * 512 + le32(p + 0x248), le32(p + 0x24c), depth);
}

/* An EFI zboot image (arm64, riscv, loongarch): "zimg" at 4, the payload's
 * offset and size at 8 and 12 (the compression's name at 24 is not needed:
 * the payload's magic says it). */
static bool zboot(ctx *c, const uint8_t *p, size_t n, int depth)
{
    add_format(c, "EFI zboot");
    return payload(c, p, n, le32(p + 8), le32(p + 12), depth);
}

static bool examine(ctx *c, const uint8_t *p, size_t n, int depth)
{
    char m[16];
    if (depth > 3) {
        return fail(c, "%s: compressed more than 3 times over: not a kernel image", c->name);
    }
    if (n >= 0x40 && !memcmp(p, "\x7f" "ELF", 4)) {
        add_format(c, "ELF vmlinux");
        find_version(c, p, n);
        int r = elf_btf(c, p, n);
        if (r >= 0) {
            return r ? c->out->btf != NULL : no_btf(c);
        }
        return scan_btf(c, p, n) || no_btf(c);
    }
    if (btf_blob_at(p, n) == n) {
        add_format(c, "raw BTF");
        return (btf_valid(p, n) && take_btf(c, p, n))
               || fail(c, "%s: the BTF blob is not valid BTF", c->name);
    }
    if (n >= 0x250 && !memcmp(p + 0x202, "HdrS", 4)) {
        return bzimage(c, p, n, depth);
    }
    if (n >= 28 && !memcmp(p, "MZ", 2) && !memcmp(p + 4, "zimg", 4)) {
        return zboot(c, p, n, depth);
    }
    if (n >= 0x40 && !memcmp(p + 0x38, "ARM\x64", 4)) {
        add_format(c, "arm64 Image");
        find_version(c, p, n);
        return scan_btf(c, p, n) || no_btf(c);
    }
    codec k = codec_of(p, n);
    if (k != C_NONE) {
        return unpack(c, k, p, n, "-compressed", depth);
    }
    /* Other architectures' raw images: the BTF found by its header. */
    if (scan_btf(c, p, n)) {
        add_format(c, "raw image");
        find_version(c, p, n);
        return true;
    }
    if (depth == 0) {
        return fail(c, "%s: not a kernel image and no BTF in it (magic %s)", c->name,
                    magic_str(p, n, m));
    }
    return fail(c, "%s: the decompressed %s is not a kernel image and has no BTF (magic %s)",
                c->name, c->format, magic_str(p, n, m));
}

bool osi_image_load_mem(const uint8_t *data, size_t size, const char *name, osi_image *out,
                        char *err, size_t errlen)
{
    ctx c = { .name = name, .err = err, .errlen = errlen, .out = out };
    memset(out, 0, sizeof *out);
    if (errlen) {
        err[0] = 0;
    }
    if (size == 0) {
        return fail(&c, "%s: empty file", name);
    }
    if (size > limit) {
        return fail(&c, "%s: larger than %zu MiB: not a kernel image", name, limit >> 20);
    }
    if (!examine(&c, data, size, 0)) {
        g_free(out->btf);
        memset(out, 0, sizeof *out);
        return false;
    }
    snprintf(out->format, sizeof out->format, "%s", c.format);
    return true;
}

bool osi_image_load(const char *path, osi_image *out, char *err, size_t errlen)
{
    ctx c = { .name = path, .err = err, .errlen = errlen, .out = out };
    struct stat st;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(&c, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bool dir = S_ISDIR(st.st_mode);
        close(fd);
        return fail(&c, "%s: %s", path, dir ? "is a directory, not a kernel image" : "not a regular file");
    }
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        return fail(&c, "%s: larger than %zu MiB: not a kernel image", path, limit >> 20);
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *data = g_malloc(n ? n : 1);
    while (got < n) {
        ssize_t r = read(fd, data + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            g_free(data);
            return fail(&c, "%s: read error: %s", path, e ? strerror(e) : "the file shrank");
        }
        got += (size_t)r;
    }
    close(fd);
    bool ok = osi_image_load_mem(data, n, path, out, err, errlen);
    g_free(data);
    return ok;
}

void osi_image_free(osi_image *img)
{
    if (img) {
        g_free(img->btf);
        memset(img, 0, sizeof *img);
    }
}
