/*
 * examples/background_cancel.c: a background task cancelled at shutdown,
 * which then cleans up inside a shield.
 *
 *   async def writer(buf):
 *       try:
 *           while True:
 *               await asyncio.sleep(0.01); buf.append(record()); print("buffered")
 *       except asyncio.CancelledError:
 *           await asyncio.shield(flush(buf))    # cleanup that must block
 *           raise
 *   task = asyncio.create_task(writer(buf))
 *   await three_records_buffered.wait()
 *   task.cancel()                                 # shutdown
 *   await task                                    # CancelledError
 *
 * In eddy a cancellation stays in force: once cancelled, every blocking call
 * of the task fails at once with -ECANCELED, so a flush that must wait for
 * its writes cannot run. Inside eddy_shield_enter / eddy_shield_exit the
 * cancellation is held back (trio's CancelScope(shield=True)); a timeout
 * scope inside the shield still bounds the cleanup. After the shield, the
 * cancellation is back and the task ends with -ECANCELED.
 * The writer buffers on absolute deadlines (start + 10, 20, 30 ms) and the
 * shutdown comes once it has buffered three records, so the output is the
 * same on a slow machine.
 */
#include <stdio.h>

#include <eddy/eddy.h>

#define TICK_MS 10
#define RECORDS_BEFORE_SHUTDOWN 3
#define FLUSH_MS 2
#define CLEANUP_LIMIT_MS 1000

struct writer {
    int64_t start_ns;
    int buffered;
    int flushed;
    struct eddy_event enough; /* set once RECORDS_BEFORE_SHUTDOWN are buffered */
};

/* The cleanup: one blocking write per buffered record. */
static int flush(struct writer *w)
{
    while (w->flushed < w->buffered) {
        int rc = eddy_sleep_ms(FLUSH_MS);
        if (rc < 0)
            return rc;
        printf("writer: flushed record %d\n", ++w->flushed);
    }
    return 0;
}

static intptr_t writer(void *arg)
{
    struct writer *w = arg;
    int rc;
    for (int tick = 1;; tick++) {
        rc = eddy_sleep_until(w->start_ns + tick * TICK_MS * EDDY_NS_PER_MS);
        if (rc < 0)
            break;
        printf("writer: buffered record %d\n", ++w->buffered);
        if (w->buffered == RECORDS_BEFORE_SHUTDOWN)
            eddy_event_set(&w->enough);
    }
    printf("writer: cancelled with %d records buffered\n", w->buffered);
    printf("writer: outside a shield, a sleep fails at once: %s\n",
           eddy_strerror(eddy_sleep_ms(1)));

    struct eddy_shield shield;
    struct eddy_timeout limit;
    eddy_shield_enter(&shield);
    eddy_timeout_enter(&limit, CLEANUP_LIMIT_MS * EDDY_NS_PER_MS);
    int flush_rc = flush(w);
    eddy_timeout_exit(&limit);
    eddy_shield_exit(&shield);
    printf("writer: flush %s, leaving\n", flush_rc == 0 ? "done" : eddy_strerror(flush_rc));
    return rc; /* -ECANCELED: the task was cancelled */
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct writer w = {.start_ns = eddy_now_ns()};
    eddy_event_init(&w.enough);
    struct eddy_task *t;
    int rc = eddy_task_spawn(writer, &w, NULL, &t);
    if (rc < 0)
        return rc;
    /* Shutdown comes once three records are buffered (a fixed delay would
     * race the writer's ticks on a slow machine). */
    rc = eddy_event_wait(&w.enough, EDDY_DEADLINE_NEVER);
    if (rc < 0)
        return rc;
    printf("main: shutting down, cancelling the writer\n");
    eddy_task_cancel(t);
    intptr_t result = 0;
    rc = eddy_task_join(t, &result);
    if (rc < 0)
        return rc;
    printf("main: the writer ended with %s; %d of %d records flushed\n", eddy_strerror((int)result),
           w.flushed, w.buffered);
    return 0;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
