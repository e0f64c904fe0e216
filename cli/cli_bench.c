/* cli_bench.c - `resnetd bench`: engine throughput on seeded random inputs.
 * Runs warm-up batches (which also build the plan), then timed batches until
 * the time budget is spent, and prints one line of JSON with the median and
 * p90 batch time and the process's peak RSS. A measurement, not a test. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "clock.h"
#include "resnetd/engine.h"

#define MIN_ITERATIONS 3
#define MAX_ITERATIONS 100000

typedef struct {
    const char *model;
    int batch;
    double seconds;
    int warmup;
    engine_params_t engine; /* from engine_default_params, then the flags */
} bench_opts_t;

static void usage(FILE *out)
{
    engine_params_t d = engine_default_params();
    fprintf(out,
            "usage: resnetd bench --model FILE --batch N [OPTIONS]\n\n"
            "Runs the engine on seeded random inputs and prints one line of JSON:\n"
            "images_per_second, ms_per_batch (median), ms_per_batch_p90, peak_rss_mb.\n\n"
            "  --model FILE    safetensors model (required)\n"
            "  --batch N       images per batch (required, >= 1)\n"
            "  --seconds S     time spent on timed batches (default 10; at least %d batches)\n"
            "  --size S|HxW    input size (default: the model's)\n"
            "  --threads T     OpenMP threads (default %d = one per core)\n"
            "  --warmup W      untimed batches first (default 3; the first builds the plan)\n"
            "  --sub-batch N   images per oneDNN plan; larger batches are split (default %d\n"
            "                  for fp32, %d for int8 and bf16)\n"
            "  --no-winograd   direct convolutions only\n"
            "  --precision P   fp32 (default), int8 (needs a calibrated model), bf16 (fast\n"
            "                  with AMX only) or auto (bf16 with AMX BF16, else fp32)\n"
            "  --int8-recheck X  serve's int8_recheck: FP32 reruns of close calls of int8\n"
            "                  and bf16 (default %g; 0 = none). The random inputs make many\n"
            "                  close calls: the JSON gives their share.\n"
            "  --help          this text\n\n"
            "OMP_PROC_BIND / OMP_PLACES are left to the environment.\n",
            MIN_ITERATIONS, d.n_threads, ENGINE_SUB_BATCH_FP32, ENGINE_SUB_BATCH_FAST,
            (double)d.int8_recheck);
}

static int parse_size(const char *s, int *h, int *w)
{
    char *x = strchr(s, 'x');
    if (!x)
        return cli_parse_int(s, 1, h) || cli_parse_int(s, 1, w);
    char buf[32];
    size_t n = (size_t)(x - s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return cli_parse_int(buf, 1, h) || cli_parse_int(x + 1, 1, w);
}

/* 0 to run, 1 after --help, -1 on a bad option (message printed). */
static int parse_args(int argc, char **argv, bench_opts_t *o)
{
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},  {"batch", required_argument, 0, 'b'},
        {"seconds", required_argument, 0, 's'}, {"size", required_argument, 0, 'z'},
        {"threads", required_argument, 0, 't'}, {"warmup", required_argument, 0, 'w'},
        {"sub-batch", required_argument, 0, 'u'}, {"no-winograd", no_argument, 0, 'n'},
        {"precision", required_argument, 0, 'p'}, {"int8-recheck", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    *o = (bench_opts_t){.seconds = 10.0, .warmup = 3, .engine = engine_default_params()};
    engine_params_t *ep = &o->engine;
    optind = 1;
    int c, li = 0;
    while ((c = getopt_long(argc, argv, "h", longs, &li)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'b': bad = cli_parse_int(optarg, 1, &o->batch); break;
        case 's':
            o->seconds = strtod(optarg, &end);
            bad = *end != 0 || !(o->seconds >= 0 && o->seconds <= 86400);
            break;
        case 'z': bad = parse_size(optarg, &ep->input_h, &ep->input_w); break;
        case 't': bad = cli_parse_int(optarg, 0, &ep->n_threads); break;
        case 'w': bad = cli_parse_int(optarg, 0, &o->warmup); break;
        case 'u': bad = cli_parse_int(optarg, 0, &ep->sub_batch); break;
        case 'n': ep->no_winograd = true; break;
        case 'p': {
            int p = engine_precision_parse(optarg);
            bad = p < 0;
            ep->precision = bad ? RD_FP32 : (rd_precision_t)p;
            break;
        }
        case 'r': {
            double r = strtod(optarg, &end);
            bad = *end != 0 || !(r >= 0 && r < 1000);
            ep->int8_recheck = (float)r;
            break;
        }
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "resnetd bench: bad value '%s' for --%s\n", optarg, longs[li].name);
            return -1;
        }
    }
    if (optind < argc || !o->model || o->batch < 1) {
        fprintf(stderr, "resnetd bench: --model and --batch are required (see --help)\n");
        return -1;
    }
    return 0;
}

