/* plan_steps.c - a plan's bookkeeping (plan_internal.h): tensors and their
 * memory objects, arena slots (a slot is free again once its tensor is
 * released, and sized by the largest tensor it ever held), steps with their
 * scratchpads, and the final arena layout. */
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

#define SLOT_ALIGN 4096

static int grow_array(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return 0;
    int new_cap = *cap ? *cap * 2 : 32;
    void *p = realloc(*arr, (size_t)new_cap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = new_cap;
    return 0;
}

static size_t round_up(size_t n) { return (n + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN; }

rd_status_t plan_new_tensor(plan_t *p, const dnnl_memory_desc_t *md, bind_t bind, int slot,
                              void *handle, int *out, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    if (grow_array((void **)&p->tensors, &p->cap_tensors, p->n_tensors, sizeof *p->tensors))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory building a plan");
    tensor_t *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof *t);
    t->md = *md;
    t->bind = bind;
    if (bind == BIND_ARENA) {
        for (int i = 0; slot < 0 && i < MAX_SLOTS; i++)
            if (!p->busy[i])
                slot = i;
        if (slot < 0)
            return rd_error_set(err, RD_ERR_INTERNAL, "plan needs more than %d buffers", MAX_SLOTS);
        size_t bytes = round_up(dnnl_memory_desc_get_size(md));
        if (bytes > p->slot_bytes[slot])
            p->slot_bytes[slot] = bytes;
        p->busy[slot] = 1;
        t->slot = slot;
        t->live = 1;
    }
    DNNL_TRY(dnnl_memory_create(&t->mem, md, plan_ctx_engine(p->ctx),
                                bind == BIND_FIXED ? handle : DNNL_MEMORY_NONE));
    *out = p->n_tensors++;
    return RD_OK;
fail:
    if (bind == BIND_ARENA)
        p->busy[slot] = 0;
    return st;
}

void plan_release(plan_t *p, int t)
{
    tensor_t *x = &p->tensors[t];
    if (x->bind == BIND_ARENA && x->live) {
        p->busy[x->slot] = 0;
        x->live = 0;
    }
}

rd_status_t plan_add_step(plan_t *p, const_dnnl_primitive_desc_t pd,
                            const dnnl_exec_arg_t *args, int n_args, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    if (grow_array((void **)&p->steps, &p->cap_steps, p->n_steps, sizeof *p->steps))
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory building a plan");
    step_t *s = &p->steps[p->n_steps];
    memset(s, 0, sizeof *s);
    memcpy(s->args, args, (size_t)n_args * sizeof *args);
    s->n_args = n_args;
    s->point = -1;
    const dnnl_memory_desc_t *scratch_md =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
    if (scratch > 0) {
        int t;
        st = plan_new_tensor(p, scratch_md, BIND_SCRATCH, -1, NULL, &t, err);
        if (st != RD_OK)
            return st;
        s->args[s->n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->tensors[t].mem};
        if (scratch > p->scratch_bytes)
            p->scratch_bytes = scratch;
    }
    DNNL_TRY(dnnl_primitive_create(&s->prim, pd));
    p->n_steps++;
fail:
    return st;
}

/* Arena offsets: slot 0 first, then slots 1.. of the largest later size; the
 * stem's output starts where slot 1 does (it is dead before slot 1 is used). */
void plan_layout(plan_t *p)
{
    size_t later = 0, s0 = p->slot_bytes[0];
    int n_slots = 1;
    for (int i = 1; i < MAX_SLOTS; i++)
        if (p->slot_bytes[i]) {
            n_slots = i + 1;
            if (p->slot_bytes[i] > later)
                later = p->slot_bytes[i];
        }
    size_t rest = (size_t)(n_slots - 1) * later;
    p->arena_bytes = s0 + (p->slot_bytes[SLOT_STEM] > rest ? p->slot_bytes[SLOT_STEM] : rest);
    for (int i = 0; i < p->n_tensors; i++) {
        tensor_t *t = &p->tensors[i];
        if (t->bind != BIND_ARENA)
            continue;
        t->offset = t->slot == 0 ? 0 : t->slot == SLOT_STEM ? s0 : s0 + (size_t)(t->slot - 1) * later;
    }
}
