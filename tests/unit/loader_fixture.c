/* loader_fixture.c - see loader_fixture.h. */
#include "loader_fixture.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char dir[64];
char model_path[512];
static uint32_t rng = 12345;

static float uniform(float lo, float hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng >> 8) / (float)(1u << 24);
}

static void add(safetensors_writer_t *w, const spec_t *sp, const char *name, int ndim,
                const int64_t *shape, float lo, float hi)
{
    if (sp->skip && strcmp(name, sp->skip) == 0)
        return;
    if (sp->reshape && strcmp(name, sp->reshape) == 0) {
        ndim = sp->new_ndim;
        shape = sp->new_shape;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *data = malloc((size_t)(n ? n : 1) * sizeof *data);
    for (int64_t i = 0; i < n; i++)
        data[i] = uniform(lo, hi);
    if (sp->poison && strcmp(name, sp->poison) == 0 && n > 1)
        data[1] = sp->poison_value;
    rd_error_t err;
    ck_assert_int_eq(safetensors_writer_add(w, name, ndim, shape, data, &err), RD_OK);
    free(data);
}

static void add_conv_bn(safetensors_writer_t *w, const spec_t *sp, const char *conv,
                        const char *bn, int oc, int ic, int k)
{
    char name[96];
    snprintf(name, sizeof name, "%s.weight", conv);
    add(w, sp, name, 4, (int64_t[]){ oc, ic, k, k }, -1, 1);
    if (sp->bias) {
        snprintf(name, sizeof name, "%s.bias", conv);
        add(w, sp, name, 1, (int64_t[]){ oc }, -1, 1);
    }
    static const char *keys[4] = { "weight", "bias", "running_mean", "running_var" };
    static const float lo[4] = { 0.5f, -1, -1, 0.5f }, hi[4] = { 1.5f, 1, 1, 1.5f };
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, keys[i]);
        add(w, sp, name, 1, (int64_t[]){ oc }, lo[i], hi[i]);
    }
    /* F32 [2] here; write_model rewrites it to torchvision's I64 [1], same bytes */
    snprintf(name, sizeof name, "%s.num_batches_tracked", bn);
    add(w, sp, name, 1, (int64_t[]){ 2 }, 0, 1);
}

static void add_block(safetensors_writer_t *w, const spec_t *sp, int s, int i, int in, int width,
                      int out)
{
    char conv[64], bn[64];
    int n = sp->bottleneck ? 3 : 2;
    for (int j = 0; j < n; j++) {
        snprintf(conv, sizeof conv, "layer%d.%d.conv%d", s, i, j + 1);
        snprintf(bn, sizeof bn, "layer%d.%d.bn%d", s, i, j + 1);
        int oc = j == n - 1 ? out : width, ic = j == 0 ? in : width;
        int k = sp->bottleneck && j != 1 ? 1 : 3;
        add_conv_bn(w, sp, conv, bn, oc, ic, k);
    }
    if (i == 0 && (s > 1 || in != out)) { /* torchvision's rule */
        snprintf(conv, sizeof conv, "layer%d.%d.downsample.0", s, i);
        snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s, i);
        add_conv_bn(w, sp, conv, bn, out, in, 1);
    }
}

/* Replaces every from with to (same length) in model_path's JSON header:
 * the writer only writes F32, and a few tests need other dtypes. */
void patch_header(const char *from, const char *to)
{
    size_t n = strlen(from);
    ck_assert_uint_eq(strlen(to), n);
    FILE *f = fopen(model_path, "r+b");
    ck_assert_ptr_nonnull(f);
    uint8_t len_le[8];
    ck_assert_uint_eq(fread(len_le, 1, 8, f), 8);
    size_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | len_le[i];
    char *header = malloc(len + 1);
    ck_assert_uint_eq(fread(header, 1, len, f), len);
    header[len] = 0;
    int hits = 0;
    for (char *p = header; (p = strstr(p, from)); p += n, hits++)
        memcpy(p, to, n);
    ck_assert_int_gt(hits, 0);
    fseek(f, 8, SEEK_SET);
    ck_assert_uint_eq(fwrite(header, 1, len, f), len);
    fclose(f);
    free(header);
}

/* Writes sp as dir/<file> and remembers the path in model_path. */
void write_model(const spec_t *sp, const char *file)
{
    snprintf(model_path, sizeof model_path, "%s/%s", dir, file);
    safetensors_writer_t *w;
    rd_error_t err;
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    add_conv_bn(w, sp, "conv1", "bn1", sp->stem, 3, 7);
    int in = sp->stem;
    for (int s = 0; s < 4; s++) {
        int out = sp->widths[s] * (sp->bottleneck ? 4 : 1);
        for (int i = 0; i < sp->blocks[s]; i++, in = out)
            add_block(w, sp, s + 1, i, in, sp->widths[s], out);
    }
    add(w, sp, "fc.weight", 2, (int64_t[]){ sp->classes, in }, -1, 1);
    add(w, sp, "fc.bias", 1, (int64_t[]){ sp->classes }, -1, 1);
    if (sp->extra)
        add(w, sp, sp->extra, 1, (int64_t[]){ sp->extra_len }, -1, 1);
    for (int i = 0; sp->meta[i]; i += 2)
        ck_assert_int_eq(safetensors_writer_meta(w, sp->meta[i], sp->meta[i + 1], &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_save(w, model_path, &err), RD_OK);
    safetensors_writer_free(w);
    patch_header("num_batches_tracked\":{\"dtype\":\"F32\",\"shape\":[2]",
                 "num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[1]");
}

spec_t basic_spec(void)
{
    return (spec_t){ .stem = 4, .widths = { 4, 8, 16, 32 }, .blocks = { 1, 2, 2, 1 },
                     .classes = 5 };
}

spec_t bottleneck_spec(void)
{
    return (spec_t){ .bottleneck = true, .stem = 4, .widths = { 4, 8, 16, 32 },
                     .blocks = { 1, 1, 2, 1 }, .classes = 3 };
}

/* Opens model_path and runs the loader; the file is closed again before return,
 * which also checks that the net does not point into the mapping. */
rd_status_t load(const engine_params_t *params, net_t **net, model_info_t *info,
                        rd_error_t *err)
{
    safetensors_t *st;
    rd_status_t s = safetensors_open(model_path, &st, err);
    ck_assert_msg(s == RD_OK, "%s", err->msg);
    *net = (net_t *)st; /* must be reset */
    s = loader_build(st, model_path, params, net, info, err);
    safetensors_close(st);
    return s;
}

void expect_fail(const spec_t *sp, const engine_params_t *params, rd_status_t code,
                        const char *want)
{
    write_model(sp, "bad.safetensors");
    net_t *net;
    model_info_t info;
    rd_error_t err = { 0 };
    rd_status_t s = load(params, &net, &info, &err);
    ck_assert_msg(s == code, "status %d, want %d: %s", s, code, err.msg);
    ck_assert_ptr_null(net);
    ck_assert_ptr_null(info.labels);
    ck_assert_msg(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
    ck_assert_ptr_eq(strstr(err.msg, model_path), err.msg);
}

void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_loader_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

/* Removes dir and everything a test left in it (files, folders, symlinks). */
void teardown(void)
{
    ck_assert_int_eq(nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

void write_text(const char *file, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}
