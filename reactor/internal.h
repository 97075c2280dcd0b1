/*
 * reactor/internal.h: the loop and task structures, the poller seam and the
 * park/wake protocol that every blocking call of eddy is built on.
 *
 * Park/wake. A blocking call parks the current task (eddy__task_park) after
 * linking it where its waker will find it (an fd's waiter list, a lock's
 * queue); the waker calls eddy__task_wake(task, code). The parked task
 * resumes with that code, or with -ECANCELED (eddy_task_cancel), or -ETIMEDOUT
 * (a timeout scope's deadline), or EDDY__WAKE_DEADLINE (the call's own
 * deadline). It then unlinks itself (eddy__list_remove is idempotent): wakers
 * never unlink, so every wake reason leaves the same state behind.
 *
 * Shields work on the two fields every blocking call already reads: inside
 * one, EDDY__TASK_CANCEL stays clear (a cancellation is held in
 * EDDY__TASK_CANCEL_HELD) and task->deadline ignores the scopes outside it.
 * So a call that checks flags and deadline itself (offload) needs nothing
 * to know about shields.
 */
#ifndef EDDY_REACTOR_INTERNAL_H
#define EDDY_REACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "alloc/heap.h"
#include "alloc/internal.h"
#include "alloc/list.h"
#include <eddy/reactor.h>

/* ---- poller seam (reactor/epoll.c is the only implementation) ---------- */

enum {
    EDDY__EV_READ = 1u,
    EDDY__EV_WRITE = 2u,
    EDDY__EV_ERROR = 4u, /* error or hangup: wake every waiter */
    EDDY__EV_RDHUP = 8u, /* the peer shut down its writing side (with READ) */
};

struct eddy__poller {
    int fd;
    bool has_pwait2; /* nanosecond timeouts (Linux 5.11) */
    void *events;
    int capacity;
};

typedef void eddy__poller_event_fn(struct eddy_loop *loop, int fd, uint32_t events);

int eddy__poller_init(struct eddy__poller *p);
void eddy__poller_fini(struct eddy__poller *p);
/* Watches fd for read and write readiness, edge-triggered, until removed. */
int eddy__poller_add(struct eddy__poller *p, int fd);
int eddy__poller_remove(struct eddy__poller *p, int fd);
/* Waits up to timeout_ns (< 0: no limit, 0: poll) and calls fn for each
 * ready fd. Returns the number of events, or -errno (never -EINTR). */
int eddy__poller_wait(struct eddy__poller *p, int64_t timeout_ns, eddy__poller_event_fn *fn,
                      struct eddy_loop *loop);

/* ---- tasks --------------------------------------------------------------- */

enum eddy__task_state {
    EDDY__TASK_RUNNABLE, /* in the run queue */
    EDDY__TASK_RUNNING,
    EDDY__TASK_PARKED,
    EDDY__TASK_DONE,
};

enum {
    EDDY__TASK_DETACHED = 1u << 0,
    EDDY__TASK_CANCEL = 1u << 1, /* cancellation requested and in force */
    /* Requested while the task is shielded: becomes EDDY__TASK_CANCEL when
     * its outermost shield ends. Never set together with EDDY__TASK_CANCEL. */
    EDDY__TASK_CANCEL_HELD = 1u << 2,
    EDDY__TASK_SAVE_FPU = 1u << 3, /* eddy_task_opts.save_fpu, for its first run */
};

/* struct eddy_task.stack_class: no reservation (started, or its coroutine
 * was given at spawn). */
#define EDDY__TASK_NO_STACK_CLASS (-1)

/* struct eddy_task.magic of a live handle (0 once freed). */
#define EDDY__TASK_MAGIC 0x7a5c0de1u

/* Park's answer when the call's own deadline passed (not an error). */
#define EDDY__WAKE_DEADLINE 1

