/*
 * bench/micro/in_loop.h: running a benchmark body as the main task of a
 * fresh loop, for the benchmarks of the reactor and the layers above it.
 */
#ifndef EDDY_BENCH_IN_LOOP_H
#define EDDY_BENCH_IN_LOOP_H

#include <eddy/reactor.h>

#include "bench/micro/gbench.h"

/* Runs fn(b) as the main task of a fresh loop, with the clock paused while
 * the loop is created and destroyed; fn resumes and pauses it itself. A
 * negative result of fn fails the benchmark with its error name. */
static inline void run_in_loop(struct eddy_bench *b, eddy_task_fn *fn)
{
    eddy_bench_pause(b);
    intptr_t result = 0;
    int rc = eddy_run(fn, b, NULL, &result);
    if (rc < 0)
        eddy_bench_fail(b, eddy_strerror(rc));
    else if (result < 0 && !eddy_bench_failed(b))
        eddy_bench_fail(b, eddy_strerror((int)result));
}

#endif
