/* test_engine.c - the engine end to end on tiny ResNets: writes seeded
 * torchvision-named weights with safetensors_writer, loads them with
 * engine_load, and compares engine_run's logits with a naive C forward pass
 * computed here from the UNFOLDED tensors (conv, BN, ReLU, max pool with -inf
 * padding, add, average pool, fc), so BN folding, layouts, fused post-ops and
 * the in-place residual sums are all checked against plain maths. INT8: a
 * calibrated copy of the same weights must stay within a few percent of the
 * same reference.
 * The tests are grouped in test_engine_*.c around engine_fixture.c. */
#include "engine_fixture.h"

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    engine_fp32_tests(tc);
    engine_int8_tests(tc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
