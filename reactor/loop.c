/*
 * reactor/loop.c: the event loop: run queue, scheduler, clock, posts, stop.
 *
 * Scheduling. The loop runs on the thread's own stack (its main coroutine).
 * Tasks hand the CPU straight to the next runnable task when they park
 * (eddy__loop_switch_from), so a wakeup costs one context switch, not two.
 * Control returns to the loop when the run queue is empty or the dispatch
 * budget of the iteration (BUDGET dispatches) is spent; the budget bounds
 * how long due timers wait behind tasks that keep waking each other.
 *
 * One iteration: run tasks; poll (timeout 0 when tasks are runnable, else
 * until the earliest timer, measured from a fresh clock read because the
 * tasks may have run for a while); read the clock once for the tasks and
 * timers; fire due timers; run the callbacks posted from other threads.
 * A poll with nothing ready costs about as much as ten round trips through
 * a queue (an epoll_pwait2 syscall, about 300 ns on the development VM):
 * while tasks stay runnable, an iteration that comes less than
 * POLL_INTERVAL_NS after the last poll only reads the clock and fires due
 * timers. Ready fds and posted callbacks then wait at most that interval
 * plus one budget of dispatches; a queue ping-pong polled every 64 round
 * trips and spent 7% of its time there.
 *
 * Finished tasks cannot free their own stack while running on it: a task
 * that ends leaves itself in loop->zombie and switches away, and whichever
 * context runs next frees the stack (eddy__loop_reap).
 */
#include "reactor/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BUDGET 128
#define POLL_INTERVAL_NS ((int64_t)20 * 1000)
#define QUARANTINE_LEN 1024

__thread struct eddy_loop *eddy__loop_tls __attribute__((tls_model("initial-exec")));
__thread struct eddy_loop *eddy__loop_owned_tls __attribute__((tls_model("initial-exec")));

EDDY_API int64_t eddy_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * EDDY_NS_PER_SEC + ts.tv_nsec;
}

EDDY_API int64_t eddy_now_ns(void)
{
    struct eddy_loop *loop = eddy__loop_tls;
    return loop ? loop->now : eddy_clock_ns();
}

EDDY_API struct eddy_loop *eddy_loop_current(void)
{
    return eddy__loop_tls;
}

/* ---- create / destroy ---------------------------------------------------- */

EDDY_API int eddy_loop_create(const struct eddy_loop_opts *opts, struct eddy_loop **out)
{
    struct eddy_loop *loop = eddy__calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    int rc = eddy_obj_slab_init(&loop->task_slab, sizeof(struct eddy_task));
    if (rc < 0)
        goto fail_loop;
    struct eddy_stack_pool_opts sopts = {.cache_bytes = opts ? opts->stack_cache_bytes : 0};
    rc = eddy_stack_pool_create(&sopts, &loop->stacks);
    if (rc < 0)
        goto fail_slab;
    rc = eddy__poller_init(&loop->poller);
    if (rc < 0)
        goto fail_stacks;
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        rc = -errno;
        goto fail_poller;
    }
    rc = eddy__poller_add(&loop->poller, loop->wake_fd);
    if (rc < 0)
        goto fail_wake;
    pthread_mutex_init(&loop->post_lock, NULL);
    loop->post_tail = &loop->post_head;
    eddy__list_init(&loop->runq);
    eddy__list_init(&loop->tasks);
    eddy__heap_init(&loop->timers);
    loop->sched = eddy_coro_current();
    loop->owner = pthread_self();
    loop->now = eddy_clock_ns();
    memcpy(loop->next_name, "task-1", 7);
    loop->next_name_len = 6;
    eddy__loop_owned_tls = loop;
    const char *debug = getenv("EDDY_DEBUG");
    loop->debug = debug && *debug && *debug != '0';
    const char *slow = getenv("EDDY_SLOW_MS");
    loop->slow_ns = (slow && *slow ? strtoll(slow, NULL, 10) : 100) * EDDY_NS_PER_MS;
    *out = loop;
    return 0;

fail_wake:
    close(loop->wake_fd);
fail_poller:
    eddy__poller_fini(&loop->poller);
fail_stacks:
    eddy_stack_pool_destroy(loop->stacks);
fail_slab:
    eddy_obj_slab_fini(&loop->task_slab);
fail_loop:
    eddy__free(loop);
    return rc;
}

