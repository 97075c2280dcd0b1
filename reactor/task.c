/*
 * reactor/task.c: tasks (spawn, join, cancel, detach, yield, sleep), the
 * park/wake protocol and timeout scopes.
 *
 * A task is a slab object plus a coroutine whose stack comes from the
 * loop's stack pool. Its coroutine (and stack) is freed as soon as it
 * finishes; the small task object lives on until it is joined (or at once
 * if detached), so a finished task costs about 200 bytes, not a stack.
 *
 * Finished coroutines of default-size stacks are cached by the loop and
 * reset for the next task. A spawn that finds none cached does not create
 * one: it reserves a stack in the pool (eddy__stack_pool_reserve), so that
 * -ENOMEM is still reported by spawn, and the coroutine is made when the
 * task first runs (from the cache, if a task has finished meanwhile), where
 * it cannot fail. Tasks spawned together that each finish before the next
 * one starts thus run on the same few recycled coroutines: a gather of
 * 100,000 trivial tasks touches two stacks rather than 100,000 fresh pages
 * (a first-touch page fault costs 2.3 us on the development VM; spawning
 * them all with their stacks cost 4.4 us of CPU per task, 0.07 us without).
 * The loop's first coroutine is the exception, created at spawn, where the
 * thread's one-time coroutine set-up (the overflow handler's alternate
 * stack) can still fail and be reported.
 *
 * Cancellation is a sticky flag: eddy__task_park refuses to park a task
 * whose flag is set, and cancelling a parked task wakes it, so the current
 * and every later blocking call return -ECANCELED until uncancel.
 * Deadlines: each park arms the task's own timer for the earlier of the
 * call's deadline and the innermost timeout scope's; which one fired
 * decides between EDDY__WAKE_DEADLINE (sleep's success) and -ETIMEDOUT.
 * The timer is lazy: a wake leaves it armed, and a later park keeps it when
 * it fires no later than that park's deadline; firing early, it re-arms for
 * the deadline of the park in force (or does nothing when the task is not
 * parked). A connection that parks with a 60 s idle timeout per request
 * thus touches the heap once a minute instead of twice per request. The
 * timer is stopped when the task ends.
 *
 * Shields sit in the same chain of scopes as timeouts (an embedded
 * eddy_timeout marked _shield), so the two nest and are checked for exit
 * order by one rule. Entering one sets the task's deadline to NEVER and
 * moves a pending cancellation aside (EDDY__TASK_CANCEL_HELD); while any
 * shield is open, eddy_task_cancel only sets the held flag and does not wake
 * the task. Leaving one restores the outer deadline, and leaving the
 * outermost turns a held cancellation back into a live one. Blocking calls
 * read only the flag and the deadline, so they cost nothing more.
 *
 * Costs: spawn is a slab alloc, a cached coroutine or a stack reservation,
 * and a queue push; a park is at most one heap insert and one switch.
 */
#include "reactor/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_live(const struct eddy_task *t)
{
    return t && t->magic == EDDY__TASK_MAGIC;
}

/* ---- park / wake --------------------------------------------------------- */

void eddy__task_wake(struct eddy_task *t, int rc)
{
    if (t->state != EDDY__TASK_PARKED)
        return;
    t->wake_rc = rc;
    t->state = EDDY__TASK_RUNNABLE;
    eddy__list_push_back(&t->loop->runq, &t->run_link);
}

static void on_park_deadline(void *arg)
{
    struct eddy_task *t = arg;
    /* Left armed by an earlier park: no park in force, or a later one. */
    if (t->state != EDDY__TASK_PARKED || t->park_deadline == EDDY_DEADLINE_NEVER)
        return;
    if (t->park_deadline > t->loop->now) {
        /* The timer just left the heap, so this push needs no memory. */
        int rc = eddy_timer_start(&t->timer, t->park_deadline, on_park_deadline, t);
        assert(rc == 0);
        (void)rc;
        return;
    }
    /* The scope wins a tie: its deadline is the caller's hard limit. */
    eddy__task_wake(t, t->park_deadline >= t->deadline ? -ETIMEDOUT : EDDY__WAKE_DEADLINE);
}