struct eddy_task {
    struct eddy__list run_link; /* first: a freed task's slab link lands here */
    uint32_t magic;
    uint8_t state;
    uint8_t flags;
    /* The size class of its stack reservation, until its first run;
     * EDDY__TASK_NO_STACK_CLASS when it has none. */
    int8_t stack_class;
    int wake_rc;
    uint32_t shields; /* shields entered and not yet exited */
    struct eddy_loop *loop;
    struct eddy_coro *coro; /* NULL before its first run and once finished */
    eddy_task_fn *fn;
    void *arg;
    intptr_t result;
    struct eddy__list wait_link; /* on one wait list while parked */
    uint32_t wait_events;        /* what an fd waiter waits for */
    uint32_t stack_size_bytes;   /* eddy_task_opts.stack_size_bytes */
    struct eddy__list all_link;  /* the loop's list of tasks not yet freed */
    struct eddy_timer timer;     /* the deadline of the current park */
    /* Earliest deadline of the enclosing scopes, counting only those
     * entered after the innermost shield (NEVER right inside a shield). */
    int64_t deadline;
    int64_t park_deadline;      /* the current park's, for the lazy timer */
    struct eddy_timeout *scope; /* innermost timeout scope or shield */
    struct eddy_task *joiner;
    int64_t slice_start_ns; /* EDDY_DEBUG: when it last started running */
    uint64_t id;
    char name[32];
};

/* ---- the loop ------------------------------------------------------------ */

struct eddy__fd_slot {
    struct eddy__list waiters;
    bool registered;
    /* EDDY_FD_READ / EDDY_FD_WRITE: an edge arrived since the fd was last
     * seen drained in that direction (reactor/fd.c). */
    uint8_t ready;
    /* The directions no drain can clear any more: READ after the peer's
     * FIN, both after an error or hangup. Both reset when the fd leaves. */
    uint8_t sticky;
};

#define EDDY__FD_CHUNK 1024
#define EDDY__CORO_CACHE 64

struct eddy__post {
    struct eddy__post *next;
    eddy_callback_fn *fn;
    void *arg;
};

/* An intrusive post: a node embedded in the object it concerns (an offload
 * job, a channel), pushed from any thread without allocating and run on the
 * loop thread, outside any task, in push order (see eddy__loop_xpost). */
struct eddy__xpost {
    struct eddy__xpost *next;
    void (*fn)(struct eddy__xpost *node);
};

struct eddy_loop {
    int64_t now; /* read once per iteration */
    struct eddy_task *current;
    struct eddy_coro *sched; /* the thread's main coroutine, where the loop runs */
    struct eddy__list runq;
    uint32_t budget;          /* dispatches left before control returns to the loop */
    int64_t polled;           /* when the loop last polled (clock ns) */
    struct eddy_task *zombie; /* finished; its stack is freed by the next context */
    /* The loop's first coroutine was created (at a spawn, where the thread's
     * one-time coroutine set-up can still fail); since then a spawn that
     * finds no cached coroutine reserves a stack and leaves the coroutine to
     * the task's first run, where it cannot fail. */
    bool coro_ready;
    /* Finished coroutines with default-size stacks, kept for the next spawn
     * (eddy_coro_reset skips the stack pool round trip). */
    struct eddy_coro *coro_cache[EDDY__CORO_CACHE];
    uint32_t coro_cache_len;
    struct eddy__heap timers;
    struct eddy__poller poller;

    struct eddy_obj_slab task_slab;
    struct eddy_stack_pool *stacks;
    struct eddy__list tasks; /* every task not yet freed */
    size_t live;             /* tasks not yet finished */
    uint64_t next_id;
    /* "task-<next_id>", kept up to date by incrementing its digits, so that
     * naming an unnamed task costs a copy and not a number formatting. */
    char next_name[32];
    uint32_t next_name_len;
    struct eddy_task *until; /* the task eddy_loop_run_until waits for */

    struct eddy__fd_slot **fd_chunks;
    size_t fd_nchunks;

    /* Cross-thread entry: posts and stop, signalled through an eventfd. */
    int wake_fd;
    pthread_mutex_t post_lock;
    struct eddy__post *post_head;
    struct eddy__post **post_tail;
    atomic_bool stop;
    bool closing;
    pthread_t owner;
    /* Intrusive posts: a lock-free stack (pushed by any thread, taken whole
     * by the loop), and how many pushers are between their push and their
     * eventfd write (destroy waits for 0 before closing the eventfd). */
    _Atomic(struct eddy__xpost *) xpost_head;
    atomic_uint xpost_writers;
    /* Offload (reactor/offload.c), loop thread only: jobs submitted and not
     * yet collected, and free job objects kept for the next submissions. */
    size_t offload_inflight;
    void *offload_free;
    size_t offload_free_len;

    bool debug; /* EDDY_DEBUG */
    int64_t slow_ns;
    struct eddy_task **quarantine; /* EDDY_DEBUG: freed tasks, reused late */
    size_t quarantine_len;
    size_t quarantine_next;
};

