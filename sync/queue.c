/*
 * sync/queue.c: eddy_queue, FIFO, LIFO and priority queues of void * items
 * (asyncio.Queue, LifoQueue, PriorityQueue), bounded or not, with
 * task_done/join and close.
 *
 * Storage: FIFO and LIFO queues keep a ring of pointers whose size is a
 * power of two (allocated at init when bounded; doubled on demand when
 * unbounded). Priority queues keep the 4-ary heap of alloc/heap.h over
 * nodes from an object slab; equal keys leave in put order because the heap
 * breaks ties by insertion sequence.
 *
 * Hand-off without barging. Parked getters exist only while every stored
 * item is reserved (_len == _item_resv), and parked putters only while the
 * queue is full counting reserved slots (_len + _slot_resv == _cap). A put
 * that finds a parked getter wakes it and reserves one item for it; a get
 * that frees a slot wakes one parked putter and reserves the slot. The fast
 * paths look only at unreserved items and slots, so a task arriving between
 * a wake-up and the woken task's run cannot take what was promised. The
 * woken task (code 0) consumes its reservation; it does so even if it was
 * cancelled after the wake-up (eddy_waitq keeps the code), so nothing is lost.
 * Close wakes waiters with -EPIPE; a getter holding a reservation still
 * takes its item, a putter holding one gives it back and fails with -EPIPE.
 * Costs: put and get are O(1) (O(log n) for priority queues) plus one
 * run-queue push when a waiter is woken.
 */
#include <eddy/sync.h>

#include "alloc/heap.h"
#include "alloc/list.h"
#include "alloc/internal.h"

struct pnode {
    struct eddy__heap_node hn;
    void *item;
};

struct pstore {
    struct eddy__heap heap;
    struct eddy_obj_slab slab;
};

static size_t round_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

EDDY_API int eddy_queue_init(struct eddy_queue *q, enum eddy_queue_kind kind, size_t capacity)
{
    if (kind != EDDY_QUEUE_FIFO && kind != EDDY_QUEUE_LIFO && kind != EDDY_QUEUE_PRIORITY)
        return -EINVAL;
    if (capacity > SIZE_MAX / 4 / sizeof(void *))
        return -EINVAL;
    eddy_waitq_init(&q->_getters);
    eddy_waitq_init(&q->_putters);
    eddy_waitq_init(&q->_joiners);
    q->_store = NULL;
    q->_len = 0;
    q->_cap = capacity;
    q->_ring_cap = 0;
    q->_head = 0;
    q->_item_resv = 0;
    q->_slot_resv = 0;
    q->_unfinished = 0;
    q->_kind = kind;
    q->_closed = false;
    if (kind == EDDY_QUEUE_PRIORITY) {
        struct pstore *ps = eddy__malloc(sizeof(*ps));
        if (!ps)
            return -ENOMEM;
        eddy__heap_init(&ps->heap);
        eddy_obj_slab_init(&ps->slab, sizeof(struct pnode));
        q->_store = ps;
    } else if (capacity > 0) {
        size_t n = round_pow2(capacity);
        q->_store = eddy__malloc(n * sizeof(void *));
        if (!q->_store)
            return -ENOMEM;
        q->_ring_cap = n;
    }
    return 0;
}

EDDY_API void eddy_queue_fini(struct eddy_queue *q)
{
    eddy_queue_close(q);
    eddy_waitq_wake_all(&q->_joiners, -EPIPE);
    if (q->_kind == EDDY_QUEUE_PRIORITY) {
        struct pstore *ps = q->_store;
        if (ps) {
            eddy__heap_fini(&ps->heap);
            eddy_obj_slab_fini(&ps->slab);
        }
    }
    eddy__free(q->_store);
    q->_store = NULL;
    q->_len = 0;
}

/* Doubles the ring of an unbounded queue, keeping the items in order. */
static int grow(struct eddy_queue *q)
{
    size_t n = q->_ring_cap ? q->_ring_cap * 2 : 16;
    void **ring = eddy__malloc(n * sizeof(void *));
    if (!ring)
        return -ENOMEM;
    void **old = q->_store;
    for (size_t i = 0; i < q->_len; i++)
        ring[i] = old[(q->_head + i) & (q->_ring_cap - 1)];
    eddy__free(old);
    q->_store = ring;
    q->_ring_cap = n;
    q->_head = 0;
    return 0;
}

/* The priority queue's store: a slab node pushed on the heap. */
static __attribute__((noinline)) int store_slow(struct eddy_queue *q, void *item, int64_t key)
{
    if (q->_kind == EDDY_QUEUE_PRIORITY) {
        struct pstore *ps = q->_store;
        struct pnode *n = eddy_obj_slab_alloc(&ps->slab);
        if (!n)
            return -ENOMEM;
        n->item = item;
        if (eddy__heap_push(&ps->heap, &n->hn, key) < 0) {
            eddy_obj_slab_free(&ps->slab, n);
            return -ENOMEM;
        }
    } else {
        if (grow(q) < 0)
            return -ENOMEM;
        void **ring = q->_store;
        ring[(q->_head + q->_len) & (q->_ring_cap - 1)] = item;
    }
    q->_len++;
    q->_unfinished++;
    return 0;
}

