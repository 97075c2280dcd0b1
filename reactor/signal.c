/*
 * reactor/signal.c: tasks awaiting signals (eddy_signal_wait) through a
 * signalfd per loop.
 *
 * State. A watch per loop with waiting tasks: the signalfd and the list of
 * waiters (each on its task's stack: its signal set and the signal it was
 * handed, 0 until then). The watches of a thread hang off a thread-local
 * list, since one thread's mask is what a signalfd reads through; the list
 * usually holds zero or one entry. A watch and its signalfd exist only
 * while tasks wait: the last waiter to leave closes the fd (eddy_fd_close)
 * and frees the watch, so nothing outlives the waits, and a signal that
 * arrives between two waits waits in the kernel, blocked, for the next.
 *
 * Invariant: the signalfd's mask is the union of the sets of the waiters
 * that have not been handed a signal yet. So every signal read from it is
 * wanted by someone, and it is handed to every waiter that wants it
 * (broadcast); a waiter that already has its signal no longer reads
 * others away from later waits.
 *
 * Reading. Each waiter first reads the signalfd itself (one siginfo at a
 * time, updating the mask after each hand-off), and parks on the fd only
 * when it is empty. A readiness edge wakes every parked waiter (fd waits
 * wake all readers); each reads again, and one hand-off wakes the waiters
 * it concerns (eddy__task_wake is a no-op for a task already runnable).
 *
 * Costs: a wait that finds nothing pending is a pthread_sigmask, a
 * signalfd create, a read, a park, and on leaving a signalfd mask update or
 * a close; a hand-off is a read and a mask update.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct sigwaiter {
    struct eddy__list link;
    struct eddy_task *task;
    sigset_t set;
    int got; /* the signal handed over, 0 until then */
};

struct sigwatch {
    struct sigwatch *next;
    struct eddy_loop *loop;
    int fd; /* -1 until the first waiter's update */
    struct eddy__list waiters;
};

static __thread struct sigwatch *watches;

static struct sigwatch *watch_get(struct eddy_loop *loop)
{
    for (struct sigwatch *w = watches; w; w = w->next) {
        if (w->loop == loop)
            return w;
    }
    struct sigwatch *w = eddy__malloc(sizeof(*w));
    if (!w)
        return NULL;
    w->loop = loop;
    w->fd = -1;
    eddy__list_init(&w->waiters);
    w->next = watches;
    watches = w;
    return w;
}

static void watch_free(struct sigwatch *sw)
{
    for (struct sigwatch **pp = &watches; *pp; pp = &(*pp)->next) {
        if (*pp == sw) {
            *pp = sw->next;
            break;
        }
    }
    eddy__free(sw);
}

/* Sets the signalfd's mask to the union of the waiters still waiting,
 * creating the fd for the first waiter. Returns 0 or -errno. */
static int watch_update(struct sigwatch *sw)
{
    sigset_t u;
    sigemptyset(&u);
    struct eddy__list *pos;
    eddy__list_for_each (pos, &sw->waiters) {
        struct sigwaiter *w = eddy__container_of(pos, struct sigwaiter, link);
        if (!w->got)
            sigorset(&u, &u, &w->set);
    }
    int fd = signalfd(sw->fd, &u, sw->fd < 0 ? SFD_NONBLOCK | SFD_CLOEXEC : 0);
    if (fd < 0)
        return -errno;
    sw->fd = fd;
    return 0;
}

/* Hands sig to every waiter that waits for it. Returns how many. */
static int dispatch(struct sigwatch *sw, int sig)
{
    int n = 0;
    struct eddy__list *pos;
    eddy__list_for_each (pos, &sw->waiters) {
        struct sigwaiter *w = eddy__container_of(pos, struct sigwaiter, link);
        if (!w->got && sigismember(&w->set, sig)) {
            w->got = sig;
            eddy__task_wake(w->task, 0);
            n++;
        }
    }
    return n;
}

/* Reads what is pending, one signal at a time, until the fd is empty or
 * self has its signal. Returns 0 or -errno of read/signalfd. */
static int drain(struct sigwatch *sw, struct sigwaiter *self)
{
    while (!self->got) {
        struct signalfd_siginfo info;
        ssize_t n = read(sw->fd, &info, sizeof(info));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        if (n != (ssize_t)sizeof(info))
            return -EIO;
        /* Nobody takes it only if a mask update failed earlier (ENOMEM in
         * the kernel); it is dropped then. */
        if (dispatch(sw, (int)info.ssi_signo) > 0) {
            int rc = watch_update(sw);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int build_set(const int *sigs, size_t n, sigset_t *set)
{
    if (!sigs || n == 0)
        return -EINVAL;
    sigemptyset(set);
    for (size_t i = 0; i < n; i++) {
        /* sigaddset refuses 0, numbers past the last real-time signal and
         * the two that glibc keeps for its threads. */
        if (sigs[i] == SIGKILL || sigs[i] == SIGSTOP || sigaddset(set, sigs[i]) != 0)
            return -EINVAL;
    }
    return 0;
}

EDDY_API int eddy_signal_wait(const int *sigs, size_t n, int64_t deadline_ns)
{
    struct eddy_task *self = eddy__task_self();
    if (!self)
        return -EINVAL;
    struct sigwaiter w = {.task = self, .got = 0};
    int rc = build_set(sigs, n, &w.set);
    if (rc < 0)
        return rc;
    struct sigwatch *sw = watch_get(self->loop);
    if (!sw)
        return -ENOMEM;
    /* Blocked before the signalfd reads: unblocked, a process-wide signal
     * could go to its default action instead. */
    pthread_sigmask(SIG_BLOCK, &w.set, NULL);
    eddy__list_push_back(&sw->waiters, &w.link);
    rc = watch_update(sw);
    if (rc == 0) {
        struct eddy_timeout scope;
        bool scoped = deadline_ns != EDDY_DEADLINE_NEVER;
        if (scoped)
            eddy_timeout_enter_at(&scope, deadline_ns);
        for (;;) {
            rc = drain(sw, &w);
            if (rc < 0 || w.got)
                break;
            rc = eddy_fd_wait(sw->fd, EDDY_FD_READ);
            if (rc < 0)
                break;
        }
        if (scoped)
            eddy_timeout_exit(&scope);
    }
    eddy__list_remove(&w.link);
    if (eddy__list_is_empty(&sw->waiters)) {
        if (sw->fd >= 0)
            eddy_fd_close(sw->fd);
        watch_free(sw);
    } else {
        /* Shrinking the mask cannot fail for want of memory. */
        (void)watch_update(sw);
    }
    /* A signal handed over wins over a cancellation or timeout that came
     * at the same time. */
    return w.got ? w.got : rc;
}
