/*
 * examples/shutdown.c: graceful shutdown of a server-like task on SIGTERM
 * or SIGINT (Ctrl-C), the asyncio idiom
 *
 *   stop = asyncio.Event()
 *   loop.add_signal_handler(signal.SIGTERM, stop.set)
 *   loop.add_signal_handler(signal.SIGINT, stop.set)
 *   await stop.wait()   # then let the workers finish what they are doing
 *
 * The server runs three workers that handle "requests" (5 ms each) until
 * the stop event is set; each finishes the request in hand and leaves, so
 * no request is cut in half. Run it and press Ctrl-C, or send it SIGTERM:
 * the output is the same whenever the signal comes.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <eddy/eddy.h>

#define WORKERS 3

struct server {
    struct eddy_event stopping;
    int finished; /* workers that ended between two requests */
    long requests;
};

static intptr_t worker(void *arg)
{
    struct server *s = arg;
    while (!eddy_event_is_set(&s->stopping)) {
        /* One request: waiting on I/O, not interrupted by the shutdown. */
        int rc = eddy_sleep_ms(5);
        if (rc < 0)
            return rc;
        s->requests++;
    }
    s->finished++;
    return 0;
}

static intptr_t server(void *arg)
{
    struct server *s = arg;
    struct eddy_group *g;
    int rc = eddy_group_create(&g);
    if (rc < 0)
        return rc;
    for (int i = 0; i < WORKERS && rc == 0; i++)
        rc = eddy_group_spawn(g, worker, s, NULL, NULL);
    if (rc == 0) {
        printf("server: %d workers serving\n", WORKERS);
        rc = eddy_event_wait(&s->stopping, EDDY_DEADLINE_NEVER);
        printf("server: stopping, the workers finish their requests\n");
    }
    if (rc < 0)
        eddy_group_cancel(g);
    int join = eddy_group_join(g);
    printf("server: %d of %d workers finished cleanly\n", s->finished, WORKERS);
    return rc < 0 ? rc : join;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct server s = {.finished = 0, .requests = 0};
    eddy_event_init(&s.stopping);
    struct eddy_task *srv;
    int rc = eddy_task_spawn(server, &s, NULL, &srv);
    if (rc < 0)
        return rc;
    eddy_task_yield(); /* the server starts its workers */
    printf("ready\n");
    fflush(stdout);
    fprintf(stderr, "shutdown: send SIGTERM to %d, or press Ctrl-C\n", (int)getpid());

    static const int stop[] = {SIGINT, SIGTERM};
    int sig = eddy_signal_wait(stop, 2, EDDY_DEADLINE_NEVER);
    if (sig < 0) {
        eddy_task_cancel(srv);
    } else {
        printf("got %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        eddy_event_set(&s.stopping);
    }
    intptr_t result = -1;
    eddy_task_join(srv, &result);
    fprintf(stderr, "shutdown: %ld requests served\n", s.requests);
    printf("bye\n");
    return sig < 0 ? sig : result;
}

int main(void)
{
    /* Blocked before the loop and any thread start (threads inherit the
     * mask): from now on SIGINT and SIGTERM wait for the task that awaits
     * them instead of ending the process, even when they come early. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    intptr_t result;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
