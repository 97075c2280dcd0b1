/*
 * bench/micro/bm_offload.c: the offload pool and the cross-thread channel,
 * through the public API of include/eddy/reactor.h only.
 *
 * Cases (impl eddy):
 *   BM_offload_roundtrip   one task offloads a function that returns at once
 *                          and waits for it: the submit (lock, signal), the
 *                          worker's wakeup, the completion's intrusive post
 *                          and eventfd write, the loop's epoll wakeup and the
 *                          switch back. Default pool (4 threads; one is used).
 *                          On a machine with spare cores the worker and the
 *                          loop run on two cores; pinned to one core
 *                          (taskset -c 1) every round trip is two thread
 *                          switches through the kernel.
 *   BM_channel_thread_to_task  a thread sends values with try_send (spinning
 *                          on -EAGAIN) into a 256-slot channel; one task
 *                          receives them. Per value received.
 *
 * As in bm_reactor.c, each benchmark runs inside eddy_run() with the clock
 * paused around loop creation and destruction.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include <eddy/reactor.h>

#include "bench/micro/gbench.h"
#include "bench/micro/in_loop.h"

/* ---- offload round trip ------------------------------------------------------ */

static intptr_t trivial(void *arg)
{
    return (intptr_t)arg + 1;
}

static intptr_t offload_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    /* Warm: the worker thread exists and the job cache holds an object. */
    intptr_t r;
    int rc = eddy_offload_run(trivial, NULL, NULL, &r);
    if (rc < 0)
        return rc;
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        rc = eddy_offload_run(trivial, (void *)(intptr_t)i, NULL, &r);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
    eddy_bench_pause(b);
    return r == (intptr_t)n ? 0 : -EIO;
}

static void BM_offload_roundtrip(struct eddy_bench *b)
{
    run_in_loop(b, offload_main);
}
EDDY_BENCH(BM_offload_roundtrip);

/* ---- channel: thread to task ------------------------------------------------------ */

struct feed {
    struct eddy_channel *ch;
    uint64_t n;
};

static void *feed_thread(void *arg)
{
    struct feed *f = arg;
    for (uint64_t i = 0; i < f->n; i++)
        while (eddy_channel_try_send(f->ch, (intptr_t)i) == -EAGAIN)
            sched_yield();
    return NULL;
}

static intptr_t channel_main(void *arg)
{
    struct eddy_bench *b = arg;
    struct feed f = {NULL, eddy_bench_iterations(b)};
    int rc = eddy_channel_create(eddy_loop_current(), 256, &f.ch);
    if (rc < 0)
        return rc;
    eddy_bench_resume(b);
    pthread_t t;
    if (pthread_create(&t, NULL, feed_thread, &f) != 0)
        return -EAGAIN;
    intptr_t sum = 0;
    for (uint64_t i = 0; i < f.n; i++) {
        intptr_t v;
        rc = eddy_channel_recv(f.ch, &v);
        if (EDDY_UNLIKELY(rc < 0))
            break;
        sum += v;
    }
    pthread_join(t, NULL);
    eddy_bench_pause(b);
    eddy_bench_escape(&sum);
    eddy_channel_destroy(f.ch);
    return rc;
}

static void BM_channel_thread_to_task(struct eddy_bench *b)
{
    run_in_loop(b, channel_main);
}
EDDY_BENCH(BM_channel_thread_to_task);