static double now_ms(void)
{
    return (double)clock_now_ns() / 1e6;
}

/* Roughly normalised pixels from a fixed-seed xorshift, so runs are repeatable. */
static void fill_random(float *x, size_t n)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int print_result(const bench_opts_t *o, const engine_t *eng, const double *ms, int n)
{
    const model_info_t *mi = engine_info(eng);
    qsort((void *)ms, (size_t)n, sizeof *ms, cmp_double);
    double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    int p90_i = (int)(0.9 * (n - 1) + 0.5);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double images = (double)o->batch * (n + (o->warmup > 1 ? o->warmup : 1));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:I,"
                          " s:f}",
                          "model", mi->name, "arch", mi->arch, "precision",
                          engine_precision_name(mi->precision), "isa", engine_isa_name(),
                          "batch", o->batch, "input_h",
                          mi->preproc.input_h, "input_w", mi->preproc.input_w, "threads",
                          o->engine.n_threads, "iterations", n, "images_per_second",
                          o->batch * 1000.0 / median, "ms_per_batch", median, "ms_per_batch_p90",
                          ms[p90_i], "peak_rss_mb", (double)ru.ru_maxrss / 1024.0,
                          "rechecked_in_fp32", (json_int_t)engine_rechecked(eng),
                          "rechecked_share", (double)engine_rechecked(eng) / images);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
    return s ? 0 : 1;
}

static int run_bench(const bench_opts_t *o, engine_t *eng)
{
    const model_info_t *mi = engine_info(eng);
    size_t n_in = (size_t)o->batch * 3 * (size_t)mi->preproc.input_h * (size_t)mi->preproc.input_w;
    float *x = malloc(n_in * sizeof *x);
    float *logits = malloc((size_t)o->batch * (size_t)mi->n_classes * sizeof *logits);
    double *ms = malloc(MAX_ITERATIONS * sizeof *ms);
    int rc = 1, n = 0;
    rd_error_t err;
    if (!x || !logits || !ms) {
        fprintf(stderr, "resnetd bench: out of memory for a batch of %d\n", o->batch);
        goto done;
    }
    fill_random(x, n_in);
    for (int i = 0; i < o->warmup || i < 1; i++)
        if (engine_run(eng, x, o->batch, logits, &err) != RD_OK)
            goto fail;
    double start = now_ms();
    while (n < MAX_ITERATIONS && (n < MIN_ITERATIONS || now_ms() - start < o->seconds * 1e3)) {
        double t0 = now_ms();
        if (engine_run(eng, x, o->batch, logits, &err) != RD_OK)
            goto fail;
        ms[n++] = now_ms() - t0;
    }
    rc = print_result(o, eng, ms, n);
    goto done;
fail:
    fprintf(stderr, "resnetd bench: %s\n", err.msg);
done:
    free(ms);
    free(logits);
    free(x);
    return rc;
}

int cli_bench(int argc, char **argv)
{
    bench_opts_t o;
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return r > 0 ? 0 : 2;
    engine_t *eng;
    rd_error_t err;
    if (engine_load(o.model, &o.engine, &eng, &err) != RD_OK) {
        fprintf(stderr, "resnetd bench: %s\n", err.msg);
        return 1;
    }
    if (engine_precision_note(eng)[0])
        fprintf(stderr, "resnetd bench: %s\n", engine_precision_note(eng));
    int rc = run_bench(&o, eng);
    engine_free(eng);
    return rc;
}
