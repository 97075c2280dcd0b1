/*
 * alloc/stack_slab.c: the stack pool coroutine stacks are carved from.
 *
 * Layout. Each size class carves slots out of large anonymous MAP_NORESERVE
 * regions; a slot is one page below the stack (guard or slack) followed by
 * the usable stack:
 *
 *     region: | page | stack 0 ... | page | stack 1 ... | ... | uncarved |
 *
 * Nothing is committed until touched, so a coroutine that uses 2 KiB of a
 * 64 KiB stack costs one page of RSS. Regions are never handed back before
 * the pool is destroyed; they grow geometrically (2 MiB to 256 MiB) so a
 * million stacks need only a few dozen mappings. Transparent huge pages are
 * turned off on regions: one touched byte would otherwise commit 2 MiB.
 *
 * Free stacks. A released stack goes onto its class's warm LIFO, linked
 * through the top word of the free stack itself, so reuse hands back the
 * cache-hottest stack. Once the warm stacks exceed cache_bytes, a released
 * stack instead goes onto the cold array (a tagged pointer per stack, since
 * its memory is about to go) and gives its pages back (MADV_DONTNEED) in
 * batches of RELEASE_BATCH: the batch is sorted and neighbouring slots are
 * released by one madvise, which matters when thousands of tasks end at
 * once (one syscall per stack cost 3 us each here). The newest entries of
 * the cold array are the pending, still-committed ones, so acquire reuses
 * them first. Acquire takes warm, then cold, then uncarved space, then a
 * new region.
 *
 * Reservations (eddy__stack_pool_reserve). A scheduler that creates a
 * task's coroutine only when the task first runs reserves a stack at spawn,
 * where a failure can still be reported, so that the later acquire cannot
 * fail. A class keeps the count of stacks it can hand out without mapping
 * (warm + cold + uncarved slots of its regions) at or above its count of
 * reservations, and the difference as one counter (spare): reserving maps
 * a region when spare is 0, and so does an unreserved acquire, which would
 * otherwise take a promised stack.
 * Reserving touches no stack memory and carves nothing: a reservation
 * that ends unused (the task got a recycled coroutine) costs only address
 * space. A class therefore may own several regions with uncarved space;
 * carving moves on to the next one of its regions when one runs out.
 *
 * Guard pages. The page below a stack becomes a guard marker
 * (MADV_GUARD_INSTALL) where the kernel has them, else PROT_NONE. Making
 * it PROT_NONE splits a mapping in two, and a process may hold
 * vm.max_map_count (65530 by default) mappings in all. The process-wide
 * budget is therefore a quarter of that limit (EDDY_STACK_GUARDS overrides
 * it); markers split nothing but take from the same budget, so that which
 * stacks are guarded does not depend on the kernel. A slot carved while the
 * budget lasts gets a guard page for its lifetime. A slot carved after that
 * keeps the page as untouched slack: an overflow of up to one page lands
 * there and is caught when the stack is released (mincore() shows the page
 * resident), and debug builds also check a canary word at the stack limit.
 * A larger overflow of an unguarded stack can corrupt its neighbour before
 * it is seen; that is the stated cost of running past the guard budget.
 * Under Valgrind the budget is capped at 4096, below Valgrind's own mapping
 * limit.
 *
 * Costs: acquire and release from the warm list are O(1) with no syscall;
 * a reservation is O(1), with one mmap when the class has no spare stack;
 * carving a guarded slot costs one madvise (or mprotect); cold releases one madvise per
 * run of neighbouring stacks per batch.
 */
#include "alloc/internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define NCLASSES 7
#define GUARDED_TAG ((uintptr_t)1)
#define REGION_MIN_BYTES ((size_t)2 << 20)
#define REGION_MAX_BYTES ((size_t)256 << 20)
#define DEFAULT_CACHE_BYTES ((size_t)32 << 20)
#define CANARY UINT64_C(0x5eddc0ffee5eddc0)
#define VALGRIND_GUARD_CAP 4096
#define RELEASE_BATCH 64
#define DEFAULT_CLASS 1 /* EDDY_STACK_DEFAULT_BYTES */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

static const size_t class_bytes[NCLASSES] = {
    (size_t)16 << 10, (size_t)64 << 10, (size_t)256 << 10, (size_t)1 << 20,
    (size_t)4 << 20,  (size_t)16 << 20, (size_t)64 << 20,
};

