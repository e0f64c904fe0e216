/* cpu_time.c - thread and OpenMP team CPU clocks (see cpu_time.h). */
#include "cpu_time.h"

#include <time.h>

int64_t cpu_thread_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cpu_team_ns(void)
{
    int64_t sum = 0;
#pragma omp parallel reduction(+ : sum)
    sum += cpu_thread_ns();
    return sum;
}
