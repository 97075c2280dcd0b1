/*
 * examples/producer_consumer.c: a producer and a consumer through a bounded
 * queue, ended by an end marker.
 *
 *   q = asyncio.Queue(maxsize=2)
 *   async def producer():
 *       for i in range(1, 6): await q.put(i); print(f"put {i}")
 *       await q.put(None)                        # the end marker
 *   async def consumer():
 *       while (item := await q.get()) is not None:
 *           print(f"got {item}"); await asyncio.sleep(0.001)
 *
 * The queue holds two items: the producer runs ahead by two, then waits
 * for the consumer to make room. Items are void * values; here they carry
 * small integers, and NULL is the end marker.
 */
#include <stdio.h>

#include <eddy/eddy.h>

static struct eddy_queue q;

static intptr_t producer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= 5; i++) {
        int rc = eddy_queue_put(&q, (void *)i, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc;
        printf("put %ld\n", (long)i);
    }
    return eddy_queue_put(&q, NULL, EDDY_DEADLINE_NEVER);
}

static intptr_t consumer(void *arg)
{
    (void)arg;
    intptr_t total = 0;
    for (;;) {
        void *item;
        int rc = eddy_queue_get(&q, &item, EDDY_DEADLINE_NEVER);
        if (rc < 0)
            return rc;
        if (!item)
            break;
        printf("got %ld\n", (long)(intptr_t)item);
        total += (intptr_t)item;
        rc = eddy_sleep_ms(1);
        if (rc < 0)
            return rc;
    }
    printf("end marker: done\n");
    return total;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    int rc = eddy_queue_init(&q, EDDY_QUEUE_FIFO, 2);
    if (rc < 0)
        return rc;
    struct eddy_call calls[2] = {{producer, NULL}, {consumer, NULL}};
    intptr_t results[2];
    rc = eddy_gather(calls, 2, results, EDDY_GATHER_FAIL_FAST);
    if (rc == 0)
        printf("sum of items: %ld\n", (long)results[1]);
    eddy_queue_fini(&q);
    return rc;
}

int main(void)
{
    intptr_t result = 0;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
