/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of src/osi/kallsyms.c: kernel symbol maps and the KASLR slide
 * finder.
 *
 * Real dumps: with CALLSTACK_KALLSYMS_A and CALLSTACK_KALLSYMS_B set to two
 * /proc/kallsyms dumps of one kernel from two boots (scripts/test.sh gets
 * them from tests/e2e/sysguest.py), every line of A is checked against
 * find and lookup (the file read here with sscanf, not the parser under
 * test), and the slide decided from B's function addresses (shuffled, half
 * of the feed being addresses inside functions rather than at entries)
 * must be the difference of the two boots' _text. Without the variables
 * those cases are not run (and say so).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "osi/kallsyms.h"

static char dir[] = "/tmp/test_osi_kallsyms.XXXXXX";
static char err[512];

/* xorshift64*: deterministic pseudo-random numbers. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* ---- a hand-written map ------------------------------------------------- */

static const char small_map[] =
    "0000000000000000 A fixed_percpu_data\n"
    "0000000000001000 A cpu_debug_store\n"
    "ffffffff81000000 T srso_alias_untrain_ret\n"
    "ffffffff81000000 T _stext\r\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81000010 d some_data\n"
    "ffffffff81000010 t local_fn\n"
    "ffffffff81000100 T dup\n"
    "ffffffff81000200 t dup\n"
    "this line is console noise\n"
    "ffffffffc0000000 t mod_fn\t[some_module]\n"
    "ffffffff81000300 W weak_fn\n"
    "zzzzzzzzzzzzzzzz T bad_hex\n"
    "ffffffff81000400 B _end\n";

static void small_map_find_lookup(void)
{
    osi_ksyms *k = osi_ksyms_load(write_file("small", small_map), err, sizeof err);
    const char *name = NULL;
    uint64_t a = 0;
    CHECK(k, "load: %s", err);
    /* absolute, module and malformed lines are not symbols */
    CHECK(osi_ksyms_count(k) == 9, "count %zu, expected 9", osi_ksyms_count(k));
    CHECK(!osi_ksyms_lookup(k, "fixed_percpu_data", &a), "absolute symbol kept");
    CHECK(!osi_ksyms_lookup(k, "mod_fn", &a), "module symbol kept");
    CHECK(!osi_ksyms_lookup(k, "bad_hex", &a), "bad address parsed");
    CHECK(osi_ksyms_lookup(k, "_text", &a) && a == 0xffffffff81000000ULL, "_text " PX, a);
    CHECK(osi_ksyms_lookup(k, "_stext", &a) && a == 0xffffffff81000000ULL, "_stext (CRLF line)");
    CHECK(osi_ksyms_lookup(k, "dup", &a) && a == 0xffffffff81000100ULL, "dup: first of its name " PX, a);
    CHECK(!osi_ksyms_lookup(k, "du", &a) && !osi_ksyms_lookup(k, "dupe", &a), "prefix matched");
    /* aliases: the first in the file */
    CHECK(osi_ksyms_find(k, 0xffffffff81000005ULL, &name, &a) && a == 0xffffffff81000000ULL &&
          strcmp(name, "srso_alias_untrain_ret") == 0, "find +5: %s " PX, name, a);
    /* a function before a data symbol at the same address */
    CHECK(osi_ksyms_find(k, 0xffffffff81000010ULL, &name, &a) && strcmp(name, "local_fn") == 0,
          "find local_fn: %s", name);
    CHECK(osi_ksyms_find(k, 0xffffffff810002ffULL, &name, &a) && a == 0xffffffff81000200ULL &&
          strcmp(name, "dup") == 0, "find second dup");
    CHECK(osi_ksyms_find(k, 0xffffffff81000400ULL, &name, &a) && strcmp(name, "_end") == 0, "find _end");
    CHECK(!osi_ksyms_find(k, 0xffffffff81000401ULL, &name, &a), "found past the last symbol");
    CHECK(!osi_ksyms_find(k, 0xffffffff80ffffffULL, &name, &a), "found before the first symbol");
    CHECK(!osi_ksyms_find(k, 0xffffffffc0000004ULL, &name, &a), "found in a module");
done:
    osi_ksyms_free(k);
}

