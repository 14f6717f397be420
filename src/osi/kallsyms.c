/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel symbol maps (System.map, /proc/kallsyms dumps) and the KASLR
 * slide finder: see kallsyms.h.
 */
#define _GNU_SOURCE   /* qsort_r */
#include "osi/kallsyms.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Linux's KSYM_NAME_LEN (512 since 6.1) with room for the address, type
 * and a module name. */
#define LINE_MAX_BYTES 1024
#define NAME_MAX_BYTES 512

typedef struct ksym {
    uint64_t addr;
    uint32_t name;      /* offset in names */
    uint32_t seq;       /* line order among kept symbols */
    char type;
} ksym;

struct osi_ksyms {
    ksym *by_addr;      /* by address; aliases: function first, then file order */
    uint32_t *by_name;  /* indices into by_addr, by (name, file order) */
    size_t n;
    char *names;
    size_t names_len;
};

static bool is_text(char type)
{
    return type == 't' || type == 'T' || type == 'w' || type == 'W';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Parses "ADDR TYPE NAME [module]"; on success *name points into line and
 * is NUL-terminated there. False for any other form.
 */
static bool parse_line(char *line, uint64_t *addr, char *type, char **name, size_t *name_len,
                       bool *module)
{
    char *p = line;
    uint64_t a = 0;
    int digits = 0;
    for (int v; (v = hexval(*p)) >= 0; p++) {
        if (++digits > 16) {
            return false;
        }
        a = a << 4 | (uint64_t)v;
    }
    if (digits == 0 || (*p != ' ' && *p != '\t')) {
        return false;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    char t = *p++;
    if (!((t >= 'a' && t <= 'z') || (t >= 'A' && t <= 'Z')) || (*p != ' ' && *p != '\t')) {
        return false;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    char *n = p;
    while (*p && !is_space(*p)) {
        p++;
    }
    size_t len = (size_t)(p - n);
    if (len == 0 || len >= NAME_MAX_BYTES) {
        return false;
    }
    char *end = p;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    bool mod = false;
    if (*p == '[') {
        char *close = strchr(p, ']');
        if (!close || close == p + 1) {
            return false;
        }
        mod = true;
        p = close + 1;
    }
    while (*p) {
        if (!is_space(*p++)) {
            return false;
        }
    }
    *end = '\0';
    *addr = a;
    *type = t;
    *name = n;
    *name_len = len;
    *module = mod;
    return true;
}

static int cmp_addr(const void *pa, const void *pb)
{
    const ksym *a = pa, *b = pb;
    if (a->addr != b->addr) {
        return a->addr < b->addr ? -1 : 1;
    }
    bool ta = is_text(a->type), tb = is_text(b->type);
    if (ta != tb) {
        return ta ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_name(const void *pa, const void *pb, void *ctx)
{
    const osi_ksyms *k = ctx;
    const ksym *a = &k->by_addr[*(const uint32_t *)pa];
    const ksym *b = &k->by_addr[*(const uint32_t *)pb];
    int c = strcmp(k->names + a->name, k->names + b->name);
    if (c) {
        return c;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Appends one symbol; false (err set) when a bound or memory runs out. */
static bool add_symbol(osi_ksyms *k, size_t *cap, size_t *names_cap, uint64_t addr, char type,
                       const char *name, size_t len, const char *path, char *err, size_t errlen)
{
    if (k->n >= OSI_KSYMS_MAX_SYMBOLS || k->names_len + len + 1 > OSI_KSYMS_MAX_NAME_BYTES) {
        set_err(err, errlen, "%s: more than %u symbols or %u MiB of names: not a kernel symbol map",
                path, OSI_KSYMS_MAX_SYMBOLS, OSI_KSYMS_MAX_NAME_BYTES >> 20);
        return false;
    }
    if (k->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        ksym *g = realloc(k->by_addr, nc * sizeof *g);
        if (!g) {
            set_err(err, errlen, "%s: out of memory", path);
            return false;
        }
        k->by_addr = g;
        *cap = nc;
    }
    if (k->names_len + len + 1 > *names_cap) {
        size_t nc = *names_cap ? *names_cap * 2 : 65536;
        while (nc < k->names_len + len + 1) {
            nc *= 2;
        }
        char *g = realloc(k->names, nc);
        if (!g) {
            set_err(err, errlen, "%s: out of memory", path);
            return false;
        }
        k->names = g;
        *names_cap = nc;
    }
    memcpy(k->names + k->names_len, name, len + 1);
    k->by_addr[k->n] = (ksym){ addr, (uint32_t)k->names_len, (uint32_t)k->n, type };
    k->names_len += len + 1;
    k->n++;
    return true;
}

osi_ksyms *osi_ksyms_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
        fclose(f);
        return NULL;
    }
    osi_ksyms *k = calloc(1, sizeof *k);
    if (!k) {
        set_err(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    char line[LINE_MAX_BYTES];
    size_t cap = 0, names_cap = 0, lines = 0, nonzero = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        lines++;
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            /* Longer than any symbol line: skip the rest of it. */
            int c;
            while ((c = getc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        uint64_t addr;
        char type, *name;
        size_t name_len;
        bool module;
        if (!parse_line(line, &addr, &type, &name, &name_len, &module) || module ||
            type == 'A' || type == 'a') {
            continue;
        }
        nonzero += addr != 0;
        ok = add_symbol(k, &cap, &names_cap, addr, type, name, name_len, path, err, errlen);
    }
    if (ok && ferror(f)) {
        set_err(err, errlen, "%s: read error: %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    if (ok && k->n == 0) {
        if (lines) {
            set_err(err, errlen, "%s: no kernel symbols: none of its %zu lines reads 'ADDRESS TYPE NAME'",
                    path, lines);
        } else {
            set_err(err, errlen, "%s: empty file: expected a System.map or a /proc/kallsyms dump", path);
        }
        ok = false;
    }
    if (ok && nonzero == 0) {
        set_err(err, errlen, "%s: the symbols' addresses are all zero: dump /proc/kallsyms as root "
                "with kptr_restrict=0", path);
        ok = false;
    }
    if (ok) {
        qsort(k->by_addr, k->n, sizeof *k->by_addr, cmp_addr);
        k->by_name = malloc(k->n * sizeof *k->by_name);
        if (!k->by_name) {
            set_err(err, errlen, "%s: out of memory", path);
            ok = false;
        }
    }
    if (!ok) {
        osi_ksyms_free(k);
        return NULL;
    }
    for (size_t i = 0; i < k->n; i++) {
        k->by_name[i] = (uint32_t)i;
    }
    qsort_r(k->by_name, k->n, sizeof *k->by_name, cmp_name, k);
    return k;
}

void osi_ksyms_free(osi_ksyms *k)
{
    if (!k) {
        return;
    }
    free(k->by_addr);
    free(k->by_name);
    free(k->names);
    free(k);
}

size_t osi_ksyms_count(const osi_ksyms *k)
{
    return k ? k->n : 0;
}

/* The first index whose address is > addr (k->n if none). */
static size_t upper_bound(const osi_ksyms *k, uint64_t addr)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->by_addr[mid].addr <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

bool osi_ksyms_find(const osi_ksyms *k, uint64_t addr, const char **name, uint64_t *sym_addr)
{
    if (!k || k->n == 0 || addr > k->by_addr[k->n - 1].addr) {
        return false;
    }
    size_t i = upper_bound(k, addr);
    if (i == 0) {
        return false;
    }
    /* The first of the aliases at that address (the preferred one). */
    uint64_t at = k->by_addr[i - 1].addr;
    i = at ? upper_bound(k, at - 1) : 0;
    if (name) {
        *name = k->names + k->by_addr[i].name;
    }
    if (sym_addr) {
        *sym_addr = at;
    }
    return true;
}

bool osi_ksyms_lookup(const osi_ksyms *k, const char *name, uint64_t *addr)
{
    if (!k || !name) {
        return false;
    }
    size_t lo = 0, hi = k->n;
    while (lo < hi) {   /* the first entry whose name is >= name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(k->names + k->by_addr[k->by_name[mid]].name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == k->n || strcmp(k->names + k->by_addr[k->by_name[lo]].name, name) != 0) {
        return false;
    }
    if (addr) {
        *addr = k->by_addr[k->by_name[lo]].addr;
    }
    return true;
}

/* ---- KASLR slide finder ------------------------------------------------ */

/* A residue shared by more function starts than this says too little to vote. */
#define BUCKET_MAX 64
/* Candidate slides tracked at once (a power of two); the least voted are
 * dropped when the table fills. */
#define CAND_CAP 4096
/* Recently fed addresses, direct-mapped: a block translated again does not
 * vote twice. */
#define RECENT 4096

typedef struct bucket {
    uint64_t residue;
    uint32_t start, count;   /* count 0: empty slot */
} bucket;

typedef struct cand {
    int64_t slide;
    uint32_t votes;          /* 0: empty slot */
} cand;

struct osi_slide {
    uint64_t align;
    uint64_t *funcs;         /* distinct function starts by (residue, address) */
    size_t nfuncs;
    bucket *buckets;         /* open addressing on the residue */
    size_t bmask;
    cand cands[CAND_CAP], spare[CAND_CAP];
    size_t ncands;
    int64_t best, second;
    uint32_t best_votes, second_votes;
    bool decided;
    uint64_t half;           /* top bit of the map's functions */
    uint64_t recent[RECENT];
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int cmp_residue(const void *pa, const void *pb, void *ctx)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb, align = *(const uint64_t *)ctx;
    uint64_t ra = a % align, rb = b % align;
    if (ra != rb) {
        return ra < rb ? -1 : 1;
    }
    return a < b ? -1 : a > b;
}

osi_slide *osi_slide_new(const osi_ksyms *k, uint64_t align)
{
    if (!k || align == 0) {
        return NULL;
    }
    osi_slide *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->align = align;
    s->funcs = malloc((k->n ? k->n : 1) * sizeof *s->funcs);
    if (!s->funcs) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < k->n; i++) {
        const ksym *y = &k->by_addr[i];
        if (is_text(y->type) && (s->nfuncs == 0 || s->funcs[s->nfuncs - 1] != y->addr)) {
            s->funcs[s->nfuncs++] = y->addr;   /* by_addr is sorted: aliases are adjacent */
        }
    }
    s->half = s->nfuncs ? s->funcs[0] >> 63 : 0;
    qsort_r(s->funcs, s->nfuncs, sizeof *s->funcs, cmp_residue, &align);
    size_t nb = 16;
    while (nb < 2 * s->nfuncs) {
        nb *= 2;
    }
    s->buckets = calloc(nb, sizeof *s->buckets);
    if (!s->buckets) {
        osi_slide_free(s);
        return NULL;
    }
    s->bmask = nb - 1;
    for (size_t i = 0; i < s->nfuncs;) {
        uint64_t r = s->funcs[i] % align;
        size_t j = i;
        while (j < s->nfuncs && s->funcs[j] % align == r) {
            j++;
        }
        size_t h = mix(r) & s->bmask;
        while (s->buckets[h].count) {
            h = (h + 1) & s->bmask;
        }
        s->buckets[h] = (bucket){ r, (uint32_t)i, (uint32_t)(j - i) };
        i = j;
    }
    return s;
}

void osi_slide_free(osi_slide *s)
{
    if (!s) {
        return;
    }
    free(s->funcs);
    free(s->buckets);
    free(s);
}

static const bucket *find_bucket(const osi_slide *s, uint64_t residue)
{
    for (size_t h = mix(residue) & s->bmask; s->buckets[h].count; h = (h + 1) & s->bmask) {
        if (s->buckets[h].residue == residue) {
            return &s->buckets[h];
        }
    }
    return NULL;
}

static cand *cand_slot(cand *table, int64_t slide)
{
    size_t h = mix((uint64_t)slide) & (CAND_CAP - 1);
    while (table[h].votes && table[h].slide != slide) {
        h = (h + 1) & (CAND_CAP - 1);
    }
    return &table[h];
}

/* Drops the least voted candidates until at most half the table is used,
 * and recomputes the two leaders. */
static void prune(osi_slide *s)
{
    for (uint32_t keep_above = 1; s->ncands > CAND_CAP / 2; keep_above++) {
        memset(s->spare, 0, sizeof s->spare);
        size_t n = 0;
        for (size_t i = 0; i < CAND_CAP; i++) {
            if (s->cands[i].votes > keep_above) {
                *cand_slot(s->spare, s->cands[i].slide) = s->cands[i];
                n++;
            }
        }
        memcpy(s->cands, s->spare, sizeof s->cands);
        s->ncands = n;
    }
    s->best_votes = s->second_votes = 0;
    for (size_t i = 0; i < CAND_CAP; i++) {
        const cand *c = &s->cands[i];
        if (c->votes > s->best_votes) {
            s->second = s->best;
            s->second_votes = s->best_votes;
            s->best = c->slide;
            s->best_votes = c->votes;
        } else if (c->votes > s->second_votes) {
            s->second = c->slide;
            s->second_votes = c->votes;
        }
    }
}

static void vote(osi_slide *s, int64_t slide)
{
    cand *c = cand_slot(s->cands, slide);
    if (!c->votes) {
        if (s->ncands + 1 > CAND_CAP * 3 / 4) {
            prune(s);
            c = cand_slot(s->cands, slide);
        }
        c->slide = slide;
        s->ncands++;
    }
    uint32_t v = ++c->votes;
    if (s->best_votes && slide == s->best) {
        s->best_votes = v;
    } else if (v > s->best_votes) {
        s->second = s->best;
        s->second_votes = s->best_votes;
        s->best = slide;
        s->best_votes = v;
    } else if (v > s->second_votes) {
        s->second = slide;
        s->second_votes = v;
    }
}

bool osi_slide_feed(osi_slide *s, uint64_t runtime_addr, int64_t *slide)
{
    if (!s) {
        return false;
    }
    if (!s->decided && runtime_addr >> 63 == s->half) {
        uint64_t *seen = &s->recent[mix(runtime_addr) & (RECENT - 1)];
        const bucket *b = *seen == runtime_addr + 1 ? NULL : find_bucket(s, runtime_addr % s->align);
        *seen = runtime_addr + 1;   /* +1: address 0 is a valid feed */
        if (b && b->count <= BUCKET_MAX) {
            for (uint32_t i = 0; i < b->count; i++) {
                vote(s, (int64_t)(runtime_addr - s->funcs[b->start + i]));
            }
            s->decided = s->best_votes >= OSI_SLIDE_MIN_VOTES &&
                         s->best_votes >= (uint64_t)OSI_SLIDE_LEAD * s->second_votes;
        }
    }
    return osi_slide_known(s, slide);
}

bool osi_slide_known(const osi_slide *s, int64_t *slide)
{
    if (!s || !s->decided) {
        return false;
    }
    if (slide) {
        *slide = s->best;
    }
    return true;
}
