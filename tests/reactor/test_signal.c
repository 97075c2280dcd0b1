/*
 * tests/reactor/test_signal.c: awaiting signals in tasks (reactor/signal.c).
 *
 * Covers a signal raised while a task waits, one already pending, one that
 * arrives between two waits (kept, not lost, and not fatal), deadlines and
 * timeout scopes, cancellation, several tasks waiting for the same signal
 * (all get it) and for different ones, two signals arriving at once for a
 * task that takes one (the other stays for the next wait), real-time
 * signals queueing, process-wide signals sent by real programs (sh's kill,
 * python's os.kill) to a single-threaded child, the signalfd closed by the
 * last waiter, loop destroy with a waiter parked, and bad arguments.
 *
 * raise() sends a signal to the calling thread only, so the tests that use
 * it need only the loop thread's mask, whatever other threads the test
 * runner has.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "tests/reactor/reactor_test.h"

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static bool is_blocked(int sig)
{
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    return sigismember(&mask, sig);
}

struct waiter {
    int sigs[4];
    size_t n;
    int64_t deadline;
    bool parked;
    int got;
};

static intptr_t wait_task(void *arg)
{
    struct waiter *w = arg;
    w->parked = true;
    int rc = eddy_signal_wait(w->sigs, w->n, w->deadline ? w->deadline : EDDY_DEADLINE_NEVER);
    w->parked = false;
    w->got = rc;
    return rc;
}

static struct eddy_task *spawn_waiter(struct waiter *w)
{
    struct eddy_task *t;
    cr_assert_eq(eddy_task_spawn(wait_task, w, NULL, &t), 0);
    return t;
}

static intptr_t join(struct eddy_task *t)
{
    intptr_t r = INTPTR_MIN;
    cr_assert_eq(eddy_task_join(t, &r), 0);
    return r;
}

/* ---- delivery -------------------------------------------------------------------- */

static intptr_t raised_while_waiting(void *arg)
{
    (void)arg;
    int fds_before = open_fd_count();
    struct waiter w = {.sigs = {SIGUSR1, SIGUSR2}, .n = 2};
    struct eddy_task *t = spawn_waiter(&w);
    eddy_sleep_ms(5);
    cr_expect(w.parked, "waiting");
    cr_expect_eq(open_fd_count(), fds_before + 1, "one signalfd while waiting");
    cr_expect(is_blocked(SIGUSR1) && is_blocked(SIGUSR2), "the wait blocked its signals");
    cr_assert_eq(raise(SIGUSR2), 0);
    cr_expect_eq(join(t), SIGUSR2);
    cr_expect_eq(open_fd_count(), fds_before, "the last waiter closed the signalfd");
    cr_expect(is_blocked(SIGUSR2), "and left the signals blocked");
    return 0;
}

EDDY_TEST(signal, a_signal_raised_while_a_task_waits_is_returned)
{
    cr_assert_eq(rt_run(raised_while_waiting, NULL), 0);
}

static intptr_t pending_and_between_waits(void *arg)
{
    (void)arg;
    /* Pending before the wait: returned without parking. */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    raise(SIGHUP);
    static const int sigs[] = {SIGHUP};
    cr_expect_eq(eddy_signal_wait(sigs, 1, eddy_now_ns()), SIGHUP, "even with a past deadline");

    /* Arriving while nobody waits: the earlier wait left SIGHUP blocked, so
     * it neither ends the process nor gets lost. */
    raise(SIGHUP);
    eddy_sleep_ms(2);
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), SIGHUP);
    /* Standard signals do not queue: two raises, one delivery. */
    raise(SIGHUP);
    raise(SIGHUP);
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), SIGHUP);
    cr_expect_eq(eddy_signal_wait(sigs, 1, eddy_now_ns() + EDDY_NS_PER_MS), -ETIMEDOUT);
    return 0;
}

EDDY_TEST(signal, a_pending_signal_and_one_arriving_between_waits_are_returned_by_the_next_wait)
{
    cr_assert_eq(rt_run(pending_and_between_waits, NULL), 0);
}

