/*
 * sync/wait.c: waiting on tasks with a deadline: eddy_wait (asyncio.wait:
 * a set of tasks, return_when), eddy_wait_for (asyncio.wait_for: cancels the
 * task at the deadline) and eddy_shield_join (asyncio.shield around a join:
 * the task keeps running when the wait ends early).
 *
 * eddy_wait makes the caller the joiner of every task of the set that is
 * still running: a finishing task wakes its joiner (reactor/task.c), so one
 * park covers the whole set, with no record or allocation per task. After
 * each wake-up the set is counted again (n checks: the cost is O(n) per
 * finished task, which is fine for the sets asyncio.wait is used with; a
 * large set is as_completed's job). The joiner slots are cleared before
 * returning, so the tasks can be joined afterwards. This reaches into the
 * task structure (reactor/internal.h) because the reactor's public API has
 * no "wake me when any of these ends" call.
 *
 * eddy_wait_for: the deadline is a timeout scope around eddy_task_join, so
 * the join sees the earlier of it and any enclosing scope. After a timeout
 * or a cancellation of the caller, the task is cancelled and joined again:
 * the caller's own cancellation is withdrawn during that second join and
 * restored after it. When an enclosing scope has expired, no join can
 * suspend, and the task is detached instead (it ends on its own,
 * cancelled).
 */
#include <eddy/sync.h>

#include "reactor/internal.h"

/* ---- wait (asyncio.wait) ------------------------------------------------ */

/* Counts the finished tasks; *failed tells whether one of them failed. */
static size_t count_done(struct eddy_task *const *tasks, size_t n, bool *failed)
{
    size_t done = 0;
    *failed = false;
    for (size_t i = 0; i < n; i++) {
        if (tasks[i]->state == EDDY__TASK_DONE) {
            done++;
            if (tasks[i]->result < 0)
                *failed = true;
        }
    }
    return done;
}

static bool satisfied(enum eddy_wait_when when, size_t done, size_t n, bool failed)
{
    if (done == n)
        return true;
    if (when == EDDY_WAIT_FIRST_COMPLETED)
        return done > 0;
    if (when == EDDY_WAIT_FIRST_FAILURE)
        return failed;
    return false;
}

EDDY_API int eddy_wait(struct eddy_task *const *tasks, size_t n, enum eddy_wait_when when,
                       int64_t deadline_ns, bool *done)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || (n > 0 && !tasks))
        return -EINVAL;
    if (when != EDDY_WAIT_ALL_COMPLETED && when != EDDY_WAIT_FIRST_COMPLETED &&
        when != EDDY_WAIT_FIRST_FAILURE)
        return -EINVAL;
    /* Every handle is checked before any joiner slot is taken. */
    for (size_t i = 0; i < n; i++) {
        struct eddy_task *t = tasks[i];
        if (!t || t->magic != EDDY__TASK_MAGIC || t->loop != self->loop ||
            (t->flags & EDDY__TASK_DETACHED))
            return -EINVAL;
        if (t == self)
            return -EDEADLK;
        if (t->joiner && t->joiner != self)
            return -EBUSY;
    }

    int rc = 0;
    bool failed;
    size_t ndone = count_done(tasks, n, &failed);
    while (!satisfied(when, ndone, n, failed)) {
        for (size_t i = 0; i < n; i++)
            if (tasks[i]->state != EDDY__TASK_DONE)
                tasks[i]->joiner = self;
        rc = eddy__task_park(self, deadline_ns);
        ndone = count_done(tasks, n, &failed);
        if (rc != 0)
            break; /* the call's deadline (the count is the answer) or an error */
    }
    for (size_t i = 0; i < n; i++)
        if (tasks[i]->joiner == self)
            tasks[i]->joiner = NULL;
    if (done)
        for (size_t i = 0; i < n; i++)
            done[i] = tasks[i]->state == EDDY__TASK_DONE;
    if (rc < 0)
        return rc;
    return ndone > INT32_MAX ? INT32_MAX : (int)ndone;
}

/* ---- shield_join (asyncio.shield) ----------------------------------------- */

EDDY_API int eddy_shield_join(struct eddy_task *task, int64_t deadline_ns, intptr_t *result)
{
    if (!eddy__task_self() || !task)
        return -EINVAL;
    struct eddy_timeout scope;
    eddy_timeout_enter_at(&scope, deadline_ns);
    int rc = eddy_task_join(task, result);
    eddy_timeout_exit(&scope);
    return rc;
}

/* ---- wait_for (asyncio.wait_for) ----------------------------------------- */

EDDY_API int eddy_wait_for(struct eddy_task *task, int64_t deadline_ns, intptr_t *result)
{
    struct eddy_task *self = eddy_task_current();
    if (!self || !task || task == self)
        return -EINVAL;
    struct eddy_timeout scope;
    eddy_timeout_enter_at(&scope, deadline_ns);
    int rc = eddy_task_join(task, result);
    eddy_timeout_exit(&scope);
    if (rc == 0 || rc == -EINVAL || rc == -EBUSY || rc == -EDEADLK)
        return rc;

    /* Timed out or cancelled: cancel the task and wait for its end. */
    eddy_task_cancel(task);
    bool self_cancelled = false;
    for (;;) {
        int jrc = eddy_task_join(task, NULL);
        if (jrc == 0)
            break;
        if (jrc == -ECANCELED) {
            self_cancelled = true;
            eddy_task_uncancel();
            continue;
        }
        eddy_task_detach(task); /* an expired scope: it finishes on its own */
        rc = jrc;
        break;
    }
    if (self_cancelled) {
        eddy_task_cancel(self);
        rc = -ECANCELED;
    }
    return rc;
}
