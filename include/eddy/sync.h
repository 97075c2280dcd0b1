/*
 * eddy/sync.h: coordination between tasks of one loop: lock, semaphore,
 * event, condition, barrier, queues, futures, gather, wait, task groups,
 * a concurrency limiter, retry and per-operation metrics.
 *
 * The asyncio picture, in C:
 *   asyncio.Lock()                 eddy_lock_init / _acquire / _release
 *   asyncio.Semaphore(n)           eddy_sem_init / _acquire / _release
 *   asyncio.BoundedSemaphore(n)    eddy_sem_init_bounded
 *   asyncio.Event()                eddy_event_init / _set / _clear / _wait
 *   asyncio.Condition(lock)        eddy_cond_init / _wait / _wait_for / _notify
 *   asyncio.Barrier(n)             eddy_barrier_init / _wait / _abort / _reset
 *   asyncio.Queue / LifoQueue /    eddy_queue_init(kind, capacity) / _put / _get /
 *     PriorityQueue                  _try_put / _try_get / _task_done / _join / _close
 *   loop.create_future()           eddy_future_init / _set_result / _set_error / _wait
 *   asyncio.gather(...)            eddy_gather(calls, n, results, mode)
 *   asyncio.as_completed(...)      eddy_as_completed_start / _next / _stop
 *   asyncio.wait(tasks, timeout,   eddy_wait(tasks, n, when, deadline, done)
 *     return_when)
 *   asyncio.wait_for(t, timeout)   eddy_wait_for(task, deadline, &result)
 *   wait_for(shield(t), timeout)   eddy_shield_join(task, deadline, &result)
 *   cleanup that must block        eddy_shield_enter / _exit (eddy/reactor.h)
 *   asyncio.TaskGroup()            eddy_group_create / _spawn / _join
 *   gather under Semaphore(k)      eddy_gather_limited(calls, n, k, results, mode)
 *   @async_retry(...)              eddy_retry(fn, arg, &opts, &result)
 *   the guides' perf monitor       eddy_metrics_init / _record / _call / _snapshot
 *
 * Rules shared by every primitive here:
 *   - All of them are built on eddy_waitq (eddy/reactor.h): waiters queue
 *     first-in first-out, and whatever a waker hands over (a lock, a
 *     semaphore unit, a queue item or slot) goes to a waiter that is still
 *     parked. A waiter that was cancelled or timed out before the hand-off
 *     is skipped, so nothing is lost; a waiter that was handed something and
 *     then cancelled before it ran keeps it (its call returns success; the
 *     cancellation stays pending for its next blocking call).
 *   - Every blocking call takes deadline_ns, an absolute monotonic time
 *     (EDDY_DEADLINE_NEVER for none), and also ends with -ETIMEDOUT when an
 *     enclosing timeout scope expires, and with -ECANCELED when the task is
 *     cancelled (both held back inside a shield: eddy_shield_enter in
 *     eddy/reactor.h). asyncio has no timeout on most of these calls; a
 *     deadline costs nothing when unused.
 *   - A call that does not need to wait succeeds at once, without looking
 *     at a pending cancellation (as asyncio's calls that do not await, and
 *     as eddy's fd calls that try the syscall first). A call that must wait
 *     while the task is cancelled returns -ECANCELED without suspending.
 *   - The structs are caller memory (init, and fini where storage is
 *     allocated); their fields are private. An object must outlive every
 *     task waiting on it. Nothing here is thread-safe: one loop, one thread
 *     (DESIGN.md). Callbacks of the loop (eddy_loop_post, eddy_timer_start)
 *     may use the calls marked "Suspends: no".
 */
#ifndef EDDY_SYNC_H
#define EDDY_SYNC_H

