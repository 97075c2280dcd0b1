/*
 * tests/alloc/test_stack_slab.c: the stack pool of alloc/stack_slab.c.
 *
 * Covers size classes and rounding, the limits, LIFO reuse of warm stacks,
 * the cache limit (released stacks give their pages back: mincore shows
 * them gone), guard pages while the process-wide budget lasts and the
 * stated fallback past it (slack page, checked by eddy_stack_is_intact),
 * the pool's statistics, and reservations (eddy__stack_pool_reserve: the
 * promised acquires map nothing, whatever unreserved acquires came between).
 *
 * The guard budget is process-wide and read from EDDY_STACK_GUARDS once,
 * when the first pool is created. Tests that set it therefore do so in a
 * forked child (eddy_test_fork) that has not created a pool yet; Criterion
 * runs every test in a fresh process, so the test's own process qualifies.
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <eddy/alloc.h>

#include "alloc/internal.h"
#include "tests/support/test.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
/* Debug builds keep a canary in the lowest word of every stack handed out
 * (eddy/alloc.h); tests that fill a stack leave that word alone. */
#define CANARY_BYTES sizeof(uint64_t)

static struct eddy_stack_pool *pool_new(size_t cache_bytes)
{
    struct eddy_stack_pool_opts opts = {.cache_bytes = cache_bytes};
    struct eddy_stack_pool *pool = NULL;
    cr_assert_eq(eddy_stack_pool_create(&opts, &pool), 0);
    cr_assert_not_null(pool);
    return pool;
}

static struct eddy_stack_pool_stats stats_of(const struct eddy_stack_pool *pool)
{
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(pool, &st);
    return st;
}

static bool page_aligned(const void *p)
{
    return ((uintptr_t)p & (eddy_test_page_size() - 1)) == 0;
}

/* ---- size classes ------------------------------------------------------ */

EDDY_TEST(stack_slab, acquire_rounds_up_to_its_size_class)
{
    static const struct {
        size_t asked, got;
    } table[] = {
        {1, 16 * KIB},
        {16 * KIB - 1, 16 * KIB},
        {16 * KIB, 16 * KIB},
        {16 * KIB + 1, 64 * KIB},
        {64 * KIB, 64 * KIB},
        {64 * KIB + 1, 256 * KIB},
        {256 * KIB, 256 * KIB},
        {256 * KIB + 1, 1 * MIB},
        {1 * MIB + 1, 4 * MIB},
        {4 * MIB + 1, 16 * MIB},
        {16 * MIB + 1, 64 * MIB},
        {EDDY_STACK_MAX_BYTES, EDDY_STACK_MAX_BYTES},
    };
    struct eddy_stack_pool *pool = pool_new(0);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct eddy_stack s;
        cr_assert_eq(eddy_stack_pool_acquire(pool, table[i].asked, &s), 0, "asked %zu",
                     table[i].asked);
        cr_expect_eq(s.size_bytes, table[i].got, "asked %zu: got %zu, want %zu", table[i].asked,
                     s.size_bytes, table[i].got);
        cr_expect(page_aligned(s.lo), "asked %zu: lo %p is not page-aligned", table[i].asked, s.lo);
        /* The whole usable range is writable: the lowest and the highest byte. */
        volatile unsigned char *lo = s.lo;
        lo[0] = 1;
        lo[s.size_bytes - 1] = 2;
        cr_expect_eq(lo[0] + lo[s.size_bytes - 1], 3);
        eddy_stack_pool_release(pool, &s);
    }
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, acquire_above_max_is_einval_and_maps_nothing)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack s;
    cr_expect_eq(eddy_stack_pool_acquire(pool, EDDY_STACK_MAX_BYTES + 1, &s), -EINVAL);
    cr_expect_eq(eddy_stack_pool_acquire(pool, SIZE_MAX, &s), -EINVAL);
    struct eddy_stack_pool_stats st = stats_of(pool);
    cr_expect_eq(st.in_use, 0);
    cr_expect_eq(st.mapped_bytes, 0);
    cr_expect_eq(st.guard_pages, 0);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, acquire_of_zero_bytes_gives_the_default_size)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack s;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &s), 0);
    cr_expect_eq(s.size_bytes, EDDY_STACK_DEFAULT_BYTES);
    cr_expect_eq(s.size_bytes, 64 * KIB);
    eddy_stack_pool_release(pool, &s);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, min_and_max_constants_match_the_smallest_and_largest_class)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack s;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 1, &s), 0);
    cr_expect_eq(s.size_bytes, EDDY_STACK_MIN_BYTES);
    eddy_stack_pool_release(pool, &s);
    cr_assert_eq(eddy_stack_pool_acquire(pool, EDDY_STACK_MAX_BYTES, &s), 0);
    cr_expect_eq(s.size_bytes, EDDY_STACK_MAX_BYTES);
    eddy_stack_pool_release(pool, &s);
    eddy_stack_pool_destroy(pool);
}

