/*
 * reactor/channel.c: the cross-thread channel, a bounded FIFO of intptr_t
 * through which threads outside a loop (and tasks of other loops) hand
 * values to the tasks of the channel's loop.
 *
 * State. A ring buffer and its counters, the closed flag and the counts of
 * waiters are under the channel's mutex, which every side takes for a few
 * instructions. The tasks' wait queues (recvq, sendq) belong to the loop's
 * thread, like everything else of the loop: only the loop thread parks or
 * wakes them. So a receiver that finds the channel empty counts itself in
 * rx_parked under the mutex and parks without the mutex; nothing can wake
 * the queue between the two, because waking it happens on the same thread.
 *
 * Waking across threads. A sender on another thread that finds rx_parked
 * > 0 pushes the channel's wake node onto the loop (eddy__loop_xpost: a
 * lock-free push and, when the loop had nothing pending, one eventfd write),
 * unless the node is already on its way (wake_pending). On the loop thread
 * the node's function wakes as many receivers as there are values (all of
 * them after a close). Senders on the loop's own thread wake a receiver
 * directly. Plain threads blocked in eddy_channel_send_blocking wait on a
 * condition variable that receivers signal; tasks of the channel's loop wait
 * on sendq; tasks of other loops poll with backoff (a waiter record that
 * wakes a task of another loop would need that loop's cooperation to
 * outlive a cancelled sender; the polling sender is the simple, safe case).
 *
 * The wake node is a separate allocation so that a channel destroyed while
 * its node is still queued on the loop leaves the node behind: the loop
 * frees it when it runs (no task waits then, destroy checks that).
 *
 * Woken tasks retry: a woken receiver may find the value taken by a task
 * that ran first and parks again. A receiver or sender that returns
 * -ECANCELED / -ETIMEDOUT has taken or added nothing.
 *
 * Costs: every operation is one lock/unlock and a ring slot; a cross-thread
 * wakeup adds an eventfd write, at most one per batch of sends that reach
 * the loop before it runs.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <time.h>

#define MAX_CAPACITY ((size_t)1 << 30)
#define FOREIGN_BACKOFF_MIN_NS (50 * 1000)
#define FOREIGN_BACKOFF_MAX_NS EDDY_NS_PER_MS

struct wake_node {
    struct eddy__xpost post; /* first */
    struct eddy_channel *ch; /* NULL once the channel was destroyed */
};

struct eddy_channel {
    struct eddy_loop *loop;
    pthread_mutex_t lock;
    pthread_cond_t not_full; /* plain threads in send_blocking (CLOCK_MONOTONIC) */
    intptr_t *buf;
    size_t cap;
    size_t head; /* oldest value */
    size_t len;
    bool closed;
    bool wake_pending;       /* the wake node is queued on the loop */
    unsigned thread_senders; /* threads waiting on not_full */
    size_t rx_parked;        /* tasks inside recv's park, or woken and not yet run */
    size_t tx_parked;        /* the same for the loop's tasks in send */
    struct wake_node *wake;
    struct eddy_waitq recvq; /* loop thread only */
    struct eddy_waitq sendq; /* loop thread only */
};

static bool on_loop_thread(const struct eddy_channel *ch)
{
    return pthread_equal(pthread_self(), ch->loop->owner);
}

/* ---- loop-thread wakeups ---------------------------------------------------- */

/* Wakes receivers for the values present (every waiter after a close).
 * Loop thread, without the lock. */
static void wake_loop_waiters(struct eddy_channel *ch)
{
    pthread_mutex_lock(&ch->lock);
    bool closed = ch->closed;
    size_t values = ch->len;
    pthread_mutex_unlock(&ch->lock);
    if (closed) {
        eddy_waitq_wake_all(&ch->recvq, 0);
        eddy_waitq_wake_all(&ch->sendq, 0);
        return;
    }
    for (size_t i = 0; i < values; i++)
        if (!eddy_waitq_wake_one(&ch->recvq, 0))
            break;
}

static void on_wake(struct eddy__xpost *node)
{
    struct wake_node *w = (struct wake_node *)(void *)node;
    struct eddy_channel *ch = w->ch;
    if (!ch) {
        eddy__free(w); /* the channel is gone */
        return;
    }
    pthread_mutex_lock(&ch->lock);
    ch->wake_pending = false;
    pthread_mutex_unlock(&ch->lock);
    wake_loop_waiters(ch);
}

/* What a sender (or closer) must do after changing the state, decided under
 * the lock: wake the loop's receivers directly, or post the wake node. */
enum notify { NOTIFY_NONE, NOTIFY_DIRECT, NOTIFY_POST };

static enum notify notify_needed(struct eddy_channel *ch, bool loop_thread, size_t waiters)
{
    if (waiters == 0)
        return NOTIFY_NONE;
    if (loop_thread)
        return NOTIFY_DIRECT;
    if (ch->wake_pending)
        return NOTIFY_NONE;
    ch->wake_pending = true;
    return NOTIFY_POST;
}

