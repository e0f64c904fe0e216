/* engine_features.c - what the engine says about the last stage's output
 * (resnetd/engine.h): its shape, walked from the net's strides without
 * building a plan, and the class activation map computed from it and the fc
 * weights. engine_run.c reads the features themselves out of a run.
 *
 * THREADS: reads only the net, which is read-only after load: any thread. */
#include "engine_internal.h"

/* A convolution's (or pooling's) output size along one axis. */
static int out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

engine_feature_shape_t engine_feature_shape(const engine_t *eng)
{
    const net_t *net = eng->net;
    const net_conv_t *stem = &net->stem;
    int h = out_size(eng->info.preproc.input_h, stem->kh, stem->stride, stem->pad);
    int w = out_size(eng->info.preproc.input_w, stem->kw, stem->stride, stem->pad);
    h = out_size(h, 3, 2, 1); /* max pool 3x3 stride 2 pad 1 */
    w = out_size(w, 3, 2, 1);
    for (int b = 0; b < net->n_blocks; b++)
        for (int i = 0; i < net->blocks[b].n_convs; i++) {
            const net_conv_t *c = &net->blocks[b].conv[i];
            h = out_size(h, c->kh, c->stride, c->pad);
            w = out_size(w, c->kw, c->stride, c->pad);
        }
    return (engine_feature_shape_t){net->fc_in, h, w};
}

/* cam = W[class] . F, accumulated in double: 2048 terms of mixed signs per
 * pixel lose a few float ulps otherwise, and it costs nothing here. */
rd_status_t engine_cam(const engine_t *eng, const float *feature_map, int class_index, float *cam,
                       rd_error_t *err)
{
    if (!eng || !feature_map || !cam)
        return rd_error_set(err, RD_ERR_ARG, "engine_cam: NULL engine, feature map or output");
    if (class_index < 0 || class_index >= eng->net->n_classes)
        return rd_error_set(err, RD_ERR_ARG, "class %d is not in 0..%d", class_index,
                            eng->net->n_classes - 1);
    engine_feature_shape_t fs = engine_feature_shape(eng);
    size_t pixels = (size_t)fs.height * (size_t)fs.width;
    const float *weight = eng->net->fc_weight + (size_t)class_index * (size_t)fs.channels;
    for (size_t px = 0; px < pixels; px++) {
        double sum = 0;
        for (int k = 0; k < fs.channels; k++)
            sum += (double)weight[k] * feature_map[(size_t)k * pixels + px];
        cam[px] = (float)sum;
    }
    return RD_OK;
}