/* ---- reuse ------------------------------------------------------------- */

EDDY_TEST(stack_slab, released_stacks_are_reused_newest_first)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack a, b, c;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &a), 0);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &b), 0);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &c), 0);
    cr_expect_neq(a.lo, b.lo);
    cr_expect_neq(b.lo, c.lo);
    size_t mapped = stats_of(pool).mapped_bytes;

    eddy_stack_pool_release(pool, &a);
    eddy_stack_pool_release(pool, &b);
    eddy_stack_pool_release(pool, &c);
    cr_expect_eq(stats_of(pool).cached, 3);

    struct eddy_stack x, y, z;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &x), 0);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &y), 0);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &z), 0);
    cr_expect_eq(x.lo, c.lo, "the last stack released comes back first");
    cr_expect_eq(y.lo, b.lo);
    cr_expect_eq(z.lo, a.lo);
    cr_expect_eq(x.guarded, c.guarded);
    cr_expect_eq(stats_of(pool).mapped_bytes, mapped, "reuse maps nothing new");
    cr_expect_eq(stats_of(pool).cached, 0);

    eddy_stack_pool_release(pool, &x);
    eddy_stack_pool_release(pool, &y);
    eddy_stack_pool_release(pool, &z);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, size_classes_do_not_share_free_stacks)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack small, big, small_again;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &small), 0);
    eddy_stack_pool_release(pool, &small);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &big), 0);
    cr_expect_neq(big.lo, small.lo, "a 64 KiB request must not get the free 16 KiB stack");
    cr_expect_eq(big.size_bytes, 64 * KIB);
    cr_assert_eq(eddy_stack_pool_acquire(pool, 10 * KIB, &small_again), 0);
    cr_expect_eq(small_again.lo, small.lo);
    eddy_stack_pool_release(pool, &big);
    eddy_stack_pool_release(pool, &small_again);
    eddy_stack_pool_destroy(pool);
}

/* ---- the cache limit ----------------------------------------------------- */

