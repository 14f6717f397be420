/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What osi_linux derives from a kernel image (its layout, format and
 * banner), kept in a small text file named by the image's size and a hash
 * of its bytes, so that
 * the next run on the same kernel reads a few hundred bytes instead of
 * decompressing the image and walking its BTF (0.35-0.4 s of CPU at every
 * start for a Debian bzImage: a tenth of a short whole-system run, paid
 * again by every replay of a recording). The file is checked as untrusted
 * input: anything missing, malformed or out of range is a miss, and the
 * image is read as without a cache. No QEMU headers.
 */
#ifndef OSI_CACHE_H
#define OSI_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include "layout.h"

typedef struct osi_cached {
    osi_layout layout;
    char format[64];
    char version[160];
} osi_cached;

/* $XDG_CACHE_HOME/callstack_instr/osi (or ~/.cache/...); g_free it. */
char *osi_cache_default_dir(void);

/*
 * The cache file for the image at `path` for guests of `arch`: its name
 * carries the image's size and a 128-bit hash of its bytes. NULL (nothing cached then) if
 * the image cannot be read or is larger than the image reader accepts.
 * g_free it.
 */
char *osi_cache_file(const char *dir, const char *path, const char *arch);

/* The entry in `file`, if it is a whole, valid one for `arch`. */
bool osi_cache_load(const char *file, const char *arch, osi_cached *out);

/* Writes the entry (a temporary file renamed into place, so a reader never
 * sees half of one); the directory is made if missing. False on any
 * failure, which only costs the next run its time. */
bool osi_cache_store(const char *file, const char *arch, const osi_cached *in);

#endif
