/*
 * reactor/offload.c: the offload pool (asyncio's run_in_executor and
 * to_thread): blocking functions run on worker threads while only the
 * calling task is parked.
 *
 * One pool per process, as in libuv: file operations and getaddrinfo from
 * every loop of the process share its threads, and a program with one loop
 * per core does not multiply them. Its size is eddy_offload_set_threads(),
 * else EDDY_OFFLOAD_THREADS, else 4. Threads start lazily: a submission
 * starts one more thread when there are more queued jobs than idle workers
 * and the pool is below its size, so N blocking jobs submitted together run
 * on N threads (up to the size) instead of waiting behind one worker.
 *
 * A job. The caller's loop keeps free job objects (loop->offload_free), so a
 * submission allocates nothing in the steady state. The job is queued FIFO on
 * the pool's list under the pool lock; a worker takes it, runs fn(arg)
 * without the lock, and hands it back to the loop as an intrusive post
 * (eddy__loop_xpost: a lock-free push plus, when the stack was empty, one
 * eventfd write). The loop collects it (collect()): it wakes the caller, or,
 * when the caller is gone, calls the job's dispose callback and frees it.
 * Objects on the loop side (waiter, collected, the free list, the in-flight
 * count) are only touched by the loop thread; `queued` is under the pool lock.
 *
 * A caller that is cancelled or whose timeout scope expires returns at once.
 * A job not yet taken by a worker is unlinked and dropped (dispose(arg, 0,
 * false) before the caller returns); a running job is left to finish and its
 * late result goes to dispose(arg, result, true) on the loop thread. So for
 * every accepted job either the caller gets the result or dispose runs,
 * exactly once.
 *
 * Loop destroy. Every task of the loop is cancelled first, so the loop's jobs
 * have no callers left. eddy__offload_loop_fini drops the queued ones and
 * waits (poll on the loop's eventfd) until the running ones have finished,
 * disposing of their results. A job that never returns therefore keeps
 * eddy_loop_destroy waiting; the alternative, detaching such jobs, would run
 * dispose on a worker thread and let workers write into a closed eventfd.
 *
 * fork(): the child of a process that started workers has none; an atfork
 * handler resets the pool so that the child starts its own. Jobs that were
 * running in the parent at the fork never complete in the child.
 *
 * Costs: a round trip is a lock/unlock and a condvar signal to submit, the
 * worker's wakeup, a lock-free push and an eventfd write and read back (the
 * write is skipped when the loop has not yet taken the previous completion),
 * and one switch to resume the caller. A worker that has just finished polls
 * for 50 us (yielding) before it sleeps, so a task offloading job after job
 * skips the condvar sleep and wakeup: BM_offload_roundtrip went from about
 * 18 us to 7 us pinned to one core, and from 46 us to 7 us on two cores.
 * The price is up to 50 us of one worker's CPU after each burst of jobs.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define DEFAULT_THREADS 4
/* Free job objects a loop keeps; more are freed when their jobs end. */
#define FREE_CACHE_MAX 256

struct job {
    struct eddy__xpost post; /* first: the completion hands the job back */
    struct eddy__list link;  /* in the pool's queue while queued */
    struct eddy_loop *loop;
    eddy_offload_fn *fn;
    void *arg;
    eddy_offload_dispose_fn *dispose;
    intptr_t result;
    struct eddy_task *waiter; /* loop thread: the parked caller, NULL once it left */
    bool queued;              /* pool lock: still in the queue, not yet taken */
    bool collected;           /* loop thread: the loop has the result */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work; /* signalled when a job is queued or the size shrinks */
    struct eddy__list queue;
    unsigned size;     /* configured size; 0 until first use */
    unsigned threads;  /* started and not yet exited */
    unsigned idle;     /* asleep on `work` */
    unsigned spinning; /* 0 or 1: a worker polling for the next job */
    size_t queued;
    atomic_size_t queued_hint; /* `queued`, readable without the lock */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .queue = {&pool.queue, &pool.queue},
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&pool.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
}

static void atfork_child(void)
{
    /* The workers did not come along; queued jobs stay for new ones. */
    pool.threads = 0;
    pool.idle = 0;
    pthread_cond_init(&pool.work, NULL);
    pthread_mutex_unlock(&pool.lock);
}

static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* The size from EDDY_OFFLOAD_THREADS, or the default. Pool lock held. */
static unsigned configured_size(void)
{
    if (pool.size == 0) {
        pool.size = DEFAULT_THREADS;
        const char *env = getenv("EDDY_OFFLOAD_THREADS");
        if (env && *env) {
            char *end;
            long n = strtol(env, &end, 10);
            if (*end == 0 && n >= 1 && n <= EDDY_OFFLOAD_MAX_THREADS)
                pool.size = (unsigned)n;
        }
    }
    return pool.size;
}

