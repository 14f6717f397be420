/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The table-driven argument parser both plugins use (src/options/). */
#include <stdio.h>
#include <unistd.h>
#include "check.h"
#include "options/options.h"

static bool b;
static int choice;
static uint64_t u;
static const char *str;
static GArray *many, *ranges;
static bool u_given;
static const char *const colours[] = { "red", "green", "blue", NULL };

static const opt_spec specs[] = {
    { .name = "flag", .kind = OPT_BOOL, .dest = &b },
    { .name = "colour", .kind = OPT_CHOICE, .choices = colours, .dest = &choice },
    { .name = "n", .kind = OPT_UINT, .min = 2, .max = 1000, .dest = &u, .given = &u_given },
    { .name = "path", .kind = OPT_STRING, .synopsis = "PATH", .dest = &str },
    { .name = "at", .kind = OPT_UINT, .max = UINT64_MAX, .repeatable = true, .synopsis = "ADDR" },
    { .name = "only", .kind = OPT_RANGE, .max = UINT64_MAX, .repeatable = true },
    { 0 },
};
static opt_spec table[G_N_ELEMENTS(specs)];
static char err[1024];

/* Parses one argument; the message it printed, if any, is in err. */
static bool parse1(const char *arg)
{
    char *argv[] = { (char *)arg };
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    bool ok = opts_parse("plug", table, 1, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, sizeof err - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return ok;
}

static void reset(void)
{
    memcpy(table, specs, sizeof specs);
    if (many) {
        g_array_free(many, TRUE);
        g_array_free(ranges, TRUE);
    }
    many = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    ranges = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    table[4].dest = many;
    table[5].dest = ranges;
    b = false;
    choice = -1;
    u = 0;
    u_given = false;
    str = NULL;
}

static void t_bool(void)
{
    static const char *const on[] = { "flag=on", "flag=yes", "flag=true", "flag=y" };
    static const char *const off[] = { "flag=off", "flag=no", "flag=false", "flag=n" };
    for (size_t i = 0; i < G_N_ELEMENTS(on); i++) {
        b = false;
        CHECK(parse1(on[i]) && b, "%s", on[i]);
        CHECK(parse1(off[i]) && !b, "%s", off[i]);
    }
    CHECK(!parse1("flag=maybe"), "maybe accepted");
    CHECK(strcmp(err, "plug: bad value 'maybe' for flag; accepted: on, off, true, false\n") == 0,
          "message %s", err);
done:;
}

static void t_choice(void)
{
    CHECK(parse1("colour=blue") && choice == 2, "blue -> %d", choice);
    CHECK(!parse1("colour=") && strstr(err, "bad value '' for colour; accepted: red, green, blue"),
          "empty: %s", err);
    CHECK(!parse1("colour=Red"), "choices are case-sensitive");
done:;
}

static void t_uint(void)
{
    CHECK(parse1("n=2") && u == 2 && u_given, "lower bound");
    CHECK(parse1("n=1000") && u == 1000, "upper bound");
    CHECK(parse1("n=0x3e8") && u == 1000, "hex");
    static const char *const bad[] = { "n=1", "n=1001", "n=0x", "n=-5", "n=abc", "n=", "n=5x",
                                       "n= 5", "n=99999999999999999999999" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        CHECK(!parse1(bad[i]), "%s accepted", bad[i]);
        CHECK(strstr(err, "accepted: an integer from 2 to 1000"), "%s: %s", bad[i], err);
    }
done:;
}

static void t_repeatable(void)
{
    CHECK(parse1("at=0x10") && parse1("at=0"), "addresses");
    CHECK(many->len == 2 && g_array_index(many, uint64_t, 0) == 0x10 &&
          g_array_index(many, uint64_t, 1) == 0, "%u values", many->len);
    CHECK(parse1("only=0x10-0x20") && ranges->len == 2 &&
          g_array_index(ranges, uint64_t, 1) == 0x20, "range");
    static const char *const bad[] = { "only=5-3", "only=3-3", "only=0x10", "only=a-b", "only=1-",
                                       "only=-1", "only=1-2-3" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        CHECK(!parse1(bad[i]) && strstr(err, "for only; accepted: LO-HI"), "%s: %s", bad[i], err);
    }
    CHECK(ranges->len == 2, "a refused range was stored");
done:;
}

static void t_names(void)
{
    CHECK(parse1("path=") && str && !*str, "empty string");
    CHECK(!parse1("bogus=1"), "unknown accepted");
    CHECK(strcmp(err, "plug: unknown argument 'bogus=1'; accepted arguments: flag=on|off, "
                      "colour=red|green|blue, n=N, path=PATH, at=ADDR, only=LO-HI\n") == 0,
          "message %s", err);
    CHECK(!parse1("flag") && strstr(err, "argument 'flag' has no value"), "bare: %s", err);
    CHECK(!parse1("fla=on") && strstr(err, "unknown argument 'fla=on'"), "prefix: %s", err);
    CHECK(!parse1("=on") && strstr(err, "unknown argument '=on'"), "no name: %s", err);
done:;
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        { "bool", t_bool },         { "choice", t_choice }, { "uint", t_uint },
        { "repeatable", t_repeatable }, { "names", t_names },
    };
    int r = run_cases(tests, G_N_ELEMENTS(tests), argc, argv, reset);
    g_array_free(many, TRUE);
    g_array_free(ranges, TRUE);
    return r;
}
