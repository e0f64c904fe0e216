/* clock.h - the one monotonic clock of the server and the tools: request
 * start times, deadlines (batcher items' deadline_ns), queue and inference
 * timings, benchmark intervals. Wall-clock time (log timestamps) is not this. */
#ifndef RESNETD_CLOCK_H
#define RESNETD_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC now, in nanoseconds. Thread-safe. */
int64_t clock_now_ns(void);

#endif
