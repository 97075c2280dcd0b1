/*
 * eddy/reactor.h: the loop, tasks, timers, timeouts and fd readiness.
 *
 * The asyncio picture, in C:
 *   asyncio.run(main())          eddy_run(main, arg, NULL, &result)
 *   asyncio.create_task(f(x))    eddy_task_spawn(f, x, NULL, &task)
 *   await task                   eddy_task_join(task, &result)
 *   task.cancel()                eddy_task_cancel(task)
 *   await asyncio.sleep(0)       eddy_task_yield()
 *   await asyncio.sleep(0.5)     eddy_sleep_ms(500)
 *   async with asyncio.timeout() eddy_timeout_enter() ... eddy_timeout_exit()
 *   trio's CancelScope(shield=True) eddy_shield_enter() ... eddy_shield_exit()
 *   loop.call_soon_threadsafe()  eddy_loop_post(loop, fn, arg)
 *   loop.call_later()            eddy_timer_start()
 *
 * A task is a function running in its own coroutine. Blocking calls (sleep,
 * join, fd waits and everything built on them) park only the calling task.
 * Every blocking call returns -ECANCELED once the task has been cancelled
 * and -ETIMEDOUT once the deadline of an enclosing timeout scope has passed.
 * Cancellation is level-triggered: it stays in force for every later
 * blocking call until eddy_task_uncancel() (asyncio's Task.uncancel()),
 * so a task cannot miss it. A task that must block during its cleanup
 * (flush, close, rollback) does it inside a shield (eddy_shield_enter),
 * where cancellation and the enclosing timeout scopes are held back until
 * the shield ends; or it uncancels first.
 *
 * Results: a task returns an intptr_t. By convention a negative value is a
 * failure (-errno); pointers and counts are never negative on Linux.
 *
 * Thread rules: one loop per thread. A loop and its tasks, timers and fds are
 * used only from the thread running it; eddy_loop_post() and eddy_loop_stop()
 * are the thread-safe ways in.
 *
 * Debugging: EDDY_DEBUG=1 in the environment reports, on stderr, a task that
 * runs longer than EDDY_SLOW_MS (default 100) without suspending, and at loop
 * end the tasks still pending and the finished tasks nobody joined. It also
 * checks stack canaries at every suspension and delays reuse of freed task
 * objects so that a second join of the same handle is reliably caught.
 */
#ifndef EDDY_REACTOR_H
#define EDDY_REACTOR_H

#include <eddy/coro.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eddy_loop;
struct eddy_task;

typedef intptr_t eddy_task_fn(void *arg);
typedef void eddy_callback_fn(void *arg);

/* ---- time ---------------------------------------------------------------- */

#define EDDY_NS_PER_MS INT64_C(1000000)
#define EDDY_NS_PER_SEC INT64_C(1000000000)
/* A deadline that never comes. */
#define EDDY_DEADLINE_NEVER INT64_MAX

/* Monotonic time read once per loop iteration (a fresh clock read outside
 * a loop). Deadlines are absolute values on this clock. Suspends: no. */
EDDY_API int64_t eddy_now_ns(void);
/* A fresh CLOCK_MONOTONIC read. Suspends: no. */
EDDY_API int64_t eddy_clock_ns(void);

/* ---- loop ---------------------------------------------------------------- */

struct eddy_loop_opts {
    size_t stack_cache_bytes; /* see eddy_stack_pool_opts */
};

/*
 * Creates a loop owned by the calling thread. opts: borrowed, may be NULL.
 * Returns: 0, -ENOMEM, -EMFILE (epoll or eventfd could not be opened).
 * Suspends: no.
 */
EDDY_API int eddy_loop_create(const struct eddy_loop_opts *opts, struct eddy_loop **out);

/*
 * Cancels every remaining task, runs the loop until they have finished,
 * then frees the loop. Callbacks posted but not yet run are dropped; armed
 * callback timers are disarmed without firing. Offload jobs of the loop
 * not yet started are dropped and running ones are waited for (see the
 * offload pool below). Must be called on the owner
 * thread and not from inside the loop (otherwise it reports the misuse on
 * stderr and does nothing). Suspends: no (it runs the loop).
 */