/* ---- hostile files -------------------------------------------------------- */

static void expect_refused(const char *path, const char *needle)
{
    err[0] = '\0';
    osi_ksyms *k = osi_ksyms_load(path, err, sizeof err);
    CHECK(!k, "%s: loaded %zu symbols", path, osi_ksyms_count(k));
    CHECK(strstr(err, needle) && !strchr(err, '\n'), "%s: message '%s' lacks '%s'", path, err, needle);
done:
    osi_ksyms_free(k);
}

static void hostile_files(void)
{
    char sub[300];
    expect_refused(write_file("empty", ""), "empty file");
    REQUIRE(!t_failed);
    expect_refused(write_file("zeros", "0000000000000000 T _text\n0000000000000000 t f\n"
                                       "0000000000000000 A x\n"),
                   "addresses are all zero: dump /proc/kallsyms as root with kptr_restrict=0");
    REQUIRE(!t_failed);
    expect_refused(write_file("nonhex", "ffffffff8100000g T a\n0x10 T b\n12345678901234567 T c\n"
                                        "1 T\n1 TT x\n1  \n\n"), "none of its 7 lines");
    REQUIRE(!t_failed);
    expect_refused(write_file("modules", "ffffffffc0000000 t m [mod]\n"), "no kernel symbols");
    REQUIRE(!t_failed);
    expect_refused(dir, "is a directory");
    REQUIRE(!t_failed);
    snprintf(sub, sizeof sub, "%s/missing", dir);
    expect_refused(sub, "No such file");
    REQUIRE(!t_failed);
    /* binary garbage with NULs */
    {
        snprintf(sub, sizeof sub, "%s/binary", dir);
        FILE *f = fopen(sub, "w");
        CHECK(f, "create");
        for (int i = 0; i < 100000; i++) {
            fputc((int)(rnd() & 0xff), f);
        }
        fclose(f);
        err[0] = '\0';
        osi_ksyms *k = osi_ksyms_load(sub, err, sizeof err);
        CHECK(!k || osi_ksyms_count(k) < 100, "garbage gave %zu symbols", osi_ksyms_count(k));
        osi_ksyms_free(k);
    }
    /* a 1 MB line and a 600-character name between good lines: skipped */
    {
        snprintf(sub, sizeof sub, "%s/long", dir);
        FILE *f = fopen(sub, "w");
        CHECK(f, "create");
        fputs("ffffffff81000000 T first\nffffffff81000010 T ", f);
        for (int i = 0; i < (1 << 20); i++) {
            fputc('x', f);
        }
        fputs("\nffffffff81000020 T ", f);
        for (int i = 0; i < 600; i++) {
            fputc('y', f);
        }
        fputs("\nffffffff81000030 T last\n", f);
        fclose(f);
        osi_ksyms *k = osi_ksyms_load(sub, err, sizeof err);
        uint64_t a = 0;
        CHECK(k, "long lines: %s", err);
        bool good = osi_ksyms_count(k) == 2 && osi_ksyms_lookup(k, "last", &a) && a == 0xffffffff81000030ULL;
        osi_ksyms_free(k);
        CHECK(good, "long lines: expected first and last only");
    }
done:
    return;
}

/* More symbols than the bound: refused, after bounded work and memory. */
static void too_many_symbols(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/huge", dir);
    FILE *f = fopen(path, "w");
    CHECK(f, "create");
    for (unsigned i = 0; i <= OSI_KSYMS_MAX_SYMBOLS; i++) {
        fprintf(f, "%x t f\n", i + 1);
    }
    fclose(f);
    expect_refused(path, "more than 4194304 symbols");
done:
    unlink(path);
}