#include <eddy/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lock (asyncio.Lock) ---------------------------------------------------
 * A mutual-exclusion lock owned by a task. Release hands the lock straight to
 * the first waiter (no barging: a task that arrives between the release and
 * the waiter's resumption cannot take it). Differs from asyncio: release is
 * owner-checked (-EPERM for a task that does not hold it), and the lock is not
 * reentrant (-EDEADLK when the owner acquires again).
 */
struct eddy_lock {
    struct eddy_waitq _waiters;
    struct eddy_task *_owner; /* NULL while handed to a waiter that has not run yet */
    bool _locked;
};

/* Makes l an unlocked lock. Suspends: no. */
EDDY_API void eddy_lock_init(struct eddy_lock *l);
/*
 * Takes the lock, waiting in FIFO order while another task holds it.
 * Returns: 0 (the caller owns the lock); -ECANCELED; -ETIMEDOUT; -EDEADLK
 * when the caller already holds it; -EINVAL outside a task; -ENOMEM (the
 * deadline timer). On error the lock is not held. Suspends: yes.
 */
EDDY_API int eddy_lock_acquire(struct eddy_lock *l, int64_t deadline_ns);
/* Takes the lock if it is free. Returns: 0; -EBUSY when it is held (or
 * handed to a waiter); -EINVAL outside a task. Suspends: no. */
EDDY_API int eddy_lock_try_acquire(struct eddy_lock *l);
/* Releases the lock, handing it to the first waiter if any.
 * Returns: 0; -EPERM when the caller is not the owner (including calls
 * outside a task and a lock that is not held). Suspends: no. */
EDDY_API int eddy_lock_release(struct eddy_lock *l);
EDDY_API bool eddy_lock_is_locked(const struct eddy_lock *l);
/* True when the calling task owns l. */
EDDY_API bool eddy_lock_is_owned(const struct eddy_lock *l);

/* ---- semaphore (asyncio.Semaphore, BoundedSemaphore) -----------------------
 * A counter of units. Release hands a unit straight to the first waiter.
 * Not owner-checked (as in asyncio): any task or callback may release.
 */
struct eddy_sem {
    struct eddy_waitq _waiters;
    int64_t _value;
    int64_t _bound; /* -1: unbounded */
};

/* Makes s a semaphore with value units. Returns: 0; -EINVAL when value < 0.
 * Suspends: no. */
EDDY_API int eddy_sem_init(struct eddy_sem *s, int64_t value);
/* As eddy_sem_init, and release may never raise the value above the
 * initial one (asyncio.BoundedSemaphore, which raises ValueError). */
EDDY_API int eddy_sem_init_bounded(struct eddy_sem *s, int64_t value);
/* Takes one unit, waiting in FIFO order while none is free.
 * Returns: 0; -ECANCELED; -ETIMEDOUT; -EINVAL when it must wait outside a
 * task; -ENOMEM. Suspends: yes. */
EDDY_API int eddy_sem_acquire(struct eddy_sem *s, int64_t deadline_ns);
/* Takes a unit if one is free. Returns: 0; -EAGAIN. Suspends: no. */
EDDY_API int eddy_sem_try_acquire(struct eddy_sem *s);
/* Gives a unit back (to the first waiter, if any).
 * Returns: 0; -EOVERFLOW when a bounded semaphore is already at its initial
 * value (the value is unchanged). Suspends: no. */
EDDY_API int eddy_sem_release(struct eddy_sem *s);
/* Units free now (asyncio: locked() is value == 0). */
EDDY_API int64_t eddy_sem_value(const struct eddy_sem *s);

/* ---- event (asyncio.Event) ------------------------------------------------- */
struct eddy_event {
    struct eddy_waitq _waiters;
    bool _set;
};

/* Makes e a clear event. Suspends: no. */
EDDY_API void eddy_event_init(struct eddy_event *e);
/* Sets the flag and wakes every waiter; they return 0 even if the event is
 * cleared before they run (as in asyncio). Suspends: no. */
EDDY_API void eddy_event_set(struct eddy_event *e);
/* Clears the flag. Suspends: no. */
EDDY_API void eddy_event_clear(struct eddy_event *e);
EDDY_API bool eddy_event_is_set(const struct eddy_event *e);
/* Waits until the flag is set (returns at once when it is).
 * Returns: 0; -ECANCELED; -ETIMEDOUT; -EINVAL when it must wait outside a
 * task; -ENOMEM. Suspends: yes. */
EDDY_API int eddy_event_wait(struct eddy_event *e, int64_t deadline_ns);

/* ---- condition (asyncio.Condition) -----------------------------------------
 * Waiters queue FIFO; notify wakes the oldest. Differs from asyncio: a wait
 * that fails (-ECANCELED, -ETIMEDOUT) returns WITHOUT the lock. eddy's
 * cancellation and timeout scopes are level-triggered, so a task in that
 * state cannot block to win the lock back; one rule for every error keeps
 * the caller's error path simple: on error, do not release. A waiter that
 * was notified but fails while re-acquiring the lock passes its notification
 * on to the next waiter, so a notify is never lost.
 */
struct eddy_cond {
    struct eddy_waitq _waiters;
    struct eddy_lock *_lock;
};

/* Binds c to lock (retained until c is no longer used). Suspends: no. */
EDDY_API void eddy_cond_init(struct eddy_cond *c, struct eddy_lock *lock);
/*
 * Releases the lock, waits for a notify, re-acquires the lock.
 * Returns: 0 with the lock held; -EPERM when the caller does not hold the
 * lock; -ECANCELED / -ETIMEDOUT (deadline_ns covers the re-acquisition too)
 * / -ENOMEM with the lock NOT held. Suspends: yes.
 */
EDDY_API int eddy_cond_wait(struct eddy_cond *c, int64_t deadline_ns);
typedef bool eddy_predicate_fn(void *arg);
/* Waits until pred(arg) is true (checked with the lock held, first before
 * any wait). pred: called only with the lock held; arg: borrowed.
 * Returns: as eddy_cond_wait. Suspends: yes. */
EDDY_API int eddy_cond_wait_for(struct eddy_cond *c, eddy_predicate_fn *pred, void *arg,
                                int64_t deadline_ns);
/* Wakes up to n waiters (oldest first). The caller must hold the lock.
 * Returns: the number woken; -EPERM when the caller does not hold the lock.
 * Suspends: no. */
EDDY_API int eddy_cond_notify(struct eddy_cond *c, int n);
EDDY_API int eddy_cond_notify_all(struct eddy_cond *c);

/* ---- barrier (asyncio.Barrier) ---------------------------------------------
 * parties tasks wait until the last one arrives; then all return and the
 * barrier is ready for the next cycle. Indices are given out when the
 * barrier fills, in arrival order among the tasks released (0 .. parties-1,
 * each once per cycle; the last arrival gets parties-1). Differs from
 * asyncio: a waiter that is cancelled or times out before the barrier fills
 * leaves it, and the indices of a cycle stay unique (asyncio can give two
 * tasks the same index then); a waiter whose cancellation comes after the
 * barrier filled returns its index (it was counted). There is no draining
 * phase: a released task that arrives again joins the next cycle at once.
 * A broken barrier fails every wait with -EPIPE until reset.
 */
struct eddy_barrier {
    struct eddy_waitq _waiters;
    void *_nodes[2]; /* waiters' records, in arrival order */
    unsigned _parties;
    unsigned _count;
    bool _broken;
};

/* Returns: 0; -EINVAL when parties is 0. Suspends: no. */
EDDY_API int eddy_barrier_init(struct eddy_barrier *b, unsigned parties);
/*
 * Arrives and waits until parties tasks have arrived.
 * Returns: the arrival index (>= 0); -EPIPE when the barrier is broken or is
 * aborted or reset while the caller waits; -ECANCELED; -ETIMEDOUT; -EINVAL
 * outside a task; -ENOMEM. Suspends: yes (not the last arrival).
 */
EDDY_API int eddy_barrier_wait(struct eddy_barrier *b, int64_t deadline_ns);
/* Breaks the barrier: waiters and later waits get -EPIPE until reset.
 * Suspends: no. */
EDDY_API void eddy_barrier_abort(struct eddy_barrier *b);
/* Wakes current waiters with -EPIPE and makes the barrier empty and
 * unbroken again. Suspends: no. */
EDDY_API void eddy_barrier_reset(struct eddy_barrier *b);
EDDY_API bool eddy_barrier_is_broken(const struct eddy_barrier *b);
/* Tasks waiting now (asyncio: n_waiting). */
EDDY_API unsigned eddy_barrier_waiting(const struct eddy_barrier *b);

/* ---- queue (asyncio.Queue, LifoQueue, PriorityQueue) -----------------------
 * Items are void * values owned by the caller's protocol: the queue never
 * reads or frees them. An item passes from the putter to the getter when a
 * put succeeds; on a failed put it stays the putter's. Items left in a
 * queue at fini are dropped (drain with eddy_queue_try_get first).
 *
 * A put that finds a getter waiting reserves the item for it, and a get
 * that frees a slot reserves it for the first waiting putter: waiters are
 * served in FIFO order and a newcomer cannot overtake them.
 *
 * Priority queues order by an int64_t key given at put (lowest first; equal
 * keys first-in first-out). asyncio compares the items themselves.
 *
 * Close (asyncio 3.13 Queue.shutdown(immediate=False)): later puts fail with
 * -EPIPE, waiting putters wake with -EPIPE, gets drain the remaining items
 * and then fail with -EPIPE, waiting getters wake with -EPIPE.
 */
enum eddy_queue_kind {
    EDDY_QUEUE_FIFO,
    EDDY_QUEUE_LIFO,
    EDDY_QUEUE_PRIORITY,
};

struct eddy_queue {
    struct eddy_waitq _getters;
    struct eddy_waitq _putters;
    struct eddy_waitq _joiners;
    void *_store;      /* ring of void * (FIFO, LIFO) or a heap (PRIORITY) */
    size_t _len;       /* items stored */
    size_t _cap;       /* 0: unbounded */
    size_t _ring_cap;  /* slots of the ring (a power of two) */
    size_t _head;      /* ring index of the oldest item */
    size_t _item_resv; /* items reserved for woken getters */
    size_t _slot_resv; /* free slots reserved for woken putters */
    size_t _unfinished;
    enum eddy_queue_kind _kind;
    bool _closed;
};

/* Makes q an empty queue of kind holding at most capacity items (0:
 * unbounded). Bounded FIFO/LIFO queues allocate their storage here.
 * Returns: 0; -EINVAL for an unknown kind; -ENOMEM. Suspends: no. */
EDDY_API int eddy_queue_init(struct eddy_queue *q, enum eddy_queue_kind kind, size_t capacity);
/* Closes q (waking its waiters with -EPIPE) and frees its storage. Items
 * still inside are dropped. Suspends: no. */
EDDY_API void eddy_queue_fini(struct eddy_queue *q);
/*
 * Appends item (transferred on success), waiting while a bounded queue is
 * full. Returns: 0; -EPIPE when the queue is closed; -ECANCELED; -ETIMEDOUT;
 * -ENOMEM (unbounded and priority queues allocate); -EINVAL when it must wait
 * outside a task. Suspends: yes (only when the queue is full).
 */
EDDY_API int eddy_queue_put(struct eddy_queue *q, void *item, int64_t deadline_ns);
/* As eddy_queue_put with a priority key (lowest key first). For FIFO and
 * LIFO queues the key is ignored. */
EDDY_API int eddy_queue_put_key(struct eddy_queue *q, void *item, int64_t key, int64_t deadline_ns);
/* Puts without waiting. Returns: 0; -EAGAIN when full; -EPIPE; -ENOMEM.
 * Suspends: no. */
EDDY_API int eddy_queue_try_put(struct eddy_queue *q, void *item);
EDDY_API int eddy_queue_try_put_key(struct eddy_queue *q, void *item, int64_t key);
/*
 * Removes the next item (oldest, newest or lowest key) into *item (caller
 * memory), waiting while the queue is empty. Returns: 0; -EPIPE when the
 * queue is closed and empty; -ECANCELED; -ETIMEDOUT; -EINVAL when it must
 * wait outside a task; -ENOMEM. Suspends: yes (only when empty).
 */
EDDY_API int eddy_queue_get(struct eddy_queue *q, void **item, int64_t deadline_ns);
/* Gets without waiting. Returns: 0; -EAGAIN when no item is free; -EPIPE
 * when closed and empty. Suspends: no. */
EDDY_API int eddy_queue_try_get(struct eddy_queue *q, void **item);
/* Marks one item taken earlier as processed. Returns: 0; -EINVAL when more
 * task_done calls than puts were made. Suspends: no. */
EDDY_API int eddy_queue_task_done(struct eddy_queue *q);
/* Waits until every item put has been marked done (returns at once when
 * none is pending). Returns: 0; -EPIPE when the queue is finalised meanwhile;
 * -ECANCELED; -ETIMEDOUT; -EINVAL; -ENOMEM. Suspends: yes. */
EDDY_API int eddy_queue_join(struct eddy_queue *q, int64_t deadline_ns);
/* Closes q (see above). Idempotent. Suspends: no. */
EDDY_API void eddy_queue_close(struct eddy_queue *q);
/* Items stored (including ones reserved for woken getters). */
EDDY_API size_t eddy_queue_len(const struct eddy_queue *q);
EDDY_API bool eddy_queue_is_closed(const struct eddy_queue *q);

/* ---- future (asyncio.Future) -----------------------------------------------
 * A one-shot result that any number of tasks can await. It is completed once,
 * by set_result (an intptr_t), set_error (a negative code) or cancel, from a
 * task or from a loop callback. Differs from asyncio: no done callbacks; the
 * result can be read any number of times; a cancelled future makes waiters
 * return -ECANCELED (like a cancelled waiter would: eddy_future_is_cancelled
 * tells the two apart).
 */
struct eddy_future {
    struct eddy_waitq _waiters;
    intptr_t _value;
    int _state;
};

EDDY_API void eddy_future_init(struct eddy_future *f);
/* Completes f with value and wakes every waiter. Returns: 0; -EALREADY
 * when f is already complete (its outcome is unchanged). Suspends: no. */
EDDY_API int eddy_future_set_result(struct eddy_future *f, intptr_t value);
/* Completes f with error (a negative code). Returns: 0; -EALREADY; -EINVAL
 * when error >= 0. Suspends: no. */
EDDY_API int eddy_future_set_error(struct eddy_future *f, int error);
/* Completes f as cancelled. Returns: 0; -EALREADY. Suspends: no. */
EDDY_API int eddy_future_cancel(struct eddy_future *f);
/*
 * Waits until f is complete and stores its value in *result (may be NULL).
 * Returns: 0; the error given to set_error; -ECANCELED (f cancelled, or the
 * waiter cancelled); -ETIMEDOUT; -EINVAL when it must wait outside a task;
 * -ENOMEM. Suspends: yes (only while f is pending).
 */
EDDY_API int eddy_future_wait(struct eddy_future *f, intptr_t *result, int64_t deadline_ns);
/* The outcome without waiting. Returns: as eddy_future_wait, and -EAGAIN
 * while f is pending. Suspends: no. */
EDDY_API int eddy_future_result(const struct eddy_future *f, intptr_t *result);
EDDY_API bool eddy_future_is_done(const struct eddy_future *f);
EDDY_API bool eddy_future_is_cancelled(const struct eddy_future *f);

/* ---- gather (asyncio.gather) -----------------------------------------------
 * Runs calls[i].fn(calls[i].arg) as n tasks and waits for all of them;
 * results[i] receives call i's return value (spawn order, whatever the
 * completion order).
 *   EDDY_GATHER_ALL        (return_exceptions=True) every task runs to its
 *                          end; negative results are failures kept in
 *                          results; returns 0.
 *   EDDY_GATHER_FAIL_FAST  the first failure (in completion order) cancels
 *                          the other tasks; gather waits until they have
 *                          finished and returns that failure. Differs from
 *                          asyncio, whose gather leaves the others running.
 * Cancelling the gathering task cancels every child (as in asyncio); gather
 * still waits for them and returns -ECANCELED with results filled in.
 * One case does not wait: when an enclosing timeout scope expires, no task
 * can suspend any more outside a shield (scopes are level-triggered; gather
 * does not shield itself), so gather cancels the
 * children, lets them finish on their own (detached) and returns -ETIMEDOUT
 * at once; results is then not written to any more.
 */
struct eddy_call {
    eddy_task_fn *fn;
    void *arg;
};

enum eddy_gather_mode {
    EDDY_GATHER_ALL,
    EDDY_GATHER_FAIL_FAST,
};

/*
 * calls: borrowed (copied); each arg retained until its call returns.
 * results: caller memory for n values, written until gather returns.
 * Returns: 0 (n == 0 returns 0 at once); in FAIL_FAST mode the first
 * failure; -ECANCELED; -ETIMEDOUT (see above); -ENOMEM (a spawn failed: the
 * tasks already spawned are cancelled and waited for); -EINVAL outside a
 * task, for NULL calls or results, or an unknown mode. Suspends: yes.
 */
EDDY_API int eddy_gather(const struct eddy_call *calls, size_t n, intptr_t *results,
                         enum eddy_gather_mode mode);

/* ---- as_completed (asyncio.as_completed) ------------------------------------
 * Runs the calls as tasks and hands back their results one at a time, in
 * completion order, with the index of each call:
 *   struct eddy_as_completed *ac;
 *   eddy_as_completed_start(calls, n, &ac);
 *   while ((rc = eddy_as_completed_next(ac, &i, &result, deadline)) > 0) ...
 *   eddy_as_completed_stop(ac);   // cancels and waits for what still runs
 * Over calls, asyncio.wait(return_when=FIRST_COMPLETED) is one next() with
 * a deadline; ALL_COMPLETED and FIRST_EXCEPTION are eddy_gather's two modes
 * (over tasks already spawned: eddy_wait). Differs from asyncio: results
 * come as (index, value) pairs rather than awaitables, and a timeout is a
 * deadline per next() call, not one for the iteration.
 */
struct eddy_as_completed;

/* Spawns the calls (calls: borrowed, copied; each arg retained until its
 * call returns). n may be 0. Returns: 0; -ENOMEM; -EINVAL outside a task.
 * Suspends: no. */
EDDY_API int eddy_as_completed_start(const struct eddy_call *calls, size_t n,
                                     struct eddy_as_completed **out);
/*
 * Waits for the next call to finish and stores its index and return value
 * (index, result: caller memory, may be NULL).
 * Returns: 1 with a result; 0 when every call's result has been handed
 * out; -ECANCELED / -ETIMEDOUT (the calls keep running; next may be called
 * again); -ENOMEM. Suspends: yes (while none has finished).
 */
EDDY_API int eddy_as_completed_next(struct eddy_as_completed *ac, size_t *index, intptr_t *result,
                                    int64_t deadline_ns);
/* Cancels the calls still running, waits until they have finished and frees
 * ac (as gather: after an expired timeout scope it detaches them instead).
 * Returns: 0; -ECANCELED (the caller was cancelled; the calls were still
 * waited for); -ETIMEDOUT. Suspends: yes. */
EDDY_API int eddy_as_completed_stop(struct eddy_as_completed *ac);

/* ---- wait (asyncio.wait) -----------------------------------------------------
 * Waits until a set of tasks reaches a condition, or until deadline_ns, and
 * reports which tasks are done:
 *   EDDY_WAIT_ALL_COMPLETED    every task has finished;
 *   EDDY_WAIT_FIRST_COMPLETED  at least one has finished;
 *   EDDY_WAIT_FIRST_FAILURE    one has finished with a negative result, or
 *                              all have finished (asyncio's FIRST_EXCEPTION).
 *   bool done[3];
 *   int n_done = eddy_wait(tasks, 3, EDDY_WAIT_FIRST_COMPLETED, deadline, done);
 *   // done[i]: join tasks[i] (it does not suspend) or read eddy_task_result;
 *   // the others still run: wait again, cancel them, or detach them.
 * Like asyncio.wait, it never cancels the tasks, and the deadline passing is
 * not an error: the call returns the number done, and the caller compares
 * it with what it waited for. Differs from asyncio: an empty set returns 0
 * at once (asyncio raises ValueError), and the tasks are handles, which stay
 * valid (nothing is joined).
 * While it waits, the caller counts as each unfinished task's joiner: another
 * task's eddy_task_join or eddy_wait of one of them returns -EBUSY, and
 * eddy_task_detach -EINVAL. A task that has finished is not guarded that
 * way (eddy_task_join of a finished task does not wait, so it does not
 * check): as with any handle, no other task may join or detach a task of
 * the set until eddy_wait has returned.
 */
enum eddy_wait_when {
    EDDY_WAIT_ALL_COMPLETED,
    EDDY_WAIT_FIRST_COMPLETED,
    EDDY_WAIT_FIRST_FAILURE,
};

/*
 * tasks: borrowed, n handles of tasks of the caller's loop (duplicates are
 * allowed). done: caller memory for n flags, may be NULL; written in every
 * case but -EINVAL / -EDEADLK / -EBUSY, with the state at return.
 * Returns: the number of tasks done (>= 0), when the condition is met or
 * deadline_ns has passed; -ECANCELED; -ETIMEDOUT (an enclosing timeout
 * scope); -ENOMEM (the deadline timer); -EINVAL outside a task, for NULL
 * tasks (n > 0) or a NULL entry, a handle that is not a live task of this
 * loop, a detached task, or an unknown `when`; -EDEADLK when the caller is
 * in the set; -EBUSY when a task is being joined by another task.
 * A condition already met returns at once, without suspending, even when
 * the caller is cancelled. Suspends: yes.
 */
EDDY_API int eddy_wait(struct eddy_task *const *tasks, size_t n, enum eddy_wait_when when,
                       int64_t deadline_ns, bool *done);

/* ---- wait_for (asyncio.wait_for) and shield (asyncio.shield) -----------------
 * eddy_wait_for joins task with a deadline; when the deadline passes first,
 * it cancels the task and waits for it to finish (asyncio.wait_for).
 * eddy_shield_join is asyncio.wait_for(asyncio.shield(task), timeout): a join
 * with a deadline that never cancels the task. When it ends with -ETIMEDOUT
 * or -ECANCELED, the task keeps running and the handle stays valid: join it
 * again later, or detach it to let it finish on its own:
 *   rc = eddy_shield_join(save_task, deadline, &r);
 *   if (rc == -ETIMEDOUT || rc == -ECANCELED)
 *       eddy_task_detach(save_task);    // the save completes in the background
 * For cleanup code that must block after a cancellation or an expired
 * timeout, see the shield scope, eddy_shield_enter in eddy/reactor.h.
 */

/*
 * Joins task, waiting at most until deadline_ns (and any enclosing timeout
 * scope). result (may be NULL) receives the task's return value when the
 * call returns 0; the handle is consumed only then.
 * Returns: 0; -ETIMEDOUT (deadline_ns or a timeout scope: the task runs on);
 * -ECANCELED (the caller was cancelled: the task runs on); -EDEADLK for the
 * calling task itself; -EBUSY when another task joins it; -EINVAL as
 * eddy_task_join (NULL task, outside a task...). Suspends: yes.
 */
EDDY_API int eddy_shield_join(struct eddy_task *task, int64_t deadline_ns, intptr_t *result);

/*
 * Joins task (which must not be joined elsewhere); on deadline_ns, cancels
 * it and waits for it to end. result (may be NULL) receives the task's return
 * value when the call returns 0. The handle is consumed in every case but
 * -EINVAL. Returns: 0; -ETIMEDOUT (deadline or timeout scope: the task was
 * cancelled; after an expired scope it is detached rather than waited for);
 * -ECANCELED (the caller was cancelled: the task is cancelled and waited
 * for); -EINVAL as eddy_task_join. Suspends: yes.
 */
EDDY_API int eddy_wait_for(struct eddy_task *task, int64_t deadline_ns, intptr_t *result);

/* ---- gather with a concurrency limit (the Semaphore(k) idiom) -----------------
 *   sem = asyncio.Semaphore(k)
 *   async def limited(c):
 *       async with sem: return await c
 *   results = await asyncio.gather(*(limited(c) for c in calls), return_exceptions=True)
 * eddy_gather_limited runs the n calls with at most `limit` of them running
 * at once, starting them in call order; results[i] receives call i's return
 * value. It spawns min(limit, n) worker tasks that take the next call when
 * they finish one, so n calls cost `limit` stacks, not n.
 *   EDDY_GATHER_ALL        every call runs; failures (negative results) are
 *                          kept in results; returns 0.
 *   EDDY_GATHER_FAIL_FAST  the first failure stops the start of new calls and
 *                          cancels the running ones; returns that failure.
 * Calls that never started get -ECANCELED in results. Cancelling the caller,
 * or an enclosing timeout scope expiring, stops the start of new calls and
 * cancels the running ones; then it waits for them inside a shield, so
 * results is complete when it returns. Differs from eddy_gather, which
 * detaches its tasks after an expired scope: here the calls are always
 * finished at return (so a call that ignores its cancellation delays the
 * return). Each worker runs calls one after another: a call must not leave
 * its task cancelled (an eddy_task_cancel of the current task) or a scope
 * open; a worker left cancelled takes no further call.
 */

/*
 * calls: borrowed, read until the call returns (each arg retained until its
 * call returns). results: caller memory for n values, every one written.
 * Returns: 0 (n == 0 returns 0 at once); in FAIL_FAST mode the first failure;
 * -ECANCELED (a caller already cancelled runs no call); -ETIMEDOUT (an
 * enclosing timeout scope); -ENOMEM (a worker could not be spawned: no call
 * runs, every result is -ECANCELED, the workers already spawned are waited
 * for); -EINVAL outside a task, for NULL calls or results, a limit of 0 or
 * an unknown mode. Suspends: yes.
 */
EDDY_API int eddy_gather_limited(const struct eddy_call *calls, size_t n, size_t limit,
                                 intptr_t *results, enum eddy_gather_mode mode);

/* ---- task groups (asyncio.TaskGroup) ---------------------------------------
 * A group owns the tasks spawned into it. eddy_group_join waits until every
 * child has finished, however the wait ends, then frees the group. The
 * first child that returns a negative value cancels its siblings, and join
 * returns that value. Cancelling the joining task cancels the children too.
 * As gather, join cannot wait after an enclosing timeout scope expired: it
 * then cancels the children, detaches them and returns -ETIMEDOUT.
 * Children's handles belong to the group (never join them directly).
 * Differs from asyncio: join returns the first failure only (asyncio raises
 * an ExceptionGroup of all of them; read the others from the children's own
 * state if needed), and a group must be joined (it is freed by join).
 */
struct eddy_group;

/* Returns: 0; -ENOMEM. Suspends: no. */
EDDY_API int eddy_group_create(struct eddy_group **out);
/* Spawns fn(arg) into g (opts: borrowed, may be NULL; detached is ignored).
 * out may be NULL; the handle stays valid until join returns. Spawning into
 * a group that already failed, or is being joined by a cancelled task,
 * returns -ECANCELED. Returns: 0; -ECANCELED; -ENOMEM; -EINVAL.
 * Suspends: no. */
EDDY_API int eddy_group_spawn(struct eddy_group *g, eddy_task_fn *fn, void *arg,
                              const struct eddy_task_opts *opts, struct eddy_task **out);
/* Cancels every child that has not finished. Suspends: no. */
EDDY_API void eddy_group_cancel(struct eddy_group *g);
/*
 * Waits for every child, frees g (also on error; the handle is invalid
 * afterwards). Returns: 0 when no child failed; the first child failure;
 * -ECANCELED when the joining task was cancelled (children are cancelled
 * and waited for); -ETIMEDOUT (see above); -EINVAL outside a task.
 * Suspends: yes.
 */
EDDY_API int eddy_group_join(struct eddy_group *g);

/* ---- retry with backoff and jitter (the guides' async_retry) -----------------
 * Calls fn until it succeeds (returns >= 0), it fails with an error the
 * policy does not retry, or max_attempts calls have failed, sleeping between
 * attempts: delay = min(base * multiplier^(attempt-1), max), of which the
 * fraction `jitter` is drawn at random ([delay*(1-jitter), delay]), so that
 * many clients retrying together do not retry in step.
 */
typedef intptr_t eddy_retry_fn(void *arg, unsigned attempt); /* attempt: 1, 2, ... */
typedef bool eddy_retry_if_fn(int error, void *arg);

struct eddy_retry_opts {
    unsigned max_attempts;      /* 0: 3 */
    int64_t base_delay_ns;      /* 0: 100 ms */
    int64_t max_delay_ns;       /* 0: 10 s */
    double multiplier;          /* 0: 2.0 (values below 1 are taken as 1) */
    double jitter;              /* 0..1; values outside are clamped */
    eddy_retry_if_fn *retry_if; /* NULL: every error but -ECANCELED and -ETIMEDOUT */
    void *retry_if_arg;
};

/*
 * Runs the retry loop in the current task. fn's result goes to *result (may
 * be NULL) on success. opts: borrowed, may be NULL (the defaults above);
 * arg: borrowed. Returns: 0 on success; the last error of fn when attempts
 * ran out or the policy declined to retry; -ECANCELED / -ETIMEDOUT when the
 * task was cancelled or a timeout scope expired during a backoff sleep;
 * -EINVAL outside a task or without fn. Suspends: yes (between attempts).
 */
EDDY_API int eddy_retry(eddy_retry_fn *fn, void *arg, const struct eddy_retry_opts *opts,
                        intptr_t *result);
/* The delay before attempt `attempt + 1` after `attempt` failures, before
 * jitter (exposed for tests and logs). Suspends: no. */
EDDY_API int64_t eddy_retry_delay_ns(const struct eddy_retry_opts *opts, unsigned attempt);

/* ---- per-operation metrics ---------------------------------------------------
 * Counts and latencies of one operation (a query, a request handler), for a
 * service to read (the guides' performance monitor):
 *   static struct eddy_metrics db_query;        // eddy_metrics_init once
 *   int64_t t0 = eddy_clock_ns();
 *   intptr_t rc = run_query(...);
 *   eddy_metrics_record(&db_query, t0, rc);     // rc < 0 counts as an error
 *   ...
 *   struct eddy_metrics_snapshot s;
 *   eddy_metrics_snapshot(&db_query, &s);       // calls, errors, mean, p99...
 * Latencies go into a fixed log-linear histogram inside the struct: exact
 * below 32 ns, then 16 buckets per power of two, so a percentile is reported
 * as the upper end of its bucket, at most 1/16 (6.25%) above the true value,
 * and never above the largest latency seen. Values from 2^40 ns (about 18
 * minutes) up share the last bucket, whose percentiles read as the largest
 * latency seen. Recording costs a clock read (record and call) and a few
 * additions; nothing is allocated per sample. min, max, total and mean are
 * exact (total saturates at INT64_MAX).
 * The struct is caller memory (about 4.8 KiB); its fields are private.
 * Thread rules: none inside; use one struct from one thread (one per loop,
 * merged with eddy_metrics_merge for a process-wide view), or read it from
 * another thread through eddy_loop_post.
 */
#define EDDY_METRICS_BUCKETS 592

struct eddy_metrics {
    uint64_t _calls;
    uint64_t _errors;
    int64_t _total_ns;
    int64_t _min_ns;
    int64_t _max_ns;
    uint64_t _buckets[EDDY_METRICS_BUCKETS];
};

struct eddy_metrics_snapshot {
    uint64_t calls;
    uint64_t errors;
    int64_t total_ns; /* sum of the latencies */
    int64_t mean_ns;  /* total / calls, rounded down; 0 without calls */
    int64_t min_ns;   /* 0 without calls */
    int64_t max_ns;
    int64_t p50_ns; /* percentiles: see above for their precision */
    int64_t p90_ns;
    int64_t p99_ns;
};

/* Makes m empty (also to reset it). Returns: 0; -EINVAL for NULL.
 * Suspends: no. */
EDDY_API int eddy_metrics_init(struct eddy_metrics *m);
/* Records one call that took latency_ns and failed or not.
 * Returns: 0; -EINVAL for NULL m or a negative latency. Suspends: no. */
EDDY_API int eddy_metrics_observe(struct eddy_metrics *m, int64_t latency_ns, bool failed);
/* Records one call that started at start_ns (an eddy_clock_ns() reading)
 * and ends now; result < 0 counts as an error. A start in the future
 * (another clock) is recorded as 0 ns. Returns: 0; -EINVAL for NULL m.
 * Suspends: no. */
EDDY_API int eddy_metrics_record(struct eddy_metrics *m, int64_t start_ns, intptr_t result);
/*
 * Calls fn(arg) in the calling context (a task, if fn blocks) and records it
 * (a negative result is an error). result (may be NULL) receives fn's return
 * value. arg: borrowed. Returns: 0 when fn returned >= 0; fn's result when
 * negative (clamped to INT_MIN); -EINVAL for NULL m or fn (fn is not
 * called). Suspends: when fn does.
 */
EDDY_API int eddy_metrics_call(struct eddy_metrics *m, eddy_task_fn *fn, void *arg,
                               intptr_t *result);
/* Fills *out (caller memory) from m. Returns: 0; -EINVAL for NULL.
 * Suspends: no. */
EDDY_API int eddy_metrics_snapshot(const struct eddy_metrics *m, struct eddy_metrics_snapshot *out);
/* The latency below which a fraction q (0 to 1) of the calls fall (q = 0.99:
 * p99), precise as described above; 0 without calls. Returns: the latency
 * in ns (>= 0); -EINVAL for NULL m or q outside [0, 1]. Suspends: no. */
EDDY_API int64_t eddy_metrics_percentile_ns(const struct eddy_metrics *m, double q);
/* Adds from's calls into into (from: borrowed, unchanged). Returns: 0;
 * -EINVAL for NULL. Suspends: no. */
EDDY_API int eddy_metrics_merge(struct eddy_metrics *into, const struct eddy_metrics *from);

#ifdef __cplusplus
}
#endif
#endif
