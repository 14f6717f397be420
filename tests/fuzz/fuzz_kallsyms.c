/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for kernel symbol maps (src/osi/kallsyms.c): the bytes
 * become a file loaded as a System.map / kallsyms dump; when it loads,
 * addresses taken from the input are looked up and fed to the slide
 * finder.
 *
 * Checks (abort on failure): nothing crashes or leaks; a refusal says why
 * in one line; a loaded map has symbols; find returns a symbol at or below
 * the address, whose name lookup finds; the slide finder, once decided,
 * keeps its answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "osi/kallsyms.h"
#include "fuzz.h"

#define bad(...) fuzz_fail("fuzz_kallsyms", __VA_ARGS__)

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz_kallsyms.%d", tmp ? tmp : "/tmp", (int)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
        bad("cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
    char err[256] = "";
    osi_ksyms *k = osi_ksyms_load(path, err, sizeof err);
    unlink(path);
    if (!k) {
        if (!err[0] || strchr(err, '\n')) {
            bad("refused without a one-line reason: '%s'", err);
        }
        return 0;
    }
    if (osi_ksyms_count(k) == 0) {
        bad("loaded with no symbols");
    }
    osi_slide *s = osi_slide_new(k, 0x1000);
    int64_t first = 0, slide = 0;
    bool decided = false;
    for (size_t i = 0; i + 8 <= size; i += 3) {
        uint64_t a;
        memcpy(&a, data + i, 8);
        const char *name;
        uint64_t at, by_name;
        if (osi_ksyms_find(k, a, &name, &at)) {
            if (at > a || !osi_ksyms_lookup(k, name, &by_name)) {
                bad("find %#llx gave %s at %#llx", (unsigned long long)a, name, (unsigned long long)at);
            }
        }
        if (osi_slide_feed(s, a, &slide)) {
            if (decided && slide != first) {
                bad("the slide changed after its decision");
            }
            decided = true;
            first = slide;
        }
    }
    osi_slide_free(s);
    osi_ksyms_free(k);
    return 0;
}