static void notify(struct eddy_channel *ch, enum notify how)
{
    if (how == NOTIFY_DIRECT)
        eddy_waitq_wake_one(&ch->recvq, 0);
    else if (how == NOTIFY_POST)
        eddy__loop_xpost(ch->loop, &ch->wake->post);
}

/* ---- create / destroy ----------------------------------------------------- */

EDDY_API int eddy_channel_create(struct eddy_loop *loop, size_t capacity, struct eddy_channel **out)
{
    if (!loop || !out || capacity == 0 || capacity > MAX_CAPACITY)
        return -EINVAL;
    struct eddy_channel *ch = eddy__calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    int rc = -ENOMEM;
    ch->buf = eddy__malloc(capacity * sizeof(*ch->buf));
    if (!ch->buf)
        goto fail_ch;
    ch->wake = eddy__malloc(sizeof(*ch->wake));
    if (!ch->wake)
        goto fail_buf;
    ch->wake->post.fn = on_wake;
    ch->wake->post.next = NULL;
    ch->wake->ch = ch;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&ch->not_full, &attr);
    pthread_condattr_destroy(&attr);
    if (rc < 0)
        goto fail_wake;
    pthread_mutex_init(&ch->lock, NULL);
    ch->loop = loop;
    ch->cap = capacity;
    eddy_waitq_init(&ch->recvq);
    eddy_waitq_init(&ch->sendq);
    *out = ch;
    return 0;

fail_wake:
    eddy__free(ch->wake);
fail_buf:
    eddy__free(ch->buf);
fail_ch:
    eddy__free(ch);
    return rc;
}

EDDY_API int eddy_channel_destroy(struct eddy_channel *ch)
{
    if (!ch)
        return 0;
    pthread_mutex_lock(&ch->lock);
    bool busy = ch->rx_parked > 0 || ch->tx_parked > 0 || ch->thread_senders > 0;
    bool node_queued = ch->wake_pending;
    pthread_mutex_unlock(&ch->lock);
    if (busy)
        return -EBUSY;
    if (node_queued)
        ch->wake->ch = NULL; /* freed by on_wake when the loop runs it */
    else
        eddy__free(ch->wake);
    pthread_cond_destroy(&ch->not_full);
    pthread_mutex_destroy(&ch->lock);
    eddy__free(ch->buf);
    eddy__free(ch);
    return 0;
}

/* ---- sending ---------------------------------------------------------------- */

/* Appends under the lock; the ring has room. */
static void push_locked(struct eddy_channel *ch, intptr_t value)
{
    size_t tail = ch->head + ch->len;
    if (tail >= ch->cap)
        tail -= ch->cap;
    ch->buf[tail] = value;
    ch->len++;
}

/* One attempt: 0, -EAGAIN (full) or -EPIPE. */
static int try_send(struct eddy_channel *ch, intptr_t value, bool loop_thread)
{
    pthread_mutex_lock(&ch->lock);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->lock);
        return -EPIPE;
    }
    if (ch->len == ch->cap) {
        pthread_mutex_unlock(&ch->lock);
        return -EAGAIN;
    }
    push_locked(ch, value);
    enum notify how = notify_needed(ch, loop_thread, ch->rx_parked);
    pthread_mutex_unlock(&ch->lock);
    notify(ch, how);
    return 0;
}

EDDY_API int eddy_channel_try_send(struct eddy_channel *ch, intptr_t value)
{
    if (!ch)
        return -EINVAL;
    return try_send(ch, value, on_loop_thread(ch));
}

EDDY_API int eddy_channel_send_blocking(struct eddy_channel *ch, intptr_t value,
                                        int64_t deadline_ns)
{
    if (!ch)
        return -EINVAL;
    if (on_loop_thread(ch))
        return -EDEADLK;
    struct timespec ts = {(time_t)(deadline_ns / EDDY_NS_PER_SEC),
                          (long)(deadline_ns % EDDY_NS_PER_SEC)};
    pthread_mutex_lock(&ch->lock);
    for (;;) {
        if (ch->closed) {
            pthread_mutex_unlock(&ch->lock);
            return -EPIPE;
        }
        if (ch->len < ch->cap)
            break;
        ch->thread_senders++;
        int rc = deadline_ns == EDDY_DEADLINE_NEVER
                     ? pthread_cond_wait(&ch->not_full, &ch->lock)
                     : pthread_cond_timedwait(&ch->not_full, &ch->lock, &ts);
        ch->thread_senders--;
        if (rc == ETIMEDOUT && !ch->closed && ch->len == ch->cap) {
            pthread_mutex_unlock(&ch->lock);
            return -ETIMEDOUT;
        }
    }
    push_locked(ch, value);
    enum notify how = notify_needed(ch, false, ch->rx_parked);
    pthread_mutex_unlock(&ch->lock);
    notify(ch, how);
    return 0;
}