struct size_class {
    size_t size;    /* usable bytes */
    size_t slot;    /* page + usable bytes */
    uintptr_t warm; /* tagged lo of the newest warm stack, 0 when none */
    size_t warm_count;
    size_t warm_limit;
    uintptr_t *cold; /* tagged lo of cold stacks; the last `pending` still hold pages */
    size_t cold_len;
    size_t cold_cap;
    size_t pending;
    char *bump; /* uncarved part of the region being carved */
    char *bump_end;
    size_t region; /* index of that region in pool->regions */
    /* Warm + cold + uncarved stacks, less those promised by reservations. */
    size_t spare;
    size_t region_bytes; /* size of the next region */
};

struct region {
    void *base;
    size_t len;
    int cls; /* the size class it is carved for */
};

struct eddy_stack_pool {
    struct size_class cls[NCLASSES];
    struct region *regions;
    size_t nregions;
    size_t regions_cap;
    size_t in_use;
    size_t mapped_bytes;
    size_t guard_pages;
};

/* ---- the process-wide guard budget ------------------------------------- */

static atomic_long guard_budget;
/* Whether madvise takes MADV_GUARD_INSTALL; cleared at its first EINVAL. */
static atomic_bool guard_markers = true;
static pthread_once_t guard_budget_once = PTHREAD_ONCE_INIT;

static void guard_budget_init(void)
{
    long budget = 65530 / 4;
    const char *env = getenv("EDDY_STACK_GUARDS");
    if (env && *env) {
        budget = strtol(env, NULL, 10);
    } else {
        FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
        long limit;
        if (f && fscanf(f, "%ld", &limit) == 1 && limit > 0)
            budget = limit / 4;
        if (f)
            fclose(f);
    }
    /* Valgrind tracks at most a few tens of thousands of mappings in all
     * (VG_N_SEGMENTS) and aborts past that: stay well below it there. */
    if (RUNNING_ON_VALGRIND && budget > VALGRIND_GUARD_CAP)
        budget = VALGRIND_GUARD_CAP;
    atomic_store(&guard_budget, budget < 0 ? 0 : budget);
}

EDDY_API long eddy_stack_guard_budget(void)
{
    pthread_once(&guard_budget_once, guard_budget_init);
    return atomic_load(&guard_budget);
}

static bool take_guard(void)
{
    long left = atomic_load_explicit(&guard_budget, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&guard_budget, &left, left - 1))
            return true;
    }
    return false;
}

/* ---- pool -------------------------------------------------------------- */

EDDY_API int eddy_stack_pool_create(const struct eddy_stack_pool_opts *opts,
                                    struct eddy_stack_pool **out)
{
    pthread_once(&guard_budget_once, guard_budget_init);
    struct eddy_stack_pool *pool = eddy__calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    size_t cache = opts && opts->cache_bytes ? opts->cache_bytes : DEFAULT_CACHE_BYTES;
    size_t page = eddy__page_size();
    for (int i = 0; i < NCLASSES; i++) {
        struct size_class *c = &pool->cls[i];
        c->size = class_bytes[i];
        c->slot = page + c->size;
        c->warm_limit = cache / c->size > 2 ? cache / c->size : 2;
        c->region_bytes = REGION_MIN_BYTES;
    }
    *out = pool;
    return 0;
}

EDDY_API void eddy_stack_pool_destroy(struct eddy_stack_pool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->nregions; i++)
        munmap(pool->regions[i].base, pool->regions[i].len);
    atomic_fetch_add(&guard_budget, (long)pool->guard_pages);
    for (int i = 0; i < NCLASSES; i++)
        eddy__free(pool->cls[i].cold);
    eddy__free(pool->regions);
    eddy__free(pool);
}

_Static_assert(EDDY_STACK_DEFAULT_BYTES == (size_t)64 << 10, "DEFAULT_CLASS is the 64 KiB class");

static int class_of(size_t size)
{
    for (int i = 0; i < NCLASSES; i++)
        if (size <= class_bytes[i])
            return i;
    return -1;
}

