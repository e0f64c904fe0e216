/* golden_cases.h - the cases tools/reference.py writes into $GOLDEN_DIR, as
 * test_golden.c (FP32) and test_golden_bf16.c (BF16) both read them: for each
 * NAME.json, seeded inputs NAME.input.f32 with PyTorch's float64 logits
 * NAME.logits.f32, optionally real photos (NAME.photos.f32 and
 * NAME.photos_logits.f32), and the model NAME.safetensors. Failures are check
 * assertions, so call these from tests only. */
#ifndef RESNETD_GOLDEN_CASES_H
#define RESNETD_GOLDEN_CASES_H

#include <check.h>
#include <jansson.h>
#include <stddef.h>

typedef struct {
    int n, c, h, w, classes, n_photos;
    float *input;  /* [n][c][h][w] */
    float *logits; /* [n][classes], PyTorch */
    float *photos, *photo_logits; /* [n_photos][c][h][w] and [n_photos][classes], or NULL */
    json_t *labels; /* optional JSON array, or NULL */
    json_t *expect; /* the whole NAME.json: optional "arch", "stage_blocks", ... */
} golden_t;

/* Case i's NAME (0 <= i < the count golden_main found). */
const char *golden_case(int i);

/* "$GOLDEN_DIR/NAMEsuffix"; caller frees. */
char *golden_path(const char *name, const char *suffix);

/* Reads case name; golden_free releases it. */
void golden_read(const char *name, golden_t *g);
void golden_free(golden_t *g);

/* max |v[i]| over count floats: the scale tolerances are relative to. */
double golden_max_abs(const float *v, size_t count);

/* The whole test program: finds the cases in $GOLDEN_DIR, runs test once per
 * case (its _i is the case's index) in one TCase with timeout_s, and returns
 * main's exit status (1 when there are no cases or a test failed). */
int golden_main(const char *suite, const char *tcase, double timeout_s, const TTest *test);

#endif