EDDY_TEST(stack_slab, release_past_the_cache_limit_gives_pages_back)
{
    /* A 128 KiB cache keeps two 64 KiB stacks warm; the third and fourth
     * released go cold and their pages back to the kernel. */
    struct eddy_stack_pool *pool = pool_new(128 * KIB);
    size_t page = eddy_test_page_size();
    size_t pages = 64 * KIB / page;
    struct eddy_stack s[4];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &s[i]), 0);
        memset(s[i].lo, 0x5a, s[i].size_bytes);
        cr_assert_eq(eddy_test_resident_pages(s[i].lo, s[i].size_bytes), (long)pages);
    }

    size_t released_before = stats_of(pool).released;
    cr_expect_eq(released_before, 0);
    for (int i = 0; i < 4; i++) {
        eddy_stack_pool_release(pool, &s[i]);
        struct eddy_stack_pool_stats st = stats_of(pool);
        cr_expect_eq(st.in_use, (size_t)(3 - i));
        /* Past the cache limit, pages go back in batches: until the batch
         * is full (or trimmed) the stacks still count as cached. */
        cr_expect_eq(st.cached, (size_t)i + 1);
        cr_expect_eq(st.released, 0, "after release %d", i);
    }
    eddy_stack_pool_trim(pool);
    cr_expect_eq(stats_of(pool).cached, 2);
    cr_expect_eq(stats_of(pool).released, 2);
    /* Warm stacks keep their pages; cold ones have none left. */
    cr_expect_eq(eddy_test_resident_pages(s[0].lo, s[0].size_bytes), (long)pages);
    cr_expect_eq(eddy_test_resident_pages(s[1].lo, s[1].size_bytes), (long)pages);
    cr_expect_eq(eddy_test_resident_pages(s[2].lo, s[2].size_bytes), 0);
    cr_expect_eq(eddy_test_resident_pages(s[3].lo, s[3].size_bytes), 0);

    /* Acquire takes warm stacks first (newest first), then cold ones. */
    struct eddy_stack t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &t[i]), 0);
    cr_expect_eq(t[0].lo, s[1].lo);
    cr_expect_eq(t[1].lo, s[0].lo);
    cr_expect(t[2].lo == s[3].lo || t[2].lo == s[2].lo);
    cr_expect(t[3].lo == s[3].lo || t[3].lo == s[2].lo);
    cr_expect_neq(t[2].lo, t[3].lo);
    cr_expect_eq(stats_of(pool).released, 0);
    /* A cold stack comes back as fresh zero pages, guard status intact
     * (past the lowest word, where debug builds put a fresh canary). */
    const unsigned char *cold = t[2].lo;
    cr_expect_eq(cold[CANARY_BYTES], 0);
    cr_expect_eq(cold[t[2].size_bytes / 2], 0);
    cr_expect_eq(cold[t[2].size_bytes - 1], 0);
    cr_expect_eq(t[2].guarded, s[3].guarded);
    for (int i = 0; i < 4; i++)
        eddy_stack_pool_release(pool, &t[i]);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, default_cache_keeps_32_mib_of_stacks_warm)
{
    struct eddy_stack_pool *pool = NULL;
    cr_assert_eq(eddy_stack_pool_create(NULL, &pool), 0);
    enum { N = 600 };
    size_t warm = (32 * MIB) / (64 * KIB); /* 512 */
    static struct eddy_stack s[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &s[i]), 0);
    for (int i = 0; i < N; i++)
        eddy_stack_pool_release(pool, &s[i]);
    eddy_stack_pool_trim(pool); /* the last partial batch of cold stacks */
    struct eddy_stack_pool_stats st = stats_of(pool);
    cr_expect_eq(st.cached, warm);
    cr_expect_eq(st.released, N - warm);
    cr_expect_eq(st.in_use, 0);
    eddy_stack_pool_destroy(pool);
}

/* ---- guard pages ---------------------------------------------------------- */

static void write_byte(void *p)
{
    /* ASan and others may have installed a SIGSEGV handler that turns the
     * fault into an exit status; the test wants the plain signal. */
    signal(SIGSEGV, SIG_DFL);
    *(volatile unsigned char *)p = 0x77;
}

EDDY_TEST(stack_slab, stack_has_a_guard_page_below_it_while_the_budget_lasts)
{
    long budget = eddy_stack_guard_budget();
    cr_assert_gt(budget, 0, "this machine's guard budget is empty");
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack s;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &s), 0);
    cr_expect(s.guarded);
    cr_expect_eq(stats_of(pool).guard_pages, 1);
    cr_expect_eq(eddy_stack_guard_budget(), budget - 1);
    cr_expect(eddy_stack_is_intact(&s));

    struct eddy_test_child child;
    /* The lowest usable byte is writable... */
    cr_assert_eq(eddy_test_fork(write_byte, s.lo, &child), 0);
    eddy_assert_child_ok(child);
    /* ...the byte below it is on the guard page. */
    cr_assert_eq(eddy_test_fork(write_byte, (char *)s.lo - 1, &child), 0);
    cr_expect_eq(child.signal, SIGSEGV, "writing below lo: signal %d, status %d", child.signal,
                 child.exit_status);
    /* The whole guard page, not just its last byte. */
    cr_assert_eq(eddy_test_fork(write_byte, (char *)s.lo - eddy_test_page_size(), &child), 0);
    cr_expect_eq(child.signal, SIGSEGV);

    eddy_stack_pool_release(pool, &s);
    cr_expect_eq(eddy_stack_guard_budget(), budget - 1, "a guard lives as long as its slot");
    eddy_stack_pool_destroy(pool);
    cr_expect_eq(eddy_stack_guard_budget(), budget, "destroy gives the guards back");
}