EDDY_API void eddy_loop_destroy(struct eddy_loop *loop);

/*
 * Runs the loop on the calling thread until no task is left and no callback
 * timer is armed, or eddy_loop_stop() is called. Returns: 0; -EBUSY when the loop (or another
 * loop) is already running on this thread; -EINVAL from a foreign thread.
 */
EDDY_API int eddy_loop_run(struct eddy_loop *loop);

/* Runs the loop until `task` has finished (or a stop). Returns: as
 * eddy_loop_run; -EINVAL when task belongs to another loop. */
EDDY_API int eddy_loop_run_until(struct eddy_loop *loop, struct eddy_task *task);

/* Makes eddy_loop_run return at the end of the current iteration. Tasks stay
 * suspended and resume when the loop runs again. Thread-safe. */
EDDY_API void eddy_loop_stop(struct eddy_loop *loop);

/*
 * Runs fn(arg) on the loop's thread, outside any task (it must not block;
 * it may spawn tasks, cancel them, start timers). Callbacks run in the order
 * they were posted. Thread-safe; wakes the loop through its eventfd.
 * arg: retained until fn runs (or the loop is destroyed, and then fn never
 * runs). Returns: 0, -ENOMEM, -ESHUTDOWN when the loop is being destroyed.
 */
EDDY_API int eddy_loop_post(struct eddy_loop *loop, eddy_callback_fn *fn, void *arg);

/* The loop running on this thread, or NULL. */
EDDY_API struct eddy_loop *eddy_loop_current(void);

/*
 * asyncio.run: creates a loop, runs fn(arg) as the main task until it
 * returns, cancels and finishes the remaining tasks, destroys the loop.
 * result (may be NULL) receives the main task's return value.
 * Returns: 0, or the error of eddy_loop_create / eddy_task_spawn.
 */
EDDY_API int eddy_run(eddy_task_fn *fn, void *arg, const struct eddy_loop_opts *opts,
                      intptr_t *result);

/* ---- tasks --------------------------------------------------------------- */

struct eddy_task_opts {
    const char *name;        /* copied (up to 31 bytes); default "task-<id>" */
    size_t stack_size_bytes; /* 0: EDDY_STACK_DEFAULT_BYTES (64 KiB) */
    bool save_fpu;           /* see eddy/coro.h */
    bool detached;           /* freed when it finishes; cannot be joined */
};

/*
 * Creates a task running fn(arg) on the current loop and schedules it; it
 * starts when the caller next suspends (asyncio.create_task). The handle in
 * *out stays valid until eddy_task_join returns its result, or forever for
 * a detached task (it is then NULL). opts: borrowed, may be NULL.
 * arg: retained until fn returns.
 * Returns: 0; -EINVAL when called outside a running loop or with a stack size
 * above EDDY_STACK_MAX_BYTES; -ENOMEM (the loop keeps running).
 * Suspends: no.
 */
EDDY_API int eddy_task_spawn(eddy_task_fn *fn, void *arg, const struct eddy_task_opts *opts,
                             struct eddy_task **out);
/* As eddy_task_spawn, on a given loop that need not be running yet (but is
 * owned by the calling thread). */
EDDY_API int eddy_loop_spawn(struct eddy_loop *loop, eddy_task_fn *fn, void *arg,
                             const struct eddy_task_opts *opts, struct eddy_task **out);

/*
 * Waits until task has finished, stores its return value in *result (may be
 * NULL) and frees the task: the handle is invalid afterwards.
 * Returns: 0; -ECANCELED / -ETIMEDOUT when the joiner was cancelled or its
 * timeout scope expired (the task keeps running and may be joined again);
 * -EDEADLK for a task joining itself; -EBUSY when another task is already
 * joining it; -EINVAL for a detached task, a task of another loop, a handle
 * already joined (caught until its memory is reused; always caught in
 * EDDY_DEBUG mode), or a call outside a task.
 * Suspends: yes.
 */