static void cancel_all(struct eddy_loop *loop)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &loop->tasks) {
        struct eddy_task *t = eddy__container_of(pos, struct eddy_task, all_link);
        if (t->state != EDDY__TASK_DONE)
            eddy_task_cancel(t);
    }
}

static struct eddy__post *take_posts(struct eddy_loop *loop, bool closing);

/* What makes run() return, besides a stop. */
enum run_until { UNTIL_TASK, UNTIL_NO_TASKS, UNTIL_NO_WORK };

static int run(struct eddy_loop *loop, enum run_until mode, struct eddy_task *task);

EDDY_API void eddy_loop_destroy(struct eddy_loop *loop)
{
    if (!loop || eddy__loop_tls)
        return;
    if (!pthread_equal(pthread_self(), loop->owner)) {
        /* Its tasks can only be finished on the owner thread. */
        fprintf(stderr, "eddy: eddy_loop_destroy called from a thread that does not own the "
                        "loop; the loop is left alone\n");
        return;
    }
    if (eddy__loop_owned_tls == loop)
        eddy__loop_owned_tls = NULL;
    if (loop->debug)
        eddy__debug_report_end(loop);
    /* Callbacks not yet run are dropped here, before the shutdown runs below
     * poll the eventfd and would run them (eddy_loop_post's contract). */
    struct eddy__post *p = take_posts(loop, true);
    while (p) {
        struct eddy__post *next = p->next;
        eddy__free(p);
        p = next;
    }
    /* asyncio.run's shutdown: cancel what is left and let it finish. */
    while (loop->live > 0) {
        cancel_all(loop);
        atomic_store(&loop->stop, false);
        run(loop, UNTIL_NO_TASKS, NULL);
    }
    /* Offload jobs whose callers are gone: drop the queued, wait for the
     * running, dispose of the results; then no worker touches the loop. */
    eddy__offload_loop_fini(loop);
    struct eddy__list *pos, *tmp;
    eddy__list_for_each_safe (pos, tmp, &loop->tasks) {
        struct eddy_task *t = eddy__container_of(pos, struct eddy_task, all_link);
        eddy__task_free(loop, t);
    }
    for (size_t i = 0; i < loop->quarantine_len; i++)
        eddy_obj_slab_free(&loop->task_slab, loop->quarantine[i]);
    eddy__free(loop->quarantine);
    /* Callback timers still armed are disarmed, so stopping them later is safe. */
    for (uint32_t i = 0; i < loop->timers.len; i++)
        loop->timers.v[i].node->slot = 0;
    eddy__heap_fini(&loop->timers);
    pthread_mutex_destroy(&loop->post_lock);
    while (loop->coro_cache_len > 0)
        eddy_coro_destroy(loop->coro_cache[--loop->coro_cache_len]);
    eddy__fd_table_fini(loop);
    close(loop->wake_fd);
    eddy__poller_fini(&loop->poller);
    eddy_stack_pool_destroy(loop->stacks);
    eddy_obj_slab_fini(&loop->task_slab);
    eddy__free(loop);
}

/* ---- switching ----------------------------------------------------------- */

void eddy__loop_reap(struct eddy_loop *loop)
{
    struct eddy_task *z = loop->zombie;
    loop->zombie = NULL;
    if (loop->coro_cache_len < EDDY__CORO_CACHE &&
        eddy_coro_stack_size(z->coro) == EDDY_STACK_DEFAULT_BYTES)
        loop->coro_cache[loop->coro_cache_len++] = z->coro;
    else
        eddy_coro_destroy(z->coro);
    z->coro = NULL;
    if (z->flags & EDDY__TASK_DETACHED)
        eddy__task_free(loop, z);
}

/* Every switch of the scheduler happens here, at one call site: the CPU
 * predicts a switch's return when both sides suspended at the same site
 * (see coro/switch_x86_64.S). */
__attribute__((noinline)) void eddy__loop_transfer(struct eddy_loop *loop, struct eddy_coro *from,
                                                   struct eddy_coro *to)
{
    eddy_coro_switch(from, to);
    if (loop->zombie)
        eddy__loop_reap(loop);
}

void eddy__loop_dispatch(struct eddy_loop *loop, struct eddy_task *task)
{
    eddy__loop_start_slice(loop, task);
    eddy__loop_transfer(loop, loop->sched, task->coro ? task->coro : eddy__task_start(loop, task));
}

/* ---- posts and stop ------------------------------------------------------ */

