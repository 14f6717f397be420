/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Translation-time instrumentation. Everything is decided here, once per
 * block: a block that does not end in a call or return gets no
 * instrumentation at all, so executing it costs nothing. A call or return
 * gets one callback, run just before the instruction executes, which reads
 * the stack pointer and the target (see csi_site) and feeds the engine.
 *
 * Handling the event at the instruction itself, rather than at the first
 * block after it, matters: a signal delivered between a return and its
 * target would otherwise make the handler look like the return target.
 */
#include <string.h>
#include "plugin.h"
#include "guestmem.h"
#include "signals.h"
#include "trampoline.h"
#include "translate.h"
#include "guestio.h"
#include "returns.h"
#include "site.h"
#include "symbols.h"
#include "system.h"
#include "tsan.h"

static GHashTable *sites;   /* csi_site* (key and value), interned */
static GMutex sites_lock;
qemu_plugin_u64 csi_pending_flag;
static bool guest_base_known;

/*
 * In linux-user, guest memory is host memory shifted by guest_base, and an
 * instruction's host address minus its guest address is exactly that
 * shift; the plugin API has no other way to ask. Direct memory reads need
 * it (guestmem.h), and so does symbolisation, to read the guest's mappings
 * from the host's (see symbols.c). Done once, on
 * the first block: nothing is added to later translations but a load.
 */
static void learn_guest_base(struct qemu_plugin_tb *tb)
{
    if (__atomic_load_n(&guest_base_known, __ATOMIC_ACQUIRE) || csi_cfg.system_mode ||
        qemu_plugin_tb_n_insns(tb) == 0) {
        return;
    }
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, 0);
    void *haddr = qemu_plugin_insn_haddr(insn);
    if (haddr) {
        csi_guestmem_set_base((uint64_t)(uintptr_t)haddr - qemu_plugin_insn_vaddr(insn),
                             csi_cfg.direct_reads);
        __atomic_store_n(&guest_base_known, true, __ATOMIC_RELEASE);
    }
}

static guint site_hash(gconstpointer p)
{
    const csi_site *s = p;
    return (guint)(s->vaddr ^ (s->vaddr >> 32)) ^ ((guint)s->info.cls << 24);
}

/* csi_insn_info is zeroed before decoding, padding included: memcmp is exact. */
static gboolean site_equal(gconstpointer a, gconstpointer b)
{
    const csi_site *x = a, *y = b;
    return x->vaddr == y->vaddr && memcmp(&x->info, &y->info, sizeof x->info) == 0;
}

static struct qemu_plugin_register *reg_or_null(const char *name)
{
    return name[0] ? csi_reg_handle(name) : NULL;
}

static csi_site *intern_site(uint64_t vaddr, const csi_insn_info *info)
{
    csi_site key = { .vaddr = vaddr, .info = *info };
    g_mutex_lock(&sites_lock);
    csi_site *s = g_hash_table_lookup(sites, &key);
    if (!s) {
        s = g_aligned_alloc(1, sizeof *s, _Alignof(csi_site));
        *s = key;
        s->cls = info->cls;
        s->ret_addr = info->ret_addr;
        s->tkind = info->target.kind;
        s->direct = info->target.addr;
        s->base = reg_or_null(info->target.base);
        s->index = reg_or_null(info->target.index);
        s->scale = info->target.scale;
        s->size = info->target.size;
        s->disp = info->target.disp;
        s->mask = info->target.mask ? info->target.mask : UINT64_MAX;
        s->half_bit = info->target.half_bit;
        s->sp_delta = info->sp_delta;
        s->cond = info->cond;
        s->cond_reg = info->cond.kind != CSI_COND_ALWAYS ? reg_or_null(info->cond.reg) : NULL;
        /* A register QEMU does not list leaves the target unknown rather
         * than wrong (and a condition it cannot read, taken). */
        if ((info->target.base[0] && !s->base) || (info->target.index[0] && !s->index)) {
            s->tkind = CSI_TARGET_NONE;
        }
        s->hot = s->tkind != CSI_TARGET_NEXT;
        CSI_TSAN_PUBLISH(s);
        g_hash_table_add(sites, s);
    }
    g_mutex_unlock(&sites_lock);
    return s;
}

/*
 * A direct call to its own return address reads the pc (i386 `call next;
 * pop`, PowerPC `bcl 20,31,$+4`, MIPS `bal` over its delay slot): control
 * falls through and nothing ever returns, so it is no call.
 */
static bool reads_pc(const csi_insn_info *info)
{
    uint64_t mask = info->target.mask ? info->target.mask : UINT64_MAX;
    unsigned half = info->target.half_bit;
    return info->cls == CSI_INSN_CALL && info->target.kind == CSI_TARGET_DIRECT &&
           csi_target_canon(info->target.addr, mask, half) ==
           csi_target_canon(info->ret_addr, mask, half);
}

/* The retpoline's length with its inner call's target: 5 + 7 + 5 bytes. */
#define THUNK_BYTES 24

/* A direct call's target may be a thunk that jumps on (arch resolve_call):
 * its first bytes decide, read once, at translation. Unreadable (not
 * mapped yet): the call stays as it is. */
static void resolve_call(csi_insn_info *info)
{
    uint64_t t = csi_target_canon(info->target.addr, info->target.mask, info->target.half_bit);
    GByteArray *buf = g_byte_array_sized_new(THUNK_BYTES);
    if (qemu_plugin_read_memory_vaddr(t, buf, THUNK_BYTES) && buf->len == THUNK_BYTES) {
        csi_arch->resolve_call(csi_arch, buf->data, buf->len, info);
    }
    g_byte_array_free(buf, TRUE);
}