EDDY_API int eddy_task_join(struct eddy_task *task, intptr_t *result);

/*
 * Requests cancellation: the task's current blocking call, or its next one,
 * returns -ECANCELED, also when it has not started yet (its function still
 * runs, and sees the cancellation at its first blocking call). A task
 * inside a shield sees it only once the shield ends (see shields below).
 * Returns: 0; -EALREADY when the task has already finished (harmless);
 * -EINVAL for a handle that is not a live task. Suspends: no.
 */
EDDY_API int eddy_task_cancel(struct eddy_task *task);

/* Withdraws a cancellation request of the current task so that it can block
 * again (for cleanup), also one held by a shield. Returns: 1 when a request
 * was withdrawn, 0 when none was pending, -EINVAL outside a task.
 * Suspends: no. */
EDDY_API int eddy_task_uncancel(void);

/* Lets the task free itself when it finishes. Returns: 0; -EINVAL (not a
 * live task, already detached, or being joined); -EBUSY when it is the task
 * eddy_loop_run_until waits for. Suspends: no. */
EDDY_API int eddy_task_detach(struct eddy_task *task);

/*
 * Lets every other runnable task run once, then continues (asyncio.sleep(0)).
 * Returns: 0; -ECANCELED; -ETIMEDOUT (scope deadline passed); -EINVAL
 * outside a task. Suspends: yes.
 */
EDDY_API int eddy_task_yield(void);

/* Suspends the current task for ns / ms. Returns: 0 when the time has passed;
 * -ECANCELED; -ETIMEDOUT when a timeout scope ends first; -EINVAL outside a
 * task or for a negative duration. Suspends: yes. */
EDDY_API int eddy_sleep_ns(int64_t ns);
EDDY_API int eddy_sleep_ms(int64_t ms);
/* Suspends until the absolute monotonic deadline. Same returns as sleep. */
EDDY_API int eddy_sleep_until(int64_t deadline_ns);

/* The running task, or NULL outside a task. */
EDDY_API struct eddy_task *eddy_task_current(void);
EDDY_API bool eddy_task_is_done(const struct eddy_task *task);
/* True when a cancellation request is pending (also one held by a shield). */
EDDY_API bool eddy_task_is_cancelled(const struct eddy_task *task);
/* The task's return value. Returns: 0; -EAGAIN while it still runs. */
EDDY_API int eddy_task_result(const struct eddy_task *task, intptr_t *result);
EDDY_API const char *eddy_task_name(const struct eddy_task *task);

/* ---- timeout scopes (asyncio.timeout) ------------------------------------
 *   struct eddy_timeout t;
 *   eddy_timeout_enter(&t, 50 * EDDY_NS_PER_MS);
 *   int rc = do_things();                  // blocking calls: -ETIMEDOUT at 50 ms
 *   if (eddy_timeout_exit(&t) == -ETIMEDOUT) ...  // this scope's deadline hit
 * Scopes nest; a blocking call sees the earliest deadline of all enclosing
 * scopes. Scopes are exited in reverse order of entry.
 */
struct eddy_timeout {
    int64_t deadline_ns;
    int64_t _outer_deadline;
    struct eddy_timeout *_outer;
    struct eddy_task *_task;
    bool _shield; /* the scope of an eddy_shield */
};

/* Enters a scope ending timeout_ns from now (scope is caller memory, retained
 * until exit). Returns: 0; -EINVAL outside a task or for a negative timeout.
 * Suspends: no. */
EDDY_API int eddy_timeout_enter(struct eddy_timeout *scope, int64_t timeout_ns);
/* As enter, with an absolute deadline. */
EDDY_API int eddy_timeout_enter_at(struct eddy_timeout *scope, int64_t deadline_ns);
/* Leaves the scope. Returns: 0; -ETIMEDOUT when this scope's deadline has
 * passed; -EINVAL when scope is not the innermost scope of this task. */