/* Lines of /proc/self/maps: one per mapping. */
static long mapping_count(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    cr_assert_not_null(f);
    long n = 0;
    for (int ch; (ch = fgetc(f)) != EOF;)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Whether this kernel has guard markers (MADV_GUARD_INSTALL, Linux 6.13). */
static bool kernel_has_guard_markers(void)
{
    size_t page = eddy_test_page_size();
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    bool ok = madvise(p, page, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(p, page);
    return ok;
}

EDDY_TEST(stack_slab, guards_are_markers_that_split_no_mapping_and_outlive_a_release)
{
    if (eddy_test_under_valgrind() || !kernel_has_guard_markers())
        cr_skip_test("guards are PROT_NONE here (Valgrind, or a kernel before 6.13)");
    cr_assert_geq(eddy_stack_guard_budget(), 64, "this machine's guard budget is short");
    /* A cache of one stack: the others go cold, their pages given back. */
    struct eddy_stack_pool *pool = pool_new(64 * KIB);
    struct eddy_stack s[64];
    cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &s[0]), 0);
    long before = mapping_count();
    for (int i = 1; i < 64; i++) {
        cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &s[i]), 0);
        cr_assert(s[i].guarded, "stack %d", i);
        memset(s[i].lo, 1, 4 * KIB);
    }
    /* PROT_NONE would have added two mappings per guard; regions add a few. */
    cr_expect_leq(mapping_count(), before + 4, "%ld mappings, %ld before", mapping_count(), before);
    for (int i = 0; i < 64; i++)
        eddy_stack_pool_release(pool, &s[i]);
    eddy_stack_pool_trim(pool);
    cr_expect_gt(stats_of(pool).released, 0);
    /* A stack whose pages went back still has its guard. */
    struct eddy_stack t;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 64 * KIB, &t), 0);
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(write_byte, (char *)t.lo - 1, &child), 0);
    cr_expect_eq(child.signal, SIGSEGV, "writing below lo: signal %d, status %d", child.signal,
                 child.exit_status);
    cr_assert_eq(eddy_test_fork(write_byte, t.lo, &child), 0);
    eddy_assert_child_ok(child);
    eddy_stack_pool_release(pool, &t);
    eddy_stack_pool_destroy(pool);
}

static void guard_budget_runs_out(void *arg)
{
    (void)arg;
    setenv("EDDY_STACK_GUARDS", "3", 1);
    EDDY_CHILD_CHECK(eddy_stack_guard_budget() == 3);
    struct eddy_stack_pool *pool = NULL;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    struct eddy_stack s[5];
    for (int i = 0; i < 5; i++) {
        EDDY_CHILD_CHECK(eddy_stack_pool_acquire(pool, 0, &s[i]) == 0);
        EDDY_CHILD_CHECK(s[i].guarded == (i < 3));
    }
    EDDY_CHILD_CHECK(eddy_stack_guard_budget() == 0);
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(pool, &st);
    EDDY_CHILD_CHECK(st.guard_pages == 3);
    /* Past the budget a stack still works, with its page below as slack. */
    for (int i = 0; i < 5; i++) {
        memset((char *)s[i].lo + CANARY_BYTES, 1, s[i].size_bytes - CANARY_BYTES);
        EDDY_CHILD_CHECK(eddy_stack_is_intact(&s[i]));
        eddy_stack_pool_release(pool, &s[i]);
    }
    eddy_stack_pool_destroy(pool);
    EDDY_CHILD_CHECK(eddy_stack_guard_budget() == 3);
}

EDDY_TEST(stack_slab, stacks_past_the_guard_budget_are_unguarded)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(guard_budget_runs_out, NULL, &child), 0);
    eddy_assert_child_ok(child);
}

static void guards_off(void *arg)
{
    (void)arg;
    setenv("EDDY_STACK_GUARDS", "0", 1);
    struct eddy_stack_pool *pool = NULL;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    EDDY_CHILD_CHECK(eddy_stack_guard_budget() == 0);
    struct eddy_stack s;
    EDDY_CHILD_CHECK(eddy_stack_pool_acquire(pool, 0, &s) == 0);
    EDDY_CHILD_CHECK(!s.guarded);
    struct eddy_stack_pool_stats st;
    eddy_stack_pool_get_stats(pool, &st);
    EDDY_CHILD_CHECK(st.guard_pages == 0);
    /* Using the whole stack (but the limit word) leaves it intact. */
    memset((char *)s.lo + CANARY_BYTES, 0x33, s.size_bytes - CANARY_BYTES);
    EDDY_CHILD_CHECK(eddy_stack_is_intact(&s));
    /* The page below is mapped slack: writing there does not fault, and
     * the next check sees the overflow. */
    char *slack = (char *)s.lo - eddy_test_page_size();
    EDDY_CHILD_CHECK(eddy_test_resident_pages(slack, eddy_test_page_size()) == 0);
    ((volatile char *)s.lo)[-1] = 1;
    EDDY_CHILD_CHECK(eddy_test_resident_pages(slack, eddy_test_page_size()) == 1);
    EDDY_CHILD_CHECK(!eddy_stack_is_intact(&s));
    eddy_stack_pool_release(pool, &s);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, with_guards_off_a_touched_slack_page_shows_as_overflow)
{
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(guards_off, NULL, &child), 0);
    eddy_assert_child_ok(child);
}

