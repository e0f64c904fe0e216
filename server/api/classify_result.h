/* classify_result.h - logits -> probabilities -> top-k (scores.h) -> the JSON that both
 * POST /classify and `resnetd classify` print, so the two never differ:
 *
 *   {"model":"resnet50",
 *    "results":[{"index":0,"filename":"dog.jpg",
 *                "predictions":[{"index":249,"label":"malamute","probability":0.61},...],
 *                "timings_ms":{"decode":3.2,"queue":0.4,"inference":41.0}},
 *               {"index":1,"error":{"code":"bad_request","message":"image 1: ..."}}],
 *    "timings_ms":{"total":47.9}}
 *
 * Partial failure: each image succeeds or fails on its own. The request's
 * status is 200 when at least one image succeeded; when every image failed it
 * is the first image's error status, and the document also carries that
 * error as a top-level "error" object. Pure functions; thread-safe. */
#ifndef RESNETD_CLASSIFY_RESULT_H
#define RESNETD_CLASSIFY_RESULT_H

#include <jansson.h>

#include "resnetd/model.h"

/* Per-image timings in milliseconds; a negative value is left out. */
typedef struct {
    double decode_ms, queue_ms, inference_ms;
} classify_timings_t;

/* One image's success entry: {"index":position,["filename":..,]"predictions":[top k],
 * "timings_ms":{...}}. filename may be NULL. k is clamped to 1..n_classes.
 * Returns a new reference, NULL when out of memory. */
json_t *classify_result_json(const model_info_t *mi, int position, const char *filename,
                             const float *logits, int k, const classify_timings_t *t);

/* One image's failure entry: {"index":position,["filename":..,]"error":{"code","message"}}. */
json_t *classify_error_json(int position, const char *filename, int http_status,
                            const char *message);

/* One image's entry from its status: classify_result_json when http_status
 * is 200, else classify_error_json with message. What both the route and
 * `resnetd classify` append per image. */
json_t *classify_entry_json(const model_info_t *mi, int position, const char *filename,
                            int http_status, const char *message, const float *logits, int k,
                            const classify_timings_t *t);

/* The request status from the per-image statuses (200 for a success), per
 * the rule above. n_images >= 1. */
int classify_request_status(const int *image_status, int n_images);

/* The whole document; steals results (a JSON array). When status is not
 * 200, the first failing entry's "error" is copied to the top level. */
json_t *classify_document(const char *model_name, json_t *results, int status, double total_ms);

#endif
