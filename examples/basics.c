/*
 * examples/basics.c: asyncio's first lesson in C.
 *
 *   async def say_after(delay, what): await asyncio.sleep(delay); print(what)
 *   async def main():
 *       t1 = asyncio.create_task(say_after(0.02, "hello"))
 *       t2 = asyncio.create_task(say_after(0.04, "world"))
 *       await t1; await t2                        # 40 ms in all, not 60
 *       slow = asyncio.create_task(say_after(10, "never"))
 *       slow.cancel()
 *       async with asyncio.timeout(0.01): await asyncio.sleep(1)
 *
 * Prints, in this order: hello, world, the elapsed time class, the
 * cancelled task's result and the timeout.
 */
#include <stdio.h>

#include <eddy/eddy.h>

struct say {
    int64_t delay_ms;
    const char *what;
};

static intptr_t say_after(void *arg)
{
    const struct say *s = arg;
    int rc = eddy_sleep_ms(s->delay_ms);
    if (rc < 0)
        return rc;
    printf("%s\n", s->what);
    return 0;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct say hello = {20, "hello"}, world = {40, "world"}, never = {10000, "never"};
    struct eddy_task *t1, *t2, *slow;
    int64_t start = eddy_clock_ns();
    if (eddy_task_spawn(say_after, &hello, NULL, &t1) < 0 ||
        eddy_task_spawn(say_after, &world, NULL, &t2) < 0)
        return -ENOMEM;
    eddy_task_join(t1, NULL);
    eddy_task_join(t2, NULL);
    int64_t elapsed_ms = (eddy_clock_ns() - start) / EDDY_NS_PER_MS;
    printf("both done concurrently: %s\n", elapsed_ms < 60 ? "yes" : "no");

    intptr_t result = 0;
    if (eddy_task_spawn(say_after, &never, &(struct eddy_task_opts){.name = "slow"}, &slow) < 0)
        return -ENOMEM;
    eddy_task_cancel(slow);
    eddy_task_join(slow, &result);
    printf("slow task: %s\n", eddy_strerror((int)result));

    struct eddy_timeout scope;
    eddy_timeout_enter(&scope, 10 * EDDY_NS_PER_MS);
    int rc = eddy_sleep_ms(1000);
    eddy_timeout_exit(&scope);
    printf("sleep inside a 10 ms timeout: %s\n", eddy_strerror(rc));
    return 0;
}

int main(void)
{
    intptr_t result;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    if (rc < 0) {
        fprintf(stderr, "eddy_run: %s\n", eddy_strerror(rc));
        return 1;
    }
    return result == 0 ? 0 : 1;
}
