/* model.h - what a loaded model says about itself: architecture, classes, input
 * size, the preprocessing it was trained with, and its labels. The engine fills
 * a model_info_t at load time from the safetensors tensors and __metadata__;
 * the server reads it to preprocess images and to name classes. Read-only after
 * load, so any thread may read it. */
#ifndef RESNETD_MODEL_H
#define RESNETD_MODEL_H

#include <stdbool.h>

/* Where a downsampling bottleneck puts its stride. */
typedef enum {
    MODEL_STRIDE_V1_5 = 0, /* on the 3x3 conv (torchvision); the default */
    MODEL_STRIDE_V1 = 1,   /* on the first 1x1 conv (Caffe, Keras) */
} model_stride_t;

typedef enum {
    MODEL_RGB = 0, /* input channel 0 is red (torchvision) */
    MODEL_BGR = 1, /* input channel 0 is blue (Caffe, Keras) */
} model_channel_order_t;

/* The arithmetic the engine runs the convolutions in. */
typedef enum {
    RD_FP32 = 0, /* float32 throughout */
    RD_INT8 = 1, /* u8/s8 convolutions with calibrated scales (resnetd calibrate) */
    RD_BF16 = 2, /* bf16 convolutions and activations, f32 accumulation; fast on AMX only */
    RD_AUTO = 3, /* a request only: engine_load picks bf16 where the ISA has AMX BF16, else
                    fp32 (engine_precision_note says why); info.precision is the choice */
} rd_precision_t;

/* How an 8-bit image becomes the model's input:
 * resize the shorter side to `resize` (bilinear, antialiased), center-crop
 * input_h x input_w, then for each channel c (in channel_order):
 *     x = (pixel * scale - mean[c]) / std[c]
 * torchvision: scale 1/255, mean {0.485,0.456,0.406}, std {0.229,0.224,0.225}.
 * Caffe/Keras: BGR, scale 1, mean {103.939,116.779,123.68}, std {1,1,1}. */
typedef struct {
    int resize;                          /* shorter side before the crop, pixels */
    int input_h, input_w;                /* crop size = network input size, pixels */
    model_channel_order_t channel_order;
    float scale;
    float mean[3];
    float std[3];
} model_preproc_t;

typedef struct {
    char name[128];           /* metadata "name", else the file name without extension; 1..127
                                 bytes of UTF-8, no '/' (engine_check_model_name) */
    char arch[16];            /* "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", or "resnet-custom" */
    bool bottleneck;          /* bottleneck (50/101/152) or basic (18/34) blocks */
    int stage_blocks[4];      /* blocks per stage, e.g. {2,2,2,2} */
    model_stride_t stride;
    bool conv_bias;           /* the convolutions carried a bias before BN folding */
    float bn_eps;
    int n_classes;            /* from fc.weight */
    model_preproc_t preproc;
    char **labels;            /* n_classes strings; never NULL after load ("class_17" when unknown) */
    bool calibrated;          /* the file carries INT8 calibration */
    rd_precision_t precision; /* what the engine runs it in */
} model_info_t;

#endif
