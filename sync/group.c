/*
 * sync/group.c: eddy_group, structured concurrency (asyncio.TaskGroup).
 *
 * The group keeps a record per child, on the `running` list until the child
 * returns and on `done` afterwards. A child's entry calls the user's
 * function, moves its record to `done`, and when it is the first failure
 * records the error and cancels the siblings still running; the last child
 * (or the first failure) wakes the joiner. Join waits until no child runs,
 * then joins every child task (done, so no suspension) and frees records
 * and group.
 *
 * Cancellation of the joiner cancels the children; the joiner withdraws its
 * own cancellation while it waits for them and restores it before returning
 * -ECANCELED. An expired timeout scope cannot be waited out (see gather.c):
 * the joiner then cancels and detaches the running children and marks the
 * group abandoned; each such child frees its own record and the last one
 * frees the group.
 * Costs: a malloc per spawn (the record), O(1) bookkeeping per child.
 */
#include <limits.h>

#include <eddy/sync.h>

#include "alloc/internal.h"
#include "alloc/list.h"

struct gkid {
    struct eddy__list link;
    struct eddy_group *g;
    struct eddy_task *task;
    eddy_task_fn *fn;
    void *arg;
};

struct eddy_group {
    struct eddy__list running;
    struct eddy__list done;
    struct eddy_waitq joiner;
    size_t live;
    int first_error;
    bool abandoned;
};

EDDY_API int eddy_group_create(struct eddy_group **out)
{
    struct eddy_group *g = eddy__malloc(sizeof(*g));
    if (!g)
        return -ENOMEM;
    eddy__list_init(&g->running);
    eddy__list_init(&g->done);
    eddy_waitq_init(&g->joiner);
    g->live = 0;
    g->first_error = 0;
    g->abandoned = false;
    *out = g;
    return 0;
}

static void cancel_running(struct eddy_group *g)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &g->running) {
        struct gkid *k = eddy__container_of(pos, struct gkid, link);
        eddy_task_cancel(k->task);
    }
}

static intptr_t kid_entry(void *arg)
{
    struct gkid *k = arg;
    intptr_t r = k->fn(k->arg);
    struct eddy_group *g = k->g;
    g->live--;
    eddy__list_remove(&k->link);
    if (EDDY_UNLIKELY(g->abandoned)) {
        eddy__free(k);
        if (g->live == 0)
            eddy__free(g);
        return r;
    }
    eddy__list_push_back(&g->done, &k->link);
    if (r < 0 && g->first_error == 0) {
        g->first_error = r < INT_MIN ? INT_MIN : (int)r;
        cancel_running(g);
        eddy_waitq_wake_one(&g->joiner, 0);
    } else if (g->live == 0) {
        eddy_waitq_wake_one(&g->joiner, 0);
    }
    return r;
}

EDDY_API int eddy_group_spawn(struct eddy_group *g, eddy_task_fn *fn, void *arg,
                              const struct eddy_task_opts *opts, struct eddy_task **out)
{
    if (!g || !fn)
        return -EINVAL;
    if (g->first_error < 0 || g->abandoned)
        return -ECANCELED;
    struct gkid *k = eddy__malloc(sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->g = g;
    k->fn = fn;
    k->arg = arg;
    struct eddy_task_opts o = {0};
    if (opts)
        o = *opts;
    o.detached = false;
    int rc = eddy_task_spawn(kid_entry, k, &o, &k->task);
    if (rc < 0) {
        eddy__free(k);
        return rc;
    }
    eddy__list_push_back(&g->running, &k->link);
    g->live++;
    if (out)
        *out = k->task;
    return 0;
}

EDDY_API void eddy_group_cancel(struct eddy_group *g)
{
    cancel_running(g);
}

/* Joins and frees the records of finished children. */
static void reap_done(struct eddy_group *g)
{
    struct eddy__list *pos, *tmp;
    eddy__list_for_each_safe (pos, tmp, &g->done) {
        struct gkid *k = eddy__container_of(pos, struct gkid, link);
        eddy__list_remove(pos);
        eddy_task_join(k->task, NULL);
        eddy__free(k);
    }
}

EDDY_API int eddy_group_join(struct eddy_group *g)
{
    struct eddy_task *self = eddy_task_current();
    if (!self || !g)
        return -EINVAL;
    bool self_cancelled = false;
    while (g->live > 0) {
        int rc = eddy_waitq_wait(&g->joiner, EDDY_DEADLINE_NEVER);
        if (rc == -ECANCELED) {
            if (!self_cancelled)
                cancel_running(g);
            self_cancelled = true;
            eddy_task_uncancel();
        } else if (rc < 0) {
            /* Cannot wait any more: the children finish on their own. */
            g->abandoned = true;
            reap_done(g);
            struct eddy__list *pos;
            eddy__list_for_each (pos, &g->running) {
                struct gkid *k = eddy__container_of(pos, struct gkid, link);
                eddy_task_cancel(k->task);
                eddy_task_detach(k->task);
            }
            if (self_cancelled)
                eddy_task_cancel(self);
            return rc;
        }
    }
    reap_done(g);
    int first_error = g->first_error;
    eddy__free(g);
    if (self_cancelled) {
        eddy_task_cancel(self);
        return -ECANCELED;
    }
    return first_error;
}