int eddy__task_park(struct eddy_task *self, int64_t deadline)
{
    struct eddy_loop *loop = self->loop;
    if (self->flags & EDDY__TASK_CANCEL)
        return -ECANCELED;
    int64_t effective = deadline < self->deadline ? deadline : self->deadline;
    if (effective != EDDY_DEADLINE_NEVER) {
        if (effective <= loop->now)
            return effective >= self->deadline ? -ETIMEDOUT : EDDY__WAKE_DEADLINE;
        /* An armed timer due no later than effective stays (lazy timer). */
        if (!self->timer._slot || self->timer.deadline_ns > effective) {
            int rc = eddy_timer_start(&self->timer, effective, on_park_deadline, self);
            if (rc < 0)
                return rc;
        }
    }
    self->park_deadline = effective;
    self->state = EDDY__TASK_PARKED;
    self->wake_rc = 0;
    eddy__loop_switch_from(loop, self);
    return self->wake_rc;
}

/* ---- spawn ---------------------------------------------------------------- */

/* Moves the loop's running name "task-<id>" on to the next id: a decimal
 * increment, which usually touches one digit. Unnamed tasks copy the name,
 * so naming them costs a copy rather than a number formatting. */
static void advance_name(struct eddy_loop *loop)
{
    char *first = loop->next_name + 5; /* after "task-" */
    char *d = loop->next_name + loop->next_name_len;
    while (d > first && d[-1] == '9')
        *--d = '0';
    if (d > first) {
        d[-1]++;
    } else if (loop->next_name_len + 1 < sizeof(loop->next_name)) {
        first[0] = '1'; /* all nines: one digit more */
        loop->next_name[loop->next_name_len++] = '0';
        loop->next_name[loop->next_name_len] = 0;
    }
}

static void task_entry(void *arg)
{
    struct eddy_task *t = arg;
    struct eddy_loop *loop = t->loop;
    if (loop->zombie)
        eddy__loop_reap(loop);
    t->result = t->fn(t->arg);

    if (t->timer._slot)
        eddy_timer_stop(&t->timer); /* left armed by the last park */
    t->state = EDDY__TASK_DONE;
    loop->live--;
    if (t->joiner)
        eddy__task_wake(t->joiner, 0);
    if (EDDY_UNLIKELY(loop->debug))
        eddy__debug_slice_end(loop, t);
    loop->zombie = t;
    struct eddy_coro *to = eddy__loop_next(loop);
    /* Leave through the scheduler's one switch site, like every park. */
    eddy_coro_finish(t->coro);
    eddy__loop_transfer(loop, t->coro, to);
    __builtin_unreachable();
}

/* A new coroutine for t, or one of the loop's finished ones reset for it. */
static inline int coro_for(struct eddy_loop *loop, struct eddy_task *t, bool cached)
{
    struct eddy_coro_opts copts = {
        .stack_size_bytes = t->stack_size_bytes,
        .name = t->name,
        .save_fpu = (t->flags & EDDY__TASK_SAVE_FPU) != 0,
    };
    int rc;
    if (cached) {
        t->coro = loop->coro_cache[--loop->coro_cache_len];
        rc = eddy_coro_reset(t->coro, task_entry, t, &copts);
    } else {
        rc = eddy_coro_create(loop->stacks, task_entry, t, &copts, &t->coro);
    }
    if (rc < 0) {
        t->coro = NULL;
        return rc;
    }
    eddy_coro_set_data(t->coro, t);
    return 0;
}

/* Whether a task of this stack size can have one of the loop's cached
 * coroutines. */
static bool cache_fits(const struct eddy_loop *loop, uint32_t stack_size_bytes)
{
    return loop->coro_cache_len > 0 && stack_size_bytes <= EDDY_STACK_DEFAULT_BYTES;
}

