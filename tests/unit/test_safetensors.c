/* test_safetensors.c - the safetensors reader, converter and writer. Every
 * malformed file is built here byte by byte, and each rejection is checked for
 * its status and for a message that names the tensor (or key) at fault. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

/* 8-byte LE header length + header + data_len bytes of data (0, 1, 2, ...). */
static uint8_t *make_file(const char *header, size_t data_len, size_t *len)
{
    size_t hlen = strlen(header);
    *len = 8 + hlen + data_len;
    uint8_t *buf = malloc(*len);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hlen + i] = (uint8_t)i;
    return buf;
}

/* Parses header + data and expects status code with a message containing want. */
static void expect_reject(const char *header, size_t data_len, rd_status_t code, const char *want)
{
    size_t len;
    uint8_t *buf = make_file(header, data_len, &len);
    safetensors_t *st = (safetensors_t *)buf; /* must be reset to NULL */
    rd_error_t err = { 0 };
    rd_status_t s = safetensors_parse(buf, len, &st, &err);
    ck_assert_msg(s == code, "%s: status %d, want %d (%s)", header, s, code, err.msg);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(st);
    ck_assert_msg(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
    free(buf);
}

START_TEST(rejects_short_and_bad_headers)
{
    rd_error_t err = { 0 };
    safetensors_t *st;
    uint8_t tiny[7] = { 0 };
    ck_assert_int_eq(safetensors_parse(tiny, sizeof tiny, &st, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "shorter than the 8-byte header"));

    /* header length past the end of the file */
    uint8_t past[16] = { 9, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
    ck_assert_int_eq(safetensors_parse(past, 10, &st, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "past the end"));

    /* absurd header length (2^40) */
    uint8_t absurd[16] = { 0, 0, 0, 0, 0, 1, 0, 0 };
    ck_assert_int_eq(safetensors_parse(absurd, sizeof absurd, &st, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "absurd"));

    expect_reject("{\"a\": ", 0, RD_ERR_FORMAT, "not valid JSON");
    expect_reject("[1, 2]", 0, RD_ERR_FORMAT, "not a JSON object");
    expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, RD_ERR_FORMAT, "w");
}
END_TEST

START_TEST(rejects_bad_entries)
{
    expect_reject("{\"conv1.weight\": 5}", 0, RD_ERR_FORMAT, "tensor conv1.weight: entry is not an object");
    expect_reject("{\"a.b\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, RD_ERR_FORMAT,
                  "tensor a.b: dtype missing");
    expect_reject("{\"a.b\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, RD_ERR_FORMAT,
                  "tensor a.b: dtype is not a string");
    expect_reject("{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                  RD_ERR_UNSUPPORTED, "tensor x: dtype Q7 not supported (F32, F16, BF16)");
    expect_reject("{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  RD_ERR_FORMAT, "tensor x: 8 bytes in data_offsets, dtype x shape needs 16");
    expect_reject("{\"sh\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, RD_ERR_FORMAT,
                  "tensor sh: shape missing");
    expect_reject("{\"sh\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, RD_ERR_FORMAT,
                  "tensor sh: shape is not an array");
    expect_reject("{\"sh\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                  RD_ERR_FORMAT, "tensor sh: shape[0] is not an integer");
    expect_reject("{\"neg\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                  RD_ERR_FORMAT, "tensor neg: shape[1] is negative");
    expect_reject("{\"nine\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                  "\"data_offsets\":[0,4]}}", 4, RD_ERR_UNSUPPORTED, "tensor nine: 9 dimensions");
    expect_reject("{\"big\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                  "\"data_offsets\":[0,4]}}", 4, RD_ERR_FORMAT, "tensor big: element count overflows");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, RD_ERR_FORMAT,
                  "tensor o: data_offsets missing");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                  RD_ERR_FORMAT, "tensor o: data_offsets is not 2 non-negative integers");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8,
                  RD_ERR_FORMAT, "tensor o: data_offsets is not 2");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 8,
                  RD_ERR_FORMAT, "tensor o: data_offsets is not 2");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
                  RD_ERR_FORMAT, "tensor o: data_offsets begin 8 > end 4");
    expect_reject("{\"o\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8,
                  RD_ERR_FORMAT, "tensor o: data_offsets end 12 is past the data area");
    expect_reject("{\"o\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                  RD_ERR_FORMAT, "tensor o: 8 bytes in data_offsets, dtype x shape needs 6");
}
END_TEST

/* Non-float dtypes (torchvision's int64 num_batches_tracked) are listed but
 * cannot be converted; safetensors_check_float names them. */
START_TEST(lists_but_flags_other_dtypes)
{
    size_t len;
    uint8_t *buf = make_file("{\"bn1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],"
                             "\"data_offsets\":[0,8]},\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],"
                             "\"data_offsets\":[8,11]},\"f\":{\"dtype\":\"F32\",\"shape\":[1],"
                             "\"data_offsets\":[12,16]}}", 16, &len);
    safetensors_t *st;
    rd_error_t err = { 0 };
    ck_assert_int_eq(safetensors_parse(buf, len, &st, &err), RD_OK);
    const safetensors_tensor_t *t = safetensors_find(st, "bn1.num_batches_tracked");
    ck_assert_int_eq(t->dtype, SAFETENSORS_OTHER);
    ck_assert_str_eq(t->dtype_name, "I64");
    ck_assert_uint_eq(t->n_bytes, 8);
    ck_assert_uint_eq(safetensors_find(st, "m")->n_bytes, 3);
    ck_assert_int_eq(safetensors_check_float(t, &err), RD_ERR_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "tensor bn1.num_batches_tracked: dtype I64 not supported "
                              "(F32, F16, BF16)");
    ck_assert_int_eq(safetensors_check_float(safetensors_find(st, "f"), &err), RD_OK);
    float zero = 1;
    safetensors_to_f32(t, &zero);
    ck_assert_float_eq(zero, 0);
    safetensors_close(st);
    free(buf);
}
END_TEST

START_TEST(rejects_overlap_and_bad_metadata)
{
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  16, RD_ERR_FORMAT, "tensor b: bytes overlap tensor a");
    /* a big tensor that contains a later small one, not just its neighbour */
    expect_reject("{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                  "\"in1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  16, RD_ERR_FORMAT, "tensor in1: bytes overlap tensor big");
    expect_reject("{\"__metadata__\": [1]}", 0, RD_ERR_FORMAT, "__metadata__ is not an object");
    expect_reject("{\"__metadata__\": {\"bn_eps\": 0.001}}", 0, RD_ERR_FORMAT,
                  "__metadata__ key bn_eps: value is not a string");
}
END_TEST

START_TEST(parses_valid_file)
{
    /* odd header length puts the F32 data at an unaligned address */
    const char *header =
        "{\"__metadata__\":{\"name\":\"tiny\"},"
        "\"f\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
        "\"e\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[12,12]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[12,14]}} ";
    size_t len;
    uint8_t *buf = make_file(header, 14, &len);
    const float fv[2] = { 1.5f, -2.25f };
    memcpy(buf + len - 14, fv, 8);
    memcpy(buf + len - 6, (uint8_t[]){ 0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f }, 6);
    safetensors_t *st = NULL;
    rd_error_t err = { 0 };
    ck_assert_int_eq(safetensors_parse(buf, len, &st, &err), RD_OK);
    ck_assert_int_eq(safetensors_count(st), 4);
    ck_assert_str_eq(safetensors_at(st, 0)->name, "f");
    ck_assert_str_eq(safetensors_at(st, 3)->name, "b");
    ck_assert_ptr_null(safetensors_at(st, 4));
    ck_assert_ptr_null(safetensors_find(st, "missing"));
    ck_assert_str_eq(safetensors_metadata(st, "name"), "tiny");
    ck_assert_ptr_null(safetensors_metadata(st, "arch"));

    float out[2];
    const safetensors_tensor_t *t = safetensors_find(st, "f");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->n_elems, 2);
    ck_assert_ptr_eq(t->data, buf + len - 14);
    safetensors_to_f32(t, out);
    ck_assert_float_eq(out[0], 1.5f);
    ck_assert_float_eq(out[1], -2.25f);
    safetensors_to_f32(safetensors_find(st, "h"), out);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], -2.0f);
    ck_assert_int_eq(safetensors_find(st, "e")->n_elems, 0);
    t = safetensors_find(st, "b");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(t->n_elems, 1);
    safetensors_to_f32(t, out);
    ck_assert_float_eq(out[0], 1.0f);
    safetensors_close(st);
    safetensors_close(NULL);
    free(buf);
}
END_TEST

