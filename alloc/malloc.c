/*
 * alloc/malloc.c: the public face of the malloc backend chosen at build time
 * (jemalloc by default, mimalloc or libc). Inside eddy the eddy__malloc
 * macros of alloc/internal.h call the backend directly.
 */
#include "alloc/internal.h"

#include <stdatomic.h>
#include <unistd.h>

EDDY_API void *eddy_malloc(size_t size_bytes)
{
    return eddy__malloc(size_bytes);
}

EDDY_API void *eddy_calloc(size_t count, size_t size_bytes)
{
    return eddy__calloc(count, size_bytes);
}

EDDY_API void *eddy_realloc(void *ptr, size_t size_bytes)
{
    return eddy__realloc(ptr, size_bytes);
}

EDDY_API void eddy_free(void *ptr)
{
    eddy__free(ptr);
}

EDDY_API const char *eddy_alloc_backend(void)
{
#if defined(EDDY_ALLOC_MIMALLOC)
    return "mimalloc";
#elif defined(EDDY_ALLOC_JEMALLOC)
    return "jemalloc";
#else
    return "libc";
#endif
}

size_t eddy__page_size(void)
{
    /* Threads may race to fill it in; they store the same value. */
    static atomic_size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}
