/*
 * examples/as_completed.c: asyncio.as_completed.
 *
 *   async def job(name, delay): await asyncio.sleep(delay); return name
 *   for next_done in asyncio.as_completed([job("A", 3), job("B", 1),
 *                                          job("C", 2)]):
 *       print(await next_done)
 *
 * Delays of 3, 1 and 2 (scaled to 30, 10 and 20 ms): prints B, C, A, each as
 * soon as it is ready, with the index of the call it came from.
 */
#include <stdio.h>

#include <eddy/eddy.h>

struct job {
    char name;
    int64_t delay_ms;
};

static intptr_t job(void *arg)
{
    const struct job *j = arg;
    int rc = eddy_sleep_ms(j->delay_ms);
    return rc < 0 ? rc : j->name;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct job jobs[3] = {{'A', 30}, {'B', 10}, {'C', 20}};
    struct eddy_call calls[3];
    for (int i = 0; i < 3; i++)
        calls[i] = (struct eddy_call){job, &jobs[i]};
    struct eddy_as_completed *ac;
    int rc = eddy_as_completed_start(calls, 3, &ac);
    if (rc < 0)
        return rc;
    size_t index;
    intptr_t name;
    while ((rc = eddy_as_completed_next(ac, &index, &name, EDDY_DEADLINE_NEVER)) > 0)
        printf("%c (call %zu)\n", (char)name, index);
    int stop_rc = eddy_as_completed_stop(ac);
    return rc < 0 ? rc : stop_rc;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