static float f16(uint16_t bits)
{
    safetensors_tensor_t t = { .dtype = SAFETENSORS_F16, .n_elems = 1,
                               .data = (const uint8_t[]){ bits & 0xff, bits >> 8 } };
    float f;
    safetensors_to_f32(&t, &f);
    return f;
}

static float bf16(uint16_t bits)
{
    safetensors_tensor_t t = { .dtype = SAFETENSORS_BF16, .n_elems = 1,
                               .data = (const uint8_t[]){ bits & 0xff, bits >> 8 } };
    float f;
    safetensors_to_f32(&t, &f);
    return f;
}

START_TEST(converts_f16)
{
    ck_assert_float_eq(f16(0x3c00), 1.0f);
    ck_assert_float_eq(f16(0xc000), -2.0f);
    ck_assert_float_eq(f16(0x3555), 0.333251953125f);
    ck_assert_float_eq(f16(0x7bff), 65504.0f);              /* largest normal */
    ck_assert_float_eq(f16(0x0400), 6.103515625e-05f);      /* smallest normal, 2^-14 */
    ck_assert_float_eq(f16(0x0001), 5.9604644775390625e-08f); /* smallest subnormal, 2^-24 */
    ck_assert_float_eq(f16(0x03ff), 6.097555160522461e-05f); /* largest subnormal */
    ck_assert_float_eq(f16(0x8001), -5.9604644775390625e-08f);
    ck_assert(f16(0x8000) == 0.0f && signbit(f16(0x8000)));
    ck_assert(isinf(f16(0x7c00)) && f16(0x7c00) > 0);
    ck_assert(isinf(f16(0xfc00)) && f16(0xfc00) < 0);
    ck_assert(isnan(f16(0x7e00)) && isnan(f16(0xfc01)));
    /* every one of the 65536 values against the compiler's own _Float16 */
    for (uint32_t b = 0; b < 65536; b++) {
        _Float16 h;
        uint16_t bits = (uint16_t)b;
        memcpy(&h, &bits, sizeof h);
        float want = (float)h, got = f16(bits);
        if (isnan(want))
            ck_assert_msg(isnan(got), "f16 0x%04x", b);
        else
            ck_assert_msg(memcmp(&want, &got, 4) == 0, "f16 0x%04x: %g, want %g", b, got, want);
    }
}
END_TEST

