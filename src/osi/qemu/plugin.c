/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * osi_linux: Linux introspection for whole-system plugins, from the kernel
 * image the guest boots.
 *
 *   -plugin libosi_linux.so,kernel=VMLINUZ[,kallsyms=MAP][,cache=DIR|off][,verbose=on]
 *
 * At install the image is read (any of the compressions Linux uses, see
 * image.c) and its BTF gives the offsets (layout.c): nothing comes from the
 * guest, no profile is needed. What that gives is kept by the image's
 * size and hash in the cache directory (cache.c), so later runs on the same
 * kernel skip the decompression. A bad image ends QEMU before the guest runs,
 * with one line saying why. The API (include/osi_linux/osi_linux.h) is
 * exported as NAME_impl for the run-time binding of other plugins.
 */
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <qemu-plugin.h>
#include "osi.h"
#include "osi/cache.h"
#include "osi/image.h"
#include "options/options.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

bool osi_verbose;

QEMU_PLUGIN_EXPORT int osi_linux_api_version_impl(void)
{
    return OSI_LINUX_API_VERSION;
}

QEMU_PLUGIN_EXPORT bool osi_linux_current_impl(unsigned int vcpu_index, osi_linux_thread *out)
{
    return out && osi_current(vcpu_index, out);
}

QEMU_PLUGIN_EXPORT bool osi_linux_current_task_impl(unsigned int vcpu_index, uint64_t *task)
{
    return task && osi_current_task(vcpu_index, task);
}

QEMU_PLUGIN_EXPORT bool osi_linux_symbolize_impl(uint64_t addr, osi_linux_symbol *out)
{
    return out && osi_kernsyms_symbolize(addr, out);
}

QEMU_PLUGIN_EXPORT bool osi_linux_lookup_impl(const char *name, uint64_t *addr)
{
    return addr && osi_kernsyms_lookup(name, addr);
}

QEMU_PLUGIN_EXPORT bool osi_linux_kaslr_slide_impl(int64_t *slide)
{
    return slide && osi_kernsyms_slide(slide);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    osi_kernsyms_report();
    if (osi_verbose) {
        osi_current_report();
    }
}

/* The image's own architecture, where its format tells it. */
static bool image_fits(const osi_image *img, osi_arch arch)
{
    bool x86 = strstr(img->format, "bzImage") != NULL;
    bool arm64 = strstr(img->format, "arm64") != NULL;
    return arch == OSI_X86_64 ? !arm64 : !x86;
}

/* The layout from the image itself: its BTF. False after one line. */
static bool read_image(const char *kernel, osi_arch arch, const char *target, osi_cached *out)
{
    char err[512];
    osi_image img;
    if (!osi_image_load(kernel, &img, err, sizeof err)) {
        fprintf(stderr, "osi_linux: %s\n", err);
        return false;
    }
    if (!image_fits(&img, arch)) {
        fprintf(stderr, "osi_linux: %s is a kernel for another architecture (%s), the guest is "
                "%s\n", kernel, img.format, target);
        osi_image_free(&img);
        return false;
    }
    memset(out, 0, sizeof *out);
    bool ok = osi_layout_from_btf(img.btf, img.btf_size, target, &out->layout, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "osi_linux: %s: %s\n", kernel, err);
    }
    g_strlcpy(out->format, img.format, sizeof out->format);
    g_strlcpy(out->version, img.version, sizeof out->version);
    osi_image_free(&img);
    return ok;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *kernel = NULL, *kallsyms = NULL, *cache = NULL;
    opt_spec specs[] = {
        { .name = "kernel", .kind = OPT_STRING, .synopsis = "PATH", .dest = &kernel },
        { .name = "cache", .kind = OPT_STRING, .synopsis = "DIR|off", .dest = &cache },
        { .name = "kallsyms", .kind = OPT_STRING, .synopsis = "PATH", .dest = &kallsyms },
        { .name = "verbose", .kind = OPT_BOOL, .dest = &osi_verbose },
        { 0 },
    };
    if (!opts_parse("osi_linux", specs, argc, argv)) {
        return -1;
    }
    if (!info->system_emulation) {
        fprintf(stderr, "osi_linux: whole-system mode only (qemu-system-x86_64, "
                "qemu-system-aarch64); user mode knows its threads without it\n");
        return -1;
    }
    osi_arch arch;
    if (strcmp(info->target_name, "x86_64") == 0) {
        arch = OSI_X86_64;
    } else if (strcmp(info->target_name, "aarch64") == 0) {
        arch = OSI_AARCH64;
    } else {
        fprintf(stderr, "osi_linux: guest architecture '%s' is not supported; supported: "
                "x86_64, aarch64\n", info->target_name);
        return -1;
    }
    if (!kernel) {
        fprintf(stderr, "osi_linux: kernel=PATH is required: the kernel image the guest "
                "boots (vmlinuz, Image or vmlinux)\n");
        return -1;
    }
    osi_cached got;
    g_autofree char *dir = cache ? g_strdup(cache) : osi_cache_default_dir();
    g_autofree char *file = strcmp(dir, "off") != 0 ? osi_cache_file(dir, kernel, info->target_name)
                                                    : NULL;
    bool cached = file && osi_cache_load(file, info->target_name, &got);
    if (!cached && !read_image(kernel, arch, info->target_name, &got)) {
        return -1;
    }
    if (!cached && file && !osi_cache_store(file, info->target_name, &got) && osi_verbose) {
        fprintf(stderr, "osi_linux: cannot write the cache file %s (the next run reads the "
                "image again)\n", file);
    }
    const osi_layout layout = got.layout;
    if (osi_verbose) {
        fprintf(stderr, "osi_linux: %s: %s%s%s; task_struct: pid +0x%x, tgid +0x%x, comm +0x%x, "
                "mm +0x%x, stack +0x%x; THREAD_SIZE %" PRIu64, kernel, got.format,
                got.version[0] ? ", " : "", got.version, layout.task_pid, layout.task_tgid,
                layout.task_comm, layout.task_mm, layout.task_stack, layout.thread_size);
        if (layout.has_percpu_current) {
            fprintf(stderr, "; current task at per-CPU +0x%" PRIx64, layout.percpu_current);
        }
        fprintf(stderr, "; %s %s\n", cached ? "from the cache file" : "read from the image; cache",
                file ? file : "off");
    }
    if (arch == OSI_X86_64 && !layout.has_percpu_current) {
        fprintf(stderr, "osi_linux: %s: its BTF has no per-CPU current task variable "
                "(current_task or pcpu_hot)\n", kernel);
        return -1;
    }
    osi_current_setup(arch, &layout, info->system.max_vcpus);
    if (kallsyms && !osi_kernsyms_setup(id, arch, kallsyms)) {
        return -1;
    }
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