static void signal_wake(struct eddy_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the loop is woken anyway. */
    while (write(loop->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

EDDY_API int eddy_loop_post(struct eddy_loop *loop, eddy_callback_fn *fn, void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    struct eddy__post *p = eddy__malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->closing) {
        pthread_mutex_unlock(&loop->post_lock);
        eddy__free(p);
        return -ESHUTDOWN;
    }
    bool was_empty = loop->post_head == NULL;
    *loop->post_tail = p;
    loop->post_tail = &p->next;
    /* Signal under the lock: once the callback is visible the loop may run
     * it and be destroyed, and destroy takes this lock before closing the
     * eventfd, so the write cannot race with that close. */
    if (was_empty)
        signal_wake(loop);
    pthread_mutex_unlock(&loop->post_lock);
    return 0;
}

/* Takes every queued callback, oldest first; with closing set, the queue
 * stays closed to new posts. */
static struct eddy__post *take_posts(struct eddy_loop *loop, bool closing)
{
    pthread_mutex_lock(&loop->post_lock);
    if (closing)
        loop->closing = true;
    struct eddy__post *p = loop->post_head;
    loop->post_head = NULL;
    loop->post_tail = &loop->post_head;
    pthread_mutex_unlock(&loop->post_lock);
    return p;
}

static void run_posts(struct eddy_loop *loop)
{
    uint64_t count;
    while (read(loop->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    struct eddy__post *p = take_posts(loop, false);
    while (p) {
        struct eddy__post *next = p->next;
        p->fn(p->arg);
        eddy__free(p);
        p = next;
    }
    eddy__loop_xpost_run(loop);
}

void eddy__loop_xpost(struct eddy_loop *loop, struct eddy__xpost *node)
{
    atomic_fetch_add_explicit(&loop->xpost_writers, 1, memory_order_acquire);
    struct eddy__xpost *head = atomic_load_explicit(&loop->xpost_head, memory_order_relaxed);
    do
        node->next = head;
    while (!atomic_compare_exchange_weak_explicit(&loop->xpost_head, &head, node,
                                                  memory_order_release, memory_order_relaxed));
    /* Only the push onto an empty stack signals: the loop reads the eventfd
     * before it takes the stack, so a later push finds the stack empty. */
    if (!head)
        signal_wake(loop);
    atomic_fetch_sub_explicit(&loop->xpost_writers, 1, memory_order_release);
}

void eddy__loop_xpost_run(struct eddy_loop *loop)
{
    struct eddy__xpost *n = atomic_exchange_explicit(&loop->xpost_head, NULL, memory_order_acquire);
    /* The stack holds the newest first: reverse it into push order. */
    struct eddy__xpost *fifo = NULL;
    while (n) {
        struct eddy__xpost *next = n->next;
        n->next = fifo;
        fifo = n;
        n = next;
    }
    while (fifo) {
        struct eddy__xpost *next = fifo->next;
        fifo->fn(fifo); /* may free fifo or push it again */
        fifo = next;
    }
}

EDDY_API void eddy_loop_stop(struct eddy_loop *loop)
{
    atomic_store(&loop->stop, true);
    /* The owner thread is either inside the loop, which checks the flag
     * before it polls, or outside it: only another thread must wake it. */
    if (!pthread_equal(pthread_self(), loop->owner))
        signal_wake(loop);
}

/* ---- running ------------------------------------------------------------- */

static void on_fd_event(struct eddy_loop *loop, int fd, uint32_t events)
{
    if (fd == loop->wake_fd)
        run_posts(loop);
    else
        eddy__fd_event(loop, fd, events);
}

static bool finished(const struct eddy_loop *loop, enum run_until mode, struct eddy_task *task)
{
    switch (mode) {
    case UNTIL_TASK:
        return task->state == EDDY__TASK_DONE;
    case UNTIL_NO_TASKS:
        return loop->live == 0;
    case UNTIL_NO_WORK:
        break;
    }
    return loop->live == 0 && loop->timers.len == 0;
}

static int run(struct eddy_loop *loop, enum run_until mode, struct eddy_task *task)
{
    if (eddy__loop_tls)
        return -EBUSY;
    if (!pthread_equal(pthread_self(), loop->owner))
        return -EINVAL;
    eddy__loop_tls = loop;
    loop->until = mode == UNTIL_TASK ? task : NULL;
    loop->sched = eddy_coro_current();
    loop->now = eddy_clock_ns();
    while (!atomic_load_explicit(&loop->stop, memory_order_relaxed)) {
        loop->budget = BUDGET;
        struct eddy__list *n;
        while (loop->budget > 0 && (n = eddy__list_pop_front(&loop->runq)) != NULL) {
            loop->budget--;
            eddy__loop_dispatch(loop, eddy__container_of(n, struct eddy_task, run_link));
        }
        if (finished(loop, mode, task))
            break;
        if (atomic_load_explicit(&loop->stop, memory_order_relaxed))
            break;
        int64_t timeout = 0;
        if (!eddy__list_is_empty(&loop->runq)) {
            /* Tasks are runnable: poll only if the last poll is old enough. */
            int64_t now = eddy_clock_ns();
            if (now - loop->polled < POLL_INTERVAL_NS) {
                loop->now = now;
                eddy__timers_fire(loop);
                continue;
            }
        } else {
            /* About to block: the tasks of this iteration ran after loop->now
             * was read, so measure the wait from a fresh read, or the earliest
             * timer would fire late by as long as they ran. */
            timeout = eddy__timers_next_ns(loop);
            if (timeout > 0) {
                int64_t ran = eddy_clock_ns() - loop->now;
                timeout = timeout > ran ? timeout - ran : 0;
            }
        }
        int rc = eddy__poller_wait(&loop->poller, timeout, on_fd_event, loop);
        if (rc < 0) {
            fprintf(stderr, "eddy: epoll wait failed: %s\n", eddy_strerror(rc));
            abort();
        }
        loop->now = eddy_clock_ns();
        loop->polled = loop->now;
        eddy__timers_fire(loop);
    }
    atomic_store(&loop->stop, false);
    loop->until = NULL;
    eddy__loop_tls = NULL;
    return 0;
}

EDDY_API int eddy_loop_run(struct eddy_loop *loop)
{
    return run(loop, UNTIL_NO_WORK, NULL);
}

EDDY_API int eddy_loop_run_until(struct eddy_loop *loop, struct eddy_task *task)
{
    if (!task || task->magic != EDDY__TASK_MAGIC || task->loop != loop)
        return -EINVAL;
    return run(loop, UNTIL_TASK, task);
}

EDDY_API int eddy_run(eddy_task_fn *fn, void *arg, const struct eddy_loop_opts *opts,
                      intptr_t *result)
{
    struct eddy_loop *loop;
    int rc = eddy_loop_create(opts, &loop);
    if (rc < 0)
        return rc;
    struct eddy_task *main_task;
    rc = eddy_loop_spawn(loop, fn, arg, &(struct eddy_task_opts){.name = "main"}, &main_task);
    if (rc < 0) {
        eddy_loop_destroy(loop);
        return rc;
    }
    rc = run(loop, UNTIL_TASK, main_task);
    /* A stop inside eddy_run cannot leave main half-done: cancel it and let
     * it finish, as asyncio.run does with the tasks it leaves behind. */
    while (rc == 0 && main_task->state != EDDY__TASK_DONE) {
        eddy_task_cancel(main_task);
        rc = run(loop, UNTIL_TASK, main_task);
    }
    if (rc == 0 && result)
        *result = main_task->result;
    if (rc == 0)
        eddy__task_free(loop, main_task);
    eddy_loop_destroy(loop);
    return rc;
}

/* ---- task memory ----------------------------------------------------------- */

void eddy__task_free(struct eddy_loop *loop, struct eddy_task *t)
{
    eddy__list_remove(&t->all_link);
    t->magic = 0;
    if (!loop->debug) {
        eddy_obj_slab_free(&loop->task_slab, t);
        return;
    }
    /* Debug: hold freed tasks back so a stale handle still reads as dead. */
    if (!loop->quarantine) {
        loop->quarantine = eddy__calloc(QUARANTINE_LEN, sizeof(*loop->quarantine));
        if (!loop->quarantine) {
            eddy_obj_slab_free(&loop->task_slab, t);
            return;
        }
    }
    if (loop->quarantine_len < QUARANTINE_LEN) {
        loop->quarantine[loop->quarantine_len++] = t;
        return;
    }
    eddy_obj_slab_free(&loop->task_slab, loop->quarantine[loop->quarantine_next]);
    loop->quarantine[loop->quarantine_next] = t;
    loop->quarantine_next = (loop->quarantine_next + 1) % QUARANTINE_LEN;
}
