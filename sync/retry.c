/*
 * sync/retry.c: retry with exponential backoff and jitter.
 *
 * The delay doubles (by `multiplier`) from base_delay_ns up to max_delay_ns;
 * `jitter` of it is drawn uniformly at random so that clients that failed
 * together spread out ("equal jitter" at 0.5, "full jitter" at 1.0). The
 * random numbers come from a per-thread xorshift generator seeded from the
 * clock and the thread: cheap, and good enough to spread retries.
 * Cancellation and timeout scopes end the loop at the next backoff sleep.
 */
#include <pthread.h>

#include <eddy/sync.h>

#define DEFAULT_ATTEMPTS 3
#define DEFAULT_BASE_NS (100 * EDDY_NS_PER_MS)
#define DEFAULT_MAX_NS (10 * EDDY_NS_PER_SEC)

static __thread uint64_t rng_state;

static uint64_t next_random(void)
{
    if (!rng_state)
        rng_state = (uint64_t)eddy_clock_ns() ^ ((uint64_t)pthread_self() << 1) ^ 1;
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

EDDY_API int64_t eddy_retry_delay_ns(const struct eddy_retry_opts *opts, unsigned attempt)
{
    int64_t base = opts && opts->base_delay_ns > 0 ? opts->base_delay_ns : DEFAULT_BASE_NS;
    int64_t cap = opts && opts->max_delay_ns > 0 ? opts->max_delay_ns : DEFAULT_MAX_NS;
    double mult = opts && opts->multiplier > 0 ? opts->multiplier : 2.0;
    if (mult < 1.0)
        mult = 1.0;
    if (base > cap)
        base = cap;
    /* Multiplied step by step (no libm); stops at the cap. */
    double delay = (double)base;
    for (unsigned i = 1; i < attempt && delay < (double)cap; i++)
        delay *= mult;
    return delay >= (double)cap ? cap : (int64_t)delay;
}

static bool default_retry_if(int error)
{
    return error != -ECANCELED && error != -ETIMEDOUT;
}

EDDY_API int eddy_retry(eddy_retry_fn *fn, void *arg, const struct eddy_retry_opts *opts,
                        intptr_t *result)
{
    if (!fn || !eddy_task_current())
        return -EINVAL;
    unsigned attempts = opts && opts->max_attempts ? opts->max_attempts : DEFAULT_ATTEMPTS;
    double jitter = opts ? opts->jitter : 0.0;
    jitter = jitter < 0.0 ? 0.0 : jitter > 1.0 ? 1.0 : jitter;
    for (unsigned attempt = 1;; attempt++) {
        intptr_t r = fn(arg, attempt);
        if (r >= 0) {
            if (result)
                *result = r;
            return 0;
        }
        int error = r < INT32_MIN ? -EINVAL : (int)r;
        bool again = opts && opts->retry_if ? opts->retry_if(error, opts->retry_if_arg)
                                            : default_retry_if(error);
        if (!again || attempt >= attempts)
            return error;
        int64_t delay = eddy_retry_delay_ns(opts, attempt);
        int64_t spread = (int64_t)((double)delay * jitter);
        if (spread > 0)
            delay -= (int64_t)(next_random() % (uint64_t)(spread + 1));
        int rc = eddy_sleep_ns(delay);
        if (rc < 0)
            return rc;
    }
}
