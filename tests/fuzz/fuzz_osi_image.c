/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for osi_linux's kernel-image and BTF readers
 * (src/osi/image.c, layout.c): the input is an image file's bytes, read
 * with osi_image_load_mem under a 1 MiB limit (so that bombs end quickly);
 * the blob it yields, and the input itself, go through the layout reader
 * for both architectures.
 *
 * Checks (abort on failure): nothing crashes or leaks; a failure leaves one
 * non-empty line of error and no blob; a success a blob libbpf parsed, a
 * format, a NUL-terminated banner; a layout's offsets and sizes are those
 * of members (comm non-empty, pid 4 bytes).
 */
#include <string.h>
#include "osi/image.h"
#include "osi/layout.h"
#include "fuzz.h"

#define bad(...) fuzz_fail("fuzz_osi_image", __VA_ARGS__)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    osi_image_set_limit((size_t)1 << 20);
    return 0;
}

static void one_line(const char *what, const char *err)
{
    if (!err[0] || strchr(err, '\n')) {
        bad("%s failed without one line of error: \"%s\"", what, err);
    }
}

static void layout(const uint8_t *p, size_t n)
{
    static const char *const arches[] = { "x86_64", "aarch64" };
    for (int a = 0; a < 2; a++) {
        osi_layout l;
        char err[256];
        if (!osi_layout_from_btf(p, n, arches[a], &l, err, sizeof err)) {
            one_line("osi_layout_from_btf", err);
            continue;
        }
        if (l.pid_size != 4 || l.comm_size < 2 || l.thread_size < 16384
            || l.has_percpu_current != (a == 0)) {
            bad("implausible layout: pid %u bytes, comm %u, THREAD_SIZE %llu", l.pid_size,
                l.comm_size, (unsigned long long)l.thread_size);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    osi_image img;
    char err[256];
    if (osi_image_load_mem(data, size, "input", &img, err, sizeof err)) {
        if (!img.btf || !img.btf_size || !img.format[0]
            || strnlen(img.version, sizeof img.version) == sizeof img.version) {
            bad("a success without blob, format or banner (%s)", img.format);
        }
        layout(img.btf, img.btf_size);
        osi_image_free(&img);
    } else {
        one_line("osi_image_load_mem", err);
        if (img.btf || img.btf_size) {
            bad("a failure left a blob");
        }
    }
    layout(data, size);
    return 0;
}
