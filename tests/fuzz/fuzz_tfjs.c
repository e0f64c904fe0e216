/* fuzz_tfjs.c - libFuzzer harness: a TF.js model.json through the topology and
 * weightsManifest parsers as convert_tfjs uses them. The manifest's paths are
 * relative to a temporary folder holding one 4096-byte shard "s.bin", so
 * manifests naming it get past the file checks. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tfjs.h"

static char shard_dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(shard_dir, sizeof shard_dir, "/tmp/resnetd-fuzz-tfjs-XXXXXX");
    if (!mkdtemp(shard_dir))
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s/s.bin", shard_dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        static const uint8_t zeros[4096];
        fwrite(zeros, 1, sizeof zeros, f);
        fclose(f);
    }
    return 0;
}

static void read_some(tfjs_manifest_t *m)
{
    for (int i = 0; i < m->n_weights && i < 4; i++) {
        tfjs_weight_t *w = &m->weights[i];
        if (tfjs_manifest_find(m, w->name) == NULL)
            abort(); /* a listed weight must be found by its name */
        if (w->n_elems <= 0 || w->n_elems > 1024)
            continue;
        float *dst = malloc((size_t)w->n_elems * sizeof *dst);
        if (dst) {
            (void)tfjs_manifest_read(m, w, dst, NULL);
            free(dst);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (!root)
        return 0;
    rd_error_t err;
    json_t *mt = json_object_get(root, "modelTopology");
    json_t *mc = json_object_get(mt, "model_config") ? json_object_get(mt, "model_config") : mt;
    tfjs_topology_t topo;
    memset(&topo, 0, sizeof topo);
    if (tfjs_topology_parse(json_object_get(json_object_get(mc, "config"), "layers"), &topo,
                            &err) == RD_OK)
        tfjs_topology_free(&topo);
    tfjs_manifest_t man;
    memset(&man, 0, sizeof man);
    if (tfjs_manifest_parse(json_object_get(root, "weightsManifest"), shard_dir, &man, &err) ==
        RD_OK)
        read_some(&man);
    tfjs_manifest_free(&man);
    json_decref(root);
    return 0;
}