/* ---- the slide finder on a generated kernel ----------------------------------- */

#define GEN_FUNCS 30000

/* Writes a map of GEN_FUNCS functions at random 16-byte aligned places
 * in 16 MiB from base to PATH; their offsets in offs. */
static bool generate(const char *path, uint64_t base, uint64_t *offs)
{
    for (int i = 0; i < GEN_FUNCS; i++) {
        offs[i] = (rnd() % (16u << 20)) & ~(uint64_t)15;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        return false;
    }
    for (int i = 0; i < GEN_FUNCS; i++) {
        fprintf(f, "%016" PRIx64 " %c f%d\n", base + offs[i], "tTtW"[i & 3], i);
    }
    return fclose(f) == 0;
}

static void slide_generated(void)
{
    static uint64_t offs[GEN_FUNCS];
    char path[300];
    const uint64_t base = 0xffffffff81000000ULL, align = 0x200000;
    osi_ksyms *k = NULL;
    osi_slide *s = NULL, *z = NULL, *noise = NULL;
    int64_t got = 0;
    snprintf(path, sizeof path, "%s/gen", dir);
    CHECK(generate(path, base, offs), "write %s", path);
    k = osi_ksyms_load(path, err, sizeof err);
    CHECK(k, "load: %s", err);
    int64_t slides[] = { 0x1c600000, -0x200000, 0x3ea00000, 0 };
    for (size_t j = 0; j < sizeof slides / sizeof slides[0]; j++) {
        s = osi_slide_new(k, align);
        CHECK(s, "osi_slide_new");
        CHECK(!osi_slide_known(s, &got), "known before any feed");
        int fed = 0;
        bool done_ = false;
        for (int i = 0; i < 4 * GEN_FUNCS && !done_; i++) {
            uint64_t f0 = base + offs[rnd() % GEN_FUNCS] + (uint64_t)slides[j];
            uint64_t addr = (i & 1) ? f0 + 1 + rnd() % 15 : f0;   /* half not at an entry */
            done_ = osi_slide_feed(s, addr, &got);
            fed++;
        }
        CHECK(done_ && got == slides[j], "slide %" PRId64 ": decided %d, got %" PRId64 " after %d feeds",
              slides[j], done_, got, fed);
        CHECK(fed < 200, "slide %" PRId64 " took %d feeds", slides[j], fed);
        osi_slide_free(s);
        s = NULL;
    }
    /* Addresses at random, 16-byte aligned as the functions are, in 64
     * MiB around them: each votes for slides of the few functions sharing
     * its residue, some 40 multiples of align in all, evenly: no
     * candidate gets ahead, no decision. */
    noise = osi_slide_new(k, align);
    CHECK(noise, "osi_slide_new");
    for (int i = 0; i < 200000; i++) {
        uint64_t addr = (base + (rnd() % (64u << 20))) & ~(uint64_t)15;
        CHECK(!osi_slide_feed(noise, addr, &got), "noise decided %" PRId64 " after %d", got, i);
    }
    /* The kernel's functions at physical addresses (early boot code, the
     * map's functions being in the top half): no vote. */
    osi_slide_free(noise);
    noise = osi_slide_new(k, align);
    CHECK(noise, "osi_slide_new");
    for (int i = 0; i < GEN_FUNCS; i++) {
        CHECK(!osi_slide_feed(noise, 0x1000000 + offs[i], &got), "physical addresses decided %" PRId64, got);
    }
    /* The same few addresses again and again vote once. */
    z = osi_slide_new(k, align);
    CHECK(z, "osi_slide_new");
    for (int i = 0; i < 1000; i++) {
        CHECK(!osi_slide_feed(z, base + offs[i % 3], &got), "3 addresses decided");
    }
    CHECK(!osi_slide_new(k, 0), "align 0 accepted");
done:
    osi_slide_free(s);
    osi_slide_free(z);
    osi_slide_free(noise);
    osi_ksyms_free(k);
}