EDDY_API int eddy_channel_send(struct eddy_channel *ch, intptr_t value)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !ch)
        return -EINVAL;
    if (self->loop != ch->loop) {
        /* A task of another loop: poll, letting its own loop run. */
        int64_t backoff = FOREIGN_BACKOFF_MIN_NS;
        for (;;) {
            int rc = try_send(ch, value, false);
            if (rc != -EAGAIN)
                return rc;
            rc = eddy_sleep_ns(backoff);
            if (rc < 0)
                return rc;
            backoff = backoff * 2 > FOREIGN_BACKOFF_MAX_NS ? FOREIGN_BACKOFF_MAX_NS : backoff * 2;
        }
    }
    for (;;) {
        pthread_mutex_lock(&ch->lock);
        if (ch->closed) {
            pthread_mutex_unlock(&ch->lock);
            return -EPIPE;
        }
        if (ch->len < ch->cap) {
            push_locked(ch, value);
            enum notify how = notify_needed(ch, true, ch->rx_parked);
            pthread_mutex_unlock(&ch->lock);
            notify(ch, how);
            return 0;
        }
        ch->tx_parked++;
        pthread_mutex_unlock(&ch->lock);
        int rc = eddy_waitq_wait(&ch->sendq, EDDY_DEADLINE_NEVER);
        pthread_mutex_lock(&ch->lock);
        ch->tx_parked--;
        pthread_mutex_unlock(&ch->lock);
        if (rc < 0)
            return rc;
    }
}

/* ---- receiving -------------------------------------------------------------- */

/* Takes the oldest value under the lock; the ring is not empty. Returns
 * whether a task of the loop waits to send (to be woken without the lock). */
static bool pop_locked(struct eddy_channel *ch, intptr_t *value)
{
    *value = ch->buf[ch->head];
    ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1;
    ch->len--;
    if (ch->thread_senders > 0)
        pthread_cond_signal(&ch->not_full);
    return ch->tx_parked > 0;
}

EDDY_API int eddy_channel_try_recv(struct eddy_channel *ch, intptr_t *value)
{
    if (!ch || !value || !on_loop_thread(ch))
        return -EINVAL;
    pthread_mutex_lock(&ch->lock);
    if (ch->len == 0) {
        int rc = ch->closed ? -EPIPE : -EAGAIN;
        pthread_mutex_unlock(&ch->lock);
        return rc;
    }
    bool wake_sender = pop_locked(ch, value);
    pthread_mutex_unlock(&ch->lock);
    if (wake_sender)
        eddy_waitq_wake_one(&ch->sendq, 0);
    return 0;
}

EDDY_API int eddy_channel_recv(struct eddy_channel *ch, intptr_t *value)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || !ch || !value || self->loop != ch->loop)
        return -EINVAL;
    for (;;) {
        pthread_mutex_lock(&ch->lock);
        if (ch->len > 0) {
            bool wake_sender = pop_locked(ch, value);
            pthread_mutex_unlock(&ch->lock);
            if (wake_sender)
                eddy_waitq_wake_one(&ch->sendq, 0);
            return 0;
        }
        if (ch->closed) {
            pthread_mutex_unlock(&ch->lock);
            return -EPIPE;
        }
        /* Counted before the lock is dropped: a sender on another thread
         * that comes after sees the count and posts the wake node, which
         * runs on this thread, so only after this task has parked. */
        ch->rx_parked++;
        pthread_mutex_unlock(&ch->lock);
        int rc = eddy_waitq_wait(&ch->recvq, EDDY_DEADLINE_NEVER);
        pthread_mutex_lock(&ch->lock);
        ch->rx_parked--;
        pthread_mutex_unlock(&ch->lock);
        if (rc < 0)
            return rc;
    }
}

/* ---- close and queries ------------------------------------------------------- */

EDDY_API int eddy_channel_close(struct eddy_channel *ch)
{
    if (!ch)
        return -EINVAL;
    bool loop_thread = on_loop_thread(ch);
    pthread_mutex_lock(&ch->lock);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->lock);
        return -EALREADY;
    }
    ch->closed = true;
    pthread_cond_broadcast(&ch->not_full);
    enum notify how = notify_needed(ch, loop_thread, ch->rx_parked + ch->tx_parked);
    pthread_mutex_unlock(&ch->lock);
    if (how == NOTIFY_DIRECT)
        wake_loop_waiters(ch);
    else
        notify(ch, how);
    return 0;
}

EDDY_API size_t eddy_channel_len(struct eddy_channel *ch)
{
    pthread_mutex_lock(&ch->lock);
    size_t n = ch->len;
    pthread_mutex_unlock(&ch->lock);
    return n;
}

EDDY_API bool eddy_channel_is_closed(struct eddy_channel *ch)
{
    pthread_mutex_lock(&ch->lock);
    bool closed = ch->closed;
    pthread_mutex_unlock(&ch->lock);
    return closed;
}
