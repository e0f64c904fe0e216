/* bench_convs.c - the per-layer roofline of a ResNet: each of the net's
 * convolutions run alone by oneDNN (format_tag any, fused ReLU, the
 * precision's data types, as the engine would ask for them), timed, and
 * summed per net. It shows what the whole net could reach if nothing but its
 * convolutions cost time; tools/bench_precision.sh divides resnetd's batch
 * time by it.
 *
 *   build/engine/bench_convs --arch resnet18|resnet50 [--v1] --batch N
 *       --precision f32|bf16|int8 [--iters K] [--verbose]
 *
 * Prints one JSON line: total ms per batch (median over K runs of each conv)
 * and GOP/s; --verbose adds one line per conv. Not a test: a benchmark. */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                    \
    do {                                                                               \
        dnnl_status_t s_ = (call);                                                     \
        if (s_ != dnnl_success) {                                                      \
            fprintf(stderr, "bench_convs: %s failed (%d)\n", #call, (int)s_);          \
            return -1.0;                                                               \
        }                                                                              \
    } while (0)

typedef struct {
    int ic, oc, k, stride, hw; /* input hw (square) */
} conv_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The convolutions of the net, in order; returns how many. v1: the stride of
 * a downsampling bottleneck on its first 1x1 (Caffe/Keras), else on the 3x3. */
static int net_convs(const char *arch, int v1, conv_t *out)
{
    int bottleneck = strcmp(arch, "resnet50") == 0, n = 0, hw = 56, in = 64;
    static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
    const int *blocks = bottleneck ? blocks50 : blocks18;
    out[n++] = (conv_t){3, 64, 7, 2, 224};
    for (int s = 0; s < 4; s++) {
        int width = 64 << s, outc = bottleneck ? width * 4 : width;
        for (int b = 0; b < blocks[s]; b++) {
            int stride = s > 0 && b == 0 ? 2 : 1, ohw = hw / stride;
            if (bottleneck) {
                out[n++] = (conv_t){in, width, 1, v1 ? stride : 1, hw};
                out[n++] = (conv_t){width, width, 3, v1 ? 1 : stride, v1 ? ohw : hw};
                out[n++] = (conv_t){width, outc, 1, 1, ohw};
            } else {
                out[n++] = (conv_t){in, width, 3, stride, hw};
                out[n++] = (conv_t){width, width, 3, 1, ohw};
            }
            if (b == 0 && (stride != 1 || in != outc))
                out[n++] = (conv_t){in, outc, 1, stride, hw};
            in = outc;
            hw = ohw;
        }
    }
    return n;
}

/* Median ms of one conv over iters runs (after one untimed), or -1. */
static double time_conv(dnnl_engine_t eng, dnnl_stream_t st, const conv_t *c, int batch,
                        const char *prec, int iters, double *ops, char *impl, size_t impl_len)
{
    dnnl_data_type_t src_dt = !strcmp(prec, "int8") ? dnnl_u8 : !strcmp(prec, "bf16") ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t wei_dt = !strcmp(prec, "int8") ? dnnl_s8 : src_dt, dst_dt = src_dt;
    if (c->ic == 3) /* the engine runs the stem in f32 for bf16, in u8/s8 for int8 */
        src_dt = dst_dt = wei_dt = !strcmp(prec, "int8") ? dnnl_s8 : dnnl_f32;
    if (c->ic == 3 && !strcmp(prec, "int8"))
        dst_dt = dnnl_u8;
    int pad = c->k / 2, ohw = (c->hw + 2 * pad - c->k) / c->stride + 1;
    dnnl_memory_desc_t s_md, w_md, b_md, d_md;
    CHECK(dnnl_memory_desc_init_by_tag(&s_md, 4, (dnnl_dims_t){batch, c->ic, c->hw, c->hw}, src_dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, 4, (dnnl_dims_t){c->oc, c->ic, c->k, c->k}, wei_dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, (dnnl_dims_t){c->oc}, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&d_md, 4, (dnnl_dims_t){batch, c->oc, ohw, ohw}, dst_dt, dnnl_format_tag_any));
    dnnl_convolution_desc_t desc;
    CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                             &s_md, &w_md, &b_md, &d_md,
                                             (dnnl_dims_t){c->stride, c->stride},
                                             (dnnl_dims_t){pad, pad}, (dnnl_dims_t){pad, pad}));
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_post_ops_create(&po));
    CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    if (src_dt == dnnl_u8 || src_dt == dnnl_s8)
        CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, (float[]){0.01f}));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL));
    const char *name = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, impl_len, "%s", name);
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));
    dnnl_memory_t mem[4];
    const int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    const dnnl_query_t q[4] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                               dnnl_query_dst_md};
    dnnl_exec_arg_t ex[4];
    for (int i = 0; i < 4; i++) {
        CHECK(dnnl_memory_create(&mem[i], dnnl_primitive_desc_query_md(pd, q[i], i == 2), eng,
                                 DNNL_MEMORY_ALLOCATE));
        void *h;
        CHECK(dnnl_memory_get_data_handle(mem[i], &h));
        memset(h, 0x11, dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, q[i], i == 2)));
        ex[i] = (dnnl_exec_arg_t){args[i], mem[i]};
    }
    double *ms = malloc((size_t)iters * sizeof *ms);
    for (int i = -1; i < iters; i++) {
        double t0 = now_ms();
        CHECK(dnnl_primitive_execute(prim, st, 4, ex));
        CHECK(dnnl_stream_wait(st));
        if (i >= 0)
            ms[i] = now_ms() - t0;
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp);
    double median = ms[iters / 2];
    *ops = 2.0 * batch * c->oc * ohw * ohw * (double)c->ic * c->k * c->k;
    free(ms);
    for (int i = 0; i < 4; i++)
        dnnl_memory_destroy(mem[i]);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return median;
}

int main(int argc, char **argv)
{
    const char *arch = "resnet18", *prec = "f32";
    int batch = 8, iters = 10, v1 = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) prec = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--v1")) v1 = 1;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else {
            fprintf(stderr, "usage: bench_convs --arch resnet18|resnet50 [--v1] --batch N "
                            "--precision f32|bf16|int8 [--iters K] [--verbose]\n");
            return 2;
        }
    }
    if (batch < 1 || iters < 1 || (strcmp(prec, "f32") && strcmp(prec, "bf16") && strcmp(prec, "int8")))
        return 2;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags) != dnnl_success)
        return 1;
    conv_t convs[64];
    int n = net_convs(arch, v1, convs);
    double total = 0, ops_total = 0;
    for (int i = 0; i < n; i++) {
        double ops;
        char impl[128];
        double ms = time_conv(eng, st, &convs[i], batch, prec, iters, &ops, impl, sizeof impl);
        if (ms < 0)
            return 1;
        total += ms;
        ops_total += ops;
        if (verbose)
            printf("{\"conv\":%d,\"ic\":%d,\"oc\":%d,\"k\":%d,\"stride\":%d,\"hw\":%d,\"ms\":%.4f,"
                   "\"gops\":%.1f,\"impl\":\"%s\"}\n", i, convs[i].ic, convs[i].oc, convs[i].k,
                   convs[i].stride, convs[i].hw, ms, ops / ms / 1e6, impl);
    }
    printf("{\"arch\":\"%s\",\"precision\":\"%s\",\"batch\":%d,\"convs\":%d,\"ms_per_batch\":%.3f,"
           "\"images_per_second\":%.1f,\"gops\":%.1f}\n", arch, prec, batch, n, total,
           batch * 1000.0 / total, ops_total / total / 1e6);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}
