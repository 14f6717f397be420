/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A driver of src/osi/kallsyms.c for the end-to-end tests
 * (tests/e2e/test_ksyms.py):
 *
 *   osi_ksyms_tool MAP ALIGN < commands
 *
 * loads MAP (System.map or a /proc/kallsyms dump) and reads commands, one
 * a line:
 *   find ADDR      prints "NAME SYM_ADDR" (the symbol containing ADDR) or "-"
 *   lookup NAME    prints "ADDR" or "-"
 *   feed ADDR      feeds a run-time address to the slide finder (no output)
 * Addresses are hex. At the end it prints "count=N slide=SLIDE fed=K":
 * the symbols kept, the slide decided (hex, two's complement; "-" if none)
 * and how many feeds it took. A map it refuses: its one-line message on
 * stderr, exit status 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osi/kallsyms.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: osi_ksyms_tool MAP ALIGN < commands\n");
        return 2;
    }
    char err[512];
    osi_ksyms *k = osi_ksyms_load(argv[1], err, sizeof err);
    if (!k) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    osi_slide *s = osi_slide_new(k, strtoull(argv[2], NULL, 0));
    if (!s) {
        fprintf(stderr, "bad alignment %s\n", argv[2]);
        osi_ksyms_free(k);
        return 2;
    }
    char line[1024], arg[600];
    uint64_t fed = 0, decided_at = 0;
    int64_t slide = 0;
    while (fgets(line, sizeof line, stdin)) {
        uint64_t a = 0;
        const char *name;
        if (sscanf(line, "find %" SCNx64, &a) == 1) {
            if (osi_ksyms_find(k, a, &name, &a)) {
                printf("%s %" PRIx64 "\n", name, a);
            } else {
                printf("-\n");
            }
        } else if (sscanf(line, "lookup %599s", arg) == 1) {
            if (osi_ksyms_lookup(k, arg, &a)) {
                printf("%" PRIx64 "\n", a);
            } else {
                printf("-\n");
            }
        } else if (sscanf(line, "feed %" SCNx64, &a) == 1) {
            fed++;
            if (osi_slide_feed(s, a, &slide) && !decided_at) {
                decided_at = fed;
            }
        }
    }
    if (osi_slide_known(s, &slide)) {
        printf("count=%zu slide=%" PRIx64 " fed=%" PRIu64 "\n", osi_ksyms_count(k), (uint64_t)slide,
               decided_at);
    } else {
        printf("count=%zu slide=- fed=%" PRIu64 "\n", osi_ksyms_count(k), fed);
    }
    osi_slide_free(s);
    osi_ksyms_free(k);
    return 0;
}
