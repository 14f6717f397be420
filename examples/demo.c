/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The built-in example of the README's first command: a little parser and
 * evaluator, with recursion, a qsort callback and a function pointer. */
#include <stdio.h>
#include <stdlib.h>

static const char *p;

static long expr(void);

static long number(void)
{
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
    }
    return v;
}

static long factor(void)
{
    if (*p == '(') {
        p++;
        long v = expr();
        p++;   /* ')' */
        return v;
    }
    return number();
}

static long term(void)
{
    long v = factor();
    while (*p == '*') {
        p++;
        v *= factor();
    }
    return v;
}

static long expr(void)
{
    long v = term();
    while (*p == '+') {
        p++;
        v += term();
    }
    return v;
}

static long eval(const char *s)
{
    p = s;
    return expr();
}

static int by_value(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void report(long (*f)(const char *), const char *s)
{
    printf("%s = %ld\n", s, f(s));
}

int main(void)
{
    long r[3] = { eval("2*(3+4)"), eval("1+2*3"), eval("(1+1)*(2+2)") };
    qsort(r, 3, sizeof r[0], by_value);
    report(eval, "6*7");
    printf("sorted: %ld %ld %ld\n", r[0], r[1], r[2]);
    return 0;
}
