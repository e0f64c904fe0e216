/* fuzz_config.c - libFuzzer harness: the config file parser (config_load_buffer,
 * the in-memory twin of config_load_file) on arbitrary bytes, then validation
 * and the JSON writer on whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_t cfg = config_default_params();
    rd_error_t err;
    if (config_load_buffer((const char *)data, size, "fuzz", &cfg, &err) != RD_OK)
        return 0;
    (void)config_validate(&cfg, &err);
    free(config_to_json(&cfg));
    model_preproc_t pp = {0};
    config_apply_preproc(&cfg, &pp);
    (void)config_engine_params(&cfg);
    return 0;
}