/* The stack was reserved and the thread set up by the loop's first spawn:
 * only corrupted state gets here. */
static __attribute__((noinline, cold, noreturn)) void start_failed(const struct eddy_task *t,
                                                                   int rc)
{
    fprintf(stderr, "eddy: task %s could not start: %s\n", t->name, eddy_strerror(rc));
    abort();
}

struct eddy_coro *eddy__task_start(struct eddy_loop *loop, struct eddy_task *t)
{
    eddy__stack_pool_unreserve(loop->stacks, t->stack_class);
    t->stack_class = EDDY__TASK_NO_STACK_CLASS;
    int rc = coro_for(loop, t, cache_fits(loop, t->stack_size_bytes));
    if (EDDY_UNLIKELY(rc < 0))
        start_failed(t, rc);
    return t->coro;
}

EDDY_API int eddy_loop_spawn(struct eddy_loop *loop, eddy_task_fn *fn, void *arg,
                             const struct eddy_task_opts *opts, struct eddy_task **out)
{
    if (!loop || !fn || (!out && !(opts && opts->detached)))
        return -EINVAL;
    if (opts && opts->stack_size_bytes > EDDY_STACK_MAX_BYTES)
        return -EINVAL;
    /* Cheap path first: spawning from inside the running loop. */
    if (eddy__loop_tls != loop && !pthread_equal(pthread_self(), loop->owner))
        return -EINVAL;
    struct eddy_task *t = eddy_obj_slab_alloc(&loop->task_slab);
    if (!t)
        return -ENOMEM;
    t->id = ++loop->next_id;
    t->name[0] = 0;
    if (opts && opts->name)
        strncpy(t->name, opts->name, sizeof(t->name) - 1)[sizeof(t->name) - 1] = 0;
    else
        memcpy(t->name, loop->next_name, sizeof(t->name));
    advance_name(loop);
    t->flags = opts && opts->detached ? EDDY__TASK_DETACHED : 0;
    if (opts && opts->save_fpu)
        t->flags |= EDDY__TASK_SAVE_FPU;
    t->stack_size_bytes = opts ? (uint32_t)opts->stack_size_bytes : 0;
    t->coro = NULL;
    int rc;
    if (cache_fits(loop, t->stack_size_bytes) || EDDY_UNLIKELY(!loop->coro_ready)) {
        rc = coro_for(loop, t, cache_fits(loop, t->stack_size_bytes));
        t->stack_class = EDDY__TASK_NO_STACK_CLASS;
        loop->coro_ready |= rc == 0;
    } else {
        rc = eddy__stack_pool_reserve(loop->stacks, t->stack_size_bytes);
        t->stack_class = (int8_t)rc;
    }
    if (rc < 0) {
        eddy_obj_slab_free(&loop->task_slab, t);
        return rc;
    }
    t->magic = EDDY__TASK_MAGIC;
    t->wake_rc = 0;
    t->shields = 0;
    t->loop = loop;
    t->fn = fn;
    t->arg = arg;
    t->result = 0;
    eddy__list_init(&t->wait_link);
    t->wait_events = 0;
    t->timer._slot = 0;
    t->deadline = EDDY_DEADLINE_NEVER;
    t->park_deadline = EDDY_DEADLINE_NEVER;
    t->scope = NULL;
    t->joiner = NULL;
    t->slice_start_ns = 0;
    eddy__list_push_back(&loop->tasks, &t->all_link);
    loop->live++;
    t->state = EDDY__TASK_RUNNABLE;
    eddy__list_push_back(&loop->runq, &t->run_link);
    if (out)
        *out = (t->flags & EDDY__TASK_DETACHED) ? NULL : t;
    return 0;
}

EDDY_API int eddy_task_spawn(eddy_task_fn *fn, void *arg, const struct eddy_task_opts *opts,
                             struct eddy_task **out)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (!loop)
        return -EINVAL;
    return eddy_loop_spawn(loop, fn, arg, opts, out);
}