#ifdef EDDY_DEBUG_BUILD
EDDY_TEST(stack_slab, debug_canary_at_the_stack_limit_catches_an_overrun)
{
    struct eddy_stack_pool *pool = pool_new(0);
    struct eddy_stack s;
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &s), 0);
    cr_expect(eddy_stack_is_intact(&s));
    /* Overwriting the lowest usable word (the canary) shows even on a guarded stack. */
    memset(s.lo, 0, sizeof(uint64_t));
    cr_expect_not(eddy_stack_is_intact(&s));
    eddy_stack_pool_release(pool, &s);
    /* A stack handed out again gets a fresh canary. */
    cr_assert_eq(eddy_stack_pool_acquire(pool, 0, &s), 0);
    cr_expect(eddy_stack_is_intact(&s));
    eddy_stack_pool_release(pool, &s);
    eddy_stack_pool_destroy(pool);
}
#endif

/* ---- volume and statistics -------------------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(const struct eddy_stack *)a).lo;
    uintptr_t y = (uintptr_t)(*(const struct eddy_stack *)b).lo;
    return x < y ? -1 : x > y;
}

EDDY_TEST(stack_slab, many_stacks_are_recycled_without_new_mappings)
{
    enum { N = 10000, ROUNDS = 3 };
    struct eddy_stack_pool *pool = pool_new(1 * MIB);
    struct eddy_stack *s = calloc(N, sizeof(*s));
    cr_assert_not_null(s);
    size_t mapped = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < N; i++) {
            cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &s[i]), 0, "stack %zu", i);
            /* Touch the top page, where a coroutine keeps its bookkeeping. */
            ((volatile char *)s[i].lo)[s[i].size_bytes - 1] = (char)i;
        }
        struct eddy_stack_pool_stats st = stats_of(pool);
        cr_expect_eq(st.in_use, N);
        cr_expect_eq(st.cached + st.released, 0, "round %d: every free stack was reused", round);
        if (round == 0)
            mapped = st.mapped_bytes;
        else
            cr_expect_eq(st.mapped_bytes, mapped, "round %d mapped more address space", round);
        cr_expect_geq(st.mapped_bytes, (size_t)N * (16 * KIB + eddy_test_page_size()));

        /* No two live stacks overlap. */
        qsort(s, N, sizeof(*s), cmp_ptr);
        for (size_t i = 1; i < N; i++)
            cr_assert_leq((char *)s[i - 1].lo + s[i - 1].size_bytes, (char *)s[i].lo,
                          "stacks %zu and %zu overlap", i - 1, i);

        for (size_t i = 0; i < N; i++)
            eddy_stack_pool_release(pool, &s[i]);
        eddy_stack_pool_trim(pool);
        st = stats_of(pool);
        cr_expect_eq(st.in_use, 0);
        cr_expect_eq(st.cached + st.released, N);
        cr_expect_eq(st.cached, 1 * MIB / (16 * KIB), "cache limit: 1 MiB of 16 KiB stacks");
    }
    free(s);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, stats_count_every_stack_in_exactly_one_state)
{
    struct eddy_stack_pool *pool = pool_new(32 * KIB); /* two 16 KiB stacks stay warm */
    struct eddy_stack_pool_stats st = stats_of(pool);
    cr_expect_eq(st.in_use + st.cached + st.released + st.mapped_bytes + st.guard_pages, 0,
                 "a new pool holds nothing");

    static const size_t sizes[] = {16 * KIB, 16 * KIB, 16 * KIB, 16 * KIB, 64 * KIB, 1 * MIB};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    struct eddy_stack s[N];
    size_t guarded = 0, slots = 0;
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(eddy_stack_pool_acquire(pool, sizes[i], &s[i]), 0);
        guarded += s[i].guarded;
        slots += s[i].size_bytes + eddy_test_page_size();
    }
    st = stats_of(pool);
    cr_expect_eq(st.in_use, N);
    cr_expect_eq(st.cached, 0);
    cr_expect_eq(st.released, 0);
    cr_expect_eq(st.guard_pages, guarded);
    cr_expect_geq(st.mapped_bytes, slots);

    for (size_t i = 0; i < N; i++)
        eddy_stack_pool_release(pool, &s[i]);
    st = stats_of(pool);
    cr_expect_eq(st.cached, N, "cold stacks keep their pages until their batch is released");
    eddy_stack_pool_trim(pool);
    st = stats_of(pool);
    cr_expect_eq(st.in_use, 0);
    cr_expect_eq(st.cached + st.released, N);
    /* 16 KiB class: 2 warm of 4; 64 KiB and 1 MiB classes keep their minimum of 2 warm. */
    cr_expect_eq(st.cached, 4);
    cr_expect_eq(st.released, 2);
    cr_expect_eq(st.guard_pages, guarded, "guards stay with their slots");
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, a_full_batch_of_cold_stacks_gives_its_pages_back_without_trim)
{
    /* With a cache of two 16 KiB stacks, the 64 released after them form one
     * batch: released together, by one madvise per run of neighbours. */
    struct eddy_stack_pool *pool = pool_new(32 * KIB);
    enum { N = 2 + 64 };
    struct eddy_stack s[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &s[i]), 0);
        memset(s[i].lo, 0x5a, s[i].size_bytes);
    }
    for (int i = 0; i < N - 1; i++)
        eddy_stack_pool_release(pool, &s[i]);
    cr_expect_eq(stats_of(pool).released, 0, "one short of a batch: nothing given back yet");
    cr_expect_gt(eddy_test_resident_pages(s[N - 2].lo, s[N - 2].size_bytes), 0);
    eddy_stack_pool_release(pool, &s[N - 1]);
    cr_expect_eq(stats_of(pool).released, 64);
    cr_expect_eq(stats_of(pool).cached, 2);
    for (int i = 2; i < N; i++)
        cr_expect_eq(eddy_test_resident_pages(s[i].lo, s[i].size_bytes), 0, "stack %d", i);
    cr_expect_gt(eddy_test_resident_pages(s[0].lo, s[0].size_bytes), 0, "warm stacks keep pages");
    eddy_stack_pool_destroy(pool);
}