EDDY_API int eddy_timeout_exit(struct eddy_timeout *scope);
/* True once the scope's own deadline has passed. */
EDDY_API bool eddy_timeout_is_expired(const struct eddy_timeout *scope);

/* ---- shields (trio's CancelScope(shield=True)) -----------------------------
 * A shield lets cleanup code block although the task was cancelled or its
 * timeout scope expired:
 *   if (rc == -ECANCELED) {
 *       struct eddy_shield sh;
 *       eddy_shield_enter(&sh);
 *       struct eddy_timeout t;                  // optional: bound the cleanup
 *       eddy_timeout_enter(&t, 100 * EDDY_NS_PER_MS);
 *       flush(conn);                            // blocks; no -ECANCELED here
 *       eddy_timeout_exit(&t);
 *       eddy_shield_exit(&sh);                  // the cancellation is back
 *   }
 * Inside a shield, blocking calls ignore the task's cancellation and every
 * timeout scope entered before the shield; timeout scopes entered inside it
 * work as usual. A cancellation that comes while the task is shielded is
 * held (eddy_task_cancel returns 0, eddy_task_is_cancelled is true, and the
 * task is not woken) and takes effect when the outermost shield ends, as
 * does an enclosing scope whose deadline passed meanwhile. Shields nest with
 * timeout scopes, and both are exited in reverse order of entry.
 * A shield covers the calling task only: tasks it spawns or joins are not
 * shielded. A shielded task also holds up eddy_loop_destroy and the end of
 * eddy_run, which cancel every task and wait for them: keep shielded work
 * short, or bound it with a timeout scope inside the shield.
 * asyncio.shield(task) is eddy_shield_join in eddy/sync.h.
 */
struct eddy_shield {
    struct eddy_timeout _scope; /* the shield's place among the task's scopes */
};

/* Enters a shield (shield is caller memory, retained until exit).
 * Returns: 0; -EINVAL outside a task or for NULL. Suspends: no. */
EDDY_API int eddy_shield_enter(struct eddy_shield *shield);
/* Leaves the shield; when it was the outermost one, a held cancellation and
 * the enclosing scopes' deadlines apply again from the next blocking call.
 * Returns: 0; -EINVAL when shield is not the innermost scope of this task
 * (a timeout scope entered inside it is still open, or it was never
 * entered, or already exited). Suspends: no. */
EDDY_API int eddy_shield_exit(struct eddy_shield *shield);

/* ---- callback timers (loop.call_later) -----------------------------------
 * A timer runs fn(arg) on the loop thread, outside any task, at its
 * deadline. The struct is caller memory; its fields are private. Insert and
 * stop are O(log n) (a 4-ary heap holding each timer's slot index).
 */
struct eddy_timer {
    int64_t deadline_ns;
    uint64_t _seq;
    uint32_t _slot; /* heap index + 1; 0 when not armed */
    eddy_callback_fn *_fn;
    void *_arg;
};

/* Arms the timer (re-arms it when already armed). Must run on the current
 * loop's thread. Returns: 0; -ENOMEM; -EINVAL without a current loop.
 * Suspends: no. */
EDDY_API int eddy_timer_start(struct eddy_timer *timer, int64_t deadline_ns, eddy_callback_fn *fn,
                              void *arg);
/* Disarms the timer. Stopping a timer that fired or never started is a
 * no-op. Suspends: no. */
EDDY_API void eddy_timer_stop(struct eddy_timer *timer);
EDDY_API bool eddy_timer_is_active(const struct eddy_timer *timer);

/* ---- wait queues -----------------------------------------------------------
 * A FIFO of parked tasks: the base every coordination primitive (locks,
 * semaphores, queues, futures in eddy/sync.h) is built on. A waker picks
 * the task at the head and hands it a code; the woken task returns that
 * code from eddy_waitq_wait. A waiter that is cancelled or times out leaves
 * the queue by itself and is never handed a code, so a hand-off (a lock, a
 * queue item) is never lost: it goes to the next waiter instead.
 * The struct is caller memory; its fields are private.
 */
