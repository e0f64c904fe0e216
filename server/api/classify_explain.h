/* classify_explain.h - POST /classify's explanations and embeddings:
 * `?explain=cam[&class=N]` adds per image
 *     "cam": {"class": c, "label": "...", "height": 7, "width": 7,
 *             "crop": {"x": X, "y": Y, "width": W, "height": H},
 *             "data": [height*width floats, row-major, raw]}
 * (the class activation map of the top-1 class or of class N, and the
 * rectangle of the original image the network input covers), and
 * `?features=1` adds "features": [C floats] (the pooled vector). The route
 * parses the query, records the crops from the image headers before they are
 * decoded, asks the job for the engine outputs, and adds them to each entry.
 * THREADS: one request's, on its HTTP thread. */
#ifndef RESNETD_CLASSIFY_EXPLAIN_H
#define RESNETD_CLASSIFY_EXPLAIN_H

#include <jansson.h>
#include <stdbool.h>

#include "image_job.h"

typedef struct {
    bool cam, features;
    int cam_class;        /* -1: each image's top-1 */
    double (*crop)[4];    /* per image {x, y, width, height}, with cam */
} classify_explain_t;

/* Reads explain, class and features from the query. False after answering
 * 400 with the reason (explain other than "cam", class not an integer in
 * 0..n_classes-1 or without explain=cam, features other than 0/1/true/false). */
bool classify_explain_parse(http_request_t *req, classify_explain_t *x);

/* What the job must ask the engine for. */
infer_want_t classify_explain_want(const classify_explain_t *x);

/* With cam: each image's crop from its header (an image whose header says
 * nothing fails to decode anyway). RD_ERR_NOMEM. */
rd_status_t classify_explain_crops(classify_explain_t *x, const served_model_t *model,
                                   const image_span_t *images, int n, rd_error_t *err);

/* Adds image i's "cam" and "features" to its success entry e. False when out
 * of memory. */
bool classify_explain_add(const classify_explain_t *x, const infer_job_t *job, int i, json_t *e);

void classify_explain_free(classify_explain_t *x);

#endif
