/*
 * alloc/malloc.c: the public face of the malloc backend chosen at build time
 * (jemalloc by default, mimalloc or libc). Inside eddy the eddy__malloc
 * macros of alloc/internal.h call the backend directly.
 */
#include "alloc/internal.h"

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
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}
