/* fuzz_config.c - libFuzzer harness: config_load_file on arbitrary bytes (via
 * a temporary file: the parser only takes a path), then validation and the
 * JSON writer on whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_tmp_write(data, size);
    if (!path)
        return 0;
    config_t cfg = config_default_params();
    rd_error_t err;
    if (config_load_file(path, &cfg, &err) != RD_OK)
        return 0;
    (void)config_validate(&cfg, &err);
    free(config_to_json(&cfg));
    model_preproc_t pp = {0};
    config_apply_preproc(&cfg, &pp);
    (void)config_engine_params(&cfg);
    return 0;
}