struct eddy_waitq {
    void *_next;
    void *_prev;
};

/* Makes q empty. Suspends: no. */
EDDY_API void eddy_waitq_init(struct eddy_waitq *q);

/*
 * Parks the current task at the tail of q until a waker picks it, or until
 * deadline_ns (absolute; EDDY_DEADLINE_NEVER for none).
 * Returns: the waker's code (the caller's protocol gives it a meaning);
 * -ECANCELED; -ETIMEDOUT (deadline_ns or a timeout scope); -EINVAL outside a
 * task; -ENOMEM when a deadline timer could not be armed. Suspends: yes.
 */
EDDY_API int eddy_waitq_wait(struct eddy_waitq *q, int64_t deadline_ns);

/* Wakes the task at the head of q with code (which should not be one of
 * -ECANCELED / -ETIMEDOUT, so callers can tell them apart). Returns true when
 * a task was woken, false when none was waiting. Callable from tasks and
 * from callbacks on the loop thread. Suspends: no. */
EDDY_API bool eddy_waitq_wake_one(struct eddy_waitq *q, int code);
/* Wakes every waiting task with code; returns how many. Suspends: no. */
EDDY_API size_t eddy_waitq_wake_all(struct eddy_waitq *q, int code);
EDDY_API bool eddy_waitq_is_empty(const struct eddy_waitq *q);

/* ---- fd readiness ---------------------------------------------------------
 * The io layer's base: try the syscall; on EAGAIN, wait. An fd is added to
 * epoll (edge-triggered, read and write) on its first wait and stays there
 * until eddy_fd_close() or eddy_fd_forget(); it is never re-armed per wait.
 * An fd that was waited on must leave through one of those two, because the
 * kernel drops a closed fd from epoll without telling eddy.
 */
#define EDDY_FD_READ 1u
#define EDDY_FD_WRITE 2u

/*
 * Parks the current task until fd may be readable / writable (any of
 * `events`), or has an error or hangup pending. The caller retries its
 * syscall afterwards; a wakeup can be spurious.
 * Returns: 0; -ECANCELED; -ETIMEDOUT; -EBADF when the fd was closed with
 * eddy_fd_close() meanwhile; -EINVAL for a negative fd, events 0 or a call
 * outside a task; -EPERM for an fd epoll cannot watch (a regular file);
 * -ENOMEM. Suspends: yes.
 */
EDDY_API int eddy_fd_wait(int fd, uint32_t events);

/*
 * Readiness memory, for callers that can tell a drained fd without a
 * syscall (nginx's `ready` flag): each readiness edge is remembered on the
 * fd until someone reports the fd drained, with eddy_fd_mark_drained or by
 * calling eddy_fd_wait (which is called after EAGAIN). A reader that got
 * fewer bytes than it asked from a byte stream (a SOCK_STREAM socket, a
 * pipe) marks READ drained and, before its next read, calls
 * eddy_fd_wait_ready: that returns at once when an edge came since, and
 * otherwise parks, so the read that would only say EAGAIN is never made.
 * A peer's FIN or an error is remembered for good (reads no longer block).
 * Not for datagram or message fds (UDP, SEQPACKET, inotify, ttys): a short
 * read there does not mean drained. TCP urgent data ends a read early
 * without draining; eddy does not use it (neither does nginx).
 */

/* Parks as eddy_fd_wait, but returns 0 at once when an edge for `events`
 * arrived since the fd was last marked drained (or waited on), so the
 * caller tries its syscall; it may still find EAGAIN and must then call
 * eddy_fd_wait. An fd not yet in epoll is added and the task parks (epoll
 * reports the current state as a first edge).
 * Returns: as eddy_fd_wait (-ECANCELED also when an edge is pending but the
 * task is cancelled). Suspends: yes, unless an edge is pending. */
EDDY_API int eddy_fd_wait_ready(int fd, uint32_t events);

/* Forgets the edges remembered for `events` on fd (not a FIN or an error):
 * the caller just saw fd drained, with no suspension since its syscall.
 * A no-op for an fd the loop does not watch or outside a loop.
 * Suspends: no. */
