/* test_batcher.c - the batching queue with a fake model (no oneDNN): each
 * item gets its own logits, batches above 1 form, deadlines, cancellation,
 * queue-full, engine failures and drain all complete every item exactly once.
 * The fake can hold the worker inside a run ("gate") so that every scenario
 * is ordered deterministically, with no timing assumptions; the worker waits
 * for company only while a producer is registered (batcher_producer_enter). One last test
 * runs a real tiny ResNet engine behind the batcher and compares each item's
 * logits with engine_run on that image alone.
 * The tests are grouped in test_batcher_*.c around batcher_fixture.c. */
#include "batcher_fixture.h"

int main(void)
{
    Suite *s = suite_create("batcher");
    TCase *tc = tcase_create("core");
    batcher_queue_tests(tc);
    batcher_drain_tests(tc);
    batcher_timing_tests(tc);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("engine");
    batcher_engine_tests(te);
    suite_add_tcase(s, te);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
