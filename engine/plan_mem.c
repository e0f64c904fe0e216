/* plan_mem.c - what all plans of one engine share (see plan.h): the oneDNN
 * engine and stream, the activation arena, the scratchpad, and the cache of
 * weights reordered into the primitives' chosen layouts. Sharing them keeps a
 * server with plans for batch sizes 1..32 at the memory of its largest plan.
 *
 * THREADS: not thread-safe; the engine runs one batch at a time. */
#include "plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>

#define ARENA_ALIGN 4096

typedef struct weight_entry {
    const void *src;
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    void *buf; /* NULL when mem wraps src itself */
    struct weight_entry *next;
} weight_entry_t;

struct plan_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    unsigned char *arena, *scratch;
    size_t arena_bytes, scratch_bytes;
    unsigned generation; /* bumped whenever arena or scratch moves */
    weight_entry_t *weights;
};

rd_status_t plan_ctx_create(plan_ctx_t **out, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    *out = NULL;
    plan_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for the engine context");
    ctx->generation = 1;
    DNNL_TRY(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
    *out = ctx;
    return RD_OK;
fail:
    plan_ctx_free(ctx);
    return st;
}

void plan_ctx_free(plan_ctx_t *ctx)
{
    if (!ctx)
        return;
    for (weight_entry_t *w = ctx->weights, *next; w; w = next) {
        next = w->next;
        dnnl_memory_destroy(w->mem);
        free(w->buf);
        free(w);
    }
    free(ctx->arena);
    free(ctx->scratch);
    if (ctx->stream)
        dnnl_stream_destroy(ctx->stream);
    if (ctx->engine)
        dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

dnnl_engine_t plan_ctx_engine(const plan_ctx_t *ctx) { return ctx->engine; }
dnnl_stream_t plan_ctx_stream(const plan_ctx_t *ctx) { return ctx->stream; }
unsigned plan_ctx_generation(const plan_ctx_t *ctx) { return ctx->generation; }
unsigned char *plan_ctx_arena(const plan_ctx_t *ctx) { return ctx->arena; }
unsigned char *plan_ctx_scratch(const plan_ctx_t *ctx) { return ctx->scratch; }

/* Page-aligned, so that oneDNN's vector loads never straddle a page needlessly. */
static void *alloc_aligned(size_t bytes)
{
    size_t rounded = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return aligned_alloc(ARENA_ALIGN, rounded ? rounded : ARENA_ALIGN);
}

/* Frees before allocating: the old contents are dead, and this keeps the peak
 * RSS at the new size rather than old + new. */
static int grow(unsigned char **buf, size_t *have, size_t want)
{
    if (want <= *have && *buf)
        return 0;
    free(*buf);
    *buf = alloc_aligned(want);
    *have = *buf ? want : 0;
    return *buf ? 0 : -1;
}

rd_status_t plan_ctx_reserve(plan_ctx_t *ctx, size_t arena_bytes, size_t scratch_bytes,
                             rd_error_t *err)
{
    unsigned char *old_arena = ctx->arena, *old_scratch = ctx->scratch;
    int failed = grow(&ctx->arena, &ctx->arena_bytes, arena_bytes) ||
                 grow(&ctx->scratch, &ctx->scratch_bytes, scratch_bytes);
    if (ctx->arena != old_arena || ctx->scratch != old_scratch)
        ctx->generation++;
    if (failed)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for %zu bytes of activations and "
                            "%zu of scratchpad", arena_bytes, scratch_bytes);
    return RD_OK;
}

static rd_status_t reorder_once(plan_ctx_t *ctx, dnnl_memory_t from, dnnl_memory_t to,
                                rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    const dnnl_memory_desc_t *from_md, *to_md;
    DNNL_TRY(dnnl_memory_get_memory_desc(from, &from_md));
    DNNL_TRY(dnnl_memory_get_memory_desc(to, &to_md));
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from_md, ctx->engine, to_md, ctx->engine,
                                                NULL));
    DNNL_TRY(dnnl_primitive_create(&prim, pd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    DNNL_TRY(dnnl_primitive_execute(prim, ctx->stream, 2, args));
    DNNL_TRY(dnnl_stream_wait(ctx->stream));
fail:
    if (prim)
        dnnl_primitive_destroy(prim);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

static rd_status_t make_entry(plan_ctx_t *ctx, weight_entry_t *w,
                              const dnnl_memory_desc_t *user_md, rd_error_t *err)
{
    rd_status_t st = RD_OK;
    dnnl_memory_t user = NULL;
    /* oneDNN only reads weights; the cast is needed by its C API. */
    void *src = (void *)(uintptr_t)w->src;
    if (dnnl_memory_desc_equal(user_md, &w->md)) {
        DNNL_TRY(dnnl_memory_create(&w->mem, &w->md, ctx->engine, src));
        return RD_OK;
    }
    w->buf = alloc_aligned(dnnl_memory_desc_get_size(&w->md));
    if (!w->buf)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for reordered weights");
    DNNL_TRY(dnnl_memory_create(&w->mem, &w->md, ctx->engine, w->buf));
    DNNL_TRY(dnnl_memory_create(&user, user_md, ctx->engine, src));
    st = reorder_once(ctx, user, w->mem, err);
fail:
    if (user)
        dnnl_memory_destroy(user);
    return st;
}

rd_status_t plan_ctx_weights(plan_ctx_t *ctx, const void *src, const dnnl_memory_desc_t *user_md,
                             const dnnl_memory_desc_t *want_md, dnnl_memory_t *out,
                             rd_error_t *err)
{
    for (weight_entry_t *w = ctx->weights; w; w = w->next)
        if (w->src == src && dnnl_memory_desc_equal(&w->md, want_md)) {
            *out = w->mem;
            return RD_OK;
        }
    weight_entry_t *w = calloc(1, sizeof *w);
    if (!w)
        return rd_error_set(err, RD_ERR_NOMEM, "out of memory for reordered weights");
    w->src = src;
    w->md = *want_md;
    rd_status_t st = make_entry(ctx, w, user_md, err);
    if (st != RD_OK) {
        if (w->mem)
            dnnl_memory_destroy(w->mem);
        free(w->buf);
        free(w);
        return st;
    }
    w->next = ctx->weights;
    ctx->weights = w;
    *out = w->mem;
    return RD_OK;
}
