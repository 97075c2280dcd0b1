/*
 * sync/semaphore.c: eddy_sem, counting and bounded semaphores
 * (asyncio.Semaphore, asyncio.BoundedSemaphore).
 *
 * Invariant: _value > 0 only while no task is parked on _waiters, because a
 * release with a parked waiter hands its unit to that waiter (code 0)
 * instead of incrementing _value. So acquire's fast path never overtakes a
 * waiter, and waiters are served strictly FIFO.
 * Costs: acquire and release without waiters are a compare and an add.
 */
#include <eddy/sync.h>

EDDY_API int eddy_sem_init(struct eddy_sem *s, int64_t value)
{
    if (value < 0)
        return -EINVAL;
    eddy_waitq_init(&s->_waiters);
    s->_value = value;
    s->_bound = -1;
    return 0;
}

EDDY_API int eddy_sem_init_bounded(struct eddy_sem *s, int64_t value)
{
    int rc = eddy_sem_init(s, value);
    if (rc == 0)
        s->_bound = value;
    return rc;
}

EDDY_API int eddy_sem_acquire(struct eddy_sem *s, int64_t deadline_ns)
{
    if (s->_value > 0) {
        s->_value--;
        return 0;
    }
    /* 0 from the wait means a release handed this task its unit. */
    return eddy_waitq_wait(&s->_waiters, deadline_ns);
}

EDDY_API int eddy_sem_try_acquire(struct eddy_sem *s)
{
    if (s->_value <= 0)
        return -EAGAIN;
    s->_value--;
    return 0;
}

EDDY_API int eddy_sem_release(struct eddy_sem *s)
{
    if (eddy_waitq_wake_one(&s->_waiters, 0))
        return 0;
    if (s->_bound >= 0 && s->_value >= s->_bound)
        return -EOVERFLOW;
    s->_value++;
    return 0;
}

EDDY_API int64_t eddy_sem_value(const struct eddy_sem *s)
{
    return s->_value;
}