EDDY_API void eddy_fd_mark_drained(int fd, uint32_t events);

/* True when fd is watched by the loop (the running one, else this
 * thread's last) and an edge for any of `events` is remembered.
 * Suspends: no. */
EDDY_API bool eddy_fd_is_ready(int fd, uint32_t events);

/* Removes fd from the loop (the running one, else the last loop created on
 * this thread), wakes every task waiting on it with -EBADF, then closes it.
 * Returns: 0 or the -errno of close(). Suspends: no. */
EDDY_API int eddy_fd_close(int fd);
/* As eddy_fd_close, without closing the fd. Returns: 0. */
EDDY_API int eddy_fd_forget(int fd);

/* ---- offload pool (asyncio's run_in_executor / to_thread) ---------------
 * Runs a blocking function (a file operation, getaddrinfo, a CPU-heavy
 * computation) on a worker thread; only the calling task is parked.
 *
 * The pool is process-wide, shared by every loop of the process (as libuv's
 * is). Its size is eddy_offload_set_threads(), else the environment variable
 * EDDY_OFFLOAD_THREADS (1 to EDDY_OFFLOAD_MAX_THREADS), else 4. Threads start
 * when jobs need them and block every signal. Jobs run in FIFO order of
 * submission; the queue is unbounded.
 *
 *   intptr_t r;
 *   int rc = eddy_offload_run(read_file, &req, free_req, &r);
 *   if (rc < 0) return rc;   // req now belongs to free_req
 *
 * Ownership of arg: when the call returns 0, fn has run and arg is the
 * caller's again. When it returns an error, arg is transferred: dispose
 * (when not NULL) is called exactly once, on the loop's thread:
 * dispose(arg, 0, false) when fn never ran and never will, inside the call
 * before it returns; dispose(arg, result, true) with the late result of a
 * job that was already running when its caller left, outside any task when
 * the loop collects it (or inside eddy_loop_destroy). dispose must not block.
 *
 * Loop destroy: the loop's tasks are cancelled first, so its jobs lose
 * their callers; eddy_loop_destroy drops those not yet started (dispose with
 * ran=false) and waits for the running ones to return (dispose with
 * ran=true). A job that never returns keeps eddy_loop_destroy waiting.
 * fork(): the child starts its own workers; jobs running in the parent at the
 * fork never complete in the child.
 */
#define EDDY_OFFLOAD_MAX_THREADS 1024u

/* A blocking function run on a worker thread: it must not use the loop, its
 * tasks or anything else that belongs to the loop's thread. */
typedef intptr_t eddy_offload_fn(void *arg);
/* Receives arg (and fn's result when ran is true) of a job whose caller did
 * not receive the result. */
typedef void eddy_offload_dispose_fn(void *arg, intptr_t result, bool ran);

/*
 * Runs fn(arg) on a worker thread and parks the calling task until it
 * returns; *result (may be NULL) receives its return value.
 * Returns: 0; -ECANCELED / -ETIMEDOUT at once when the caller is cancelled
 * or its timeout scope expires (a job not yet started is dropped, a running
 * one finishes and its result goes to dispose); -EINVAL outside a task or
 * for a NULL fn; -ENOMEM; -EAGAIN when no worker thread could be started.
 * A result that was collected before a cancelled caller ran is returned with
 * 0 (the cancellation then stays pending for the next blocking call).
 * arg: retained until the call returns 0, else transferred to dispose (see
 * above). fn, dispose: called from a worker thread / the loop thread.
 * Suspends: yes. Thread rules: from a task.
 */
EDDY_API int eddy_offload_run(eddy_offload_fn *fn, void *arg, eddy_offload_dispose_fn *dispose,
                              intptr_t *result);

/* Sets the pool size (1 to EDDY_OFFLOAD_MAX_THREADS). Growing starts threads
 * as jobs need them; shrinking lets the extra threads leave after their
 * current job. Returns: 0; -EINVAL. Suspends: no. Thread rules: any thread. */
