/*
 * bench/micro/bm_sync.c: the sync layer's hot operations, through the public
 * API of include/eddy/sync.h only.
 *
 * Each benchmark runs inside eddy_run() with the clock paused around loop
 * creation and destruction (run_in_loop, bench/micro/in_loop.h).
 *
 * Cases (impl eddy):
 *   BM_lock_uncontended     eddy_lock_acquire + eddy_lock_release, no waiter
 *   BM_lock_handoff         one hand-off of a lock between two tasks: the
 *                           owner releases to the parked other task and
 *                           parks on its own acquire (one switch per op)
 *   BM_sem_acquire_release  eddy_sem_acquire + eddy_sem_release, no waiter
 *   BM_queue_pingpong       one round trip: A puts into q1, B takes it and
 *                           puts it into q2, A takes it (two switches)
 *   BM_gather_100k          one eddy_gather of 100,000 tasks that return at
 *                           once (spawn, run, join of each); items/s counts
 *                           tasks
 */
#include <stdlib.h>

#include <eddy/sync.h>

#include "bench/micro/gbench.h"
#include "bench/micro/in_loop.h"

/* ---- lock ------------------------------------------------------------------ */

static intptr_t lock_uncontended_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_lock l;
    eddy_lock_init(&l);
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        int rc = eddy_lock_acquire(&l, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
        eddy_lock_release(&l);
    }
    eddy_bench_pause(b);
    return 0;
}

static void BM_lock_uncontended(struct eddy_bench *b)
{
    run_in_loop(b, lock_uncontended_main);
}
EDDY_BENCH(BM_lock_uncontended);

struct handoff {
    struct eddy_lock lock;
    bool stop;
};

static intptr_t handoff_other(void *arg)
{
    struct handoff *h = arg;
    for (;;) {
        int rc = eddy_lock_acquire(&h->lock, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
        bool stop = h->stop;
        eddy_lock_release(&h->lock);
        if (stop)
            return 0;
    }
}

/* Each iteration of the main loop is two hand-offs (to the other task and
 * back), so it runs n/2 times. */
static intptr_t lock_handoff_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    struct handoff h = {.stop = false};
    eddy_lock_init(&h.lock);
    eddy_lock_acquire(&h.lock, EDDY_DEADLINE_NEVER);
    struct eddy_task *other;
    int rc = eddy_task_spawn(handoff_other, &h, NULL, &other);
    if (rc < 0)
        return rc;
    eddy_task_yield(); /* the other task parks on the lock */
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n / 2; i++) {
        eddy_lock_release(&h.lock);
        rc = eddy_lock_acquire(&h.lock, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
    eddy_bench_pause(b);
    h.stop = true;
    eddy_lock_release(&h.lock);
    intptr_t r = 0;
    rc = eddy_task_join(other, &r);
    return rc < 0 ? rc : r;
}

static void BM_lock_handoff(struct eddy_bench *b)
{
    run_in_loop(b, lock_handoff_main);
}
EDDY_BENCH(BM_lock_handoff);

/* ---- semaphore --------------------------------------------------------------- */

static intptr_t sem_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_sem s;
    eddy_sem_init(&s, 1);
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        int rc = eddy_sem_acquire(&s, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
        eddy_sem_release(&s);
    }
    eddy_bench_pause(b);
    return 0;
}

static void BM_sem_acquire_release(struct eddy_bench *b)
{
    run_in_loop(b, sem_main);
}
EDDY_BENCH(BM_sem_acquire_release);

/* ---- queue ping-pong ------------------------------------------------------------ */

struct pingpong {
    struct eddy_queue q1, q2;
};

static intptr_t pong(void *arg)
{
    struct pingpong *p = arg;
    for (;;) {
        void *item;
        int rc = eddy_queue_get(&p->q1, &item, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc == -EPIPE ? 0 : rc;
        rc = eddy_queue_put(&p->q2, item, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0))
            return rc;
    }
}

static intptr_t pingpong_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    struct pingpong p;
    int rc = eddy_queue_init(&p.q1, EDDY_QUEUE_FIFO, 0);
    if (rc < 0)
        return rc;
    rc = eddy_queue_init(&p.q2, EDDY_QUEUE_FIFO, 0);
    if (rc < 0)
        return rc;
    struct eddy_task *other;
    rc = eddy_task_spawn(pong, &p, NULL, &other);
    if (rc < 0)
        return rc;
    eddy_task_yield(); /* B parks on q1 */
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        rc = eddy_queue_put(&p.q1, (void *)(uintptr_t)i, EDDY_DEADLINE_NEVER);
        void *item;
        if (EDDY_LIKELY(rc == 0))
            rc = eddy_queue_get(&p.q2, &item, EDDY_DEADLINE_NEVER);
        if (EDDY_UNLIKELY(rc < 0 || item != (void *)(uintptr_t)i))
            return rc < 0 ? rc : -EPROTO;
    }
    eddy_bench_pause(b);
    eddy_queue_close(&p.q1);
    intptr_t r = 0;
    rc = eddy_task_join(other, &r);
    eddy_queue_fini(&p.q1);
    eddy_queue_fini(&p.q2);
    return rc < 0 ? rc : r;
}

static void BM_queue_pingpong(struct eddy_bench *b)
{
    run_in_loop(b, pingpong_main);
}
EDDY_BENCH(BM_queue_pingpong);

/* ---- gather of 100,000 tasks ---------------------------------------------------- */

#define GATHER_TASKS 100000

static intptr_t return_arg(void *arg)
{
    return (intptr_t)arg;
}

static intptr_t gather_main(void *arg)
{
    struct eddy_bench *b = arg;
    uint64_t n = eddy_bench_iterations(b);
    struct eddy_call *calls = malloc(GATHER_TASKS * sizeof(*calls));
    intptr_t *results = malloc(GATHER_TASKS * sizeof(*results));
    intptr_t rc = 0;
    if (!calls || !results) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < GATHER_TASKS; i++)
        calls[i] = (struct eddy_call){return_arg, (void *)(intptr_t)i};
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++) {
        rc = eddy_gather(calls, GATHER_TASKS, results, EDDY_GATHER_ALL);
        if (EDDY_UNLIKELY(rc < 0))
            break;
    }
    eddy_bench_pause(b);
    if (rc == 0 && results[GATHER_TASKS - 1] != GATHER_TASKS - 1)
        rc = -EPROTO;
    eddy_bench_items_processed(b, (int64_t)(n * GATHER_TASKS));
out:
    free(calls);
    free(results);
    return rc;
}

static void BM_gather_100k(struct eddy_bench *b)
{
    run_in_loop(b, gather_main);
}
EDDY_BENCH(BM_gather_100k);
