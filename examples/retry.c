/*
 * examples/retry.c: retrying an operation that fails 70% of the time, with
 * exponential backoff and jitter (the guides' async_retry decorator).
 *
 *   @async_retry(max_attempts=10, base_delay=0.001, jitter=0.5)
 *   async def flaky_fetch(): ...   # raises 70% of the time
 *
 * The failures come from a fixed-seed generator, so the run (and its
 * output) is the same every time; only the waits between attempts vary
 * with the jitter.
 */
#include <stdio.h>

#include <eddy/eddy.h>

static uint64_t seed = 5;

/* 70% of calls fail with -ECONNRESET, like an unreliable service. */
static intptr_t flaky_fetch(void *arg, unsigned attempt)
{
    (void)arg;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    bool fails = seed % 10 < 7;
    printf("attempt %u: %s\n", attempt, fails ? "connection reset" : "ok");
    return fails ? -ECONNRESET : 200;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    struct eddy_retry_opts policy = {
        .max_attempts = 10,
        .base_delay_ns = EDDY_NS_PER_MS,
        .max_delay_ns = 20 * EDDY_NS_PER_MS,
        .jitter = 0.5,
    };
    intptr_t status = 0;
    int rc = eddy_retry(flaky_fetch, NULL, &policy, &status);
    if (rc < 0) {
        printf("gave up: %s\n", eddy_strerror(rc));
        return rc;
    }
    printf("fetched with status %ld\n", (long)status);
    return 0;
}

int main(void)
{
    intptr_t result;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