EDDY_API int eddy_offload_set_threads(unsigned n);
/* The pool size in force. Suspends: no. Thread rules: any thread. */
EDDY_API unsigned eddy_offload_threads(void);

/* ---- cross-thread channel -----------------------------------------------
 * A bounded FIFO of intptr_t values (pointers fit) through which threads
 * outside a loop, or tasks of other loops, hand values to the tasks of one
 * loop (the channel's loop, which owns it). Senders may be on any thread;
 * receivers are tasks of the channel's loop.
 *
 *   sender (any thread)              receiver (task of the loop)
 *   eddy_channel_try_send  -EAGAIN   eddy_channel_recv      parks while empty
 *   eddy_channel_send_blocking waits eddy_channel_try_recv  -EAGAIN
 *   eddy_channel_send (in a task)    eddy_channel_close     from any side
 *
 * Order: values from one sender are received in the order it sent them.
 * Close: sends fail with -EPIPE at once; receivers first drain what is in
 * the channel, then get -EPIPE; parked senders and receivers are woken.
 * A cross-thread send wakes the loop through its eventfd with an intrusive
 * post, no allocation, and only when a receiver is parked and no wakeup is
 * already on its way. Costs: a send or receive is a mutex lock/unlock and a
 * ring-buffer slot.
 *
 * Lifetime: eddy_channel_destroy runs on the loop's thread once no task is
 * parked on the channel (close first and let them leave) and once every
 * other thread has returned from its last call on it; the loop must not be
 * destroyed before its channels.
 */
struct eddy_channel;

/*
 * Creates a channel of `capacity` values (>= 1) owned by loop (which need
 * not be running). Returns: 0; -EINVAL (NULL loop or out, capacity 0 or too
 * large); -ENOMEM. Suspends: no. Thread rules: the loop's thread.
 */
EDDY_API int eddy_channel_create(struct eddy_loop *loop, size_t capacity,
                                 struct eddy_channel **out);

/* Frees the channel. Returns: 0; -EBUSY while tasks are parked on it (or
 * woken and not yet run): nothing is freed. Values still inside are
 * dropped (the caller owns what they point to: drain with try_recv first).
 * Suspends: no. Thread rules: the loop's thread. */
EDDY_API int eddy_channel_destroy(struct eddy_channel *ch);

/* Appends value without waiting. Returns: 0; -EAGAIN when the channel is
 * full; -EPIPE once closed; -EINVAL for NULL. Suspends: no. Thread rules:
 * any thread. */
EDDY_API int eddy_channel_try_send(struct eddy_channel *ch, intptr_t value);

/*
 * Appends value, blocking the calling thread (a condition variable wait)
 * while the channel is full, until deadline_ns (absolute, CLOCK_MONOTONIC as
 * eddy_clock_ns; EDDY_DEADLINE_NEVER for none). For plain threads.
 * Returns: 0; -EPIPE once closed (also when closed while waiting);
 * -ETIMEDOUT; -EINVAL for NULL; -EDEADLK on the channel's loop thread (a
 * wait there could never end: use eddy_channel_send in a task).
 * Suspends: no (blocks the thread). Thread rules: any thread but the loop's.
 */
EDDY_API int eddy_channel_send_blocking(struct eddy_channel *ch, intptr_t value,
                                        int64_t deadline_ns);

/*
 * Appends value from a task, parking it while the channel is full. A task
 * of the channel's loop parks on a wait queue woken by receivers; a task of
 * another loop polls with a backoff of 50 us growing to 1 ms (its loop keeps
 * running meanwhile). Returns: 0; -EPIPE once closed; -ECANCELED;
 * -ETIMEDOUT (timeout scope); -EINVAL outside a task or for NULL; -ENOMEM.
 * Suspends: yes. Thread rules: a task of any loop.
 */
EDDY_API int eddy_channel_send(struct eddy_channel *ch, intptr_t value);

