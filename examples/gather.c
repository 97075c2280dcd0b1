/*
 * examples/gather.c: asyncio.gather of three tasks.
 *
 *   async def square(name, delay, x):
 *       await asyncio.sleep(delay); print(f"{name} done"); return x * x
 *   results = await asyncio.gather(square("A", .03, 2), square("B", .01, 3),
 *                                  square("C", .02, 4))
 *
 * The tasks finish B, C, A (their delays: 30, 10, 20 ms), but the results
 * come back in the order the calls were given. The three waits overlap, so
 * the gather takes about 30 ms, not 60 (not printed: the output is checked
 * by the tests and must not depend on timing).
 */
#include <stdio.h>

#include <eddy/eddy.h>

struct job {
    const char *name;
    int64_t delay_ms;
    intptr_t x;
};

static intptr_t square(void *arg)
{
    const struct job *j = arg;
    int rc = eddy_sleep_ms(j->delay_ms);
    if (rc < 0)
        return rc;
    printf("%s done\n", j->name);
    return j->x * j->x;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct job jobs[3] = {{"A", 30, 2}, {"B", 10, 3}, {"C", 20, 4}};
    struct eddy_call calls[3];
    for (int i = 0; i < 3; i++)
        calls[i] = (struct eddy_call){square, &jobs[i]};
    intptr_t results[3];
    int rc = eddy_gather(calls, 3, results, EDDY_GATHER_ALL);
    if (rc < 0) {
        printf("gather: %s\n", eddy_strerror(rc));
        return rc;
    }
    printf("results in call order: A=%ld B=%ld C=%ld\n", (long)results[0], (long)results[1],
           (long)results[2]);
    return 0;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