/* ---- join / cancel / detach ---------------------------------------------- */

EDDY_API int eddy_task_join(struct eddy_task *t, intptr_t *result)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !is_live(t) || t->loop != self->loop || (t->flags & EDDY__TASK_DETACHED))
        return -EINVAL;
    if (t == self)
        return -EDEADLK;
    /* Also when t is done: its joiner may be woken and not have run yet. */
    if (t->joiner && t->joiner != self)
        return -EBUSY;
    if (t->state != EDDY__TASK_DONE) {
        t->joiner = self;
        int rc = eddy__task_park(self, EDDY_DEADLINE_NEVER);
        t->joiner = NULL;
        if (rc < 0)
            return rc;
    }
    if (result)
        *result = t->result;
    eddy__task_free(self->loop, t);
    return 0;
}

EDDY_API int eddy_task_cancel(struct eddy_task *t)
{
    if (!is_live(t))
        return -EINVAL;
    if (t->state == EDDY__TASK_DONE)
        return -EALREADY;
    if (t->shields > 0) {
        /* Its blocking calls must not see it before the shield ends. */
        t->flags |= EDDY__TASK_CANCEL_HELD;
        return 0;
    }
    t->flags |= EDDY__TASK_CANCEL;
    eddy__task_wake(t, -ECANCELED);
    return 0;
}

EDDY_API int eddy_task_uncancel(void)
{
    struct eddy_task *self = eddy__task_self();
    if (!self)
        return -EINVAL;
    uint8_t both = EDDY__TASK_CANCEL | EDDY__TASK_CANCEL_HELD;
    bool was = (self->flags & both) != 0;
    self->flags &= (uint8_t)~both;
    return was ? 1 : 0;
}

EDDY_API int eddy_task_detach(struct eddy_task *t)
{
    if (!is_live(t) || (t->flags & EDDY__TASK_DETACHED) || t->joiner)
        return -EINVAL;
    if (t == t->loop->until)
        return -EBUSY; /* eddy_loop_run_until still needs the handle */
    if (t->state == EDDY__TASK_DONE) {
        eddy__task_free(t->loop, t);
        return 0;
    }
    t->flags |= EDDY__TASK_DETACHED;
    return 0;
}

/* ---- yield and sleep ------------------------------------------------------ */

static int pending_error(const struct eddy_task *self)
{
    if (self->flags & EDDY__TASK_CANCEL)
        return -ECANCELED;
    if (self->deadline <= self->loop->now)
        return -ETIMEDOUT;
    return 0;
}

EDDY_API int eddy_task_yield(void)
{
    struct eddy_task *self = eddy__task_self();
    if (!self)
        return -EINVAL;
    int rc = pending_error(self);
    if (rc < 0)
        return rc;
    self->state = EDDY__TASK_RUNNABLE;
    eddy__list_push_back(&self->loop->runq, &self->run_link);
    eddy__loop_switch_from(self->loop, self);
    return pending_error(self);
}

EDDY_API int eddy_sleep_until(int64_t deadline_ns)
{
    struct eddy_task *self = eddy__task_self();
    if (!self)
        return -EINVAL;
    if (deadline_ns <= self->loop->now)
        return eddy_task_yield();
    int rc = eddy__task_park(self, deadline_ns);
    return rc == EDDY__WAKE_DEADLINE ? 0 : rc;
}

EDDY_API int eddy_sleep_ns(int64_t ns)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (!loop || ns < 0)
        return -EINVAL;
    return eddy_sleep_until(ns > EDDY_DEADLINE_NEVER - loop->now ? EDDY_DEADLINE_NEVER
                                                                 : loop->now + ns);
}

EDDY_API int eddy_sleep_ms(int64_t ms)
{
    if (ms < 0)
        return -EINVAL;
    return eddy_sleep_ns(ms > INT64_MAX / EDDY_NS_PER_MS ? INT64_MAX : ms * EDDY_NS_PER_MS);
}

