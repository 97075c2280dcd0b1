/*
 * reactor/waitq.c: FIFO wait queues of parked tasks (eddy_waitq), the base
 * of the coordination primitives in sync/.
 *
 * The queue links tasks through their wait_link. A waker unlinks the task it
 * hands a code to, so two wake_one calls wake two tasks. A task that was
 * woken by cancellation or a deadline first (it is runnable, not parked,
 * but still linked until it runs) is skipped and unlinked by wake_one: it
 * will return -ECANCELED / -ETIMEDOUT and must not be handed anything.
 * Costs: wait is a list push and a park; wake_one an unlink and a run-queue
 * push.
 */
#include "reactor/internal.h"

#include <errno.h>

_Static_assert(sizeof(struct eddy_waitq) == sizeof(struct eddy__list), "waitq is a list head");

static struct eddy__list *head_of(struct eddy_waitq *q)
{
    return (struct eddy__list *)(void *)q;
}

EDDY_API void eddy_waitq_init(struct eddy_waitq *q)
{
    eddy__list_init(head_of(q));
}

EDDY_API bool eddy_waitq_is_empty(const struct eddy_waitq *q)
{
    return eddy__list_is_empty((const struct eddy__list *)(const void *)q);
}

EDDY_API int eddy_waitq_wait(struct eddy_waitq *q, int64_t deadline_ns)
{
    struct eddy_task *self = eddy__task_self();
    if (!self)
        return -EINVAL;
    eddy__list_push_back(head_of(q), &self->wait_link);
    int rc = eddy__task_park(self, deadline_ns);
    eddy__list_remove(&self->wait_link);
    return rc == EDDY__WAKE_DEADLINE ? -ETIMEDOUT : rc;
}

EDDY_API bool eddy_waitq_wake_one(struct eddy_waitq *q, int code)
{
    struct eddy__list *n;
    while ((n = eddy__list_pop_front(head_of(q))) != NULL) {
        struct eddy_task *t = eddy__container_of(n, struct eddy_task, wait_link);
        if (t->state == EDDY__TASK_PARKED) {
            eddy__task_wake(t, code);
            return true;
        }
    }
    return false;
}

EDDY_API size_t eddy_waitq_wake_all(struct eddy_waitq *q, int code)
{
    size_t woken = 0;
    while (eddy_waitq_wake_one(q, code))
        woken++;
    return woken;
}