/* ---- reservations ----------------------------------------------------------- */

EDDY_TEST(stack_slab, reserving_maps_address_space_and_carves_nothing)
{
    enum { N = 300 };
    struct eddy_stack_pool *pool = pool_new(1 * MIB);
    for (int i = 0; i < N; i++)
        cr_assert_eq(eddy__stack_pool_reserve(pool, 16 * KIB), 0, "16 KiB is class 0");
    struct eddy_stack_pool_stats st = stats_of(pool);
    cr_expect_geq(st.mapped_bytes, (size_t)N * (16 * KIB + eddy_test_page_size()));
    cr_expect_eq(st.in_use + st.cached + st.released, 0, "no stack was carved");
    cr_expect_eq(st.guard_pages, 0, "guards come with carving, not with promises");
    for (int i = 0; i < N; i++)
        eddy__stack_pool_unreserve(pool, 0);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, reserve_returns_the_size_class_and_rejects_sizes_above_max)
{
    struct eddy_stack_pool *pool = pool_new(0);
    cr_expect_eq(eddy__stack_pool_reserve(pool, 0), 1, "the default 64 KiB is class 1");
    cr_expect_eq(eddy__stack_pool_reserve(pool, 16 * KIB + 1), 1);
    cr_expect_eq(eddy__stack_pool_reserve(pool, EDDY_STACK_MAX_BYTES), 6);
    size_t mapped = stats_of(pool).mapped_bytes;
    cr_expect_eq(eddy__stack_pool_reserve(pool, EDDY_STACK_MAX_BYTES + 1), -EINVAL);
    cr_expect_eq(stats_of(pool).mapped_bytes, mapped, "a rejected size maps nothing");
    eddy__stack_pool_unreserve(pool, 1);
    eddy__stack_pool_unreserve(pool, 1);
    eddy__stack_pool_unreserve(pool, 6);
    eddy_stack_pool_destroy(pool);
}