/* Inline for the ring with room, the case a ping-pong exercises. */
static inline int store(struct eddy_queue *q, void *item, int64_t key)
{
    if (EDDY_LIKELY(q->_kind != EDDY_QUEUE_PRIORITY && q->_len < q->_ring_cap)) {
        void **ring = q->_store;
        ring[(q->_head + q->_len) & (q->_ring_cap - 1)] = item;
        q->_len++;
        q->_unfinished++;
        return 0;
    }
    return store_slow(q, item, key);
}

static __attribute__((noinline)) void *take_slow(struct eddy_queue *q)
{
    void *item;
    if (q->_kind == EDDY_QUEUE_PRIORITY) {
        struct pstore *ps = q->_store;
        struct pnode *n = eddy__container_of(eddy__heap_pop(&ps->heap), struct pnode, hn);
        item = n->item;
        eddy_obj_slab_free(&ps->slab, n);
    } else {
        void **ring = q->_store;
        item = ring[(q->_head + q->_len - 1) & (q->_ring_cap - 1)];
    }
    q->_len--;
    return item;
}

static inline void *take(struct eddy_queue *q)
{
    if (EDDY_LIKELY(q->_kind == EDDY_QUEUE_FIFO)) {
        void **ring = q->_store;
        void *item = ring[q->_head];
        q->_head = (q->_head + 1) & (q->_ring_cap - 1);
        q->_len--;
        return item;
    }
    return take_slow(q);
}

/* An item was stored: promise it to the first parked getter, if any. */
static void after_store(struct eddy_queue *q)
{
    if (eddy_waitq_wake_one(&q->_getters, 0))
        q->_item_resv++;
}

/* A slot was freed: promise it to the first parked putter, if any. */
static void after_take(struct eddy_queue *q)
{
    if (q->_cap && eddy_waitq_wake_one(&q->_putters, 0))
        q->_slot_resv++;
}

static bool has_free_slot(const struct eddy_queue *q)
{
    return q->_cap == 0 || q->_len + q->_slot_resv < q->_cap;
}

EDDY_API int eddy_queue_try_put_key(struct eddy_queue *q, void *item, int64_t key)
{
    if (q->_closed)
        return -EPIPE;
    if (!has_free_slot(q))
        return -EAGAIN;
    int rc = store(q, item, key);
    if (rc < 0)
        return rc;
    after_store(q);
    return 0;
}

EDDY_API int eddy_queue_try_put(struct eddy_queue *q, void *item)
{
    return eddy_queue_try_put_key(q, item, 0);
}

static inline int put(struct eddy_queue *q, void *item, int64_t key, int64_t deadline_ns)
{
    if (q->_closed)
        return -EPIPE;
    if (has_free_slot(q)) {
        int rc = store(q, item, key);
        if (rc < 0)
            return rc;
        after_store(q);
        return 0;
    }
    int rc = eddy_waitq_wait(&q->_putters, deadline_ns);
    if (rc < 0)
        return rc;
    /* A get reserved a slot for this task. */
    q->_slot_resv--;
    if (q->_closed)
        return -EPIPE;
    rc = store(q, item, key);
    if (rc < 0) {
        after_take(q); /* the slot goes to the next putter */
        return rc;
    }
    after_store(q);
    return 0;
}

EDDY_API int eddy_queue_put_key(struct eddy_queue *q, void *item, int64_t key, int64_t deadline_ns)
{
    return put(q, item, key, deadline_ns);
}

EDDY_API int eddy_queue_put(struct eddy_queue *q, void *item, int64_t deadline_ns)
{
    return put(q, item, 0, deadline_ns);
}

EDDY_API int eddy_queue_try_get(struct eddy_queue *q, void **item)
{
    if (q->_len > q->_item_resv) {
        *item = take(q);
        after_take(q);
        return 0;
    }
    return q->_closed ? -EPIPE : -EAGAIN;
}

EDDY_API int eddy_queue_get(struct eddy_queue *q, void **item, int64_t deadline_ns)
{
    if (q->_len > q->_item_resv) {
        *item = take(q);
        after_take(q);
        return 0;
    }
    if (q->_closed)
        return -EPIPE;
    int rc = eddy_waitq_wait(&q->_getters, deadline_ns);
    if (rc < 0)
        return rc;
    /* A put reserved an item for this task; it is still there. */
    q->_item_resv--;
    *item = take(q);
    after_take(q);
    return 0;
}

EDDY_API int eddy_queue_task_done(struct eddy_queue *q)
{
    if (q->_unfinished == 0)
        return -EINVAL;
    if (--q->_unfinished == 0)
        eddy_waitq_wake_all(&q->_joiners, 0);
    return 0;
}

EDDY_API int eddy_queue_join(struct eddy_queue *q, int64_t deadline_ns)
{
    if (q->_unfinished == 0)
        return 0;
    return eddy_waitq_wait(&q->_joiners, deadline_ns);
}

EDDY_API void eddy_queue_close(struct eddy_queue *q)
{
    q->_closed = true;
    eddy_waitq_wake_all(&q->_getters, -EPIPE);
    eddy_waitq_wake_all(&q->_putters, -EPIPE);
}

EDDY_API size_t eddy_queue_len(const struct eddy_queue *q)
{
    return q->_len;
}

EDDY_API bool eddy_queue_is_closed(const struct eddy_queue *q)
{
    return q->_closed;
}
