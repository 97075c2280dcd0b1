/*
 * reactor/debug.c: EDDY_DEBUG=1 reports, asyncio's debug mode for eddy.
 *
 *   - a task that ran longer than EDDY_SLOW_MS (default 100 ms) without
 *     suspending (asyncio's "Executing <Task> took 0.15 seconds");
 *   - at loop end, tasks still pending and finished tasks never joined;
 *   - the stack of every task is checked for overflow at each suspension.
 * Costs a clock read per switch, so it is off unless asked for.
 */
#include "reactor/internal.h"

#include <stdio.h>

void eddy__debug_slice_end(struct eddy_loop *loop, struct eddy_task *t)
{
    int64_t ran = eddy_clock_ns() - t->slice_start_ns;
    if (ran > loop->slow_ns)
        fprintf(stderr, "eddy: task '%s' ran %.1f ms without suspending (EDDY_SLOW_MS=%lld)\n",
                eddy_task_name(t), (double)ran / 1e6, (long long)(loop->slow_ns / EDDY_NS_PER_MS));
    if (t->coro)
        eddy_coro_check_stack(t->coro);
}

void eddy__debug_report_end(struct eddy_loop *loop)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &loop->tasks) {
        struct eddy_task *t = eddy__container_of(pos, struct eddy_task, all_link);
        if (t->state != EDDY__TASK_DONE)
            fprintf(stderr, "eddy: task '%s' still pending when the loop ended\n",
                    eddy_task_name(t));
        else if (!(t->flags & EDDY__TASK_DETACHED))
            fprintf(stderr, "eddy: task '%s' finished but was never joined\n", eddy_task_name(t));
    }
}
