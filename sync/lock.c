/*
 * sync/lock.c: eddy_lock, a task-owned mutual-exclusion lock (asyncio.Lock).
 *
 * Invariants: _locked is true while a task owns the lock or while it is
 * being handed to a woken waiter; in the second case _owner is NULL until
 * the waiter runs and records itself. Parked waiters exist only while
 * _locked is true, because release hands the lock over instead of clearing
 * _locked whenever eddy_waitq_wake_one finds a parked waiter.
 * A waiter handed the lock and cancelled before it runs still returns 0
 * (eddy_waitq keeps the waker's code), so a hand-off is never lost; one
 * cancelled before the hand-off is skipped by eddy_waitq_wake_one.
 * Costs: an uncontended acquire or release is a few loads and stores plus
 * one eddy_task_current call; a contended release is one run-queue push.
 */
#include <eddy/sync.h>

EDDY_API void eddy_lock_init(struct eddy_lock *l)
{
    eddy_waitq_init(&l->_waiters);
    l->_owner = NULL;
    l->_locked = false;
}

EDDY_API int eddy_lock_acquire(struct eddy_lock *l, int64_t deadline_ns)
{
    struct eddy_task *self = eddy_task_current();
    if (!self)
        return -EINVAL;
    if (!l->_locked) {
        l->_locked = true;
        l->_owner = self;
        return 0;
    }
    if (l->_owner == self)
        return -EDEADLK;
    int rc = eddy_waitq_wait(&l->_waiters, deadline_ns);
    if (rc == 0)
        l->_owner = self; /* handed over by release */
    return rc;
}

EDDY_API int eddy_lock_try_acquire(struct eddy_lock *l)
{
    struct eddy_task *self = eddy_task_current();
    if (!self)
        return -EINVAL;
    if (l->_locked)
        return -EBUSY;
    l->_locked = true;
    l->_owner = self;
    return 0;
}

EDDY_API int eddy_lock_release(struct eddy_lock *l)
{
    struct eddy_task *self = eddy_task_current();
    if (!self || !l->_locked || l->_owner != self)
        return -EPERM;
    l->_owner = NULL;
    if (!eddy_waitq_wake_one(&l->_waiters, 0))
        l->_locked = false;
    return 0;
}

EDDY_API bool eddy_lock_is_locked(const struct eddy_lock *l)
{
    return l->_locked;
}

EDDY_API bool eddy_lock_is_owned(const struct eddy_lock *l)
{
    struct eddy_task *self = eddy_task_current();
    return self && l->_locked && l->_owner == self;
}
