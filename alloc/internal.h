/*
 * alloc/internal.h: what the layers of eddy share privately: the malloc
 * backend as inlinable calls, and debug-build poisoning.
 */
#ifndef EDDY_ALLOC_INTERNAL_H
#define EDDY_ALLOC_INTERNAL_H

#include <stddef.h>
#include <string.h>

#include <eddy/alloc.h>

/* The backend is fixed at build time (make ALLOC=...). Debian's jemalloc is
 * built without a symbol prefix and replaces malloc itself once linked, so
 * jemalloc and libc share the plain names; mimalloc is called by its own. */
#if defined(EDDY_ALLOC_MIMALLOC)
#include <mimalloc.h>
#define eddy__malloc mi_malloc
#define eddy__calloc mi_calloc
#define eddy__realloc mi_realloc
#define eddy__free mi_free
#else
#include <stdlib.h>
#define eddy__malloc malloc
#define eddy__calloc calloc
#define eddy__realloc realloc
#define eddy__free free
#endif

/* Fill patterns of debug builds: fresh objects and freed ones differ, so a
 * read of either shows up in a debugger as a recognisable pattern. */
#define EDDY__POISON_FRESH 0xA5
#define EDDY__POISON_FREED 0xDE

#ifdef EDDY_DEBUG_BUILD
#define eddy__poison(p, byte, n) memset((p), (byte), (n))
#else
#define eddy__poison(p, byte, n) ((void)(p), (void)(byte), (void)(n))
#endif

/* Page size, read once. */
size_t eddy__page_size(void);

/*
 * Promises one later eddy_stack_pool_acquire of size_bytes (0: the default)
 * that cannot fail with -ENOMEM: maps address space now if needed, touches
 * and carves nothing. The acquire that uses the promise comes after
 * eddy__stack_pool_unreserve; an unused one is just undone. Returns the size
 * class to pass to unreserve (>= 0); -EINVAL above EDDY_STACK_MAX_BYTES;
 * -ENOMEM when no address space could be mapped. Suspends: no.
 */
int eddy__stack_pool_reserve(struct eddy_stack_pool *pool, size_t size_bytes);
void eddy__stack_pool_unreserve(struct eddy_stack_pool *pool, int cls);

#endif
