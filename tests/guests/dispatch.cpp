/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Calls that load their target from memory, in the three forms compilers
 * emit for them on x86: C++ virtual calls (call *disp(%reg), through the
 * object's vtable), a table of function pointers indexed by a value (call
 * *table(,%reg,8), or *(%base,%reg,8) in a PIE) and a function pointer in
 * a struct (call *disp(%reg)). The choices depend on argc, so that no
 * compiler can resolve them at build time.
 *
 *   dispatch [N]   prints "dispatch sum=S"
 */
#include <cstdio>
#include <cstdlib>

struct shape {
    virtual long area(long x) const = 0;
    virtual long scale(long x) const = 0;
    virtual ~shape() {}
};

struct square : shape {
    long area(long x) const override { return x * x; }
    long scale(long x) const override { return x + 3; }
};

struct triangle : shape {
    long area(long x) const override { return x * x / 2; }
    long scale(long x) const override { return x + 5; }
};

typedef long (*op_fn)(long);

__attribute__((noinline)) long op_inc(long x) { return x + 1; }
__attribute__((noinline)) long op_dbl(long x) { return x * 2 % 1000003; }
__attribute__((noinline)) long op_neg(long x) { return 7 - x; }

op_fn ops[3] = { op_inc, op_dbl, op_neg };

struct handler {
    const char *name;
    long (*fn)(long);
};

handler handlers[2] = { { "inc", op_inc }, { "neg", op_neg } };

/* Recursion through the table: each level calls a table entry, then itself. */
__attribute__((noinline)) long walk(shape *const *shapes, int n, long x, int depth)
{
    long s = 0;
    for (int i = 0; i < n; i++) {
        s += shapes[i]->area(x) + shapes[i]->scale(x);
    }
    if (depth > 0) {
        s += walk(shapes, n, ops[depth % 3](x), depth - 1);
    }
    return s;
}

__attribute__((noinline)) long run_handlers(const handler *h, int n, long x)
{
    long s = 0;
    for (int i = 0; i < n; i++) {
        s += h[i % 2].fn(x + i);
    }
    return s;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    shape *shapes[4];
    for (int i = 0; i < 4; i++) {
        shapes[i] = (i + argc) % 2 ? (shape *)new square : (shape *)new triangle;
    }
    long sum = 0;
    for (int r = 0; r < rounds; r++) {
        sum += walk(shapes, 4, r, 6);
        sum += run_handlers(handlers, 3 + r % 4, r);
    }
    for (int i = 0; i < 4; i++) {
        delete shapes[i];
    }
    printf("dispatch sum=%ld\n", sum);
    return 0;
}
