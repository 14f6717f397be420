/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A driver of src/osi/image.c for the end-to-end tests (tests/e2e/test_osi.py):
 *
 *   osi_btf_tool IMAGE OUT
 *
 * writes the raw BTF blob osi_linux reads from IMAGE to OUT (the tests
 * alter it and give it back to osi_linux as kernel=). A refused image: its
 * one-line message on stderr, exit status 1.
 */
#include <stdio.h>
#include "osi/image.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: osi_btf_tool IMAGE OUT\n");
        return 2;
    }
    char err[512];
    osi_image img;
    if (!osi_image_load(argv[1], &img, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    int rc = !f || fwrite(img.btf, 1, img.btf_size, f) != img.btf_size;
    if (f && fclose(f) != 0) {
        rc = 1;
    }
    if (rc) {
        perror(argv[2]);
    }
    osi_image_free(&img);
    return rc;
}