START_TEST(converts_bf16)
{
    ck_assert_float_eq(bf16(0x3f80), 1.0f);
    ck_assert_float_eq(bf16(0xc040), -3.0f);
    ck_assert_float_eq(bf16(0x3e20), 0.15625f);
    ck_assert_float_eq(bf16(0x0001), 9.183549615799121e-41f); /* subnormal, 2^-133 */
    ck_assert(isinf(bf16(0x7f80)) && isinf(bf16(0xff80)) && bf16(0xff80) < 0);
    ck_assert(isnan(bf16(0x7fc0)));
    ck_assert(bf16(0x8000) == 0.0f && signbit(bf16(0x8000)));
}
END_TEST

/* A scratch folder, removed (with the given files) at the end of a test. */
static char scratch[64];

static const char *make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/test_safetensors_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    return scratch;
}

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

START_TEST(open_reads_and_rejects_files)
{
    char path[128];
    snprintf(path, sizeof path, "%s/bad.safetensors", make_scratch());
    size_t len;
    uint8_t *buf = make_file("{\"layer1.0.bn1.weight\":{\"dtype\":\"F32\",\"shape\":[4],"
                             "\"data_offsets\":[0,16]}}", 12, &len);
    write_bytes(path, buf, len);
    safetensors_t *st = (safetensors_t *)buf;
    rd_error_t err = { 0 };
    ck_assert_int_eq(safetensors_open(path, &st, &err), RD_ERR_FORMAT);
    ck_assert_ptr_null(st);
    ck_assert_ptr_eq(strstr(err.msg, path), err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor layer1.0.bn1.weight: data_offsets end 16 is "
                                          "past the data area (12 bytes)"));
    free(buf);

    buf = make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &len);
    write_bytes(path, buf, len);
    ck_assert_int_eq(safetensors_open(path, &st, &err), RD_OK);
    ck_assert_int_eq(safetensors_count(st), 1);
    ck_assert_int_eq(memcmp(safetensors_find(st, "w")->data, buf + len - 8, 8), 0);
    safetensors_close(st);

    write_bytes(path, buf, 5);
    ck_assert_int_eq(safetensors_open(path, &st, &err), RD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "shorter than"));
    unlink(path);
    ck_assert_int_eq(safetensors_open(path, &st, &err), RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_int_eq(safetensors_open(scratch, &st, &err), RD_ERR_IO);
    free(buf);
    rmdir(scratch);
}
END_TEST