EDDY_TEST(stack_slab, reserved_acquires_map_nothing_even_after_unreserved_ones)
{
    /* 500 promises, then 500 acquires without one, which must leave the
     * promised stacks alone (mapping more for themselves); then the 500
     * promised acquires, which must map nothing. */
    enum { N = 500 };
    struct eddy_stack_pool *pool = pool_new(64 * KIB);
    struct eddy_stack *s = calloc(2 * N, sizeof(*s));
    cr_assert_not_null(s);
    /* Some free stacks, warm and cold, for the unreserved acquires to find. */
    for (int i = 0; i < N; i++)
        cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &s[i]), 0);
    for (int i = 0; i < N; i++)
        eddy_stack_pool_release(pool, &s[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(eddy__stack_pool_reserve(pool, 16 * KIB), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &s[i]), 0);
    size_t mapped = stats_of(pool).mapped_bytes;
    for (int i = N; i < 2 * N; i++) {
        eddy__stack_pool_unreserve(pool, 0);
        cr_assert_eq(eddy_stack_pool_acquire(pool, 16 * KIB, &s[i]), 0, "promised acquire %d", i);
        ((volatile char *)s[i].lo)[s[i].size_bytes - 1] = 1;
    }
    cr_expect_eq(stats_of(pool).mapped_bytes, mapped, "the promised acquires mapped nothing");
    cr_expect_eq(stats_of(pool).in_use, 2 * N);
    qsort(s, 2 * N, sizeof(*s), cmp_ptr);
    for (size_t i = 1; i < 2 * N; i++)
        cr_assert_leq((char *)s[i - 1].lo + s[i - 1].size_bytes, (char *)s[i].lo,
                      "stacks %zu and %zu overlap", i - 1, i);
    free(s);
    eddy_stack_pool_destroy(pool);
}

/* Room for what the child maps besides the reserved regions (the
 * sanitizers' and the allocator's own mappings). */
#define ADDRESS_SPACE_HEADROOM ((rlim_t)1 << 30)

static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

static void reserve_until_enomem_child(void *arg)
{
    (void)arg;
    struct eddy_stack_pool *pool;
    EDDY_CHILD_CHECK(eddy_stack_pool_create(NULL, &pool) == 0);
    long vm = vm_size_bytes();
    EDDY_CHILD_CHECK(vm > 0);
    struct rlimit lim = {(rlim_t)vm + ADDRESS_SPACE_HEADROOM, RLIM_INFINITY};
    EDDY_CHILD_CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
    /* 64 MiB stacks: each promise maps a region of its own. */
    int n = 0, rc = 0;
    while (n < 64 && (rc = eddy__stack_pool_reserve(pool, EDDY_STACK_MAX_BYTES)) == 6)
        n++;
    EDDY_CHILD_CHECK(rc == -ENOMEM);
    EDDY_CHILD_CHECK(n > 0 && n < 64);
    /* The failed promise counts for nothing; the kept ones all hold. */
    for (int i = 0; i < n; i++) {
        struct eddy_stack s;
        eddy__stack_pool_unreserve(pool, 6);
        EDDY_CHILD_CHECK(eddy_stack_pool_acquire(pool, EDDY_STACK_MAX_BYTES, &s) == 0);
    }
    struct eddy_stack s;
    EDDY_CHILD_CHECK(eddy_stack_pool_acquire(pool, EDDY_STACK_MAX_BYTES, &s) == -ENOMEM);
    fprintf(stderr, "%d promises kept\n", n);
}

EDDY_TEST(stack_slab, reserve_without_address_space_is_enomem_and_keeps_earlier_promises)
{
    if (eddy_test_under_valgrind())
        cr_skip_test("Valgrind manages the address space itself; RLIMIT_AS does not apply");
    struct eddy_test_child child;
    cr_assert_eq(eddy_test_fork(reserve_until_enomem_child, NULL, &child), 0);
    eddy_assert_child_ok(child);
    cr_expect(strstr(child.first_line, "promises kept") != NULL, "%s", child.first_line);
}

EDDY_TEST(stack_slab, destroying_a_null_pool_is_a_noop)
{
    eddy_stack_pool_destroy(NULL);
}
