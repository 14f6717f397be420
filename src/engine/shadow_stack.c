/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>
#include "shadow_stack.h"

/* CSI_STACK_INITIAL_CAP is small: most stacks stay shallow, and there may
 * be many. */

void csi_stack_init(csi_stack *s, const csi_stack_id *id, uint32_t max_depth)
{
    memset(s, 0, sizeof *s);
    s->id = *id;
    s->label = *id;
    s->max_depth = max_depth < 2 ? 2 : max_depth;
    s->fev.stack_word = &s->consumer_word;
}

void csi_stack_destroy(csi_stack *s)
{
    g_free(s->frames);
    g_free(s->words);
    s->frames = NULL;
    s->words = NULL;
    s->count = s->cap = 0;
}

void csi_stack_make_room(csi_stack *s)
{
    if (s->count == s->max_depth) {
        /* Forget the oldest half rather than one frame at a time, so deep
         * recursion costs one memmove per max_depth/2 calls. */
        uint32_t drop = s->max_depth / 2;
        memmove(s->frames, s->frames + drop, (size_t)(s->count - drop) * sizeof *s->frames);
        memmove(s->words, s->words + drop, (size_t)(s->count - drop) * sizeof *s->words);
        s->count -= drop;
        s->forgotten += drop;
    }
    if (s->count == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : CSI_STACK_INITIAL_CAP;
        if (cap > s->max_depth) {
            cap = s->max_depth;
        }
        s->frames = g_renew(csi_frame, s->frames, cap);
        s->words = g_renew(uint64_t, s->words, cap);
        /* (words read 0 until a consumer sets them: engine.c) */
        memset(s->words + s->cap, 0, (size_t)(cap - s->cap) * sizeof *s->words);
        s->cap = cap;
    }
}

void csi_stack_shrink(csi_stack *s)
{
    s->cap /= 2;
    s->frames = g_renew(csi_frame, s->frames, s->cap);
    s->words = g_renew(uint64_t, s->words, s->cap);
}

bool csi_stack_id_equal(const csi_stack_id *a, const csi_stack_id *b)
{
    return a->first == b->first && a->second == b->second &&
           a->kind == b->kind && a->kernel == b->kernel && a->instance == b->instance;
}

guint csi_stack_id_hash(const csi_stack_id *id)
{
    uint64_t h = id->first * 0x9e3779b97f4a7c15ull;
    h ^= id->second + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
    h ^= ((uint64_t)id->kind << 1) | (uint64_t)id->kernel;
    h ^= id->instance * 0xff51afd7ed558ccdull;
    return (guint)(h ^ (h >> 32));
}
