/*
 * eddy/alloc.h: memory. The malloc backend chosen at build time, the stack
 * pool that coroutine stacks are carved from, and fixed-size object slabs
 * for hot structures.
 *
 * Thread rules: a stack pool and an object slab belong to the thread that
 * uses them (one per loop); they take no locks. The malloc functions are
 * thread-safe.
 */
#ifndef EDDY_ALLOC_H
#define EDDY_ALLOC_H

#include <eddy/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- malloc backend (make ALLOC=jemalloc|mimalloc|libc) ---------------- */

/* Allocate from the build's backend. NULL when memory ran out. Suspends: no. */
EDDY_API void *eddy_malloc(size_t size_bytes);
EDDY_API void *eddy_calloc(size_t count, size_t size_bytes);
EDDY_API void *eddy_realloc(void *ptr, size_t size_bytes);
EDDY_API void eddy_free(void *ptr);
/* "jemalloc", "mimalloc" or "libc": the backend this build links. */
EDDY_API const char *eddy_alloc_backend(void);

/* ---- stack pool ---------------------------------------------------------
 * Stacks come in size classes (16 KiB ... 64 MiB of usable space) carved from
 * large MAP_NORESERVE regions, so a stack costs RSS only for the pages it
 * touches. Released stacks go onto a per-pool LIFO cache whose link lives in
 * the free stack itself; once the cache holds more than cache_bytes, further
 * released stacks give their pages back (MADV_DONTNEED), in batches of 64
 * (eddy_stack_pool_trim gives back a partial batch at once).
 *
 * Guard pages: each stack has one page below it. While the process-wide
 * guard budget lasts (a quarter of vm.max_map_count, since every guard page
 * splits a mapping into two), that page is PROT_NONE and an overflow faults
 * there; eddy's SIGSEGV handler names the coroutine and aborts. Past the
 * budget, or with guards disabled, the page stays mapped but untouched: an
 * overflow into it is caught when the stack is released or reused (the page
 * has become resident), and at every suspension in EDDY_DEBUG mode; debug
 * builds (make debug) also keep a canary in the lowest word of each stack.
 * Such an overflow is caught late rather than at once. EDDY_STACK_GUARDS=N
 * in the environment sets the budget (0 turns guard pages off).
 *
 * A single frame larger than a page can jump over the guard page. Code that
 * puts large arrays on coroutine stacks should be built with
 * -fstack-clash-protection (eddy itself is), which touches every page.
 */
struct eddy_stack_pool;

/* A stack handed out by a pool: [lo, lo + size_bytes). Debug builds keep a
 * canary in the word at lo. */
struct eddy_stack {
    void *lo;
    size_t size_bytes;
    uint8_t _class;
    bool guarded;
};

struct eddy_stack_pool_opts {
    size_t cache_bytes; /* 0: 32 MiB of committed free stacks kept warm */
};

#define EDDY_STACK_MIN_BYTES ((size_t)16 << 10)
#define EDDY_STACK_MAX_BYTES ((size_t)64 << 20)
#define EDDY_STACK_DEFAULT_BYTES ((size_t)64 << 10)

/*
 * Creates a pool. opts is borrowed and may be NULL.
 * Returns: 0, -ENOMEM. Suspends: no.
 */
EDDY_API int eddy_stack_pool_create(const struct eddy_stack_pool_opts *opts,
                                    struct eddy_stack_pool **out);
/* Unmaps every region. Stacks still acquired become invalid. Suspends: no. */
EDDY_API void eddy_stack_pool_destroy(struct eddy_stack_pool *pool);

/*
 * Hands out a stack of at least size_bytes usable bytes (0: the default,
 * 64 KiB), rounded up to its size class. out is filled in (caller memory).
 * Returns: 0; -EINVAL when size_bytes > EDDY_STACK_MAX_BYTES; -ENOMEM when
 * no address space could be mapped. Suspends: no.
 */
EDDY_API int eddy_stack_pool_acquire(struct eddy_stack_pool *pool, size_t size_bytes,
                                     struct eddy_stack *out);
/* Takes a stack back. stack is borrowed. Suspends: no. */
EDDY_API void eddy_stack_pool_release(struct eddy_stack_pool *pool, const struct eddy_stack *stack);

/* Gives back now the pages of released stacks that are past the cache limit
 * and still waiting for their batch (malloc_trim's role). Suspends: no. */
EDDY_API void eddy_stack_pool_trim(struct eddy_stack_pool *pool);

/* False when the canary at the stack limit was overwritten (an overflow). */
EDDY_API bool eddy_stack_is_intact(const struct eddy_stack *stack);

struct eddy_stack_pool_stats {
    size_t in_use;       /* stacks handed out and not yet released */
    size_t cached;       /* released stacks kept with their pages */
    size_t released;     /* released stacks whose pages went back to the kernel */
    size_t mapped_bytes; /* address space reserved by the pool */
    size_t guard_pages;  /* PROT_NONE guard pages this pool holds */
};
EDDY_API void eddy_stack_pool_get_stats(const struct eddy_stack_pool *pool,
                                        struct eddy_stack_pool_stats *out);

/* Guard pages still available to the whole process. */
EDDY_API long eddy_stack_guard_budget(void);

/* ---- fixed-size object slab ---------------------------------------------
 * Objects of one size carved from 64 KiB chunks; a free object's first word
 * links the free list, so alloc and free are a few instructions. Debug builds
 * fill fresh objects with 0xA5 and freed ones with 0xDE. Memory goes back to
 * the backend only at fini. The struct is caller memory (init/fini).
 */
struct eddy_obj_slab {
    void *_free;
    void *_chunks;
    size_t _obj_size;
    size_t _live;
};

/* Prepares a slab of objects of obj_size bytes (aligned to 16). No allocation
 * happens until the first alloc. Returns: 0, -EINVAL when obj_size is 0 or
 * larger than 4 KiB. Suspends: no. */
EDDY_API int eddy_obj_slab_init(struct eddy_obj_slab *slab, size_t obj_size);
/* Frees every chunk; objects still allocated become invalid. */
EDDY_API void eddy_obj_slab_fini(struct eddy_obj_slab *slab);
/* An object, or NULL when memory ran out. Suspends: no. */
EDDY_API void *eddy_obj_slab_alloc(struct eddy_obj_slab *slab);
/* Returns obj (transferred) to the slab. NULL is ignored. Suspends: no. */
EDDY_API void eddy_obj_slab_free(struct eddy_obj_slab *slab, void *obj);
/* Objects currently allocated. */
EDDY_API size_t eddy_obj_slab_live(const struct eddy_obj_slab *slab);

#ifdef __cplusplus
}
#endif
#endif
