/* cli_classify.c - `resnetd classify [--model M] [--topk K] IMAGE...`: the
 * server's preprocessing and engine, offline, printing the same JSON document
 * as POST /classify (one entry per image, in argument order, "filename" set
 * to the path). Exit 0 when every image was classified, 1 when any failed,
 * 2 for bad usage. Options are serve's config keys (config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_result.h"
#include "cli.h"
#include "config.h"
#include "image.h"
#include "infer_job.h"
#include "resnetd/engine.h"

typedef struct {
    engine_t *engine;
    const model_info_t *mi;
    model_preproc_t pp;
    image_limits_t lim;
    size_t in_floats;
    int topk;
} classify_ctx_t;

/* Images per engine run: max_batch_size, capped so per-batch state fits the stack. */
#define CLASSIFY_BATCH_MAX 16

/* Classifies images[0..n) (n <= CLASSIFY_BATCH_MAX) and appends their
 * entries, with the request path's wording, statuses and entries
 * (infer_job_failure, classify_entry_json). */
static void classify_batch(classify_ctx_t *c, char **paths, int first, int n, float *inputs,
                           float *logits, json_t *results, int *status)
{
    int ok = 0, slot[CLASSIFY_BATCH_MAX];
    double decode_ms[CLASSIFY_BATCH_MAX];
    char msg[CLASSIFY_BATCH_MAX][INFER_JOB_MSG_MAX];
    for (int i = 0; i < n; i++) {
        rd_error_t err = {0};
        int64_t t0 = clock_now_ns();
        rd_status_t st = image_file_to_tensor(paths[i], &c->pp, &c->lim,
                                              inputs + (size_t)ok * c->in_floats, &err);
        decode_ms[i] = (double)(clock_now_ns() - t0) / 1e6;
        status[first + i] = infer_job_failure(first + i, st, HTTP_CTX_IMAGE, err.msg, msg[i]);
        slot[i] = st == RD_OK ? ok++ : -1;
    }
    rd_error_t err = {0};
    int64_t t0 = clock_now_ns();
    rd_status_t st = ok ? engine_run(c->engine, inputs, ok, logits, &err) : RD_OK;
    double inference_ms = (double)(clock_now_ns() - t0) / 1e6;
    for (int i = 0; i < n; i++) {
        const float *l = slot[i] >= 0 ? logits + (size_t)slot[i] * c->mi->n_classes : NULL;
        rd_status_t sti = st == RD_OK && l ? engine_check_logits(l, c->mi->n_classes, &err) : st;
        if (l && sti != RD_OK)
            status[first + i] =
                infer_job_failure(first + i, sti, HTTP_CTX_INFERENCE, err.msg, msg[i]);
        classify_timings_t t = {decode_ms[i], -1, inference_ms};
        json_array_append_new(results, classify_entry_json(c->mi, first + i, paths[i],
                                                            status[first + i], msg[i], l,
                                                            c->topk, &t));
    }
}

static int run(const config_t *cfg, char **paths, int n_paths)
{
    classify_ctx_t c = {0};
    rd_error_t err = {0};
    engine_params_t ep = config_engine_params(cfg);
    int64_t t0 = clock_now_ns();
    if (engine_load(cfg->model, &ep, &c.engine, &err) != RD_OK) {
        fprintf(stderr, "resnetd classify: %s: %s\n", cfg->model, err.msg);
        return 1;
    }
    c.mi = engine_info(c.engine);
    if (engine_precision_note(c.engine)[0])
        fprintf(stderr, "resnetd classify: %s\n", engine_precision_note(c.engine));
    c.pp = c.mi->preproc;
    config_apply_preproc(cfg, &c.pp);
    c.lim = config_image_limits(cfg);
    c.in_floats = (size_t)3 * (size_t)c.pp.input_h * (size_t)c.pp.input_w;
    c.topk = cfg->topk_default;
    int batch = cfg->max_batch_size < CLASSIFY_BATCH_MAX ? cfg->max_batch_size : CLASSIFY_BATCH_MAX;
    float *inputs = malloc((size_t)batch * c.in_floats * sizeof *inputs);
    float *logits = malloc((size_t)batch * (size_t)c.mi->n_classes * sizeof *logits);
    int *status = malloc((size_t)n_paths * sizeof *status);
    json_t *results = json_array();
    int rc = 1;
    if (inputs && logits && status && results) {
        for (int i = 0; i < n_paths; i += batch)
            classify_batch(&c, paths + i, i, n_paths - i < batch ? n_paths - i : batch, inputs,
                           logits, results, status);
        int req_status = classify_request_status(status, n_paths);
        const char *name = cfg->model_name[0] ? cfg->model_name : c.mi->name;
        json_t *doc = classify_document(name, json_incref(results), req_status,
                                        (double)(clock_now_ns() - t0) / 1e6);
        char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(doc);
        if (c.mi->precision != RD_FP32)
            fprintf(stderr, "resnetd classify: %s: %llu of %d images rechecked in fp32\n",
                    engine_precision_name(c.mi->precision),
                    (unsigned long long)engine_rechecked(c.engine), n_paths);
        rc = 0;
        for (int i = 0; i < n_paths; i++)
            if (status[i] != 200)
                rc = 1;
    } else {
        fprintf(stderr, "resnetd classify: out of memory\n");
    }
    json_decref(results);
    free(status);
    free(logits);
    free(inputs);
    engine_free(c.engine);
    return rc;
}

int cli_classify(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: resnetd classify [--model FILE] [--topk K] [OPTIONS] IMAGE...\n"
                   "Prints the POST /classify JSON for the images. Options:\n");
            config_print_keys(stdout);
            return 0;
        }
    config_t cfg;
    rd_error_t err = {0};
    char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int n_paths = 0;
    if (!paths)
        return 1;
    if (config_load_rest(argc, argv, &cfg, paths, &n_paths, &err) != RD_OK) {
        fprintf(stderr, "resnetd classify: %s\n", err.msg);
        free(paths);
        return 2;
    }
    if (n_paths == 0) {
        fprintf(stderr, "usage: resnetd classify [--model FILE] [--topk K] IMAGE...\n");
        free(paths);
        return 2;
    }
    int rc = run(&cfg, paths, n_paths);
    free(paths);
    return rc;
}
