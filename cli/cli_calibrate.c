/* cli_calibrate.c - `resnetd calibrate`: makes an INT8-ready model file. Runs
 * the FP32 model, with the model's own preprocessing, on the JPEGs of a folder
 * (in name order, the first --count), and writes a copy of the model that
 * carries the activation ranges (resnetd/calibrate.h). Files that are not
 * decodable JPEGs are reported and skipped. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "image.h"
#include "resnetd/calibrate.h"

#define CALIB_BATCH 8

typedef struct {
    const char *model, *images, *out;
    int count, threads;
    calib_method_t method;
} calib_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: resnetd calibrate --model FILE --images DIR --out FILE [OPTIONS]\n\n"
            "Runs the FP32 model on the JPEGs in DIR (name order) and writes a copy of the\n"
            "model with INT8 activation ranges, for `resnetd serve --precision int8`. Every\n"
            "second image (at most 64) is held out of the ranges; on those it measures the\n"
            "INT8 and BF16 logit error bounds that the recheck (int8_recheck) scales.\n\n"
            "  --model FILE    safetensors model (required)\n"
            "  --images DIR    folder of .jpg/.jpeg photos like those the model will see (required)\n"
            "  --out FILE      calibrated model to write (required)\n"
            "  --count N       use the first N images (default 128)\n"
            "  --method M      percentile (99.99%%, default), mse or max: how each range is\n"
            "                  chosen from the activations' histogram\n"
            "  --threads T     OpenMP threads (default %d = one per core)\n"
            "  --help          this text\n",
            engine_default_params().n_threads);
}

/* 0 to run, 1 after --help, -1 on a bad option (message printed). */
static int parse_args(int argc, char **argv, calib_opts_t *o)
{
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},   {"images", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},     {"count", required_argument, 0, 'c'},
        {"method", required_argument, 0, 'M'},  {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    *o = (calib_opts_t){.count = 128, .threads = engine_default_params().n_threads,
                        .method = CALIB_PERCENTILE};
    optind = 1;
    int c, li = 0;
    while ((c = getopt_long(argc, argv, "h", longs, &li)) != -1) {
        int bad = 0, m;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'i': o->images = optarg; break;
        case 'o': o->out = optarg; break;
        case 'c': bad = cli_parse_int(optarg, 1, &o->count); break;
        case 't': bad = cli_parse_int(optarg, 0, &o->threads); break;
        case 'M':
            bad = (m = calib_method_parse(optarg)) < 0;
            o->method = bad ? o->method : (calib_method_t)m;
            break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "resnetd calibrate: bad value '%s' for --%s\n", optarg,
                    longs[li].name);
            return -1;
        }
    }
    if (optind < argc || !o->model || !o->images || !o->out) {
        fprintf(stderr, "resnetd calibrate: --model, --images and --out are required "
                        "(see --help)\n");
        return -1;
    }
    return 0;
}

static int is_jpeg_name(const struct dirent *d)
{
    const char *dot = strrchr(d->d_name, '.');
    return d->d_name[0] != '.' && dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Decodes up to CALIB_BATCH files from names[*next..n) into inputs, skipping
 * (with a message) those that fail; returns how many it decoded. */
static int decode_batch(const char *dir, struct dirent **names, int n, int *next,
                        const model_preproc_t *pp, float *inputs, size_t in_floats)
{
    int got = 0;
    char path[4096];
    while (got < CALIB_BATCH && *next < n) {
        rd_error_t err = {0};
        snprintf(path, sizeof path, "%s/%s", dir, names[(*next)++]->d_name);
        if (image_file_to_tensor(path, pp, NULL, inputs + (size_t)got * in_floats, &err) == RD_OK)
            got++;
        else
            fprintf(stderr, "resnetd calibrate: skipping %s\n", err.msg);
    }
    return got;
}

/* What was used for what, the bounds, and a warning when they rest on few images. */
static void report(const calib_opts_t *o, const calib_report_t *r)
{
    fprintf(stderr, "resnetd calibrate: %s: ranges chosen by %s over %d images; top-two gap "
            "error bounds (90th percentile, max) over %d held-out images: int8 %.4g, %.4g "
            "(%.2f%% of max |logit|), bf16 %.4g, %.4g (%.2f%%)\n", o->out,
            calib_method_name(o->method), r->n_fit, r->n_held_out, r->int8_bound, r->int8_max,
            100 * r->int8_rel, r->bf16_bound, r->bf16_max, 100 * r->bf16_rel);
    if (!r->bf16_measured)
        fprintf(stderr, "resnetd calibrate: no bf16 bound: this ISA has no AMX BF16, so bf16 "
                "will use its default bound\n");
    if (r->n_held_out < CALIB_MIN_HELD_OUT)
        fprintf(stderr, "resnetd calibrate: warning: only %d images held out (%d used in all): "
                "the recheck bound may be too small for unseen photos; give at least %d "
                "images (--count and --images)\n", r->n_held_out, r->n_fit + r->n_held_out,
                2 * CALIB_MIN_HELD_OUT);
}

static int run(const calib_opts_t *o, engine_t *eng, struct dirent **names, int n)
{
    const model_preproc_t *pp = &engine_info(eng)->preproc;
    size_t in_floats = (size_t)3 * (size_t)pp->input_h * (size_t)pp->input_w;
    float *inputs = malloc(CALIB_BATCH * in_floats * sizeof *inputs);
    calib_t *cal = NULL;
    rd_error_t err = {0};
    rd_status_t st = inputs ? calib_create(eng, &cal, &err)
                            : rd_error_set(&err, RD_ERR_NOMEM, "out of memory for a batch");
    for (int next = 0, got; st == RD_OK && calib_images(cal) < o->count &&
                            (got = decode_batch(o->images, names, n, &next, pp, inputs, in_floats)) > 0;) {
        int want = o->count - calib_images(cal);
        st = calib_add(cal, inputs, got < want ? got : want, &err);
    }
    calib_report_t r;
    if (st == RD_OK)
        st = calib_save_report(cal, o->method, o->model, o->out, &r, &err);
    if (st == RD_OK)
        report(o, &r);
    else
        fprintf(stderr, "resnetd calibrate: %s\n", err.msg);
    calib_free(cal);
    free(inputs);
    return st == RD_OK ? 0 : 1;
}

int cli_calibrate(int argc, char **argv)
{
    calib_opts_t o;
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return r > 0 ? 0 : 2;
    struct dirent **names = NULL;
    int n = scandir(o.images, &names, is_jpeg_name, alphasort);
    if (n <= 0) {
        fprintf(stderr, "resnetd calibrate: %s: %s\n", o.images,
                n < 0 ? "cannot read the folder" : "no .jpg or .jpeg files");
        free(names);
        return 1;
    }
    engine_params_t params = engine_default_params();
    params.n_threads = o.threads;
    engine_t *eng = NULL;
    rd_error_t err;
    int rc = 1;
    if (engine_load(o.model, &params, &eng, &err) != RD_OK)
        fprintf(stderr, "resnetd calibrate: %s\n", err.msg);
    else
        rc = run(&o, eng, names, n);
    engine_free(eng);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