/* ---- real dumps ------------------------------------------------------------ */

typedef struct line_sym {
    uint64_t addr;
    char type;
    char name[512];
} line_sym;

/* The kernel's own, non-absolute symbols of a dump, read with sscanf. */
static line_sym *read_dump(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    size_t cap = 1024;
    line_sym *v = malloc(cap * sizeof *v);
    char line[2048];
    *n = 0;
    while (v && fgets(line, sizeof line, f)) {
        line_sym y;
        if (sscanf(line, "%" SCNx64 " %c %511s", &y.addr, &y.type, y.name) != 3 || strchr(line, '[') ||
            y.type == 'A' || y.type == 'a') {
            continue;
        }
        if (*n == cap) {
            cap *= 2;
            line_sym *g = realloc(v, cap * sizeof *v);
            if (!g) {
                free(v);
                v = NULL;
                break;
            }
            v = g;
        }
        v[(*n)++] = y;
    }
    fclose(f);
    return v;
}

static bool text_type(char t)
{
    return t == 't' || t == 'T' || t == 'w' || t == 'W';
}

static uint64_t start_of(const line_sym *v, size_t n)
{
    static const char *const names[] = { "_text", "startup_64", "_stext" };
    for (size_t j = 0; j < 3; j++) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i].name, names[j]) == 0) {
                return v[i].addr;
            }
        }
    }
    return 0;
}

static const line_sym *sort_base;

static int by_addr_then_line(const void *pa, const void *pb)
{
    const line_sym *a = &sort_base[*(const size_t *)pa], *b = &sort_base[*(const size_t *)pb];
    if (a->addr != b->addr) {
        return a->addr < b->addr ? -1 : 1;
    }
    return *(const size_t *)pa < *(const size_t *)pb ? -1 : 1;
}

/*
 * Every symbol line of dump A: lookup gives the address of the first line
 * of that name; find at the address gives that address and the first
 * function line there (else the first line there); find halfway to the
 * next address gives the same.
 */
