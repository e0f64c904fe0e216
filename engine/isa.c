/* isa.c - what the CPU lets oneDNN use (resnetd/engine.h): the effective ISA,
 * which honours ONEDNN_MAX_CPU_ISA, so one AMX machine can run and test both
 * paths. It decides what `auto` runs (engine.c) and is reported in the
 * start-up log, `resnetd bench`, /v2 model metadata and /metrics.
 *
 * THREADS: any thread; oneDNN fixes the ISA on first use. */
#include <dnnl.h>

#include "resnetd/engine.h"

static const struct {
    dnnl_cpu_isa_t isa;
    const char *name;
} isa_names[] = {
    {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
    {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
    {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
    {dnnl_cpu_isa_avx512_core, "avx512_core"},
    {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
    {dnnl_cpu_isa_avx2, "avx2"},
    {dnnl_cpu_isa_avx, "avx"},
    {dnnl_cpu_isa_sse41, "sse41"},
};

const char *engine_isa_name(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof isa_names / sizeof *isa_names; i++)
        if (isa == isa_names[i].isa)
            return isa_names[i].name;
    return "unknown";
}

/* AMX's BF16 tiles. avx512_core_bf16 has BF16 dot products too, but oneDNN's
 * BF16 convolutions there run at about half the FP32 rate (docs/performance.md). */
bool engine_isa_fast_bf16(void)
{
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) ==
           dnnl_cpu_isa_avx512_core_amx;
}
