/* plan_run.c - running a plan (plan.h): binds the arena and scratchpad when
 * the shared buffers have moved, the caller's input and logits every time,
 * then executes the steps in order on the context's stream; and, when asked
 * after a run, copies the features it left in the arena out in plain NCHW. */
#include <stdint.h>
#include <stdlib.h>

#include "plan_internal.h"

/* Points the arena and scratchpad memories at the context's current buffers. */
static rd_status_t bind(plan_t *p, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    unsigned char *arena = plan_ctx_arena(p->ctx), *scratch = plan_ctx_scratch(p->ctx);
    for (int i = 0; i < p->n_tensors; i++) {
        tensor_t *t = &p->tensors[i];
        if (t->bind == BIND_ARENA)
            DNNL_TRY(dnnl_memory_set_data_handle(t->mem, arena + t->offset));
        else if (t->bind == BIND_SCRATCH)
            DNNL_TRY(dnnl_memory_set_data_handle(t->mem, scratch));
    }
    p->bound_generation = plan_ctx_generation(p->ctx);
fail:
    return st;
}

rd_status_t plan_run(plan_t *p, const float *input, float *logits, rd_error_t *err)
{
    return plan_run_observed(p, input, logits, NULL, NULL, err);
}

/* Hands observe each step's output that is a quantization point, once the
 * step is done (the stream is waited on, so the data is there). */
static rd_status_t observe_step(plan_t *p, const step_t *s, plan_observer_t observe, void *user,
                                rd_error_t *err)
{
    rd_status_t st = RD_OK;
    void *data;
    const dnnl_memory_desc_t *md;
    DNNL_TRY(dnnl_stream_wait(plan_ctx_stream(p->ctx)));
    DNNL_TRY(dnnl_memory_get_data_handle(s->point_mem, &data));
    DNNL_TRY(dnnl_memory_get_memory_desc(s->point_mem, &md));
    observe(user, s->point, data, dnnl_memory_desc_get_size(md) / sizeof(float));
fail:
    return st;
}

rd_status_t plan_run_observed(plan_t *p, const float *input, float *logits,
                              plan_observer_t observe, void *user, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    if (observe && p->int8)
        return rd_error_set(err, RD_ERR_ARG, "only FP32 plans can be observed");
    dnnl_stream_t stream = plan_ctx_stream(p->ctx);
    if (p->bound_generation != plan_ctx_generation(p->ctx) && (st = bind(p, err)) != RD_OK)
        return st;
    /* oneDNN only reads the input; its C API takes a non-const handle. */
    DNNL_TRY(dnnl_memory_set_data_handle(p->tensors[p->input_t].mem, (void *)(uintptr_t)input));
    DNNL_TRY(dnnl_memory_set_data_handle(p->tensors[p->output_t].mem, logits));
    if (observe)
        observe(user, 0, input, dnnl_memory_desc_get_size(&p->tensors[p->input_t].md) / sizeof *input);
    for (int i = 0; i < p->n_steps; i++) {
        const step_t *s = &p->steps[i];
        DNNL_TRY(dnnl_primitive_execute(s->prim, stream, s->n_args, s->args));
        if (observe && s->point >= 0 && (st = observe_step(p, s, observe, user, err)) != RD_OK)
            return st;
    }
    DNNL_TRY(dnnl_stream_wait(stream));
fail:
    return st;
}

/* The reorder from tensor t (oneDNN's layout) to a plain NCHW memory whose
 * buffer is bound at each read. */
static rd_status_t make_to_plain(plan_t *p, int t, int which, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t md;
    dnnl_engine_t eng = plan_ctx_engine(p->ctx);
    const dnnl_memory_desc_t *from = &p->tensors[t].md;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&md, 4, from->dims, dnnl_f32, dnnl_nchw));
    DNNL_TRY(dnnl_memory_create(&p->plain[which], &md, eng, DNNL_MEMORY_NONE));
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from, eng, &md, eng, NULL));
    DNNL_TRY(dnnl_primitive_create(&p->to_plain[which], pd));
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (st != RD_OK && p->plain[which]) { /* the next call starts over */
        dnnl_memory_destroy(p->plain[which]);
        p->plain[which] = NULL;
    }
    return st;
}

rd_status_t plan_read_features(plan_t *p, float *pooled, float *feature_map, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    int tensor[2] = {p->pooled_t, p->feature_t};
    float *dst[2] = {pooled, feature_map};
    dnnl_stream_t stream = plan_ctx_stream(p->ctx);
    for (int i = 0; i < 2; i++) {
        if (!dst[i])
            continue;
        if (!p->to_plain[i] && (st = make_to_plain(p, tensor[i], i, err)) != RD_OK)
            return st;
        DNNL_TRY(dnnl_memory_set_data_handle(p->plain[i], dst[i]));
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->tensors[tensor[i]].mem},
                                  {DNNL_ARG_TO, p->plain[i]}};
        DNNL_TRY(dnnl_primitive_execute(p->to_plain[i], stream, 2, args));
    }
    DNNL_TRY(dnnl_stream_wait(stream));
fail:
    return st;
}

void plan_feature_shape(const plan_t *p, int *c, int *h, int *w)
{
    const dnnl_dim_t *d = p->tensors[p->feature_t].md.dims;
    *c = (int)d[1];
    *h = (int)d[2];
    *w = (int)d[3];
}

int plan_batch(const plan_t *p) { return p->n_images; }

void plan_free(plan_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_steps; i++)
        dnnl_primitive_destroy(p->steps[i].prim);
    for (int i = 0; i < 2; i++) {
        if (p->to_plain[i])
            dnnl_primitive_destroy(p->to_plain[i]);
        if (p->plain[i])
            dnnl_memory_destroy(p->plain[i]);
    }
    for (int i = 0; i < p->n_tensors; i++)
        if (p->tensors[i].mem)
            dnnl_memory_destroy(p->tensors[i].mem);
    free(p->steps);
    free(p->tensors);
    free(p);
}
