/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linux kernel symbols from a System.map or a /proc/kallsyms dump, and the
 * KASLR slide of a running kernel found from the addresses of the code it
 * executes. Host-independent: no QEMU headers.
 *
 * Input lines are "ADDR TYPE NAME" (System.map) or "ADDR TYPE NAME
 * [module]" (kallsyms). Kept: the kernel's own symbols. Dropped: module
 * symbols (modules are placed apart from the kernel image and do not move
 * with its slide) and absolute symbols (types A/a: per-CPU offsets and
 * the like, not addresses). Lines of another form are skipped; a file
 * with no symbol line at all is refused.
 */
#ifndef OSI_KALLSYMS_H
#define OSI_KALLSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what one map may hold: a file beyond them is refused. */
#define OSI_KSYMS_MAX_SYMBOLS (4u << 20)
#define OSI_KSYMS_MAX_NAME_BYTES (256u << 20)

typedef struct osi_ksyms osi_ksyms;

/* Loads PATH; NULL with one line in err (no trailing newline) on failure. */
osi_ksyms *osi_ksyms_load(const char *path, char *err, size_t errlen);
void osi_ksyms_free(osi_ksyms *k);
/* Symbols kept. */
size_t osi_ksyms_count(const osi_ksyms *k);
/*
 * The symbol containing addr (in the map's own terms, before the slide):
 * the one with the greatest address <= addr. Among symbols at one address
 * (aliases) a function symbol (t/T/w/W) is preferred, then the first in
 * the file. False below the first symbol and above the last one. name
 * stays valid while k lives.
 */
bool osi_ksyms_find(const osi_ksyms *k, uint64_t addr, const char **name, uint64_t *sym_addr);
/* The address of the first symbol of that name in the file. */
bool osi_ksyms_lookup(const osi_ksyms *k, const char *name, uint64_t *addr);

/*
 * KASLR slide finder. Feed the run-time addresses of translated kernel code
 * blocks (many of them are function entries). Each address votes for
 * slide = runtime - f for every function start f (text symbols t/T/w/W)
 * with the same residue modulo align (x86_64 moves its kernel in steps of
 * 0x200000, aarch64 of 0x10000; slide 0 is one such step). Addresses in
 * the other half of the address space than the map's functions are
 * ignored: early boot code runs at physical addresses (the x86 decompressor
 * and head code, arm64 before its MMU is on), which would vote for a
 * physical-to-map offset. The slide is
 * decided once a candidate has OSI_SLIDE_MIN_VOTES votes and
 * OSI_SLIDE_LEAD times the runner-up's; from then on feed returns true
 * with it at once. Each call costs a bounded amount of work and no
 * allocation. k must outlive s.
 */
#define OSI_SLIDE_MIN_VOTES 24
#define OSI_SLIDE_LEAD 4

typedef struct osi_slide osi_slide;
/* NULL when align is 0 or memory runs out. */
osi_slide *osi_slide_new(const osi_ksyms *k, uint64_t align);
bool osi_slide_feed(osi_slide *s, uint64_t runtime_addr, int64_t *slide);
bool osi_slide_known(const osi_slide *s, int64_t *slide);
void osi_slide_free(osi_slide *s);

#endif