/* ---- workers ------------------------------------------------------------- */

/* A worker that just finished a job polls for the next one for up to
 * SPIN_NS before it sleeps on the condition variable (one worker at a
 * time). A task that offloads in a loop submits its next job a few
 * microseconds after the previous result reached it; catching it here saves
 * the futex sleep and wakeup on both sides. Each poll yields the CPU, so a
 * worker sharing a core with its loop lets the loop run. */
#define SPIN_NS (50 * 1000)

static void spin_for_work(void)
{
    int64_t end = eddy_clock_ns() + SPIN_NS;
    do {
        if (atomic_load_explicit(&pool.queued_hint, memory_order_relaxed) > 0)
            return;
        sched_yield();
    } while (eddy_clock_ns() < end);
}

static void *worker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        bool spun = false;
        while (pool.queued == 0 && pool.threads <= pool.size) {
            if (!spun && pool.spinning == 0) {
                spun = true;
                pool.spinning = 1;
                pthread_mutex_unlock(&pool.lock);
                spin_for_work();
                pthread_mutex_lock(&pool.lock);
                pool.spinning = 0;
                continue;
            }
            pool.idle++;
            pthread_cond_wait(&pool.work, &pool.lock);
            pool.idle--;
        }
        if (pool.threads > pool.size)
            break; /* the pool shrank: this thread goes */
        struct job *j = eddy__container_of(eddy__list_pop_front(&pool.queue), struct job, link);
        pool.queued--;
        atomic_store_explicit(&pool.queued_hint, pool.queued, memory_order_relaxed);
        j->queued = false;
        pthread_mutex_unlock(&pool.lock);

        j->result = j->fn(j->arg);
        /* The loop may free j as soon as it is pushed: last touch. */
        eddy__loop_xpost(j->loop, &j->post);

        pthread_mutex_lock(&pool.lock);
    }
    pool.threads--;
    /* Another thread may now be needed for jobs this one leaves behind. */
    if (pool.queued > 0)
        pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Starts one worker. Called with the pool lock held, pool.threads already
 * counting it. Workers block every signal, so that signals go to the loop
 * threads (and a handler never runs on a thread inside a blocking job). */
static int start_worker(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, worker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
}

EDDY_API int eddy_offload_set_threads(unsigned n)
{
    if (n < 1 || n > EDDY_OFFLOAD_MAX_THREADS)
        return -EINVAL;
    pthread_mutex_lock(&pool.lock);
    pool.size = n;
    /* Extra idle workers wake and leave; missing ones start on demand. */
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

EDDY_API unsigned eddy_offload_threads(void)
{
    pthread_mutex_lock(&pool.lock);
    unsigned n = configured_size();
    pthread_mutex_unlock(&pool.lock);
    return n;
}

/* ---- jobs on the loop side ----------------------------------------------- */

static struct job *job_get(struct eddy_loop *loop)
{
    struct job *j = loop->offload_free;
    if (j) {
        loop->offload_free = j->post.next;
        loop->offload_free_len--;
        return j;
    }
    return eddy__malloc(sizeof(*j));
}

static void job_put(struct eddy_loop *loop, struct job *j)
{
    if (loop->offload_free_len >= FREE_CACHE_MAX) {
        eddy__free(j);
        return;
    }
    j->post.next = loop->offload_free;
    loop->offload_free = j;
    loop->offload_free_len++;
}

/* A job nobody waits for is over: its result (or its arg alone, when it
 * never ran) goes to dispose, and the object back to the cache. */
static void job_abandon(struct eddy_loop *loop, struct job *j, bool ran)
{
    if (j->dispose)
        j->dispose(j->arg, ran ? j->result : 0, ran);
    job_put(loop, j);
}

/* Runs on the loop thread when a worker hands the job back. */
static void collect(struct eddy__xpost *node)
{
    struct job *j = (struct job *)(void *)node;
    struct eddy_loop *loop = j->loop;
    loop->offload_inflight--;
    if (j->waiter) {
        j->collected = true;
        /* A no-op when the caller was already woken by a cancellation: it
         * then finds `collected` set when it runs. */
        eddy__task_wake(j->waiter, 0);
    } else {
        job_abandon(loop, j, true);
    }
}

/* Takes j out of the queue if no worker has it yet. */
static bool unqueue(struct job *j)
{
    pthread_mutex_lock(&pool.lock);
    bool was = j->queued;
    if (was) {
        eddy__list_remove(&j->link);
        pool.queued--;
        atomic_store_explicit(&pool.queued_hint, pool.queued, memory_order_relaxed);
        j->queued = false;
    }
    pthread_mutex_unlock(&pool.lock);
    return was;
}

static int submit(struct job *j)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.lock);
    unsigned size = configured_size();
    j->queued = true;
    eddy__list_push_back(&pool.queue, &j->link);
    pool.queued++;
    atomic_store_explicit(&pool.queued_hint, pool.queued, memory_order_relaxed);
    /* More queued jobs than idle or spinning workers: one more thread, if
     * allowed. A signalled worker counts as idle until it wakes, so two
     * quick submissions to one idle worker start a second thread. */
    if (pool.queued > pool.idle + pool.spinning && pool.threads < size) {
        pool.threads++;
        int rc = start_worker();
        if (rc < 0) {
            pool.threads--;
            if (pool.threads == 0) {
                /* Nobody would ever run it. */
                eddy__list_remove(&j->link);
                pool.queued--;
                atomic_store_explicit(&pool.queued_hint, pool.queued, memory_order_relaxed);
                j->queued = false;
                pthread_mutex_unlock(&pool.lock);
                return -EAGAIN;
            }
        }
    }
    /* A spinning worker takes the first job without a wakeup. */
    if (pool.idle > 0 && pool.queued > pool.spinning)
        pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

