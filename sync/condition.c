/*
 * sync/condition.c: eddy_cond, a condition variable bound to an eddy_lock
 * (asyncio.Condition).
 *
 * wait releases the lock, parks on the condition's FIFO wait queue, and on a
 * notify (code 0) re-acquires the lock through the lock's own FIFO queue.
 * Errors return without the lock (see eddy/sync.h for why). A notified
 * waiter that then fails to get the lock back (cancelled, timed out) passes
 * the notification to the next waiter, so notify(c, 1) is never absorbed by
 * a task that will not act on it. Waiters cancelled before the notify are
 * skipped by the wait queue and never counted.
 * Rejected: moving notified waiters straight onto the lock's queue (wait
 * morphing) would save one wake-up per notify, but eddy_waitq has no way to
 * move a parked task between queues from outside the reactor.
 */
#include <eddy/sync.h>

EDDY_API void eddy_cond_init(struct eddy_cond *c, struct eddy_lock *lock)
{
    eddy_waitq_init(&c->_waiters);
    c->_lock = lock;
}

EDDY_API int eddy_cond_wait(struct eddy_cond *c, int64_t deadline_ns)
{
    if (!eddy_lock_is_owned(c->_lock))
        return -EPERM;
    eddy_lock_release(c->_lock);
    int rc = eddy_waitq_wait(&c->_waiters, deadline_ns);
    if (rc < 0)
        return rc;
    int lrc = eddy_lock_acquire(c->_lock, deadline_ns);
    if (lrc < 0) {
        eddy_waitq_wake_one(&c->_waiters, 0);
        return lrc;
    }
    return 0;
}

EDDY_API int eddy_cond_wait_for(struct eddy_cond *c, eddy_predicate_fn *pred, void *arg,
                                int64_t deadline_ns)
{
    if (!eddy_lock_is_owned(c->_lock))
        return -EPERM;
    while (!pred(arg)) {
        int rc = eddy_cond_wait(c, deadline_ns);
        if (rc < 0)
            return rc;
    }
    return 0;
}

EDDY_API int eddy_cond_notify(struct eddy_cond *c, int n)
{
    if (!eddy_lock_is_owned(c->_lock))
        return -EPERM;
    int woken = 0;
    while (woken < n && eddy_waitq_wake_one(&c->_waiters, 0))
        woken++;
    return woken;
}

EDDY_API int eddy_cond_notify_all(struct eddy_cond *c)
{
    if (!eddy_lock_is_owned(c->_lock))
        return -EPERM;
    size_t woken = eddy_waitq_wake_all(&c->_waiters, 0);
    return woken > INT32_MAX ? INT32_MAX : (int)woken;
}
