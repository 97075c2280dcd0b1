/*
 * reactor/timer.c: callback timers on the loop's 4-ary heap (alloc/heap.h).
 *
 * struct eddy_timer begins with the fields of a heap node, so the heap links
 * the caller's timer directly: no allocation per timer, and stop is O(log n)
 * through the slot index the heap keeps in the timer. Equal deadlines fire
 * in start order (the heap's sequence number), as libuv's timers do.
 * Parked tasks use the same timers for their deadlines.
 *
 * Timers fire after each poll, against the clock value read once for that
 * iteration; a callback that starts a timer already due runs it in the same
 * pass.
 */
#include "reactor/internal.h"

#include <errno.h>

_Static_assert(offsetof(struct eddy_timer, deadline_ns) == offsetof(struct eddy__heap_node, key),
               "timer key");
_Static_assert(offsetof(struct eddy_timer, _seq) == offsetof(struct eddy__heap_node, seq),
               "timer seq");
_Static_assert(offsetof(struct eddy_timer, _slot) == offsetof(struct eddy__heap_node, slot),
               "timer slot");

static struct eddy__heap_node *node_of(struct eddy_timer *t)
{
    return (struct eddy__heap_node *)(void *)t;
}

EDDY_API int eddy_timer_start(struct eddy_timer *timer, int64_t deadline_ns, eddy_callback_fn *fn,
                              void *arg)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (!loop || !fn)
        return -EINVAL;
    if (timer->_slot)
        eddy__heap_remove(&loop->timers, node_of(timer));
    timer->_fn = fn;
    timer->_arg = arg;
    return eddy__heap_push(&loop->timers, node_of(timer), deadline_ns);
}

EDDY_API void eddy_timer_stop(struct eddy_timer *timer)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (timer->_slot && loop)
        eddy__heap_remove(&loop->timers, node_of(timer));
}

EDDY_API bool eddy_timer_is_active(const struct eddy_timer *timer)
{
    return timer->_slot != 0;
}

void eddy__timers_fire(struct eddy_loop *loop)
{
    for (;;) {
        struct eddy__heap_node *top = eddy__heap_peek(&loop->timers);
        if (!top || top->key > loop->now)
            return;
        eddy__heap_remove(&loop->timers, top);
        struct eddy_timer *t = (struct eddy_timer *)(void *)top;
        t->_fn(t->_arg);
    }
}

int64_t eddy__timers_next_ns(const struct eddy_loop *loop)
{
    const struct eddy__heap_node *top = eddy__heap_peek(&loop->timers);
    if (!top)
        return -1;
    return top->key > loop->now ? top->key - loop->now : 0;
}
