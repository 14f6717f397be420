/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The whole-system benchmark's workload (bench/system.py): a call-heavy
 * program in the style of the user-mode benchmark's interpreters, database
 * and compressors, built static and optimised (-O2) into the test guest's
 * initramfs by scripts/make-system-guest.sh. Deterministic: the same
 * scale gives the same work and the same checksum every run.
 *
 *   sysbench ID SCALE TEXTFILE
 *
 * Per unit of SCALE:
 *   - parse:  generates arithmetic expressions as text (snprintf) and
 *             evaluates them with a recursive-descent parser, a few calls per
 *             character (like a JSON or regular-expression engine);
 *   - vm:     a small bytecode interpreter, one function per opcode through a
 *             dispatch table, running a recursive Fibonacci in bytecode (each
 *             bytecode call is a C call of the interpreter);
 *   - table:  records with string keys: qsort with a comparator calling
 *             strcmp, then a chained hash table (malloc per node) filled and
 *             probed, then freed (like sqlite3's inserts and lookups);
 * then writes TEXTFILE: pseudo-English text (SCALE * 64 KiB) for init to
 * compress with busybox gzip -9.
 * Prints "SYSBENCH id=ID scale=SCALE sum=CHECKSUM" at the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* ---- parse: recursive-descent expression evaluation ----------------------- */

typedef struct parser {
    const char *p;
} parser;

static int64_t parse_sum(parser *ps);

static void skip_space(parser *ps)
{
    while (*ps->p == ' ') {
        ps->p++;
    }
}

static int peek(parser *ps)
{
    skip_space(ps);
    return (unsigned char)*ps->p;
}

static int64_t parse_number(parser *ps)
{
    int64_t v = 0;
    while (*ps->p >= '0' && *ps->p <= '9') {
        v = v * 10 + (*ps->p++ - '0');
    }
    return v;
}

static int64_t parse_atom(parser *ps)
{
    if (peek(ps) == '(') {
        ps->p++;
        int64_t v = parse_sum(ps);
        if (peek(ps) == ')') {
            ps->p++;
        }
        return v;
    }
    if (peek(ps) == '-') {
        ps->p++;
        return -parse_atom(ps);
    }
    return parse_number(ps);
}

static int64_t parse_product(parser *ps)
{
    int64_t v = parse_atom(ps);
    for (;;) {
        int c = peek(ps);
        if (c == '*') {
            ps->p++;
            v = v * parse_atom(ps) % 1000003;
        } else if (c == '%') {
            ps->p++;
            int64_t d = parse_atom(ps);
            v = d ? v % d : v;
        } else {
            return v;
        }
    }
}

static int64_t parse_sum(parser *ps)
{
    int64_t v = parse_product(ps);
    for (;;) {
        int c = peek(ps);
        if (c == '+') {
            ps->p++;
            v += parse_product(ps);
        } else if (c == '-') {
            ps->p++;
            v -= parse_product(ps);
        } else {
            return v;
        }
    }
}

/* Appends a random expression of the given nesting depth to buf at *len. */
static void gen_expr(char *buf, size_t cap, size_t *len, int depth)
{
    static const char ops[] = "+-*%";
    int terms = 1 + (int)(rnd() % 4);
    for (int i = 0; i < terms && *len + 64 < cap; i++) {
        if (i) {
            *len += (size_t)snprintf(buf + *len, cap - *len, " %c ", ops[rnd() % 4]);
        }
        if (depth > 0 && rnd() % 3 == 0) {
            buf[(*len)++] = '(';
            gen_expr(buf, cap, len, depth - 1);
            buf[(*len)++] = ')';
        } else {
            *len += (size_t)snprintf(buf + *len, cap - *len, "%u", 1 + rnd() % 9999);
        }
    }
    buf[*len] = 0;
}

static uint64_t work_parse(int n)
{
    char buf[4096];
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        gen_expr(buf, sizeof buf, &len, 6);
        parser ps = { buf };
        sum = sum * 31 + (uint64_t)parse_sum(&ps);
    }
    return sum;
}

/* ---- vm: a bytecode interpreter, one function per opcode -------------------- */

enum { OP_ARG, OP_CONST, OP_LT, OP_JZ, OP_SUB, OP_ADD, OP_CALL, OP_RET, OP_COUNT };

typedef struct vm {
    int64_t stack[256];
    int sp;
    int pc;
    int64_t arg;
    const int *code;
} vm;

static int64_t vm_run(const int *code, int64_t arg);

