/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit tests' tiny harness: each case is a function that records its
 * first failure with CHECK; run_cases prints "PASS name" or "FAIL name:
 * reason" per case, then "N passed, N failed", and gives the exit status.
 * Optional command-line arguments run only the named cases.
 */
#ifndef CSI_TEST_CHECK_H
#define CSI_TEST_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

static bool t_failed;
static char t_msg[1024];

static void G_GNUC_PRINTF(2, 3) fail_at(int line, const char *fmt, ...)
{
    if (t_failed) {
        return;
    }
    t_failed = true;
    int n = snprintf(t_msg, sizeof t_msg, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_msg + n, sizeof t_msg - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Every case has a `done:` label where it frees what it made. */
#define CHECK(cond, ...) \
    do { if (!(cond)) { fail_at(__LINE__, __VA_ARGS__); goto done; } } while (0)
/* For helpers that set the message themselves. */
#define REQUIRE(expr) do { if (!(expr)) { goto done; } } while (0)
#define PX "0x%" PRIx64

/* The case being run (for before_each). */
static const char *t_name;

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

/* Runs the cases (those named in argv, if any); before_each may be NULL. */
static int run_cases(const test_case *cases, size_t n, int argc, char **argv,
                     void (*before_each)(void))
{
    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            bool want = false;
            for (int a = 1; a < argc; a++) {
                want |= strcmp(argv[a], cases[i].name) == 0;
            }
            if (!want) {
                continue;
            }
        }
        t_failed = false;
        t_msg[0] = '\0';
        t_name = cases[i].name;
        if (before_each) {
            before_each();
        }
        cases[i].fn();
        if (t_failed) {
            printf("FAIL %s: %s\n", cases[i].name, t_msg);
            failed++;
        } else {
            printf("PASS %s\n", cases[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
