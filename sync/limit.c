/*
 * sync/limit.c: eddy_gather_limited, gather with at most `limit` calls
 * running at once (the guides' Semaphore(k) idiom, without a task per call).
 *
 * min(limit, n) detached worker tasks share one state that lives on the
 * caller's stack. Each worker takes the next call index, runs the call,
 * stores its result and repeats until no call is left or the state says
 * stop; so calls start in call order, at most `limit` run at once, and n
 * calls cost `limit` stacks. A worker links a record (on its own stack) into
 * the state while it runs, so that a stop can cancel the running calls; the
 * last worker to leave wakes the caller.
 *
 * Because the state is on the caller's stack, the caller never returns
 * before every worker has left: after its own cancellation, an expired
 * timeout scope or a failed spawn, it stops the workers and waits for them
 * inside a shield (eddy_shield_enter), where its wait cannot fail.
 * Costs: min(limit, n) spawns and no allocation; O(1) per call.
 */
#include <limits.h>

#include <eddy/sync.h>

#include "alloc/list.h"

struct lstate {
    const struct eddy_call *calls;
    intptr_t *results;
    size_t n;
    size_t next;               /* the next call to start */
    size_t workers;            /* spawned and not yet gone */
    struct eddy__list running; /* records of the workers that have started */
    struct eddy_waitq waiter;
    int first_error;
    bool fail_fast;
    bool stop; /* no new call starts */
};

struct lworker {
    struct eddy__list link;
    struct eddy_task *task;
};

/* Stops new calls and cancels the running ones (except the caller's own). */
static void stop_all(struct lstate *st)
{
    st->stop = true;
    struct eddy_task *self = eddy_task_current();
    struct eddy__list *pos;
    eddy__list_for_each (pos, &st->running) {
        struct lworker *w = eddy__container_of(pos, struct lworker, link);
        if (w->task != self)
            eddy_task_cancel(w->task);
    }
}

static intptr_t worker(void *arg)
{
    struct lstate *st = arg;
    struct lworker me = {.task = eddy_task_current()};
    eddy__list_push_back(&st->running, &me.link);
    while (!st->stop && st->next < st->n && !eddy_task_is_cancelled(me.task)) {
        size_t i = st->next++;
        intptr_t r = st->calls[i].fn(st->calls[i].arg);
        st->results[i] = r;
        if (r < 0 && st->fail_fast && st->first_error == 0) {
            st->first_error = r < INT_MIN ? INT_MIN : (int)r;
            stop_all(st);
        }
    }
    eddy__list_remove(&me.link);
    /* The last access to st: the caller cannot run before this task
     * switches away, and it never touches st again. */
    if (--st->workers == 0)
        eddy_waitq_wake_one(&st->waiter, 0);
    return 0;
}

EDDY_API int eddy_gather_limited(const struct eddy_call *calls, size_t n, size_t limit,
                                 intptr_t *results, enum eddy_gather_mode mode)
{
    if (n == 0)
        return 0;
    if (!eddy_task_current() || !calls || !results || limit == 0 ||
        (mode != EDDY_GATHER_ALL && mode != EDDY_GATHER_FAIL_FAST))
        return -EINVAL;
    struct lstate st = {
        .calls = calls,
        .results = results,
        .n = n,
        .fail_fast = mode == EDDY_GATHER_FAIL_FAST,
    };
    eddy__list_init(&st.running);
    eddy_waitq_init(&st.waiter);

    int rc = 0;
    size_t k = limit < n ? limit : n;
    const struct eddy_task_opts opts = {.detached = true};
    for (size_t i = 0; i < k; i++) {
        rc = eddy_task_spawn(worker, &st, &opts, NULL);
        if (rc < 0) {
            st.stop = true; /* none has run yet: no call starts */
            break;
        }
        st.workers++;
    }
    while (rc == 0 && st.workers > 0)
        rc = eddy_waitq_wait(&st.waiter, EDDY_DEADLINE_NEVER);
    if (st.workers > 0) {
        /* Cancelled, timed out, or a spawn failed: stop the workers, and
         * wait for them, which a shield allows whatever happened. Under
         * the shield, a wait without a deadline ends only by the wake. */
        stop_all(&st);
        struct eddy_shield shield;
        eddy_shield_enter(&shield);
        while (st.workers > 0)
            eddy_waitq_wait(&st.waiter, EDDY_DEADLINE_NEVER);
        eddy_shield_exit(&shield);
    }
    for (size_t i = st.next; i < n; i++)
        results[i] = -ECANCELED;
    return rc < 0 ? rc : st.first_error;
}