/*
 * Takes the oldest value into *value, parking the task while the channel
 * is empty. Returns: 0; -EPIPE when closed and empty; -ECANCELED;
 * -ETIMEDOUT (timeout scope); -EINVAL outside a task of the channel's loop
 * or for NULL; -ENOMEM. A receiver that is cancelled never takes a value.
 * Suspends: yes. Thread rules: a task of the channel's loop.
 */
EDDY_API int eddy_channel_recv(struct eddy_channel *ch, intptr_t *value);

/* As eddy_channel_recv without waiting. Returns: 0; -EAGAIN when empty;
 * -EPIPE when closed and empty; -EINVAL for NULL or off the loop's thread.
 * Suspends: no. Thread rules: the loop's thread. */
EDDY_API int eddy_channel_try_recv(struct eddy_channel *ch, intptr_t *value);

/* Closes the channel (see above). Returns: 0; -EALREADY when already
 * closed; -EINVAL for NULL. Suspends: no. Thread rules: any thread. */
EDDY_API int eddy_channel_close(struct eddy_channel *ch);

/* Values in the channel now (a snapshot when other threads send). */
EDDY_API size_t eddy_channel_len(struct eddy_channel *ch);
EDDY_API bool eddy_channel_is_closed(struct eddy_channel *ch);

/* ---- signals ------------------------------------------------------------
 * Awaiting signals in a task (loop.add_signal_handler, the base of graceful
 * shutdown), through a signalfd the loop watches like any other fd.
 *
 *   static const int stop[] = {SIGINT, SIGTERM};
 *   int sig = eddy_signal_wait(stop, 2, EDDY_DEADLINE_NEVER);  // SIGTERM...
 *
 * The thread-mask rule: a signalfd only receives a signal that is blocked,
 * and the kernel delivers a process-wide signal (kill(1), Ctrl-C) to any
 * thread that does not block it, where it runs its handler or default
 * action (for SIGTERM, SIGINT, SIGHUP: the process ends). So block the
 * signals in every thread: best in main() before any thread starts, since
 * threads inherit the mask (the offload workers already block everything).
 * eddy_signal_wait blocks its signals in the calling thread and leaves them
 * blocked when it returns, so a signal arriving between two waits stays
 * pending (it is not lost, and does not kill the process) and the next
 * wait for it returns at once; unblock it with pthread_sigmask to restore
 * the default. A signal sent to the loop's thread alone (raise,
 * pthread_kill) needs only that thread's mask. Standard signals do not
 * queue: several arrivals before a read are one; real-time signals queue.
 *
 * Several waiters: each signal read is handed to every task of the loop
 * that is waiting for it at that moment (a broadcast: two tasks waiting
 * for SIGTERM both return SIGTERM); tasks waiting for other signals keep
 * waiting. The signalfd exists while tasks wait (one per loop, its mask the
 * union of their signals) and is closed by the last one to leave.
 *
 * The child processes of eddy_process_spawn start with an empty mask.
 * Synchronous signals (SIGSEGV, SIGFPE... caused by the thread itself)
 * cannot be awaited: the kernel kills the process when they are blocked.
 */

/*
 * Parks the current task until one of the n signals in sigs arrives (or is
 * already pending), until deadline_ns (absolute; EDDY_DEADLINE_NEVER for
 * none) or a timeout scope passes, or the task is cancelled. Blocks the
 * signals in the thread's signal mask first (see above). A signal that
 * arrived is returned even when a cancellation came at the same time (the
 * cancellation stays pending for the next blocking call).
 * Returns: the signal number (> 0); -ETIMEDOUT; -ECANCELED; -EINVAL (sigs
 * NULL, n 0, a number that is not a signal, SIGKILL or SIGSTOP, a signal
 * glibc reserves for its threads, a call outside a task); -ENOMEM;
 * -EMFILE/-ENFILE (signalfd). sigs: borrowed. Suspends: yes.
 * Thread rules: a task of the loop on the calling thread.
 */
EDDY_API int eddy_signal_wait(const int *sigs, size_t n, int64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif
