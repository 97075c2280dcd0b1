/*
 * tests/tsan/test_cross_thread.c: eddy's cross-thread entry points
 * (eddy_loop_post, eddy_loop_stop, posting into a loop being destroyed)
 * under ThreadSanitizer, in a driver of its own.
 *
 * Why a driver of its own: Criterion, the framework of the rest of tests/,
 * cannot start in a -fsanitize=thread process (Snaipe/Criterion issue #274,
 * "Could not initialize inheritable arena"). `make tsan` therefore builds
 * this file alone, with its own main(), against build/tsan/lib/libeddy.a.
 *
 * Runner. As everywhere in the suite (STYLE.md section 9), each case runs in
 * a forked child with a timeout (alarm(), CASE_TIMEOUT_S). The parent forks
 * before any thread exists, prints one TAP line per case ("ok 1 - name",
 * "not ok 2 - name" followed by a "# why" line), then the summary
 * "# tsan: N passed, M failed", and exits 1 when anything failed. A failed
 * check prints "# file:line: check failed: expr" on stderr and ends the child
 * with status 1. A ThreadSanitizer report ends the child with status 66
 * (halt_on_error=1:exitcode=66: the defaults compiled in below, and what the
 * Makefile passes in TSAN_OPTIONS), so a race fails its case even when every
 * check held. Arguments select cases by substring; --list prints the names.
 * Races found in eddy and not fixed yet are listed, with their evidence, in
 * tests/tsan/known_races.supp, which `make tsan` passes to TSan.
 *
 * Cases. Each asserts results, not only the absence of a crash or a report:
 *   1. four threads post 10,000 callbacks each: every callback runs exactly
 *      once, on the loop thread, outside any task, in each thread's order;
 *   2. eddy_loop_stop from another thread, while the loop blocks in epoll,
 *      makes eddy_loop_run return with the task still suspended (five
 *      times); the next run resumes it, and a post finishes it;
 *   3. two threads post while the loop is destroyed: the first refused post
 *      returns -ESHUTDOWN, and only after destroy began; no callback runs
 *      once destroy has begun; the callbacks that did run are, per thread, a
 *      prefix of what was posted, in order;
 *   4. two loops on two threads play 10,000 round trips of ping-pong, every
 *      message a post into the other loop, each received by a task parked on
 *      its loop's mailbox;
 *   5. a loop created and run on a thread of its own serves three threads
 *      that only post (their eddy_loop_run and eddy_loop_spawn get -EINVAL);
 *      its callbacks spawn tasks, and every spawned task runs;
 *   6. two loops on two threads offload through the shared pool: every
 *      result, and what the job wrote, reaches its caller;
 *   7. offload callers cancelled while their jobs are queued or running:
 *      each job is disposed of once, or its result delivered, and the loop
 *      is destroyed with jobs in flight;
 *   8. four threads (try_send and send_blocking) feed a 16-slot channel read
 *      by two tasks: per thread in order, payloads visible to the receiver;
 *   9. a task of another loop sends through a 2-slot channel (polling while
 *      full); close from the receiving side, then -EPIPE.
 * Counts stay modest: TSan makes every coroutine a thread of its own and
 * dies past about 8,000 of them.
 *
 * Mailboxes. The tasks here park with the reactor's own park/wake protocol
 * (reactor/internal.h, white-box, as tests/reactor/test_task.c does), which
 * is what a channel is built on: a callback fills the one-slot mailbox and
 * wakes the task parked on it. So every message crosses eddy_loop_post, and
 * what the sender wrote before posting must be visible to the receiver
 * without any other synchronisation, which TSan checks.
 *
 * Destroying. eddy_loop_post still reads the loop (its eventfd) after the
 * callback has become visible to the loop thread, so a loop is destroyed only
 * once every thread posting to it has returned from its last post: the cases
 * join those threads, or meet them at a barrier, first; case 3 holds destroy
 * back with a task until each poster has seen -ESHUTDOWN.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reactor/internal.h"
#include <eddy/eddy.h>

#include "tests/support/in_epoll.h"

/* Seconds a case may run before its child is killed and the case fails. The
 * slowest case takes about a second under TSan on a loaded machine. */
#define CASE_TIMEOUT_S 60
/* How long a thread waits for the loop thread to block in epoll. */
#define EPOLL_WAIT_LIMIT_MS 10000
/* The exit status of a child that TSan stopped (TSAN_OPTIONS exitcode). */
#define TSAN_EXIT_STATUS 66

#if defined(__SANITIZE_THREAD__)
#define BUILT_WITH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BUILT_WITH_TSAN 1
#endif
#endif

#ifdef BUILT_WITH_TSAN
/* TSan reads these before main(); TSAN_OPTIONS from the environment still
 * overrides them. Without halt_on_error a report would only change the exit
 * status at exit, which a child killed by a failed check never reaches. */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void)
{
    return "halt_on_error=1:exitcode=66";
}
#endif

/* ---- checks ---------------------------------------------------------------- */

/* Ends the child: other threads may still run, so no exit handlers. */
static _Noreturn void check_failed(const char *file, int line, const char *expr)
{
    fprintf(stderr, "# %s:%d: check failed: %s\n", file, line, expr);
    fflush(stderr);
    _exit(1);
}

static _Noreturn void check_eq_failed(const char *file, int line, const char *expr, long long got,
                                      long long want)
{
    fprintf(stderr, "# %s:%d: check failed: %s (got %lld, want %lld)\n", file, line, expr, got,
            want);
    fflush(stderr);
    _exit(1);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            check_failed(__FILE__, __LINE__, #cond);                                               \
    } while (0)

#define CHECK_EQ(got, want)                                                                        \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_)                                                                         \
            check_eq_failed(__FILE__, __LINE__, #got " == " #want, got_, want_);                   \
    } while (0)

/* ---- threads ------------------------------------------------------------- */

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
    pthread_t thread;
    CHECK_EQ(pthread_create(&thread, NULL, fn, arg), 0);
    return thread;
}

static void join_thread(pthread_t thread)
{
    CHECK_EQ(pthread_join(thread, NULL), 0);
}

static pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* True when thread tid of this process is blocked in an epoll wait now. */
static inline bool in_epoll(pid_t tid)
{
    return eddy_test_in_epoll(tid);
}

/* Waits until thread tid blocks in epoll (seen twice, 1 ms apart, so not a
 * zero-timeout poll passing by). False when it never does. */
static bool wait_in_epoll(pid_t tid)
{
    for (int ms = 0; ms < EPOLL_WAIT_LIMIT_MS; ms++) {
        if (in_epoll(tid)) {
            sleep_ms(1);
            if (in_epoll(tid))
                return true;
        }
        sleep_ms(1);
    }
    return false;
}

/* ---- mailbox: a one-slot channel between callbacks and a task ------------ */

/* Used only on its loop's thread. */
struct mailbox {
    bool full;
    long value;
    struct eddy_task *waiter; /* the task parked in mailbox_take, or NULL */
};

/* Parks the current task until the mailbox holds a value, and takes it.
 * Returns 0 or the park's error (-ECANCELED). */
static int mailbox_take(struct mailbox *m, long *value)
{
    struct eddy_task *self = eddy_task_current();
    CHECK(self != NULL);
    while (!m->full) {
        m->waiter = self;
        int rc = eddy__task_park(self, EDDY_DEADLINE_NEVER);
        m->waiter = NULL;
        if (rc < 0)
            return rc;
    }
    m->full = false;
    *value = m->value;
    return 0;
}

/* Fills the mailbox (which must be empty) and wakes its waiter. */
static void mailbox_put(struct mailbox *m, long value)
{
    CHECK(!m->full);
    m->full = true;
    m->value = value;
    if (m->waiter)
        eddy__task_wake(m->waiter, 0);
}

/* A task that returns the first value its mailbox receives. */
static intptr_t take_one(void *arg)
{
    long value = 0;
    int rc = mailbox_take(arg, &value);
    return rc < 0 ? rc : value;
}

static struct eddy_loop *new_loop(void)
{
    struct eddy_loop *loop = NULL;
    CHECK_EQ(eddy_loop_create(NULL, &loop), 0);
    return loop;
}

static intptr_t result_of(struct eddy_task *task)
{
    intptr_t result = INTPTR_MIN;
    CHECK(eddy_task_is_done(task));
    CHECK_EQ(eddy_task_result(task, &result), 0);
    return result;
}

/* ---- 1. fan-in: four posting threads --------------------------------------- */

#define FANIN_THREADS 4
#define FANIN_POSTS 10000

struct fanin_msg {
    struct fanin *f;
    int poster;
    long seq;
    int runs;
};

struct fanin {
    struct eddy_loop *loop;
    pthread_t loop_thread;
    pthread_barrier_t start;
    struct fanin_msg *msgs[FANIN_THREADS];
    /* The loop thread's. */
    long next[FANIN_THREADS]; /* the sequence number due next from each poster */
    long total;
    struct mailbox done;
};

struct fanin_poster {
    struct fanin *f;
    int id;
    int bad_rc; /* the first post that did not return 0, or 0 */
};

static void on_fanin(void *arg)
{
    struct fanin_msg *m = arg;
    struct fanin *f = m->f;
    CHECK(pthread_equal(pthread_self(), f->loop_thread));
    CHECK(eddy_loop_current() == f->loop);
    CHECK(eddy_task_current() == NULL);
    CHECK_EQ(m->seq, f->next[m->poster]);
    f->next[m->poster]++;
    m->runs++;
    if (++f->total == (long)FANIN_THREADS * FANIN_POSTS)
        mailbox_put(&f->done, f->total);
}

static void *fanin_post_all(void *arg)
{
    struct fanin_poster *p = arg;
    struct fanin *f = p->f;
    pthread_barrier_wait(&f->start);
    for (long i = 0; i < FANIN_POSTS; i++) {
        /* Written here, read on the loop thread: the post must publish it. */
        struct fanin_msg *m = &f->msgs[p->id][i];
        m->f = f;
        m->poster = p->id;
        m->seq = i;
        int rc = eddy_loop_post(f->loop, on_fanin, m);
        if (rc != 0 && p->bad_rc == 0)
            p->bad_rc = rc;
    }
    return NULL;
}

static void posts_from_four_threads_arrive_in_order_per_thread(void)
{
    struct fanin f = {.loop = new_loop(), .loop_thread = pthread_self()};
    CHECK_EQ(pthread_barrier_init(&f.start, NULL, FANIN_THREADS), 0);
    for (int t = 0; t < FANIN_THREADS; t++)
        CHECK((f.msgs[t] = calloc(FANIN_POSTS, sizeof(*f.msgs[t]))) != NULL);
    struct eddy_task *collector;
    CHECK_EQ(eddy_loop_spawn(f.loop, take_one, &f.done, NULL, &collector), 0);

    struct fanin_poster posters[FANIN_THREADS];
    pthread_t threads[FANIN_THREADS];
    for (int t = 0; t < FANIN_THREADS; t++) {
        posters[t] = (struct fanin_poster){.f = &f, .id = t};
        threads[t] = start_thread(fanin_post_all, &posters[t]);
    }
    /* Returns once the collector has the total, i.e. after the last callback. */
    CHECK_EQ(eddy_loop_run(f.loop), 0);
    for (int t = 0; t < FANIN_THREADS; t++)
        join_thread(threads[t]);

    CHECK_EQ(result_of(collector), (long)FANIN_THREADS * FANIN_POSTS);
    for (int t = 0; t < FANIN_THREADS; t++) {
        CHECK_EQ(posters[t].bad_rc, 0);
        CHECK_EQ(f.next[t], FANIN_POSTS);
        for (long i = 0; i < FANIN_POSTS; i++)
            CHECK_EQ(f.msgs[t][i].runs, 1);
        free(f.msgs[t]);
    }
    eddy_loop_destroy(f.loop);
    pthread_barrier_destroy(&f.start);
}

/* ---- 2. stop from another thread ------------------------------------------- */

#define STOP_ROUNDS 5
#define STOP_FINAL_VALUE 42

struct stopper {
    struct eddy_loop *loop;
    pid_t loop_tid;
    pthread_t loop_thread;
    /* Written by the helper thread, read after it is joined. */
    bool saw_epoll;
    int post_rc;
    /* The loop thread's. */
    struct mailbox box;
    int deliveries;
};

static void *stop_when_blocked(void *arg)
{
    struct stopper *s = arg;
    s->saw_epoll = wait_in_epoll(s->loop_tid);
    eddy_loop_stop(s->loop);
    return NULL;
}

static void on_stopper_value(void *arg)
{
    struct stopper *s = arg;
    CHECK(pthread_equal(pthread_self(), s->loop_thread));
    s->deliveries++;
    mailbox_put(&s->box, STOP_FINAL_VALUE);
}

static void *post_when_blocked(void *arg)
{
    struct stopper *s = arg;
    s->saw_epoll = wait_in_epoll(s->loop_tid);
    s->post_rc = eddy_loop_post(s->loop, on_stopper_value, s);
    return NULL;
}

static void stop_from_another_thread_returns_a_run_blocked_in_epoll_and_a_later_run_resumes(void)
{
    struct stopper s = {
        .loop = new_loop(), .loop_tid = current_tid(), .loop_thread = pthread_self()};
    struct eddy_task *waiter;
    CHECK_EQ(eddy_loop_spawn(s.loop, take_one, &s.box, NULL, &waiter), 0);

    /* The waiter stays parked and no timer is armed, so nothing but the stop
     * can make these runs return. */
    for (int round = 0; round < STOP_ROUNDS; round++) {
        s.saw_epoll = false;
        pthread_t thread = start_thread(stop_when_blocked, &s);
        CHECK_EQ(eddy_loop_run(s.loop), 0);
        join_thread(thread);
        CHECK(s.saw_epoll);
        CHECK(!eddy_task_is_done(waiter));
        CHECK_EQ(s.deliveries, 0);
    }

    /* The stop did not stick: this run blocks in epoll again until the post
     * wakes it, and resumes the waiter. */
    s.saw_epoll = false;
    pthread_t thread = start_thread(post_when_blocked, &s);
    CHECK_EQ(eddy_loop_run(s.loop), 0);
    join_thread(thread);
    CHECK(s.saw_epoll);
    CHECK_EQ(s.post_rc, 0);
    CHECK_EQ(s.deliveries, 1);
    CHECK_EQ(result_of(waiter), STOP_FINAL_VALUE);
    eddy_loop_destroy(s.loop);
}

/* ---- 3. posting while the loop is destroyed -------------------------------- */

#define RACERS 2
/* Callbacks that run before destroy starts (the loop stops itself then). */
#define RACE_RUN_FIRST 2000
/* Callbacks left queued when destroy begins, for it to drop. */
#define RACE_PENDING 500
/* Past this many posts a racer slows down, bounding the queue destroy drops. */
#define RACE_FAST_POSTS 200000
#define RACE_SEQ_BITS 40

struct teardown {
    struct eddy_loop *loop;
    pthread_t loop_thread;
    int release_fd; /* eventfd: each racer adds 1 once a post was refused */
    atomic_bool destroy_begun;
    pthread_barrier_t start;
    /* The loop thread's. */
    bool destroying;
    long next[RACERS];
    long ran;
    long ran_during_destroy;
    bool held;                /* the holder ran to its end */
    int holder_cancel_rc;     /* what its first park returned */
    uint64_t holder_released; /* refusals it counted */
};

struct racer {
    struct teardown *t;
    int id;
    atomic_long posted; /* read by the loop thread while the racer runs */
    int refused_rc;
    bool begun_when_refused;
};

/* A callback's arg carries (racer, sequence number) in its bits; the loop
 * they run on is this case's only one. */
static struct teardown *teardown_case;

static void on_race_post(void *arg)
{
    struct teardown *t = teardown_case;
    uintptr_t bits = (uintptr_t)arg;
    int id = (int)(bits >> RACE_SEQ_BITS);
    long seq = (long)(bits & (((uintptr_t)1 << RACE_SEQ_BITS) - 1));
    CHECK(pthread_equal(pthread_self(), t->loop_thread));
    CHECK(id >= 0 && id < RACERS);
    if (t->destroying)
        t->ran_during_destroy++;
    CHECK_EQ(seq, t->next[id]);
    t->next[id]++;
    if (++t->ran == RACE_RUN_FIRST)
        eddy_loop_stop(t->loop);
}

static void *post_until_refused(void *arg)
{
    struct racer *r = arg;
    struct teardown *t = r->t;
    pthread_barrier_wait(&t->start);
    int rc;
    for (;;) {
        long seq = atomic_load_explicit(&r->posted, memory_order_relaxed);
        uintptr_t bits = ((uintptr_t)r->id << RACE_SEQ_BITS) | (uintptr_t)seq;
        rc = eddy_loop_post(t->loop, on_race_post, (void *)bits);
        if (rc != 0)
            break;
        atomic_store_explicit(&r->posted, seq + 1, memory_order_relaxed);
        if (seq >= RACE_FAST_POSTS)
            sleep_ms(1);
    }
    r->refused_rc = rc;
    r->begun_when_refused = atomic_load(&t->destroy_begun);
    /* Lets destroy finish: this thread will not touch the loop again. */
    uint64_t one = 1;
    CHECK_EQ(write(t->release_fd, &one, sizeof(one)), (long)sizeof(one));
    return NULL;
}

/* Parks until destroy cancels it, then keeps destroy from finishing until
 * every racer has had a post refused, and lets the loop poll once more. */
static intptr_t hold_destroy(void *arg)
{
    struct teardown *t = arg;
    t->holder_cancel_rc = eddy_sleep_until(EDDY_DEADLINE_NEVER);
    CHECK(t->destroying);
    eddy_task_uncancel(); /* cleanup that must block: uncancel first */
    while (t->holder_released < RACERS) {
        uint64_t n;
        if (read(t->release_fd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
            t->holder_released += n;
            continue;
        }
        CHECK_EQ(errno, EAGAIN);
        CHECK_EQ(eddy_fd_wait(t->release_fd, EDDY_FD_READ), 0);
    }
    /* One more poll, now that every racer's last post (and its eventfd
     * signal) is done: a callback that destroy failed to drop would run in
     * it. Without this the holder may finish before the loop polls again. */
    CHECK_EQ(eddy_sleep_ms(1), 0);
    t->held = true;
    return 0;
}

static void posts_racing_destroy_get_eshutdown_and_never_run(void)
{
    struct teardown t = {.loop = new_loop(), .loop_thread = pthread_self()};
    teardown_case = &t;
    t.release_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(t.release_fd >= 0);
    atomic_init(&t.destroy_begun, false);
    CHECK_EQ(pthread_barrier_init(&t.start, NULL, RACERS + 1), 0);
    struct eddy_task *holder;
    CHECK_EQ(eddy_loop_spawn(t.loop, hold_destroy, &t, &(struct eddy_task_opts){.detached = true},
                             &holder),
             0);

    struct racer racers[RACERS];
    pthread_t threads[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (struct racer){.t = &t, .id = i};
        atomic_init(&racers[i].posted, 0);
        threads[i] = start_thread(post_until_refused, &racers[i]);
    }
    pthread_barrier_wait(&t.start);
    /* Runs until the RACE_RUN_FIRST-th callback stops it; the racers go on
     * posting, into a loop that no longer runs. */
    CHECK_EQ(eddy_loop_run(t.loop), 0);
    /* The stop ends the iteration after the batch of posts it came in. */
    CHECK(t.ran >= RACE_RUN_FIRST);
    long ran_before = t.ran;
    /* Destroy must find callbacks queued: wait until RACE_PENDING more have
     * been posted into the stopped loop. */
    for (;;) {
        long posted = 0;
        for (int i = 0; i < RACERS; i++)
            posted += atomic_load_explicit(&racers[i].posted, memory_order_relaxed);
        if (posted >= ran_before + RACE_PENDING)
            break;
        sleep_ms(1);
    }
    t.destroying = true;
    atomic_store(&t.destroy_begun, true);
    eddy_loop_destroy(t.loop);
    for (int i = 0; i < RACERS; i++)
        join_thread(threads[i]);

    CHECK(t.held);
    CHECK_EQ(t.holder_cancel_rc, -ECANCELED);
    CHECK_EQ(t.holder_released, RACERS);
    CHECK_EQ(t.ran_during_destroy, 0);
    CHECK_EQ(t.ran, ran_before);
    long ran = 0, posted = 0;
    for (int i = 0; i < RACERS; i++) {
        CHECK_EQ(racers[i].refused_rc, -ESHUTDOWN);
        CHECK(racers[i].begun_when_refused);
        /* What ran is a prefix of what was posted (on_race_post checked the
         * order); the rest was dropped. */
        long racer_posted = atomic_load(&racers[i].posted);
        CHECK(t.next[i] <= racer_posted);
        ran += t.next[i];
        posted += racer_posted;
    }
    CHECK_EQ(ran, t.ran);
    CHECK(posted - ran >= RACE_PENDING); /* dropped, not run */
    close(t.release_fd);
    pthread_barrier_destroy(&t.start);
    teardown_case = NULL;
}

/* ---- 4. two loops, ping-pong ---------------------------------------------- */

#define ROUND_TRIPS 10000

struct pp_msg {
    struct pp_side *to;
    long value;
};

struct pp_side {
    struct pingpong *pp;
    int id;
    struct eddy_loop *loop;
    pthread_t self;
    struct pp_msg *out; /* ROUND_TRIPS messages this side sends */
    /* This side's loop thread's. */
    struct mailbox box;
    long received;
    int run_rc;
    intptr_t player_result;
};

struct pingpong {
    struct pp_side sides[2];
    pthread_barrier_t created;  /* both loops exist */
    pthread_barrier_t finished; /* both sides returned from their last post */
};

static void on_pp_msg(void *arg)
{
    struct pp_msg *m = arg;
    struct pp_side *to = m->to;
    CHECK(pthread_equal(pthread_self(), to->self));
    CHECK(eddy_loop_current() == to->loop);
    CHECK(eddy_task_current() == NULL);
    to->received++;
    mailbox_put(&to->box, m->value);
}

static void pp_send(struct pp_side *s, long round, long value)
{
    struct pp_side *other = &s->pp->sides[1 - s->id];
    struct pp_msg *m = &s->out[round];
    m->to = other;
    m->value = value;
    CHECK_EQ(eddy_loop_post(other->loop, on_pp_msg, m), 0);
}

static long pp_receive(struct pp_side *s)
{
    long value = -1;
    CHECK_EQ(mailbox_take(&s->box, &value), 0);
    return value;
}

/* Side 0 serves even numbers and expects the next odd one back; side 1
 * answers each even number with the odd one after it. */
static intptr_t pp_player(void *arg)
{
    struct pp_side *s = arg;
    for (long round = 0; round < ROUND_TRIPS; round++) {
        if (s->id == 0) {
            pp_send(s, round, 2 * round);
            CHECK_EQ(pp_receive(s), 2 * round + 1);
        } else {
            CHECK_EQ(pp_receive(s), 2 * round);
            pp_send(s, round, 2 * round + 1);
        }
    }
    return ROUND_TRIPS;
}

static void *pp_thread(void *arg)
{
    struct pp_side *s = arg;
    s->self = pthread_self();
    s->loop = new_loop();
    CHECK((s->out = calloc(ROUND_TRIPS, sizeof(*s->out))) != NULL);
    struct eddy_task *player;
    CHECK_EQ(eddy_loop_spawn(s->loop, pp_player, s, NULL, &player), 0);
    pthread_barrier_wait(&s->pp->created);
    s->run_rc = eddy_loop_run(s->loop);
    s->player_result = result_of(player);
    /* The other side may still be inside its last post into this loop. */
    pthread_barrier_wait(&s->pp->finished);
    CHECK(!s->box.full);
    eddy_loop_destroy(s->loop);
    free(s->out);
    return NULL;
}

static void two_loops_on_two_threads_ping_pong_through_posts(void)
{
    struct pingpong pp = {0};
    CHECK_EQ(pthread_barrier_init(&pp.created, NULL, 2), 0);
    CHECK_EQ(pthread_barrier_init(&pp.finished, NULL, 2), 0);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        pp.sides[i].pp = &pp;
        pp.sides[i].id = i;
    }
    for (int i = 0; i < 2; i++)
        threads[i] = start_thread(pp_thread, &pp.sides[i]);
    for (int i = 0; i < 2; i++)
        join_thread(threads[i]);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pp.sides[i].run_rc, 0);
        CHECK_EQ(pp.sides[i].player_result, ROUND_TRIPS);
        CHECK_EQ(pp.sides[i].received, ROUND_TRIPS);
    }
    pthread_barrier_destroy(&pp.created);
    pthread_barrier_destroy(&pp.finished);
}

/* ---- 5. a loop on its own thread, threads that only post ------------------ */

#define FEEDERS 3
#define FEED_POSTS 2000
/* Every SPAWN_EVERY-th callback spawns a task: 600 in all. */
#define SPAWN_EVERY 10

struct feed_msg {
    struct hub *hub;
    int feeder;
    long seq;
};

struct hub {
    struct eddy_loop *loop;
    pthread_t loop_thread;
    pthread_barrier_t ready;       /* the loop exists: feeders may post */
    pthread_barrier_t may_destroy; /* every feeder returned from its last post */
    struct feed_msg *msgs[FEEDERS];
    /* The loop thread's. */
    long next[FEEDERS];
    long ran;
    long spawned;
    long task_runs;
    int feeders_done;
    struct mailbox all_done;
    int run_rc;
    intptr_t keeper_result;
};

struct feeder {
    struct hub *hub;
    int id;
    int foreign_run_rc, foreign_spawn_rc, bad_rc;
    bool had_current_loop;
};

static intptr_t spawned_task(void *arg)
{
    struct hub *h = arg;
    /* Suspends once, so the task really runs as a coroutine of the loop. */
    int rc = eddy_task_yield();
    CHECK(pthread_equal(pthread_self(), h->loop_thread));
    h->task_runs++;
    return rc;
}

static void on_feed(void *arg)
{
    struct feed_msg *m = arg;
    struct hub *h = m->hub;
    CHECK(pthread_equal(pthread_self(), h->loop_thread));
    CHECK(eddy_loop_current() == h->loop);
    CHECK_EQ(m->seq, h->next[m->feeder]);
    h->next[m->feeder]++;
    h->ran++;
    if (m->seq % SPAWN_EVERY == 0) {
        /* A callback may spawn tasks (eddy_loop_post's contract). */
        CHECK_EQ(eddy_task_spawn(spawned_task, h, &(struct eddy_task_opts){.detached = true}, NULL),
                 0);
        h->spawned++;
    }
}

static void on_feeder_done(void *arg)
{
    struct hub *h = arg;
    CHECK(pthread_equal(pthread_self(), h->loop_thread));
    if (++h->feeders_done == FEEDERS)
        mailbox_put(&h->all_done, FEEDERS);
}

static intptr_t never_runs(void *arg)
{
    (void)arg;
    return -1;
}

static void *feed(void *arg)
{
    struct feeder *f = arg;
    struct hub *h = f->hub;
    pthread_barrier_wait(&h->ready);
    /* This thread only posts: the loop is not its own to run or spawn on. */
    f->had_current_loop = eddy_loop_current() != NULL;
    f->foreign_run_rc = eddy_loop_run(h->loop);
    struct eddy_task *t = NULL;
    f->foreign_spawn_rc = eddy_loop_spawn(h->loop, never_runs, NULL, NULL, &t);
    for (long i = 0; i < FEED_POSTS; i++) {
        struct feed_msg *m = &h->msgs[f->id][i];
        m->hub = h;
        m->feeder = f->id;
        m->seq = i;
        int rc = eddy_loop_post(h->loop, on_feed, m);
        if (rc != 0 && f->bad_rc == 0)
            f->bad_rc = rc;
    }
    int rc = eddy_loop_post(h->loop, on_feeder_done, h);
    if (rc != 0 && f->bad_rc == 0)
        f->bad_rc = rc;
    pthread_barrier_wait(&h->may_destroy);
    return NULL;
}

static void *serve(void *arg)
{
    struct hub *h = arg;
    h->loop_thread = pthread_self();
    h->loop = new_loop();
    struct eddy_task *keeper;
    CHECK_EQ(eddy_loop_spawn(h->loop, take_one, &h->all_done, NULL, &keeper), 0);
    pthread_barrier_wait(&h->ready);
    /* Returns when the keeper and every spawned task have finished. */
    h->run_rc = eddy_loop_run(h->loop);
    h->keeper_result = result_of(keeper);
    pthread_barrier_wait(&h->may_destroy);
    eddy_loop_destroy(h->loop);
    return NULL;
}

static void loop_on_its_own_thread_serves_threads_that_only_post(void)
{
    struct hub h = {0};
    CHECK_EQ(pthread_barrier_init(&h.ready, NULL, FEEDERS + 1), 0);
    CHECK_EQ(pthread_barrier_init(&h.may_destroy, NULL, FEEDERS + 1), 0);
    for (int i = 0; i < FEEDERS; i++)
        CHECK((h.msgs[i] = calloc(FEED_POSTS, sizeof(*h.msgs[i]))) != NULL);
    pthread_t server = start_thread(serve, &h);
    struct feeder feeders[FEEDERS];
    pthread_t threads[FEEDERS];
    for (int i = 0; i < FEEDERS; i++) {
        feeders[i] = (struct feeder){.hub = &h, .id = i};
        threads[i] = start_thread(feed, &feeders[i]);
    }
    for (int i = 0; i < FEEDERS; i++)
        join_thread(threads[i]);
    join_thread(server);

    CHECK_EQ(h.run_rc, 0);
    CHECK_EQ(h.keeper_result, FEEDERS);
    for (int i = 0; i < FEEDERS; i++) {
        CHECK(!feeders[i].had_current_loop);
        CHECK_EQ(feeders[i].foreign_run_rc, -EINVAL);
        CHECK_EQ(feeders[i].foreign_spawn_rc, -EINVAL);
        CHECK_EQ(feeders[i].bad_rc, 0);
        CHECK_EQ(h.next[i], FEED_POSTS);
        free(h.msgs[i]);
    }
    CHECK_EQ(h.ran, (long)FEEDERS * FEED_POSTS);
    CHECK_EQ(h.spawned, (long)FEEDERS * FEED_POSTS / SPAWN_EVERY);
    CHECK_EQ(h.task_runs, h.spawned);
    pthread_barrier_destroy(&h.ready);
    pthread_barrier_destroy(&h.may_destroy);
}

/* ---- offload pool and channel ------------------------------------------------ */

/* Offload: the job writes into memory the caller reads after the call, and
 * two loops on two threads share the pool; TSan checks that a result (and
 * everything the job wrote) is visible to the caller through the
 * completion's intrusive post. Cancelled callers hand their jobs to dispose,
 * exactly once, on the loop thread. */
#define OFFLOAD_CALLERS 64
#define OFFLOAD_ROUNDS 20

struct offload_slot {
    long written; /* by the job, on a worker thread */
    long seen;    /* by the caller, after the call */
    int rc;
    int disposed;
    bool disposed_ran;
};

static intptr_t offload_write(void *arg)
{
    struct offload_slot *s = arg;
    s->written++;
    return s->written * 2;
}

static void offload_dispose(void *arg, intptr_t result, bool ran)
{
    struct offload_slot *s = arg;
    s->disposed++;
    s->disposed_ran = ran;
    if (ran)
        CHECK_EQ(result, s->written * 2);
}

static intptr_t offload_caller(void *arg)
{
    struct offload_slot *s = arg;
    for (int i = 0; i < OFFLOAD_ROUNDS; i++) {
        intptr_t r = 0;
        s->rc = eddy_offload_run(offload_write, s, offload_dispose, &r);
        if (s->rc < 0)
            return s->rc;
        CHECK_EQ(r, s->written * 2);
        s->seen = s->written;
    }
    return 0;
}

struct offload_loop {
    struct offload_slot slots[OFFLOAD_CALLERS];
    bool cancel;
};

static intptr_t offload_main(void *arg)
{
    struct offload_loop *l = arg;
    struct eddy_task *tasks[OFFLOAD_CALLERS];
    for (int i = 0; i < OFFLOAD_CALLERS; i++)
        CHECK_EQ(eddy_task_spawn(offload_caller, &l->slots[i], NULL, &tasks[i]), 0);
    if (l->cancel) {
        eddy_task_yield();
        for (int i = 0; i < OFFLOAD_CALLERS; i++)
            eddy_task_cancel(tasks[i]);
    }
    for (int i = 0; i < OFFLOAD_CALLERS; i++)
        eddy_task_join(tasks[i], NULL);
    return 0;
}

static void *offload_loop_thread(void *arg)
{
    intptr_t r = -1;
    CHECK_EQ(eddy_run(offload_main, arg, NULL, &r), 0);
    CHECK_EQ(r, 0);
    return NULL;
}

