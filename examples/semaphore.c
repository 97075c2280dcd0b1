/*
 * examples/semaphore.c: a semaphore letting 10 tasks through 3 at a time.
 *
 *   sem = asyncio.Semaphore(3)
 *   async def worker(i):
 *       async with sem:
 *           print(f"worker {i} in"); await asyncio.sleep(0.01)
 *           print(f"worker {i} out")
 *   await asyncio.gather(*(worker(i) for i in range(10)))
 *
 * Workers enter in order (the semaphore hands a released unit to the
 * longest waiter), never more than three inside at once.
 */
#include <stdio.h>

#include <eddy/eddy.h>

static struct eddy_sem sem;
static int inside, most_inside;

static intptr_t worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = eddy_sem_acquire(&sem, EDDY_DEADLINE_NEVER);
    if (rc < 0)
        return rc;
    inside++;
    if (inside > most_inside)
        most_inside = inside;
    printf("worker %d in (%d inside)\n", i, inside);
    rc = eddy_sleep_ms(10);
    inside--;
    printf("worker %d out\n", i);
    eddy_sem_release(&sem);
    return rc;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    eddy_sem_init(&sem, 3);
    struct eddy_call calls[10];
    for (int i = 0; i < 10; i++)
        calls[i] = (struct eddy_call){worker, (void *)(intptr_t)i};
    intptr_t results[10];
    int rc = eddy_gather(calls, 10, results, EDDY_GATHER_FAIL_FAST);
    printf("at most %d inside at once\n", most_inside);
    return rc;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
