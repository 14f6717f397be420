/* SPDX-License-Identifier: GPL-2.0-or-later */
/* BTF -> task_struct and friends' offsets (see layout.h), through libbpf. */
#include "osi/layout.h"

#include <stdio.h>
#include <string.h>

#include "osi/btf_util.h"

typedef struct lctx {
    const struct btf *btf;
    char *err;
    size_t errlen;
} lctx;

#define lfail(c, ...) osi_errf((c)->err, (c)->errlen, __VA_ARGS__)

/*
 * Member `name` of the struct or union `id`, looked for in anonymous
 * members too (their offsets add up): its bit offset, type id and, for a
 * bitfield, its width (else 0).
 */
static bool find_member(const struct btf *btf, __u32 id, const char *name, uint64_t *bits,
                        __u32 *type, uint32_t *width, int depth)
{
    const struct btf_type *t = btf__type_by_id(btf, id);
    if (!t || !btf_is_composite(t) || depth > 16) {
        return false;
    }
    const struct btf_member *m = btf_members(t);
    for (__u16 i = 0; i < btf_vlen(t); i++) {
        const char *mn = btf__name_by_offset(btf, m[i].name_off);
        uint64_t off = btf_member_bit_offset(t, i), sub_bits;
        if (mn && strcmp(mn, name) == 0) {
            *bits = off;
            *type = m[i].type;
            *width = btf_member_bitfield_size(t, i);
            return true;
        }
        if (!mn || !mn[0]) {
            int sub = btf__resolve_type(btf, m[i].type);
            if (sub > 0 && find_member(btf, (__u32)sub, name, &sub_bits, type, width, depth + 1)) {
                *bits = off + sub_bits;
                return true;
            }
        }
    }
    return false;
}

/* A struct by name: its type id and size. */
static bool find_struct(lctx *c, const char *name, __u32 *id, uint64_t *size)
{
    __s32 r = btf__find_by_name_kind(c->btf, name, BTF_KIND_STRUCT);
    if (r <= 0) {
        return lfail(c, "the kernel's BTF has no struct %s: not a Linux kernel's BTF?", name);
    }
    *id = (__u32)r;
    *size = btf__type_by_id(c->btf, *id)->size;
    return true;
}

/*
 * The byte offset of s.member, s being the struct `id` named sname of
 * ssize bytes; its size must be want_size (0: any, then *size says).
 */
static bool member(lctx *c, __u32 id, const char *sname, uint64_t ssize, const char *name,
                   uint64_t want_size, uint32_t *off, uint32_t *size)
{
    uint64_t bits;
    __u32 type;
    uint32_t width;
    if (!find_member(c->btf, id, name, &bits, &type, &width, 0)) {
        return lfail(c, "the kernel's BTF: struct %s has no member %s", sname, name);
    }
    __s64 msize = btf__resolve_size(c->btf, type);
    if (width || bits % 8 || msize <= 0 || bits / 8 + (uint64_t)msize > ssize) {
        return lfail(c, "the kernel's BTF: %s.%s is not a byte-aligned member inside the struct",
                     sname, name);
    }
    if (want_size && (uint64_t)msize != want_size) {
        return lfail(c, "the kernel's BTF: %s.%s is %lld bytes, expected %llu", sname, name,
                     (long long)msize, (unsigned long long)want_size);
    }
    *off = (uint32_t)(bits / 8);
    if (size) {
        *size = (uint32_t)msize;
    }
    return true;
}

