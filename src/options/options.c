/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Plugin arguments from a table (options.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include "options.h"

/* The words QEMU's own boolean plugin arguments accept (qapi_bool_parse). */
static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "y" };
    static const char *const no[] = { "off", "no", "false", "n" };
    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* An unsigned integer, decimal or 0x-prefixed hex, nothing else; *end is
 * where it stopped (the whole string unless `to_end` is false). */
static bool parse_uint(const char *v, bool to_end, const char **end, uint64_t *out)
{
    char *e;
    if (!g_ascii_isdigit(v[0])) {
        return false;
    }
    errno = 0;
    uint64_t n = g_ascii_strtoull(v, &e, 0);
    if (errno || e == v || (to_end && *e) || (e[-1] == 'x' || e[-1] == 'X')) {
        return false;
    }
    *end = e;
    *out = n;
    return true;
}

static char *synopsis(const opt_spec *s)
{
    if (s->synopsis) {
        return g_strdup(s->synopsis);
    }
    switch (s->kind) {
    case OPT_BOOL:
        return g_strdup("on|off");
    case OPT_CHOICE:
        return g_strjoinv("|", (char **)s->choices);
    case OPT_UINT:
        return g_strdup("N");
    case OPT_STRING:
        return g_strdup("VALUE");
    case OPT_RANGE:
        return g_strdup("LO-HI");
    }
    return g_strdup("?");
}

static char *accepted(const opt_spec *s)
{
    if (s->accepted) {
        return g_strdup(s->accepted);
    }
    switch (s->kind) {
    case OPT_BOOL:
        return g_strdup("on, off, true, false");
    case OPT_CHOICE:
        return g_strjoinv(", ", (char **)s->choices);
    case OPT_UINT:
        return g_strdup_printf("an integer from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
                               " (decimal or 0x-prefixed hex)", s->min, s->max);
    case OPT_STRING:
        return g_strdup("any text");
    case OPT_RANGE:
        return g_strdup("LO-HI, two addresses (0x-prefixed hex or decimal) with LO < HI");
    }
    return g_strdup("?");
}

char *opts_list(const opt_spec *specs)
{
    GString *s = g_string_new(NULL);
    for (const opt_spec *o = specs; o->name; o++) {
        g_autofree char *syn = synopsis(o);
        g_string_append_printf(s, "%s%s=%s", s->len ? ", " : "", o->name, syn);
    }
    return g_string_free(s, FALSE);
}

static bool store(const opt_spec *o, const char *v)
{
    const char *end;
    uint64_t n, hi;
    switch (o->kind) {
    case OPT_BOOL:
        return parse_bool(v, o->dest);
    case OPT_CHOICE:
        for (int i = 0; o->choices[i]; i++) {
            if (strcmp(v, o->choices[i]) == 0) {
                *(int *)o->dest = i;
                return true;
            }
        }
        return false;
    case OPT_UINT:
        if (!parse_uint(v, true, &end, &n) || n < o->min || n > o->max) {
            return false;
        }
        if (o->repeatable) {
            g_array_append_val((GArray *)o->dest, n);
        } else {
            *(uint64_t *)o->dest = n;
        }
        return true;
    case OPT_STRING:
        *(const char **)o->dest = v;
        return true;
    case OPT_RANGE:
        if (!parse_uint(v, false, &end, &n) || *end != '-' ||
            !parse_uint(end + 1, true, &end, &hi) || n >= hi || n < o->min || hi > o->max) {
            return false;
        }
        g_array_append_val((GArray *)o->dest, n);
        g_array_append_val((GArray *)o->dest, hi);
        return true;
    }
    return false;
}

bool opts_parse(const char *plugin, const opt_spec *specs, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const opt_spec *o = NULL;
        size_t len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        for (const opt_spec *s = specs; s->name && !o; s++) {
            if (strlen(s->name) == len && strncmp(s->name, argv[i], len) == 0) {
                o = s;
            }
        }
        if (!o || !eq) {
            g_autofree char *list = opts_list(specs);
            fprintf(stderr, o ? "%s: argument '%s' has no value; accepted arguments: %s\n"
                              : "%s: unknown argument '%s'; accepted arguments: %s\n",
                    plugin, argv[i], list);
            return false;
        }
        if (!store(o, eq + 1)) {
            g_autofree char *acc = accepted(o);
            fprintf(stderr, "%s: bad value '%s' for %s; accepted: %s\n", plugin, eq + 1, o->name,
                    acc);
            return false;
        }
        if (o->given) {
            *o->given = true;
        }
    }
    return true;
}
