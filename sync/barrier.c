/*
 * sync/barrier.c: eddy_barrier, a cyclic barrier of `parties` tasks
 * (asyncio.Barrier).
 *
 * Each waiter keeps a record on its own stack, linked into _nodes in arrival
 * order, and parks on _waiters. The last arrival walks the records, gives
 * them their indices (0, 1, ... in arrival order), marks them released and
 * unlinks them, then wakes every parked waiter. A waiter reads its outcome
 * from its record, not from the wake code: so a waiter that was cancelled
 * after the barrier counted it but before the release (it is runnable, and
 * the wait queue skips it) still returns its index, and every cycle
 * releases exactly `parties` tasks with distinct indices. A waiter that
 * fails while still linked leaves: it unlinks and the count drops.
 * abort and reset mark the records broken (-EPIPE) the same way.
 * Costs: wait is O(1) except for the last arrival, which is O(parties).
 */
#include <eddy/sync.h>

#include "alloc/list.h"

enum outcome { WAITING, RELEASED, BROKEN };

struct node {
    struct eddy__list link;
    int index;
    enum outcome outcome;
};

_Static_assert(sizeof(((struct eddy_barrier *)0)->_nodes) == sizeof(struct eddy__list),
               "barrier node list head");

static struct eddy__list *nodes_of(struct eddy_barrier *b)
{
    return (struct eddy__list *)(void *)b->_nodes;
}

EDDY_API int eddy_barrier_init(struct eddy_barrier *b, unsigned parties)
{
    if (parties == 0)
        return -EINVAL;
    eddy_waitq_init(&b->_waiters);
    eddy__list_init(nodes_of(b));
    b->_parties = parties;
    b->_count = 0;
    b->_broken = false;
    return 0;
}

/* Ends the current cycle: every linked record gets outcome (and an index). */
static void end_cycle(struct eddy_barrier *b, enum outcome outcome, int code)
{
    struct eddy__list *pos, *tmp;
    int index = 0;
    eddy__list_for_each_safe (pos, tmp, nodes_of(b)) {
        struct node *n = eddy__container_of(pos, struct node, link);
        n->outcome = outcome;
        n->index = index++;
        eddy__list_remove(pos);
    }
    b->_count = 0;
    eddy_waitq_wake_all(&b->_waiters, code);
}

EDDY_API int eddy_barrier_wait(struct eddy_barrier *b, int64_t deadline_ns)
{
    if (b->_broken)
        return -EPIPE;
    if (b->_count + 1 == b->_parties) {
        int index = (int)b->_count;
        end_cycle(b, RELEASED, 0);
        return index;
    }
    if (!eddy_task_current())
        return -EINVAL;
    struct node n = {.outcome = WAITING};
    eddy__list_push_back(nodes_of(b), &n.link);
    b->_count++;
    int rc = eddy_waitq_wait(&b->_waiters, deadline_ns);
    switch (n.outcome) {
    case RELEASED:
        return n.index;
    case BROKEN:
        return -EPIPE;
    case WAITING:
        break;
    }
    /* Still counted: leave the cycle. */
    eddy__list_remove(&n.link);
    b->_count--;
    return rc < 0 ? rc : -EPIPE;
}

EDDY_API void eddy_barrier_abort(struct eddy_barrier *b)
{
    b->_broken = true;
    end_cycle(b, BROKEN, -EPIPE);
}

EDDY_API void eddy_barrier_reset(struct eddy_barrier *b)
{
    end_cycle(b, BROKEN, -EPIPE);
    b->_broken = false;
}

EDDY_API bool eddy_barrier_is_broken(const struct eddy_barrier *b)
{
    return b->_broken;
}

EDDY_API unsigned eddy_barrier_waiting(const struct eddy_barrier *b)
{
    return b->_count;
}
