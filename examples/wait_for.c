/*
 * examples/wait_for.c: asyncio.wait_for hitting its timeout, and the same
 * wait around a shielded task, which keeps running.
 *
 *   async def fetch(name, delay):
 *       print(f"{name}: started")
 *       try:
 *           await asyncio.sleep(delay)
 *       except asyncio.CancelledError:
 *           print(f"{name}: cancelled while sleeping"); raise
 *       return 42
 *   print(await asyncio.wait_for(fetch("fast", 0.01), timeout=0.05))
 *   try:
 *       await asyncio.wait_for(fetch("slow", 1), timeout=0.05)
 *   except TimeoutError:
 *       print("slow: timed out")
 *   save = asyncio.create_task(fetch("save", 0.03))
 *   try:
 *       await asyncio.wait_for(asyncio.shield(save), timeout=0.01)
 *   except TimeoutError:
 *       print("save: still running"); print(await save)
 *
 * eddy_wait_for cancels the task at the deadline and waits until it has
 * finished, so the slow task's cleanup has run when it returns.
 * eddy_shield_join never cancels: the task keeps its handle and can be
 * joined again. The order of the lines does not depend on timing: each
 * sleep and its deadline are counted from the same loop time, and timers
 * fire in deadline order.
 */
#include <stdio.h>

#include <eddy/eddy.h>

struct fetch {
    const char *name;
    int64_t delay_ms;
    bool cleaned_up;
};

static intptr_t fetch(void *arg)
{
    struct fetch *f = arg;
    printf("%s: started\n", f->name);
    int rc = eddy_sleep_ms(f->delay_ms);
    f->cleaned_up = true;
    if (rc < 0) {
        printf("%s: cancelled while sleeping\n", f->name);
        return rc;
    }
    printf("%s: finished\n", f->name);
    return 42;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct fetch fast = {"fast", 10, false}, slow = {"slow", 1000, false};
    struct fetch save = {"save", 30, false};
    struct eddy_task *t;
    intptr_t result = 0;

    if (eddy_task_spawn(fetch, &fast, NULL, &t) < 0)
        return -ENOMEM;
    int rc = eddy_wait_for(t, eddy_now_ns() + 50 * EDDY_NS_PER_MS, &result);
    printf("fast: %s, result %ld\n", rc == 0 ? "in time" : eddy_strerror(rc), (long)result);

    if (eddy_task_spawn(fetch, &slow, NULL, &t) < 0)
        return -ENOMEM;
    rc = eddy_wait_for(t, eddy_now_ns() + 50 * EDDY_NS_PER_MS, NULL);
    if (rc != -ETIMEDOUT)
        return rc < 0 ? rc : -EPROTO;
    printf("slow: timed out after 50 ms; its cleanup %s\n",
           slow.cleaned_up ? "ran before wait_for returned" : "has not run");

    if (eddy_task_spawn(fetch, &save, NULL, &t) < 0)
        return -ENOMEM;
    rc = eddy_shield_join(t, eddy_now_ns() + 10 * EDDY_NS_PER_MS, &result);
    if (rc != -ETIMEDOUT)
        return rc < 0 ? rc : -EPROTO;
    printf("save: the wait timed out after 10 ms, the task is %s\n",
           eddy_task_is_done(t) ? "done" : "still running");
    rc = eddy_task_join(t, &result);
    if (rc < 0)
        return rc;
    printf("save: result %ld\n", (long)result);
    return 0;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