static void offload_from_two_loops_on_two_threads_returns_every_result(void)
{
    eddy_offload_set_threads(3);
    static struct offload_loop loops[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = start_thread(offload_loop_thread, &loops[i]);
    for (int i = 0; i < 2; i++)
        join_thread(t[i]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < OFFLOAD_CALLERS; j++) {
            CHECK_EQ(loops[i].slots[j].rc, 0);
            CHECK_EQ(loops[i].slots[j].seen, OFFLOAD_ROUNDS);
            CHECK_EQ(loops[i].slots[j].disposed, 0);
        }
}

static void offload_cancelled_callers_dispose_each_job_once_then_destroy(void)
{
    eddy_offload_set_threads(2);
    static struct offload_loop l = {.cancel = true};
    offload_loop_thread(&l); /* eddy_run destroys the loop at the end */
    for (int j = 0; j < OFFLOAD_CALLERS; j++) {
        struct offload_slot *s = &l.slots[j];
        if (s->rc == 0) {
            CHECK_EQ(s->disposed, 0);
            continue;
        }
        CHECK_EQ(s->rc, -ECANCELED);
        CHECK_EQ(s->disposed, 1);
    }
}

/* Channel: four threads send (two with try_send, two blocking) to two
 * receiver tasks; per sender the values arrive in order, and the pointed-to
 * payload written before the send is visible to the receiver. */
#define CH_SENDERS 4
#define CH_VALUES 2000

struct ch_payload {
    int sender;
    long seq;
};

struct ch_sender {
    struct eddy_channel *ch;
    int id;
    struct ch_payload *payloads;
};

static void *ch_send_all(void *arg)
{
    struct ch_sender *s = arg;
    for (long i = 0; i < CH_VALUES; i++) {
        struct ch_payload *p = &s->payloads[i];
        p->sender = s->id;
        p->seq = i;
        int rc;
        if (s->id % 2 == 0) {
            while ((rc = eddy_channel_try_send(s->ch, (intptr_t)p)) == -EAGAIN)
                sched_yield();
        } else {
            rc = eddy_channel_send_blocking(s->ch, (intptr_t)p, EDDY_DEADLINE_NEVER);
        }
        CHECK_EQ(rc, 0);
    }
    return NULL;
}

struct ch_hub {
    struct eddy_channel *ch;
    long next[CH_SENDERS];
    long received;
};

static intptr_t ch_receiver(void *arg)
{
    struct ch_hub *h = arg;
    for (;;) {
        intptr_t v;
        int rc = eddy_channel_recv(h->ch, &v);
        if (rc == -EPIPE)
            return 0;
        CHECK_EQ(rc, 0);
        struct ch_payload *p = (struct ch_payload *)v;
        CHECK_EQ(p->seq, h->next[p->sender]);
        h->next[p->sender]++;
        if (++h->received == (long)CH_SENDERS * CH_VALUES)
            eddy_channel_close(h->ch);
    }
}

static intptr_t ch_main(void *arg)
{
    struct ch_hub *h = arg;
    CHECK_EQ(eddy_channel_create(eddy_loop_current(), 16, &h->ch), 0);
    struct ch_sender senders[CH_SENDERS];
    pthread_t threads[CH_SENDERS];
    for (int i = 0; i < CH_SENDERS; i++) {
        senders[i] = (struct ch_sender){h->ch, i, calloc(CH_VALUES, sizeof(struct ch_payload))};
        CHECK(senders[i].payloads != NULL);
        threads[i] = start_thread(ch_send_all, &senders[i]);
    }
    struct eddy_task *r[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(eddy_task_spawn(ch_receiver, h, NULL, &r[i]), 0);
    for (int i = 0; i < 2; i++) {
        intptr_t res = -1;
        CHECK_EQ(eddy_task_join(r[i], &res), 0);
        CHECK_EQ(res, 0);
    }
    for (int i = 0; i < CH_SENDERS; i++) {
        join_thread(threads[i]);
        free(senders[i].payloads);
    }
    CHECK_EQ(eddy_channel_destroy(h->ch), 0);
    return 0;
}

static void channel_four_threads_send_to_two_tasks_in_order_per_thread(void)
{
    struct ch_hub h = {0};
    intptr_t r = -1;
    CHECK_EQ(eddy_run(ch_main, &h, NULL, &r), 0);
    CHECK_EQ(r, 0);
    CHECK_EQ(h.received, (long)CH_SENDERS * CH_VALUES);
    for (int i = 0; i < CH_SENDERS; i++)
        CHECK_EQ(h.next[i], CH_VALUES);
}

/* A task of another loop sends through a small channel (polling when full);
 * the receiving loop closes it from its side at the end. */
struct ch_cross {
    struct eddy_channel *ch;
    long sent;
};

static intptr_t ch_cross_sender(void *arg)
{
    struct ch_cross *c = arg;
    for (long i = 0; i < CH_VALUES; i++) {
        CHECK_EQ(eddy_channel_send(c->ch, (intptr_t)i), 0);
        c->sent++;
    }
    return 0;
}

static void *ch_cross_thread(void *arg)
{
    intptr_t r = -1;
    CHECK_EQ(eddy_run(ch_cross_sender, arg, NULL, &r), 0);
    CHECK_EQ(r, 0);
    return NULL;
}

static intptr_t ch_cross_main(void *arg)
{
    struct ch_cross *c = arg;
    CHECK_EQ(eddy_channel_create(eddy_loop_current(), 2, &c->ch), 0);
    pthread_t t = start_thread(ch_cross_thread, c);
    for (long i = 0; i < CH_VALUES; i++) {
        intptr_t v;
        CHECK_EQ(eddy_channel_recv(c->ch, &v), 0);
        CHECK_EQ(v, i);
    }
    join_thread(t);
    CHECK_EQ(c->sent, CH_VALUES);
    CHECK_EQ(eddy_channel_close(c->ch), 0);
    intptr_t v;
    CHECK_EQ(eddy_channel_recv(c->ch, &v), -EPIPE);
    CHECK_EQ(eddy_channel_destroy(c->ch), 0);
    return 0;
}

static void channel_between_two_loops_on_two_threads(void)
{
    struct ch_cross c = {0};
    intptr_t r = -1;
    CHECK_EQ(eddy_run(ch_cross_main, &c, NULL, &r), 0);
    CHECK_EQ(r, 0);
}

/* ---- runner ---------------------------------------------------------------- */

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define CASE(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const struct test_case cases[] = {
    CASE(posts_from_four_threads_arrive_in_order_per_thread),
    CASE(stop_from_another_thread_returns_a_run_blocked_in_epoll_and_a_later_run_resumes),
    CASE(posts_racing_destroy_get_eshutdown_and_never_run),
    CASE(two_loops_on_two_threads_ping_pong_through_posts),
    CASE(loop_on_its_own_thread_serves_threads_that_only_post),
    CASE(offload_from_two_loops_on_two_threads_returns_every_result),
    CASE(offload_cancelled_callers_dispose_each_job_once_then_destroy),
    CASE(channel_four_threads_send_to_two_tasks_in_order_per_thread),
    CASE(channel_between_two_loops_on_two_threads),
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Runs one case in a child. Returns true when it passed; otherwise puts the
 * reason in why. */
static bool run_case(const struct test_case *c, char *why, size_t why_len)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        alarm(CASE_TIMEOUT_S);
        c->fn();
        /* exit, not _exit: TSan's exit check runs (when halt_on_error is off,
         * it turns an earlier report into exit status 66). */
        exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, why_len, "waitpid: %s", strerror(errno));
            return false;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFEXITED(status) && WEXITSTATUS(status) == TSAN_EXIT_STATUS)
        snprintf(why, why_len, "ThreadSanitizer reported an error (exit status %d)",
                 TSAN_EXIT_STATUS);
    else if (WIFEXITED(status))
        snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(why, why_len, "timed out after %d s", CASE_TIMEOUT_S);
    else if (WIFSIGNALED(status))
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, why_len, "ended with wait status %#x", (unsigned)status);
    return false;
}

static bool selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NCASES; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    size_t planned = 0;
    for (size_t i = 0; i < NCASES; i++)
        planned += selected(cases[i].name, argc, argv);
    if (planned == 0) {
        fprintf(stderr, "no case matches; --list prints the names\n");
        return 2;
    }
#ifndef BUILT_WITH_TSAN
    printf("# warning: built without -fsanitize=thread; races go undetected\n");
#endif
    printf("1..%zu\n", planned);
    int passed = 0, failed = 0, number = 0;
    for (size_t i = 0; i < NCASES; i++) {
        if (!selected(cases[i].name, argc, argv))
            continue;
        char why[128] = "";
        bool ok = run_case(&cases[i], why, sizeof(why));
        printf("%s %d - %s\n", ok ? "ok" : "not ok", ++number, cases[i].name);
        if (ok) {
            passed++;
        } else {
            printf("#   %s\n", why);
            failed++;
        }
    }
    printf("# tsan: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