/* ---- queries -------------------------------------------------------------- */

EDDY_API struct eddy_task *eddy_task_current(void)
{
    return eddy__task_self();
}

EDDY_API bool eddy_task_is_done(const struct eddy_task *t)
{
    return is_live(t) && t->state == EDDY__TASK_DONE;
}

EDDY_API bool eddy_task_is_cancelled(const struct eddy_task *t)
{
    return is_live(t) && (t->flags & (EDDY__TASK_CANCEL | EDDY__TASK_CANCEL_HELD));
}

EDDY_API int eddy_task_result(const struct eddy_task *t, intptr_t *result)
{
    if (!is_live(t))
        return -EINVAL;
    if (t->state != EDDY__TASK_DONE)
        return -EAGAIN;
    if (result)
        *result = t->result;
    return 0;
}

EDDY_API const char *eddy_task_name(const struct eddy_task *t)
{
    return is_live(t) ? t->name : "(not a task)";
}

/* ---- timeout scopes ------------------------------------------------------- */

EDDY_API int eddy_timeout_enter_at(struct eddy_timeout *scope, int64_t deadline_ns)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !scope)
        return -EINVAL;
    scope->deadline_ns = deadline_ns;
    scope->_outer_deadline = self->deadline;
    scope->_outer = self->scope;
    scope->_task = self;
    scope->_shield = false;
    self->scope = scope;
    if (deadline_ns < self->deadline)
        self->deadline = deadline_ns;
    return 0;
}

EDDY_API int eddy_timeout_enter(struct eddy_timeout *scope, int64_t timeout_ns)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (!loop || timeout_ns < 0)
        return -EINVAL;
    int64_t deadline =
        timeout_ns > EDDY_DEADLINE_NEVER - loop->now ? EDDY_DEADLINE_NEVER : loop->now + timeout_ns;
    return eddy_timeout_enter_at(scope, deadline);
}

EDDY_API int eddy_timeout_exit(struct eddy_timeout *scope)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !scope || self->scope != scope || scope->_task != self || scope->_shield)
        return -EINVAL;
    self->scope = scope->_outer;
    self->deadline = scope->_outer_deadline;
    scope->_task = NULL;
    return eddy_timeout_is_expired(scope) ? -ETIMEDOUT : 0;
}

EDDY_API bool eddy_timeout_is_expired(const struct eddy_timeout *scope)
{
    return scope->deadline_ns <= eddy_now_ns();
}

/* ---- shields -------------------------------------------------------------- */

EDDY_API int eddy_shield_enter(struct eddy_shield *shield)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !shield)
        return -EINVAL;
    struct eddy_timeout *scope = &shield->_scope;
    scope->deadline_ns = EDDY_DEADLINE_NEVER;
    scope->_outer_deadline = self->deadline;
    scope->_outer = self->scope;
    scope->_task = self;
    scope->_shield = true;
    self->scope = scope;
    /* Unlike a timeout scope, the outer deadlines stop counting. */
    self->deadline = EDDY_DEADLINE_NEVER;
    if (self->flags & EDDY__TASK_CANCEL)
        self->flags = (uint8_t)((self->flags & ~EDDY__TASK_CANCEL) | EDDY__TASK_CANCEL_HELD);
    self->shields++;
    return 0;
}

EDDY_API int eddy_shield_exit(struct eddy_shield *shield)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !shield)
        return -EINVAL;
    struct eddy_timeout *scope = &shield->_scope;
    if (self->scope != scope || scope->_task != self || !scope->_shield)
        return -EINVAL;
    self->scope = scope->_outer;
    self->deadline = scope->_outer_deadline;
    scope->_task = NULL;
    if (--self->shields == 0 && (self->flags & EDDY__TASK_CANCEL_HELD))
        self->flags = (uint8_t)((self->flags & ~EDDY__TASK_CANCEL_HELD) | EDDY__TASK_CANCEL);
    return 0;
}