static void real_dump_find_lookup(void)
{
    const char *pa = getenv("CALLSTACK_KALLSYMS_A");
    size_t n = 0;
    line_sym *v = read_dump(pa, &n);
    size_t *order = NULL;
    osi_ksyms *k = osi_ksyms_load(pa, err, sizeof err);
    GHashTable *first = g_hash_table_new(g_str_hash, g_str_equal);
    CHECK(v && n > 1000, "%s: %zu symbol lines", pa, n);
    CHECK(k, "load: %s", err);
    CHECK(osi_ksyms_count(k) == n, "count %zu, the file has %zu", osi_ksyms_count(k), n);
    for (size_t i = 0; i < n; i++) {
        if (!g_hash_table_contains(first, v[i].name)) {
            g_hash_table_insert(first, v[i].name, &v[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t a = 0;
        const line_sym *f0 = g_hash_table_lookup(first, v[i].name);
        CHECK(osi_ksyms_lookup(k, v[i].name, &a) && a == f0->addr, "lookup %s: " PX ", file " PX,
              v[i].name, a, f0->addr);
    }
    order = malloc(n * sizeof *order);
    CHECK(order, "malloc");
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    sort_base = v;
    qsort(order, n, sizeof *order, by_addr_then_line);
    for (size_t i = 0, j; i < n; i = j) {
        uint64_t at = v[order[i]].addr, sa = 0;
        const line_sym *want = &v[order[i]];
        for (j = i; j < n && v[order[j]].addr == at; j++) {
            if (text_type(v[order[j]].type) && !text_type(want->type)) {
                want = &v[order[j]];
            }
        }
        const char *name = NULL;
        CHECK(osi_ksyms_find(k, at, &name, &sa) && sa == at && strcmp(name, want->name) == 0,
              "find " PX ": %s at " PX ", expected %s", at, name ? name : "-", sa, want->name);
        if (j < n && v[order[j]].addr > at + 1) {
            uint64_t mid = at + (v[order[j]].addr - at) / 2;
            CHECK(osi_ksyms_find(k, mid, &name, &sa) && sa == at && strcmp(name, want->name) == 0,
                  "find " PX " (inside): %s at " PX, mid, name, sa);
        }
    }
done:
    g_hash_table_destroy(first);
    osi_ksyms_free(k);
    free(order);
    free(v);
}

static void real_dump_slide(void)
{
    const char *pa = getenv("CALLSTACK_KALLSYMS_A"), *pb = getenv("CALLSTACK_KALLSYMS_B");
    const char *al = getenv("CALLSTACK_KALLSYMS_ALIGN");
    uint64_t align = al ? strtoull(al, NULL, 0) : 0x200000;
    size_t na = 0, nb = 0, nf = 0;
    line_sym *a = read_dump(pa, &na), *b = read_dump(pb, &nb);
    uint64_t *feed = NULL;
    osi_ksyms *k = osi_ksyms_load(pa, err, sizeof err);
    osi_slide *s = NULL;
    CHECK(a && b && na > 1000 && nb > 1000, "dumps: %zu and %zu symbols", na, nb);
    CHECK(k, "load: %s", err);
    uint64_t ta = start_of(a, na), tb = start_of(b, nb);
    CHECK(ta && tb, "no _text/startup_64/_stext in the dumps");
    int64_t want = (int64_t)(tb - ta);
    /* B's function entries, and as many addresses inside B's functions */
    feed = malloc(2 * nb * sizeof *feed);
    CHECK(feed, "malloc");
    for (size_t i = 0; i + 1 < nb; i++) {
        if (!text_type(b[i].type) || b[i + 1].addr <= b[i].addr + 1) {
            continue;
        }
        feed[nf++] = b[i].addr;
        feed[nf++] = b[i].addr + 1 + rnd() % (b[i + 1].addr - b[i].addr - 1);
    }
    for (size_t i = nf - 1; i > 0; i--) {
        size_t j = rnd() % (i + 1);
        uint64_t t = feed[i];
        feed[i] = feed[j];
        feed[j] = t;
    }
    s = osi_slide_new(k, align);
    CHECK(s, "osi_slide_new");
    int64_t got = 0;
    size_t i = 0;
    bool decided = false;
    while (i < nf && !decided) {
        decided = osi_slide_feed(s, feed[i++], &got);
    }
    CHECK(decided && got == want, "slide: decided %d after %zu of %zu feeds: %#" PRIx64 ", _text gives %#"
          PRIx64, decided, i, nf, (uint64_t)got, (uint64_t)want);
    printf("  slide %#" PRIx64 " (align %#" PRIx64 ") decided after %zu of %zu addresses\n",
           (uint64_t)got, align, i, nf);
done:
    osi_slide_free(s);
    osi_ksyms_free(k);
    free(feed);
    free(a);
    free(b);
}

static void make_dir(void)
{
    err[0] = '\0';
}

int main(int argc, char **argv)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_case cases[] = {
        { "small_map_find_lookup", small_map_find_lookup },
        { "hostile_files", hostile_files },
        { "too_many_symbols", too_many_symbols },
        { "slide_generated", slide_generated },
        { "real_dump_find_lookup", real_dump_find_lookup },
        { "real_dump_slide", real_dump_slide },
    };
    size_t n = sizeof cases / sizeof cases[0];
    if (!getenv("CALLSTACK_KALLSYMS_A") || !getenv("CALLSTACK_KALLSYMS_B")) {
        printf("(real-dump cases not run: CALLSTACK_KALLSYMS_A/B unset)\n");
        n -= 2;
    }
    int rc = run_cases(cases, n, argc, argv, make_dir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
