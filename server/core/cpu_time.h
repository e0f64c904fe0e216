/* cpu_time.h - CPU time spent for a request, measured where the work runs:
 * CLOCK_THREAD_CPUTIME_ID on the calling thread, and the same summed over the
 * calling thread's OpenMP team (the threads oneDNN computes a batch on), so
 * that a request's server CPU is a measured number (issue 17: count the
 * parts), not total CPU minus guesses.
 *
 *     int64_t t0 = cpu_thread_ns();   ... the work ...   req_cpu += cpu_thread_ns() - t0;
 *     int64_t b0 = cpu_team_ns();     engine_run(...);   batch_cpu = cpu_team_ns() - b0;
 *
 * THREADS: both read only the calling thread's (and its team's) own clocks. */
#ifndef RESNETD_CPU_TIME_H
#define RESNETD_CPU_TIME_H

#include <stdint.h>

/* The calling thread's CPU time, ns (0 if the clock is unavailable). */
int64_t cpu_thread_ns(void);

/* The CPU time of the calling thread's OpenMP team, ns: each member's thread
 * clock, summed in one parallel region. The difference of two calls with the
 * same team size is what the team spent in between, its spinning included.
 * Costs one parallel region (a wake-up of the team). */
int64_t cpu_team_ns(void);

#endif