static intptr_t realtime_queue(void *arg)
{
    (void)arg;
    int rt = SIGRTMIN + 1;
    const int sigs[] = {rt};
    struct waiter w = {.sigs = {rt}, .n = 1};
    struct eddy_task *t = spawn_waiter(&w);
    eddy_sleep_ms(2);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(raise(rt), 0);
    cr_expect_eq(join(t), rt);
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), rt, "second of three");
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), rt, "third of three");
    cr_expect_eq(eddy_signal_wait(sigs, 1, eddy_now_ns() + EDDY_NS_PER_MS), -ETIMEDOUT);
    return 0;
}

EDDY_TEST(signal, real_time_signals_queue_and_each_arrival_is_returned)
{
    cr_assert_eq(rt_run(realtime_queue, NULL), 0);
}

/* ---- several waiters ----------------------------------------------------------------- */

static intptr_t broadcast(void *arg)
{
    (void)arg;
    struct waiter usr1[3], usr2 = {.sigs = {SIGUSR2}, .n = 1};
    struct eddy_task *t[3];
    for (int i = 0; i < 3; i++) {
        usr1[i] = (struct waiter){.sigs = {SIGUSR1, SIGHUP}, .n = 2};
        t[i] = spawn_waiter(&usr1[i]);
    }
    struct eddy_task *t2 = spawn_waiter(&usr2);
    eddy_sleep_ms(5);
    raise(SIGUSR1);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(join(t[i]), SIGUSR1, "waiter %d", i);
    eddy_sleep_ms(2);
    cr_expect(usr2.parked, "a waiter for another signal keeps waiting");
    raise(SIGUSR2);
    cr_expect_eq(join(t2), SIGUSR2);
    return 0;
}

EDDY_TEST(signal, every_task_waiting_for_a_signal_gets_it_and_others_keep_waiting)
{
    cr_assert_eq(rt_run(broadcast, NULL), 0);
}

static intptr_t two_at_once(void *arg)
{
    (void)arg;
    struct waiter w = {.sigs = {SIGUSR1, SIGUSR2}, .n = 2};
    struct eddy_task *t = spawn_waiter(&w);
    eddy_sleep_ms(2);
    /* Both arrive before the waiter runs again: it takes one (the lower
     * number first, as the kernel dequeues) and must not read the other
     * away from the next wait. */
    raise(SIGUSR2);
    raise(SIGUSR1);
    cr_expect_eq(join(t), SIGUSR1);
    static const int usr2[] = {SIGUSR2};
    cr_expect_eq(eddy_signal_wait(usr2, 1, eddy_now_ns()), SIGUSR2, "kept for the next wait");
    return 0;
}

EDDY_TEST(signal, of_two_signals_arriving_at_once_the_one_not_taken_stays_pending)
{
    cr_assert_eq(rt_run(two_at_once, NULL), 0);
}

/* ---- deadlines and cancellation ------------------------------------------------------ */

static intptr_t deadlines(void *arg)
{
    (void)arg;
    static const int sigs[] = {SIGUSR1};
    const int64_t timeout = 50 * EDDY_NS_PER_MS;
    int64_t t0 = eddy_now_ns();
    cr_expect_eq(eddy_signal_wait(sigs, 1, t0 + timeout), -ETIMEDOUT);
    int64_t took = eddy_clock_ns() - t0;
    cr_expect_geq(took, timeout, "not early: %lld ns", (long long)took);
    cr_expect_leq(took, timeout + rt_late_tolerance_ns(), "late: %lld ns", (long long)took);

    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, timeout);
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), -ETIMEDOUT);
    cr_expect_eq(eddy_timeout_exit(&scope), -ETIMEDOUT);
    return 0;
}

EDDY_TEST(signal, a_deadline_or_a_timeout_scope_ends_the_wait_with_etimedout)
{
    cr_assert_eq(rt_run(deadlines, NULL), 0);
}

static intptr_t cancelled(void *arg)
{
    (void)arg;
    int fds_before = open_fd_count();
    struct waiter w = {.sigs = {SIGTERM}, .n = 1};
    struct eddy_task *t = spawn_waiter(&w);
    eddy_sleep_ms(2);
    cr_assert_eq(eddy_task_cancel(t), 0);
    cr_expect_eq(join(t), -ECANCELED);
    cr_expect_eq(open_fd_count(), fds_before);
    /* Still blocked: a SIGTERM now is kept for the next wait. */
    raise(SIGTERM);
    static const int sigs[] = {SIGTERM};
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), SIGTERM);

    /* Cancelled and signalled in the same iteration: the signal wins, and
     * the cancellation stays for the next blocking call. */
    w = (struct waiter){.sigs = {SIGTERM}, .n = 1};
    t = spawn_waiter(&w);
    eddy_sleep_ms(2);
    raise(SIGTERM);
    eddy_task_cancel(t);
    intptr_t r = join(t);
    cr_expect(r == SIGTERM || r == -ECANCELED, "got %ld", (long)r);
    if (r == -ECANCELED)
        cr_expect_eq(eddy_signal_wait(sigs, 1, eddy_now_ns()), SIGTERM, "not lost");
    return 0;
}

