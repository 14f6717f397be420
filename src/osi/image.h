/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kernel image -> its BTF type information. Reads what a guest boots:
 *   - an x86 bzImage (the setup header's payload, compressed with gzip, xz,
 *     lzma, bzip2, lz4 legacy frames, zstd or lzop), decompressing to an ELF
 *     vmlinux whose .BTF section is taken;
 *   - an arm64 Image (no section headers: the BTF blob is found by its
 *     header and confirmed with libbpf), also whole-file compressed with any
 *     of those codecs, or an EFI zboot image ("zimg") with its payload;
 *   - a plain ELF vmlinux;
 *   - a raw BTF blob (/sys/kernel/btf/vmlinux).
 * No QEMU headers: unit-tested on real and synthetic images.
 */
#ifndef OSI_IMAGE_H
#define OSI_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct osi_image {
    uint8_t *btf;          /* g_malloc'd copy of the raw BTF blob (header + types + strings) */
    size_t btf_size;
    char version[160];     /* the "Linux version ..." banner's first line, "" if not found */
    char format[64];       /* what was read, for messages: "bzImage, xz payload, ELF vmlinux", ... */
} osi_image;

/* Images larger than this (before or after decompression) are refused:
 * a real vmlinux is tens of MiB, so this bounds decompression bombs. */
#define OSI_IMAGE_MAX_BYTES ((size_t)512 << 20)

/*
 * Reads the image at path. False after writing one clear line (no trailing
 * newline) into err; *out is then zeroed and owns nothing.
 */
bool osi_image_load(const char *path, osi_image *out, char *err, size_t errlen);

/* The same on an image already in memory; name stands for it in messages. */
bool osi_image_load_mem(const uint8_t *data, size_t size, const char *name, osi_image *out,
                        char *err, size_t errlen);

void osi_image_free(osi_image *img);

/*
 * Lowers the size limit (files and decompressed output) below
 * OSI_IMAGE_MAX_BYTES, for tests and the fuzz harness; 0 restores it.
 */
void osi_image_set_limit(size_t bytes);

#endif