static void op_arg(vm *m) { m->stack[m->sp++] = m->arg; }
static void op_const(vm *m) { m->stack[m->sp++] = m->code[m->pc++]; }
static void op_lt(vm *m) { m->sp--; m->stack[m->sp - 1] = m->stack[m->sp - 1] < m->stack[m->sp]; }
static void op_jz(vm *m) { int t = m->code[m->pc++]; if (!m->stack[--m->sp]) m->pc = t; }
static void op_sub(vm *m) { m->sp--; m->stack[m->sp - 1] -= m->stack[m->sp]; }
static void op_add(vm *m) { m->sp--; m->stack[m->sp - 1] += m->stack[m->sp]; }
static void op_call(vm *m) { m->stack[m->sp - 1] = vm_run(m->code, m->stack[m->sp - 1]); }
static void op_ret(vm *m) { m->pc = -1; }

static void (*const ops_table[OP_COUNT])(vm *) = {
    op_arg, op_const, op_lt, op_jz, op_sub, op_add, op_call, op_ret,
};

static int64_t vm_run(const int *code, int64_t arg)
{
    vm m = { .sp = 0, .pc = 0, .arg = arg, .code = code };
    while (m.pc >= 0) {
        ops_table[code[m.pc++]](&m);
    }
    return m.stack[m.sp - 1];
}

/* fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2) */
static const int fib_code[] = {
    OP_ARG, OP_CONST, 2, OP_LT, OP_JZ, 8, OP_ARG, OP_RET,
    /* 8: */ OP_ARG, OP_CONST, 1, OP_SUB, OP_CALL,
    OP_ARG, OP_CONST, 2, OP_SUB, OP_CALL, OP_ADD, OP_RET,
};

static uint64_t work_vm(int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        sum += (uint64_t)vm_run(fib_code, 12 + i % 4);
    }
    return sum;
}

/* ---- table: sort with a comparator, a chained hash table ---------------- */

typedef struct record {
    char key[24];
    uint32_t value;
} record;

typedef struct node {
    struct node *next;
    const record *rec;
} node;

static int cmp_record(const void *a, const void *b)
{
    const record *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->value > y->value) - (x->value < y->value);
}

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h = (h ^ (unsigned char)*s++) * 16777619u;
    }
    return h;
}

static void make_key(char *out, size_t cap)
{
    static const char syll[][4] = { "ka", "to", "mi", "re", "su", "no", "ha", "ri", "el", "an" };
    size_t len = 0;
    int parts = 2 + (int)(rnd() % 4);
    for (int i = 0; i < parts && len + 4 < cap; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%s", syll[rnd() % 10]);
    }
}

static uint64_t work_table(int n)
{
    enum { BUCKETS = 4096 };
    record *recs = malloc(sizeof *recs * (size_t)n);
    node **table = calloc(BUCKETS, sizeof *table);
    if (!recs || !table) {
        fprintf(stderr, "sysbench: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        make_key(recs[i].key, sizeof recs[i].key);
        recs[i].value = rnd();
    }
    qsort(recs, (size_t)n, sizeof *recs, cmp_record);
    for (int i = 0; i < n; i++) {
        node *e = malloc(sizeof *e);
        if (!e) {
            exit(1);
        }
        uint32_t b = hash_key(recs[i].key) % BUCKETS;
        e->rec = &recs[i];
        e->next = table[b];
        table[b] = e;
    }
    uint64_t sum = 0;
    char key[24];
    for (int i = 0; i < 2 * n; i++) {
        make_key(key, sizeof key);
        for (node *e = table[hash_key(key) % BUCKETS]; e; e = e->next) {
            if (strcmp(e->rec->key, key) == 0) {
                sum += e->rec->value;
            }
        }
    }
    for (int b = 0; b < BUCKETS; b++) {
        while (table[b]) {
            node *e = table[b];
            table[b] = e->next;
            free(e);
        }
    }
    free(table);
    free(recs);
    return sum;
}

/* ---- text for gzip ----------------------------------------------------------------- */

static int write_text(const char *path, long bytes)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    char word[24];
    long n = 0;
    while (n < bytes) {
        make_key(word, sizeof word);
        n += fprintf(f, rnd() % 17 == 0 ? "%s.\n" : "%s ", word);
    }
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sysbench ID SCALE TEXTFILE\n");
        return 2;
    }
    int id = atoi(argv[1]);
    int scale = atoi(argv[2]);
    if (scale < 1 || scale > 10000) {
        fprintf(stderr, "sysbench: SCALE must be 1..10000\n");
        return 2;
    }
    rng_state = 12345;     /* every copy does the same work */
    uint64_t sum = 0;
    for (int u = 0; u < scale; u++) {
        sum = sum * 7 + work_parse(400);
        sum = sum * 7 + work_vm(20);
        sum = sum * 7 + work_table(2000);
    }
    if (write_text(argv[3], (long)scale * 65536)) {
        return 1;
    }
    printf("SYSBENCH id=%d scale=%d sum=%016llx\n", id, scale, (unsigned long long)sum);
    return 0;
}