static int map_region(struct eddy_stack_pool *pool, struct size_class *c)
{
    size_t len = c->region_bytes;
    if (len < c->slot)
        len = c->slot;
    len -= len % c->slot;
    if (pool->nregions == pool->regions_cap) {
        size_t cap = pool->regions_cap ? pool->regions_cap * 2 : 16;
        struct region *r = eddy__realloc(pool->regions, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        pool->regions = r;
        pool->regions_cap = cap;
    }
    void *base =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -ENOMEM;
    /* Failure only means the kernel has no THP support: nothing to undo. */
    (void)madvise(base, len, MADV_NOHUGEPAGE);
    pool->regions[pool->nregions++] = (struct region){base, len, (int)(c - pool->cls)};
    pool->mapped_bytes += len;
    c->spare += len / c->slot;
    if (c->region_bytes < REGION_MAX_BYTES)
        c->region_bytes *= 2;
    return 0;
}

/* Moves carving on to the class's next region, the oldest one mapped after
 * the current (regions are carved in the order they were mapped, so those
 * still hold all their slots), mapping one when there is none. */
static int next_region(struct eddy_stack_pool *pool, struct size_class *c)
{
    int ci = (int)(c - pool->cls);
    size_t from = c->bump ? c->region + 1 : 0;
    for (;;) {
        for (size_t i = from; i < pool->nregions; i++) {
            if (pool->regions[i].cls == ci) {
                c->region = i;
                c->bump = pool->regions[i].base;
                c->bump_end = c->bump + pool->regions[i].len;
                return 0;
            }
        }
        from = pool->nregions;
        if (map_region(pool, c) < 0)
            return -ENOMEM;
    }
}

/* Makes the page at p a guard page. A guard marker in the page tables
 * (Linux 6.13) leaves the mapping whole, where PROT_NONE splits it: here
 * that cost 5-7 us per guard, made later faults in the region slower and
 * the final munmap ~5 us per guard, against 1.6 us for the marker.
 * Markers survive MADV_DONTNEED and fault as PROT_NONE does. Valgrind
 * does not know them, so it gets PROT_NONE. Returns 0 or -1 (errno). */
static int install_guard(void *p, size_t page)
{
    if (!RUNNING_ON_VALGRIND && atomic_load_explicit(&guard_markers, memory_order_relaxed)) {
        if (madvise(p, page, MADV_GUARD_INSTALL) == 0)
            return 0;
        if (errno == EINVAL) /* an older kernel */
            atomic_store_explicit(&guard_markers, false, memory_order_relaxed);
    }
    return mprotect(p, page, PROT_NONE);
}

/* Carves a fresh slot; returns the tagged lo of its stack, 0 on failure. */
static uintptr_t carve(struct eddy_stack_pool *pool, struct size_class *c)
{
    if (c->bump == c->bump_end && next_region(pool, c) < 0)
        return 0;
    char *slot = c->bump;
    c->bump += c->slot;
    size_t page = eddy__page_size();
    uintptr_t lo = (uintptr_t)(slot + page);
    if (take_guard()) {
        if (install_guard(slot, page) == 0) {
            pool->guard_pages++;
            return lo | GUARDED_TAG;
        }
        /* Out of mappings after all: keep the budget honest and go on
         * with an unguarded slot. */
        atomic_fetch_add(&guard_budget, 1);
    }
    return lo;
}

/* Acquire without a spare warm stack: maps first when every stack the
 * class has may be promised already; returns the tagged lo, 0 on failure. */
static __attribute__((noinline)) uintptr_t acquire_slow(struct eddy_stack_pool *pool,
                                                        struct size_class *c)
{
    if (c->spare == 0 && map_region(pool, c) < 0)
        return 0;
    c->spare--;
    uintptr_t tagged;
    if (c->warm) {
        tagged = c->warm;
        char *lo = (char *)(tagged & ~GUARDED_TAG);
        c->warm = *(uintptr_t *)(lo + c->size - sizeof(uintptr_t));
        c->warm_count--;
    } else if (c->cold_len) {
        tagged = c->cold[--c->cold_len];
        if (c->pending)
            c->pending--;
    } else {
        tagged = carve(pool, c);
        assert(tagged); /* spare was > 0: a region had room */
    }
    return tagged;
}

EDDY_API int eddy_stack_pool_acquire(struct eddy_stack_pool *pool, size_t size_bytes,
                                     struct eddy_stack *out)
{
    if (size_bytes == 0)
        size_bytes = EDDY_STACK_DEFAULT_BYTES;
    int ci = class_of(size_bytes);
    if (ci < 0)
        return -EINVAL;
    struct size_class *c = &pool->cls[ci];
    uintptr_t tagged;
    if (EDDY_LIKELY(c->warm && c->spare > 0)) {
        tagged = c->warm;
        char *lo = (char *)(tagged & ~GUARDED_TAG);
        c->warm = *(uintptr_t *)(lo + c->size - sizeof(uintptr_t));
        c->warm_count--;
        c->spare--;
    } else {
        tagged = acquire_slow(pool, c);
        if (!tagged)
            return -ENOMEM;
    }
    out->lo = (void *)(tagged & ~GUARDED_TAG);
    out->size_bytes = c->size;
    out->_class = (uint8_t)ci;
    out->guarded = (tagged & GUARDED_TAG) != 0;
#ifdef EDDY_DEBUG_BUILD
    *(uint64_t *)out->lo = CANARY;
#endif
    pool->in_use++;
    return 0;
}

/* A reservation the class has no spare stack for: maps a region first. */
static __attribute__((noinline)) int reserve_slow(struct eddy_stack_pool *pool, int ci)
{
    if (map_region(pool, &pool->cls[ci]) < 0)
        return -ENOMEM;
    pool->cls[ci].spare--;
    return ci;
}

int eddy__stack_pool_reserve(struct eddy_stack_pool *pool, size_t size_bytes)
{
    int ci = size_bytes == 0 ? DEFAULT_CLASS : class_of(size_bytes);
    if (ci < 0)
        return -EINVAL;
    struct size_class *c = &pool->cls[ci];
    if (EDDY_UNLIKELY(c->spare == 0))
        return reserve_slow(pool, ci);
    c->spare--;
    return ci;
}

void eddy__stack_pool_unreserve(struct eddy_stack_pool *pool, int cls)
{
    pool->cls[cls].spare++;
}

EDDY_API bool eddy_stack_is_intact(const struct eddy_stack *stack)
{
#ifdef EDDY_DEBUG_BUILD
    if (*(const uint64_t *)stack->lo != CANARY)
        return false;
#endif
    if (stack->guarded)
        return true;
    /* An unguarded stack's slack page is never touched by a stack that
     * stayed within its size: resident means overflowed. */
    size_t page = eddy__page_size();
    unsigned char resident = 0;
    if (mincore((char *)stack->lo - page, page, &resident) != 0)
        return true;
    return (resident & 1) == 0;
}

static void release_pending(struct size_class *c);

EDDY_API void eddy_stack_pool_release(struct eddy_stack_pool *pool, const struct eddy_stack *stack)
{
    struct size_class *c = &pool->cls[stack->_class];
    uintptr_t tagged = (uintptr_t)stack->lo | (stack->guarded ? GUARDED_TAG : 0);
    pool->in_use--;
    c->spare++;
    if (c->warm_count < c->warm_limit) {
        *(uintptr_t *)((char *)stack->lo + c->size - sizeof(uintptr_t)) = c->warm;
        c->warm = tagged;
        c->warm_count++;
        return;
    }
    if (c->cold_len == c->cold_cap) {
        size_t cap = c->cold_cap ? c->cold_cap * 2 : 64;
        uintptr_t *cold = eddy__realloc(c->cold, cap * sizeof(*cold));
        if (!cold) {
            /* Keep it warm rather than lose it; the cache limit is a target. */
            *(uintptr_t *)((char *)stack->lo + c->size - sizeof(uintptr_t)) = c->warm;
            c->warm = tagged;
            c->warm_count++;
            return;
        }
        c->cold = cold;
        c->cold_cap = cap;
    }
    c->cold[c->cold_len++] = tagged;
    if (++c->pending >= RELEASE_BATCH)
        release_pending(c);
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Gives back the pages of the pending cold stacks of c, one madvise per run
 * of neighbouring slots (the guard or slack pages between them included). */
static void release_pending(struct size_class *c)
{
    uintptr_t *batch = c->cold + c->cold_len - c->pending;
    size_t n = c->pending;
    qsort(batch, n, sizeof(*batch), by_address);
    size_t i = 0;
    while (i < n) {
        char *lo = (char *)(batch[i] & ~GUARDED_TAG);
        size_t j = i + 1;
        while (j < n && (char *)(batch[j] & ~GUARDED_TAG) == lo + (j - i) * c->slot)
            j++;
        /* Failure leaves the pages resident, which is only a missed saving. */
        (void)madvise(lo, (j - i - 1) * c->slot + c->size, MADV_DONTNEED);
        i = j;
    }
    c->pending = 0;
}

EDDY_API void eddy_stack_pool_trim(struct eddy_stack_pool *pool)
{
    for (int i = 0; i < NCLASSES; i++)
        if (pool->cls[i].pending)
            release_pending(&pool->cls[i]);
}

EDDY_API void eddy_stack_pool_get_stats(const struct eddy_stack_pool *pool,
                                        struct eddy_stack_pool_stats *out)
{
    *out = (struct eddy_stack_pool_stats){0};
    out->in_use = pool->in_use;
    for (int i = 0; i < NCLASSES; i++) {
        out->cached += pool->cls[i].warm_count;
        out->released += pool->cls[i].cold_len - pool->cls[i].pending;
        out->cached += pool->cls[i].pending;
    }
    out->mapped_bytes = pool->mapped_bytes;
    out->guard_pages = pool->guard_pages;
}
