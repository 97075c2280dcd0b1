/*
 * sync/future.c: eddy_future, a one-shot result many tasks can await
 * (asyncio.Future).
 *
 * States: pending, then exactly one of result / error / cancelled. The
 * completing call stores the outcome, then wakes every parked waiter with
 * code 0; a woken waiter reads the outcome from the future, so the future
 * must outlive its waiters. Completion does not suspend and needs no task,
 * so loop callbacks (eddy_loop_post, timers) may complete futures.
 * Costs: completion is one run-queue push per waiter; waiting on a done
 * future is a load.
 */
#include <eddy/sync.h>

enum { PENDING, RESULT, ERROR, CANCELLED };

EDDY_API void eddy_future_init(struct eddy_future *f)
{
    eddy_waitq_init(&f->_waiters);
    f->_value = 0;
    f->_state = PENDING;
}

static int complete(struct eddy_future *f, int state, intptr_t value)
{
    if (f->_state != PENDING)
        return -EALREADY;
    f->_state = state;
    f->_value = value;
    eddy_waitq_wake_all(&f->_waiters, 0);
    return 0;
}

EDDY_API int eddy_future_set_result(struct eddy_future *f, intptr_t value)
{
    return complete(f, RESULT, value);
}

EDDY_API int eddy_future_set_error(struct eddy_future *f, int error)
{
    if (error >= 0)
        return -EINVAL;
    return complete(f, ERROR, error);
}

EDDY_API int eddy_future_cancel(struct eddy_future *f)
{
    return complete(f, CANCELLED, -ECANCELED);
}

EDDY_API int eddy_future_result(const struct eddy_future *f, intptr_t *result)
{
    switch (f->_state) {
    case RESULT:
        if (result)
            *result = f->_value;
        return 0;
    case ERROR:
    case CANCELLED:
        return (int)f->_value;
    default:
        return -EAGAIN;
    }
}

EDDY_API int eddy_future_wait(struct eddy_future *f, intptr_t *result, int64_t deadline_ns)
{
    if (f->_state == PENDING) {
        int rc = eddy_waitq_wait(&f->_waiters, deadline_ns);
        if (rc < 0)
            return rc;
    }
    return eddy_future_result(f, result);
}

EDDY_API bool eddy_future_is_done(const struct eddy_future *f)
{
    return f->_state != PENDING;
}

EDDY_API bool eddy_future_is_cancelled(const struct eddy_future *f)
{
    return f->_state == CANCELLED;
}