/* The call is over without a result: arg goes to dispose, once. */
static int refuse(eddy_offload_dispose_fn *dispose, void *arg, int rc)
{
    if (dispose)
        dispose(arg, 0, false);
    return rc;
}

EDDY_API int eddy_offload_run(eddy_offload_fn *fn, void *arg, eddy_offload_dispose_fn *dispose,
                              intptr_t *result)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !fn)
        return refuse(dispose, arg, -EINVAL);
    struct eddy_loop *loop = self->loop;
    /* Cancelled or expired already: the same as a cancellation while queued. */
    if (self->flags & EDDY__TASK_CANCEL)
        return refuse(dispose, arg, -ECANCELED);
    if (self->deadline <= loop->now)
        return refuse(dispose, arg, -ETIMEDOUT);
    struct job *j = job_get(loop);
    if (!j)
        return refuse(dispose, arg, -ENOMEM);
    j->post.fn = collect;
    j->loop = loop;
    j->fn = fn;
    j->arg = arg;
    j->dispose = dispose;
    j->result = 0;
    j->waiter = self;
    j->collected = false;
    int rc = submit(j);
    if (rc < 0) {
        job_put(loop, j);
        return refuse(dispose, arg, rc);
    }
    loop->offload_inflight++;

    /* -ECANCELED, -ETIMEDOUT, 0 from collect(), or -ENOMEM when the scope's
     * deadline timer could not be armed (then it did not park at all). */
    rc = eddy__task_park(self, EDDY_DEADLINE_NEVER);
    j->waiter = NULL;
    if (j->collected) {
        /* Also when a cancellation came after the result: the result is
         * here, so it is given back rather than thrown away. The
         * cancellation stays pending for the next blocking call. */
        if (result)
            *result = j->result;
        job_put(loop, j);
        return 0;
    }
    if (unqueue(j)) {
        loop->offload_inflight--;
        job_abandon(loop, j, false);
    }
    /* Otherwise a worker runs it; collect() disposes of the late result. */
    return rc;
}

/* ---- loop destroy -------------------------------------------------------- */

void eddy__offload_loop_fini(struct eddy_loop *loop)
{
    if (loop->offload_inflight > 0) {
        /* The loop's tasks are all finished: no job has a caller any more. */
        struct eddy__list dropped;
        eddy__list_init(&dropped);
        pthread_mutex_lock(&pool.lock);
        struct eddy__list *pos, *tmp;
        eddy__list_for_each_safe (pos, tmp, &pool.queue) {
            struct job *j = eddy__container_of(pos, struct job, link);
            if (j->loop == loop) {
                eddy__list_remove(&j->link);
                pool.queued--;
                atomic_store_explicit(&pool.queued_hint, pool.queued, memory_order_relaxed);
                j->queued = false;
                eddy__list_push_back(&dropped, &j->link);
            }
        }
        pthread_mutex_unlock(&pool.lock);
        struct eddy__list *n;
        while ((n = eddy__list_pop_front(&dropped)) != NULL) {
            loop->offload_inflight--;
            job_abandon(loop, eddy__container_of(n, struct job, link), false);
        }
    }
    /* The running ones: wait for their completions on the eventfd. */
    while (loop->offload_inflight > 0) {
        struct pollfd pfd = {.fd = loop->wake_fd, .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0)
            continue; /* EINTR */
        uint64_t count;
        while (read(loop->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
            ;
        eddy__loop_xpost_run(loop);
    }
    eddy__loop_xpost_run(loop);
    /* A pusher may still be between its push and its eventfd write. */
    while (atomic_load_explicit(&loop->xpost_writers, memory_order_acquire) > 0)
        sched_yield();
    struct job *j = loop->offload_free;
    while (j) {
        struct job *next = (struct job *)(void *)j->post.next;
        eddy__free(j);
        j = next;
    }
    loop->offload_free = NULL;
    loop->offload_free_len = 0;
}