/* The current task pointer's offset in the per-CPU area (x86_64). */
static bool percpu_current(lctx *c, osi_layout *out)
{
    __s32 sec = btf__find_by_name_kind(c->btf, ".data..percpu", BTF_KIND_DATASEC);
    if (sec <= 0) {
        return lfail(c, "the kernel's BTF has no .data..percpu section (a kernel without SMP?)");
    }
    const struct btf_type *t = btf__type_by_id(c->btf, (__u32)sec);
    const struct btf_var_secinfo *v = btf_var_secinfos(t);
    bool hot = false;
    uint64_t hot_off = 0;
    for (__u16 i = 0; i < btf_vlen(t); i++) {
        const struct btf_type *var = btf__type_by_id(c->btf, v[i].type);
        const char *name = var ? btf__name_by_offset(c->btf, var->name_off) : NULL;
        if (!name || !btf_is_var(var)) {
            continue;
        }
        if (strcmp(name, "current_task") == 0) {          /* Linux <= 6.1 */
            if (v[i].size != 8) {
                return lfail(c, "the kernel's BTF: the per-CPU current_task is %u bytes, expected 8",
                             v[i].size);
            }
            out->percpu_current = v[i].offset;
            return true;
        }
        if (strcmp(name, "pcpu_hot") == 0) {              /* Linux >= 6.2 */
            uint64_t bits;
            __u32 type;
            uint32_t width;
            int st = btf__resolve_type(c->btf, var->type);
            if (st > 0 && find_member(c->btf, (__u32)st, "current_task", &bits, &type, &width, 0)
                && !width && bits % 8 == 0 && bits / 8 + 8 <= v[i].size) {
                hot = true;
                hot_off = v[i].offset + bits / 8;
            }
        }
    }
    if (!hot) {
        return lfail(c, "the kernel's BTF has neither current_task nor pcpu_hot.current_task "
                        "in .data..percpu");
    }
    out->percpu_current = hot_off;
    return true;
}

bool osi_layout_from_btf(const uint8_t *data, size_t size, const char *arch, osi_layout *out,
                         char *err, size_t errlen)
{
    lctx c = { NULL, err, errlen };
    bool ok = false, x86;
    __u32 task = 0, mm = 0;
    uint64_t task_size = 0, mm_size = 0;
    memset(out, 0, sizeof *out);
    if (errlen) {
        err[0] = 0;
    }
    if (strcmp(arch, "x86_64") == 0) {
        x86 = true;
    } else if (strcmp(arch, "aarch64") == 0) {
        x86 = false;
    } else {
        return lfail(&c, "osi_linux supports x86_64 and aarch64 guests, not %s", arch);
    }
    if (size > UINT32_MAX) {
        return lfail(&c, "the kernel's BTF is larger than 4 GiB");
    }
    struct btf *btf = osi_btf_parse(data, size);
    if (!btf) {
        return lfail(&c, "the kernel's BTF is not valid BTF");
    }
    c.btf = btf;

    if (!find_struct(&c, "task_struct", &task, &task_size)
        || !member(&c, task, "task_struct", task_size, "pid", 4, &out->task_pid, &out->pid_size)
        || !member(&c, task, "task_struct", task_size, "tgid", 4, &out->task_tgid, NULL)
        || !member(&c, task, "task_struct", task_size, "comm", 0, &out->task_comm, &out->comm_size)
        || !member(&c, task, "task_struct", task_size, "mm", 8, &out->task_mm, NULL)
        || !member(&c, task, "task_struct", task_size, "flags", 4, &out->task_flags, NULL)
        || !member(&c, task, "task_struct", task_size, "stack", 8, &out->task_stack, NULL)
        || !find_struct(&c, "mm_struct", &mm, &mm_size)
        || !member(&c, mm, "mm_struct", mm_size, "pgd", 8, &out->mm_pgd, NULL)) {
        goto out;
    }
    if (out->comm_size < 2 || out->comm_size > 256) {
        lfail(&c, "the kernel's BTF: task_struct.comm is %u bytes", out->comm_size);
        goto out;
    }

    __s32 tu = btf__find_by_name_kind(btf, "thread_union", BTF_KIND_UNION);
    __s64 tu_size = tu > 0 ? btf__resolve_size(btf, (__u32)tu) : -1;
    if (tu_size > 0) {
        out->thread_size = (uint64_t)tu_size;
    } else {
        bool kasan = btf__find_by_name_kind(btf, "kasan_report", BTF_KIND_FUNC) > 0;
        out->thread_size = (uint64_t)16384 << (kasan ? 1 : 0);
    }

    out->has_percpu_current = x86;
    ok = !x86 || percpu_current(&c, out);
out:
    btf__free(btf);
    if (!ok) {
        memset(out, 0, sizeof *out);
    }
    return ok;
}