/* The loop running on this thread, and the last loop created on it. */
extern __thread struct eddy_loop *eddy__loop_tls __attribute__((tls_model("initial-exec")));
extern __thread struct eddy_loop *eddy__loop_owned_tls __attribute__((tls_model("initial-exec")));

static inline struct eddy_task *eddy__task_self(void)
{
    struct eddy_loop *loop = eddy__loop_tls;
    return loop ? loop->current : NULL;
}

/* Parks the current task until woken or until min(deadline, scope deadline).
 * Returns the waker's code, -ECANCELED, -ETIMEDOUT or EDDY__WAKE_DEADLINE. */
int eddy__task_park(struct eddy_task *self, int64_t deadline);
/* Makes a parked task runnable with code rc; no-op when it is not parked. */
void eddy__task_wake(struct eddy_task *task, int rc);
/* The one place the scheduler switches from (noinline on purpose); frees
 * the stack of a task that just finished. */
void eddy__loop_transfer(struct eddy_loop *loop, struct eddy_coro *from, struct eddy_coro *to);
/* Frees the coroutine of a task that finished (called after each switch). */
void eddy__loop_reap(struct eddy_loop *loop);
/* Starts running task from the loop's scheduler (main) context. */
void eddy__loop_dispatch(struct eddy_loop *loop, struct eddy_task *task);
/* Gives a task that has never run its coroutine (a finished one the loop
 * kept, or one on its reserved stack) and returns it. Cannot fail. */
struct eddy_coro *eddy__task_start(struct eddy_loop *loop, struct eddy_task *task);
void eddy__debug_slice_end(struct eddy_loop *loop, struct eddy_task *task);

static inline void eddy__loop_start_slice(struct eddy_loop *loop, struct eddy_task *next)
{
    next->state = EDDY__TASK_RUNNING;
    loop->current = next;
    if (EDDY_UNLIKELY(loop->debug))
        next->slice_start_ns = eddy_clock_ns();
}

/* Picks the next runnable task within the iteration's budget and makes it
 * current; returns its coroutine, or the loop's when none may run. */
static inline struct eddy_coro *eddy__loop_next(struct eddy_loop *loop)
{
    struct eddy__list *n;
    if (loop->budget > 0 && (n = eddy__list_pop_front(&loop->runq)) != NULL) {
        loop->budget--;
        struct eddy_task *next = eddy__container_of(n, struct eddy_task, run_link);
        eddy__loop_start_slice(loop, next);
        return next->coro ? next->coro : eddy__task_start(loop, next);
    }
    loop->current = NULL;
    return loop->sched;
}

/* Switches from the current task to the next runnable one (or the loop).
 * The caller has already queued or parked self. Inline, so that a blocking
 * call adds no return levels between itself and the switch. */
static inline void eddy__loop_switch_from(struct eddy_loop *loop, struct eddy_task *self)
{
    if (EDDY_UNLIKELY(loop->debug))
        eddy__debug_slice_end(loop, self);
    struct eddy_coro *to = eddy__loop_next(loop);
    if (to != self->coro)
        eddy__loop_transfer(loop, self->coro, to);
}

void eddy__timers_fire(struct eddy_loop *loop);
/* ns until the earliest timer (0 when due), -1 when there is none. */
int64_t eddy__timers_next_ns(const struct eddy_loop *loop);

void eddy__fd_event(struct eddy_loop *loop, int fd, uint32_t events);
void eddy__fd_table_fini(struct eddy_loop *loop);

void eddy__task_free(struct eddy_loop *loop, struct eddy_task *task);

/* Pushes node for the loop; node->fn(node) runs on the loop thread, outside
 * any task, after the eventfd wakes the loop. Thread-safe, lock-free, no
 * allocation. node is retained until fn runs; each node may be pushed again
 * only after its fn has started. Until eddy_loop_destroy has finished
 * eddy__offload_loop_fini, every pushed node runs. */
void eddy__loop_xpost(struct eddy_loop *loop, struct eddy__xpost *node);
/* Runs the intrusive posts pushed so far (loop thread). */
void eddy__loop_xpost_run(struct eddy_loop *loop);
/* Destroy's hook (reactor/offload.c): drops this loop's jobs not yet started,
 * waits for its running jobs, disposes of their results, and waits until no
 * thread is still inside eddy__loop_xpost, so the eventfd can be closed. */
void eddy__offload_loop_fini(struct eddy_loop *loop);
void eddy__debug_report_end(struct eddy_loop *loop);

#endif
