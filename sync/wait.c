/*
 * sync/wait.c: eddy_wait_for, a join with a deadline that cancels the task
 * when the deadline passes first (asyncio.wait_for).
 *
 * The deadline is a timeout scope around eddy_task_join, so the join sees
 * the earlier of it and any enclosing scope. After a timeout or a
 * cancellation of the caller, the task is cancelled and joined again: the
 * caller's own cancellation is withdrawn during that second join and
 * restored after it. When an enclosing scope has expired, no join can
 * suspend, and the task is detached instead (it ends on its own,
 * cancelled).
 */
#include <eddy/sync.h>

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