/*
 * A call that loads its target from memory gets its callback after that
 * load, with the value loaded (csi_fastpath_call_loaded), instead of one
 * before the instruction that reads guest memory itself. Only for an
 * unconditional call whose only load is its target: x86 (a push is a
 * store), where these are C++ virtual calls and function tables.
 */
static bool loads_target(const csi_site *site)
{
    return site->cls == CSI_INSN_CALL && site->tkind == CSI_TARGET_MEM && site->hot &&
           !site->cond_reg && csi_arch->ret_addr_on_stack;
}

#define CODE_MAX 96   /* bytes of context + tail: 5 Thumb or 2 MIPS instructions */

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    learn_guest_base(tb);
    bool count_returns = csi_returns_translating();
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    if (csi_signals_is_handler(pc)) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, csi_on_signal_entry, QEMU_PLUGIN_CB_R_REGS,
                                             (void *)(uintptr_t)pc);
    }
    if (csi_arch->targets_observed && n > 0) {
        /* Cheap unless a CSI_TARGET_NEXT site has just run on this vCPU. */
        qemu_plugin_register_vcpu_tb_exec_cond_cb(
            tb, csi_on_landing, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_COND_NE,
            csi_pending_flag, 0, (void *)(uintptr_t)qemu_plugin_tb_vaddr(tb));
    }
    /* Calls and returns end a block (or sit just before a delay slot), so
     * only the tail needs decoding, with a few instructions before it as
     * context. */
    size_t first = n > csi_arch->tail_insns ? n - csi_arch->tail_insns : 0;
    size_t ctx = first > csi_arch->context_insns ? first - csi_arch->context_insns : 0;
    uint8_t buf[CODE_MAX];
    size_t offs[CODE_MAX];
    csi_code code = { .bytes = buf, .block_start = ctx == 0 };
    if (csi_arch->mode_reg) {
        csi_reg_read_current(csi_arch->mode_reg, &code.mode);
    }
    unsigned tags = csi_cfg.system_mode && csi_system_kernel_now() ? CSI_UDATA_KERNEL : 0;
    for (size_t i = ctx; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (code.len == 0 || vaddr != code.addr + code.len ||
            code.len + qemu_plugin_insn_size(insn) > CODE_MAX) {
            /* (re)start the buffer: not contiguous, or full */
            code.block_start = code.len == 0 ? code.block_start : false;
            code.len = 0;
            code.addr = vaddr;
        }
        offs[i - ctx] = code.len;
        code.len += qemu_plugin_insn_data(insn, buf + code.len, CODE_MAX - code.len);
    }
    for (size_t i = first; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        if (vaddr < code.addr || vaddr - code.addr != offs[i - ctx]) {
            continue;   /* fell out of the buffer (never in practice) */
        }
        csi_insn_info info;
        memset(&info, 0, sizeof info);
        code.at = offs[i - ctx];
        code.prev_at = i > ctx && offs[i - ctx - 1] < code.at ? offs[i - ctx - 1] : 0;
        csi_arch->classify(csi_arch, &code, &info);
        if (info.cls == CSI_INSN_CALL && info.target.kind == CSI_TARGET_DIRECT &&
            csi_arch->resolve_call) {
            resolve_call(&info);
        }
        if (info.cls == CSI_INSN_OTHER || reads_pc(&info)) {
            continue;
        }
        if (csi_arch->local_entries && info.cls == CSI_INSN_CALL &&
            info.target.kind == CSI_TARGET_DIRECT) {
            /* a call from code sharing the callee's TOC enters after the
             * TOC set-up; indirect calls enter at the symbol already */
            info.target.addr = csi_symbols_function_entry(
                csi_target_canon(info.target.addr, info.target.mask, info.target.half_bit));
        }
        csi_site *site = intern_site(vaddr, &info);
        if (count_returns && csi_returns_count(insn, site)) {
            continue;   /* (returns.c) */
        }
        bool slot_ret = site->cls == CSI_INSN_RET && csi_arch->ret_addr_on_stack && site->hot &&
                        !site->cond_reg && site->tkind == CSI_TARGET_MEM && !site->index &&
                        site->disp == 0 && site->base && site->base == csi_reg_handle(csi_arch->sp_reg);
        if (loads_target(site)) {
            qemu_plugin_register_vcpu_mem_cb(insn, csi_on_call_loaded, QEMU_PLUGIN_CB_R_REGS,
                                             QEMU_PLUGIN_MEM_R, csi_site_udata(site, tags));
            continue;
        }
        qemu_plugin_register_vcpu_insn_exec_cb(
            insn, info.cls == CSI_INSN_CALL ? csi_on_call : csi_on_ret,
            QEMU_PLUGIN_CB_R_REGS, csi_site_udata(site, tags | (slot_ret ? CSI_UDATA_SLOT_RET : 0)));
    }
}

void csi_translate_setup(qemu_plugin_id_t id)
{
    (void)id;
    g_mutex_init(&sites_lock);
    sites = g_hash_table_new_full(site_hash, site_equal, NULL, g_aligned_free);
    if (csi_arch->targets_observed) {
        csi_pending_flag = qemu_plugin_scoreboard_u64(qemu_plugin_scoreboard_new(sizeof(uint64_t)));
    }
}

void csi_translate_register_callbacks(qemu_plugin_id_t id)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
}