EDDY_TEST(signal, a_cancelled_wait_returns_ecanceled_and_the_signal_stays_blocked)
{
    cr_assert_eq(rt_run(cancelled, NULL), 0);
}

static intptr_t leave_a_waiter(void *arg)
{
    static struct waiter w = {.sigs = {SIGUSR1}, .n = 1};
    struct eddy_task_opts o = {.detached = true};
    cr_assert_eq(eddy_task_spawn(wait_task, &w, &o, NULL), 0);
    *(struct waiter **)arg = &w;
    return eddy_sleep_ms(2);
}

EDDY_TEST(signal, loop_destroy_cancels_a_parked_waiter_and_closes_the_signalfd)
{
    int fds_before = open_fd_count();
    struct waiter *w = NULL;
    cr_assert_eq(rt_run(leave_a_waiter, &w), 0);
    cr_expect_eq(w->got, -ECANCELED);
    cr_expect_eq(open_fd_count(), fds_before);
}

/* ---- signals from other processes ------------------------------------------------------ */

static intptr_t from_peer(void *arg)
{
    char *const *argv = arg;
    static const int sigs[] = {SIGINT, SIGTERM};
    /* The mask first, as the thread-mask rule says: the peer may be fast. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pid_t pid;
    EDDY_CHILD_CHECK(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0);
    int sig = eddy_signal_wait(sigs, 2, eddy_now_ns() + 30 * EDDY_NS_PER_SEC);
    int st = -1;
    EDDY_CHILD_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return sig;
}

struct peer {
    const char *const *argv;
    int expected;
};

static void peer_child(void *arg)
{
    struct peer *pe = arg;
    intptr_t r = -1;
    EDDY_CHILD_CHECK(eddy_run(from_peer, (void *)pe->argv, NULL, &r) == 0);
    EDDY_CHILD_CHECK(r == pe->expected);
}

EDDY_TEST(signal, process_wide_signals_sent_by_sh_and_python_reach_the_waiting_task)
{
    /* In a forked child: one thread, so a process-wide signal has only the
     * loop thread to go to. $PPID of sh, os.getppid() of python: the child. */
    const char *sh[] = {"/bin/sh", "-c", "kill -TERM $PPID", NULL};
    const char *py[] = {"/usr/bin/python3", "-c",
                        "import os, signal; os.kill(os.getppid(), signal.SIGINT)", NULL};
    struct peer peers[] = {{sh, SIGTERM}, {py, SIGINT}};
    for (size_t i = 0; i < 2; i++) {
        struct eddy_test_child child;
        cr_assert_eq(eddy_test_fork(peer_child, &peers[i], &child), 0);
        eddy_assert_child_ok(child);
    }
}

/* ---- misuse ------------------------------------------------------------------------------ */

static intptr_t bad_args(void *arg)
{
    (void)arg;
    const int kill_[] = {SIGKILL}, stop[] = {SIGUSR1, SIGSTOP}, zero[] = {0}, big[] = {65},
              reserved[] = {32}, negative[] = {-1};
    cr_expect_eq(eddy_signal_wait(NULL, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(kill_, 0, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(kill_, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(stop, 2, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(zero, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(big, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(reserved, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_eq(eddy_signal_wait(negative, 1, EDDY_DEADLINE_NEVER), -EINVAL);
    cr_expect_not(is_blocked(SIGUSR1), "nothing blocked by a refused call");
    return 0;
}

EDDY_TEST(signal, bad_signal_lists_and_calls_outside_a_task_give_einval)
{
    cr_assert_eq(rt_run(bad_args, NULL), 0);
    static const int sigs[] = {SIGUSR1};
    cr_expect_eq(eddy_signal_wait(sigs, 1, EDDY_DEADLINE_NEVER), -EINVAL);
}
