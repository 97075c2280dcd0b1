/*
 * examples/task_queue.c: a task queue with N workers, each job's result
 * coming back through a future.
 *
 *   async def worker(q):
 *       while True:
 *           job = await q.get()
 *           try: job.future.set_result(await job.run())
 *           except Exception as e: job.future.set_exception(e)
 *           finally: q.task_done()
 *   q = asyncio.Queue(maxsize=4)
 *   workers = [asyncio.create_task(worker(q)) for _ in range(3)]
 *   jobs = [Job(x) for x in range(8)]
 *   for job in jobs: await q.put(job)
 *   for job in jobs: print(await job.future)
 *   await q.join()
 *
 * The submitter reads the results in submission order, whatever order the
 * workers finish in, so the output does not depend on timing. Closing the
 * queue ends the workers: their get returns -EPIPE once it is empty.
 */
#include <stdio.h>

#include <eddy/eddy.h>

#define NWORKERS 3
#define NJOBS 8
#define QUEUE_CAPACITY 4

struct job {
    int x;
    struct eddy_future result;
};

static struct eddy_queue queue;

/* The work: a square that takes a few ms; too large an input fails. */
static intptr_t run_job(const struct job *j)
{
    int rc = eddy_sleep_ms(1 + j->x % 3);
    if (rc < 0)
        return rc;
    if (j->x > 6)
        return -ERANGE;
    return (intptr_t)j->x * j->x;
}

static intptr_t worker(void *arg)
{
    int *handled = arg;
    for (;;) {
        void *item;
        int rc = eddy_queue_get(&queue, &item, EDDY_DEADLINE_NEVER);
        if (rc == -EPIPE)
            return 0; /* closed and drained: no more work */
        if (rc < 0)
            return rc;
        struct job *j = item;
        intptr_t r = run_job(j);
        if (r < 0)
            eddy_future_set_error(&j->result, (int)r);
        else
            eddy_future_set_result(&j->result, r);
        (*handled)++;
        eddy_queue_task_done(&queue);
    }
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    int rc = eddy_queue_init(&queue, EDDY_QUEUE_FIFO, QUEUE_CAPACITY);
    if (rc < 0)
        return rc;
    struct eddy_group *workers;
    rc = eddy_group_create(&workers);
    if (rc < 0)
        goto fail_queue;
    int handled = 0;
    for (int i = 0; i < NWORKERS && rc == 0; i++)
        rc = eddy_group_spawn(workers, worker, &handled, NULL, NULL);

    struct job jobs[NJOBS];
    for (int i = 0; i < NJOBS && rc == 0; i++) {
        jobs[i].x = i;
        eddy_future_init(&jobs[i].result);
        rc = eddy_queue_put(&queue, &jobs[i], EDDY_DEADLINE_NEVER); /* waits while full */
    }
    if (rc == 0)
        printf("submitted %d jobs to %d workers\n", NJOBS, NWORKERS);
    for (int i = 0; i < NJOBS && rc == 0; i++) {
        intptr_t value;
        int jrc = eddy_future_wait(&jobs[i].result, &value, EDDY_DEADLINE_NEVER);
        if (jrc == 0)
            printf("job %d: %ld\n", i, (long)value);
        else
            printf("job %d: failed (%s)\n", i, eddy_strerror(jrc));
    }
    if (rc == 0)
        rc = eddy_queue_join(&queue, EDDY_DEADLINE_NEVER);
    eddy_queue_close(&queue);
    int group_rc = eddy_group_join(workers);
    if (rc == 0 && group_rc == 0)
        printf("queue closed; the workers handled %d jobs in all\n", handled);
    rc = rc < 0 ? rc : group_rc;
fail_queue:
    eddy_queue_fini(&queue);
    return rc;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