START_TEST(writer_round_trip)
{
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", make_scratch());
    safetensors_writer_t *w;
    rd_error_t err = { 0 };
    ck_assert_int_eq(safetensors_writer_create(&w, &err), RD_OK);
    const float a[6] = { 1, 2, 3, 4, 5, 6 }, b[1] = { -7.5f };
    ck_assert_int_eq(safetensors_writer_add(w, "zeta", 2, (int64_t[]){ 2, 3 }, a, &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_add(w, "alpha", 1, (int64_t[]){ 1 }, b, &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_add(w, "empty", 1, (int64_t[]){ 0 }, NULL, &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_meta(w, "stride", "v1.5", &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_meta(w, "stride", "v1", &err), RD_OK);
    ck_assert_int_eq(safetensors_writer_add(w, "alpha", 1, (int64_t[]){ 1 }, b, &err), RD_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "tensor alpha"));
    ck_assert_int_eq(safetensors_writer_add(w, "__metadata__", 1, (int64_t[]){ 1 }, b, &err),
                     RD_ERR_ARG);
    ck_assert_int_eq(safetensors_writer_add(w, "n", 9, (int64_t[9]){ 1 }, b, &err), RD_ERR_ARG);
    ck_assert_int_eq(safetensors_writer_add(w, "n", 1, (int64_t[]){ -1 }, b, &err), RD_ERR_ARG);
    ck_assert_int_eq(safetensors_writer_add(w, "n", 1, (int64_t[]){ 2 }, NULL, &err), RD_ERR_ARG);
    ck_assert_int_eq(safetensors_writer_save(w, path, &err), RD_OK);

    /* layout: header length a multiple of 8, space padded, names in order */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t raw[512];
    size_t len = fread(raw, 1, sizeof raw, f);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(len, 8 + hlen + 28);
    char header[512] = { 0 };
    memcpy(header, raw + 8, hlen);
    char *alpha = strstr(header, "\"alpha\""), *empty = strstr(header, "\"empty\"");
    char *zeta = strstr(header, "\"zeta\"");
    ck_assert(alpha && empty && zeta && alpha < empty && empty < zeta);
    ck_assert_ptr_nonnull(strstr(header, "\"__metadata__\":{\"stride\":\"v1\"}"));
    ck_assert(header[strlen(header) - 1] == '}' || header[strlen(header) - 1] == ' ');

    safetensors_t *st;
    ck_assert_int_eq(safetensors_open(path, &st, &err), RD_OK);
    ck_assert_int_eq(safetensors_count(st), 3);
    const safetensors_tensor_t *t = safetensors_find(st, "zeta");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[1], 3);
    float out[6];
    safetensors_to_f32(t, out);
    ck_assert_int_eq(memcmp(out, a, sizeof a), 0);
    safetensors_to_f32(safetensors_find(st, "alpha"), out);
    ck_assert_float_eq(out[0], -7.5f);
    ck_assert_str_eq(safetensors_metadata(st, "stride"), "v1");
    safetensors_close(st);

    /* a folder that does not exist: RD_ERR_IO, nothing left behind */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", scratch);
    ck_assert_int_eq(safetensors_writer_save(w, bad, &err), RD_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, bad));
    safetensors_writer_free(w);
    safetensors_writer_free(NULL);
    unlink(path);
    ck_assert_int_eq(rmdir(scratch), 0); /* fails if a temporary file was left */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rejects_short_and_bad_headers);
    tcase_add_test(tc, rejects_bad_entries);
    tcase_add_test(tc, lists_but_flags_other_dtypes);
    tcase_add_test(tc, rejects_overlap_and_bad_metadata);
    tcase_add_test(tc, parses_valid_file);
    tcase_add_test(tc, converts_f16);
    tcase_add_test(tc, converts_bf16);
    tcase_add_test(tc, open_reads_and_rejects_files);
    tcase_add_test(tc, writer_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
