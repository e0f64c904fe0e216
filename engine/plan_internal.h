/* plan_internal.h - internal to plan*.c: what a plan is made of. plan.c
 * builds it from a net_t; plan_steps.c keeps its tensors, arena slots and
 * steps; plan_run.c binds buffers and runs the steps. */
#ifndef RESNETD_PLAN_INTERNAL_H
#define RESNETD_PLAN_INTERNAL_H

#include "plan.h"

#define MAX_SLOTS 8
#define SLOT_STEM MAX_SLOTS
#define MAX_ARGS 6

typedef enum { BIND_FIXED, BIND_INPUT, BIND_OUTPUT, BIND_ARENA, BIND_SCRATCH } bind_t;

typedef struct {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    bind_t bind;
    int slot;      /* BIND_ARENA only */
    int live;      /* holds its slot */
    size_t offset; /* in the arena, set by plan_layout() */
} tensor_t;

typedef struct {
    dnnl_primitive_t prim;
    int n_args;
    dnnl_exec_arg_t args[MAX_ARGS];
    int point; /* the quantization point its output is (a conv), else -1 */
    dnnl_memory_t point_mem;
} step_t;

struct plan {
    plan_ctx_t *ctx;
    int n_images;
    tensor_t *tensors;
    int n_tensors, cap_tensors;
    step_t *steps;
    int n_steps, cap_steps;
    int busy[MAX_SLOTS + 1];
    size_t slot_bytes[MAX_SLOTS + 1];
    size_t arena_bytes, scratch_bytes;
    int input_t, output_t;
    /* The last stage's output in f32 (dequantized in INT8/BF16 plans) and the
     * globally pooled vector, both in oneDNN's layout; they stay in the arena
     * until the next run (plan_read_features). */
    int feature_t, pooled_t;
    /* plan_read_features's reorders to plain NCHW, made on its first call. */
    dnnl_primitive_t to_plain[2];
    dnnl_memory_t plain[2];
    int winograd; /* use it where use_winograd() says so */
    int int8;     /* u8/s8 activations (quant.c); the net is quantized */
    int bf16;     /* bf16 activations and convolution weights */
    const net_t *net;
    unsigned bound_generation; /* 0: never bound */
};

/* Adds a tensor with its memory object. handle is used for BIND_FIXED only;
 * the others are bound at run time. slot < 0 picks the first free slot. */
rd_status_t plan_new_tensor(plan_t *p, const dnnl_memory_desc_t *md, bind_t bind, int slot,
                            void *handle, int *out, rd_error_t *err);

/* Marks a tensor's slot free for later tensors. Idempotent per tensor. */
void plan_release(plan_t *p, int t);

/* Creates the primitive of pd and appends it with args, plus its scratchpad
 * (user mode: all primitives share the context's one scratchpad buffer). */
rd_status_t plan_add_step(plan_t *p, const_dnnl_primitive_desc_t pd, const dnnl_exec_arg_t *args,
                          int n_args, rd_error_t *err);

/* Sets every arena tensor's offset and p->arena_bytes, once the plan is complete. */
void plan_layout(plan_t *p);

#endif
