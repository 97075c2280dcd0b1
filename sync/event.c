/*
 * sync/event.c: eddy_event, a flag tasks wait on (asyncio.Event).
 *
 * set wakes every parked waiter with code 0; a waiter woken this way returns
 * 0 even if the flag is cleared before it runs, as in asyncio. Waiters that
 * were cancelled or timed out before the set are skipped by the wait queue.
 * Costs: set is one run-queue push per waiter; wait on a set flag is a load.
 */
#include <eddy/sync.h>

EDDY_API void eddy_event_init(struct eddy_event *e)
{
    eddy_waitq_init(&e->_waiters);
    e->_set = false;
}

EDDY_API void eddy_event_set(struct eddy_event *e)
{
    e->_set = true;
    eddy_waitq_wake_all(&e->_waiters, 0);
}

EDDY_API void eddy_event_clear(struct eddy_event *e)
{
    e->_set = false;
}

EDDY_API bool eddy_event_is_set(const struct eddy_event *e)
{
    return e->_set;
}

EDDY_API int eddy_event_wait(struct eddy_event *e, int64_t deadline_ns)
{
    if (e->_set)
        return 0;
    return eddy_waitq_wait(&e->_waiters, deadline_ns);
}
