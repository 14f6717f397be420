/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Plugin arguments from a table: one parser for callstack_instr and
 * calltrace, so both accept values the same way and word their refusals
 * the same way. No QEMU headers: the unit tests drive it directly.
 *
 * QEMU hands a plugin its "-plugin lib.so,a=1,b=2" arguments as "a=1",
 * "b=2". Each is looked up by name in a table of opt_spec; a bad one gets
 * one line on stderr naming it and what is accepted:
 *
 *   PLUGIN: unknown argument 'x=1'; accepted arguments: a=on|off, b=N, ...
 *   PLUGIN: bad value 'maybe' for a; accepted: on, off, true, false
 *   PLUGIN: argument 'a' has no value; accepted arguments: ...
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum opt_kind {
    OPT_BOOL,      /* dest: bool *; on|yes|true|y, off|no|false|n */
    OPT_CHOICE,    /* dest: int *, the index in `choices` */
    OPT_UINT,      /* dest: uint64_t *; decimal or 0x-prefixed hex in [min, max] */
    OPT_STRING,    /* dest: const char **, pointing into argv */
    OPT_RANGE,     /* "LO-HI", two OPT_UINT numbers with LO < HI */
} opt_kind;

typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    /* The value in the list of accepted arguments ("PATH", "N"); NULL:
     * on|off for OPT_BOOL, the choices joined by | for OPT_CHOICE. */
    const char *synopsis;
    /* What a bad value's message says is accepted; NULL: derived from the
     * kind (the booleans, the choices, "an integer from MIN to MAX"). */
    const char *accepted;
    uint64_t min, max;              /* OPT_UINT, OPT_RANGE */
    const char *const *choices;     /* OPT_CHOICE, NULL-terminated */
    /* OPT_UINT and OPT_RANGE may be repeatable: dest is then a GArray of
     * uint64_t, to which each value (a range: LO then HI) is appended. */
    bool repeatable;
    void *dest;
    bool *given;                    /* set when the argument appears (may be NULL) */
} opt_spec;

/*
 * Parses argv against `specs` (terminated by an entry with a NULL name),
 * storing each value through its spec's dest. On the first bad argument
 * prints one line, "PLUGIN: ...", and returns false.
 */
bool opts_parse(const char *plugin, const opt_spec *specs, int argc, char **argv);

/* "name=synopsis, ..." for every spec; g_free() it. */
char *opts_list(const opt_spec *specs);

#endif
