/*
 * alloc/obj_slab.c: fixed-size object slabs for hot structures (tasks,
 * waiters, timers of higher layers).
 *
 * Objects are carved from 64 KiB chunks obtained from the malloc backend.
 * The first word of a free object links the free list (LIFO, so the most
 * recently freed, cache-warm object is reused first). Chunks are chained
 * through their own first word and given back only at fini.
 * Costs: alloc and free are O(1) and touch one cache line; a new chunk is
 * carved lazily, object by object, by pushing it whole onto the free list.
 */
#include "alloc/internal.h"

#include <errno.h>

#define CHUNK_BYTES ((size_t)64 << 10)
#define CHUNK_HEADER 16 /* the link to the next chunk, padded to keep objects aligned */
#define MAX_OBJ_BYTES 4096

EDDY_API int eddy_obj_slab_init(struct eddy_obj_slab *slab, size_t obj_size)
{
    if (obj_size == 0 || obj_size > MAX_OBJ_BYTES)
        return -EINVAL;
    slab->_free = NULL;
    slab->_chunks = NULL;
    slab->_obj_size = (obj_size + 15) & ~(size_t)15;
    slab->_live = 0;
    return 0;
}

EDDY_API void eddy_obj_slab_fini(struct eddy_obj_slab *slab)
{
    void *chunk = slab->_chunks;
    while (chunk) {
        void *next = *(void **)chunk;
        eddy__free(chunk);
        chunk = next;
    }
    slab->_chunks = NULL;
    slab->_free = NULL;
    slab->_live = 0;
}

static int grow(struct eddy_obj_slab *slab)
{
    char *chunk = eddy__malloc(CHUNK_BYTES);
    if (!chunk)
        return -ENOMEM;
    *(void **)chunk = slab->_chunks;
    slab->_chunks = chunk;
    /* Push objects in reverse so the first alloc gets the lowest address. */
    size_t n = (CHUNK_BYTES - CHUNK_HEADER) / slab->_obj_size;
    for (size_t i = n; i-- > 0;) {
        void *obj = chunk + CHUNK_HEADER + i * slab->_obj_size;
        *(void **)obj = slab->_free;
        slab->_free = obj;
    }
    return 0;
}

EDDY_API void *eddy_obj_slab_alloc(struct eddy_obj_slab *slab)
{
    if (EDDY_UNLIKELY(!slab->_free) && grow(slab) < 0)
        return NULL;
    void *obj = slab->_free;
    slab->_free = *(void **)obj;
    slab->_live++;
    eddy__poison(obj, EDDY__POISON_FRESH, slab->_obj_size);
    return obj;
}

EDDY_API void eddy_obj_slab_free(struct eddy_obj_slab *slab, void *obj)
{
    if (!obj)
        return;
    eddy__poison(obj, EDDY__POISON_FREED, slab->_obj_size);
    *(void **)obj = slab->_free;
    slab->_free = obj;
    slab->_live--;
}

EDDY_API size_t eddy_obj_slab_live(const struct eddy_obj_slab *slab)
{
    return slab->_live;
}
