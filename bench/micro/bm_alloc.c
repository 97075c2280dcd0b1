/*
 * bench/micro/bm_alloc.c: acquiring and releasing a coroutine stack from
 * eddy's stack pool, against malloc+free of the same size from the build's
 * malloc backend (jemalloc by default; results/micro.json names it).
 *
 * Both loops take one block and give it back, so after the first iteration
 * each side serves from its cache: the pool's warm LIFO, the allocator's
 * own free lists. Neither touches the memory, since a coroutine stack is
 * only touched by the coroutine that runs on it. The pointer escapes to an
 * empty asm so the compiler cannot delete the malloc/free pair.
 *
 * Cases (results "stack_alloc_free", param = size in bytes):
 *   BM_stack_alloc_free/65536  eddy_stack_pool_acquire + release (impl eddy)
 *   BM_malloc_free/65536       eddy_malloc + eddy_free (impl malloc)
 *
 * And the machine's floor for creating a coroutine (results "first_touch",
 * impl "kernel"): the first write to a page of fresh anonymous memory, one
 * page per 68 KiB slot as in the stack pool. Every new coroutine stack
 * costs one such fault, so BM_suspended_1m's create_ns_per_coro is read
 * against this figure from the same run.
 *   BM_first_touch_page        ns per page faulted in
 */
#include <sys/mman.h>

#include <eddy/alloc.h>

#include "bench/micro/gbench.h"

static void BM_stack_alloc_free(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    size_t size = (size_t)eddy_bench_arg(b);
    struct eddy_stack_pool *pool;
    struct eddy_stack stack;
    if (eddy_stack_pool_create(NULL, &pool) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_create failed");
        return;
    }
    /* The first acquire maps a region and carves the slot: a one-off cost
     * that a running program pays once, not per coroutine. */
    if (eddy_stack_pool_acquire(pool, size, &stack) < 0) {
        eddy_bench_fail(b, "eddy_stack_pool_acquire failed");
        eddy_stack_pool_destroy(pool);
        return;
    }
    eddy_stack_pool_release(pool, &stack);
    eddy_bench_resume(b);

    uint64_t i;
    for (i = 0; i < n; i++) {
        if (EDDY_UNLIKELY(eddy_stack_pool_acquire(pool, size, &stack) < 0))
            break;
        eddy_bench_escape(stack.lo);
        eddy_stack_pool_release(pool, &stack);
    }

    eddy_bench_pause(b);
    if (i < n)
        eddy_bench_fail(b, "eddy_stack_pool_acquire failed in the loop");
    eddy_stack_pool_destroy(pool);
}
EDDY_BENCH_OPTS(BM_stack_alloc_free, .args = {65536}, .nargs = 1);

static void BM_malloc_free(struct eddy_bench *b)
{
    uint64_t n = eddy_bench_iterations(b);
    size_t size = (size_t)eddy_bench_arg(b);
    for (uint64_t i = 0; i < n; i++) {
        void *p = eddy_malloc(size);
        eddy_bench_escape(p);
        eddy_free(p);
    }
}
EDDY_BENCH_OPTS(BM_malloc_free, .args = {65536}, .nargs = 1, .case_name = "stack_alloc_free",
                .impl = "malloc");

static void BM_first_touch_page(struct eddy_bench *b)
{
    eddy_bench_pause(b);
    uint64_t n = eddy_bench_iterations(b);
    const size_t slot = (size_t)68 << 10;
    char *region = mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
        eddy_bench_fail(b, "mmap failed");
        return;
    }
    (void)madvise(region, n * slot, MADV_NOHUGEPAGE);
    eddy_bench_resume(b);
    for (uint64_t i = 0; i < n; i++)
        region[(i + 1) * slot - 64] = 1; /* the top page, where a stack starts */
    eddy_bench_pause(b);
    munmap(region, n * slot);
}
EDDY_BENCH_OPTS(BM_first_touch_page, .iterations = 100000, .case_name = "first_touch",
                .impl = "kernel");
