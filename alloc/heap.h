/*
 * alloc/heap.h: an intrusive 4-ary min-heap.
 *
 * Items embed a struct eddy__heap_node holding their key, an insertion
 * sequence number that orders equal keys first-in first-out, and their slot
 * index (+1; 0 means "not in the heap"), so removal of any item is O(log n)
 * without a search. The array holds the key next to the node pointer: sifting
 * compares keys without touching the items, which matters with a million
 * entries, and only equal keys look at the sequence number.
 *
 * Costs: push O(log4 n) (O(1) expected for random keys), pop and remove
 * O(4 log4 n). A 4-ary heap is half as deep as a binary one and its four
 * children sit in one or two cache lines.
 */
#ifndef EDDY_ALLOC_HEAP_H
#define EDDY_ALLOC_HEAP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc/internal.h"

struct eddy__heap_node {
    int64_t key;
    uint64_t seq;
    uint32_t slot; /* index + 1, 0 when not in a heap */
};

struct eddy__heap_entry {
    int64_t key;
    struct eddy__heap_node *node;
};

struct eddy__heap {
    struct eddy__heap_entry *v;
    uint32_t len;
    uint32_t cap;
    uint64_t next_seq;
};

static inline void eddy__heap_init(struct eddy__heap *h)
{
    h->v = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_seq = 0;
}

static inline void eddy__heap_fini(struct eddy__heap *h)
{
    eddy__free(h->v);
    eddy__heap_init(h);
}

static inline bool eddy__heap_less(const struct eddy__heap_entry *a,
                                   const struct eddy__heap_entry *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->node->seq < b->node->seq;
}

static inline void eddy__heap_place(struct eddy__heap *h, uint32_t i, struct eddy__heap_entry e)
{
    h->v[i] = e;
    e.node->slot = i + 1;
}

static inline void eddy__heap_sift_up(struct eddy__heap *h, uint32_t i, struct eddy__heap_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!eddy__heap_less(&e, &h->v[parent]))
            break;
        eddy__heap_place(h, i, h->v[parent]);
        i = parent;
    }
    eddy__heap_place(h, i, e);
}

static inline void eddy__heap_sift_down(struct eddy__heap *h, uint32_t i, struct eddy__heap_entry e)
{
    for (;;) {
        uint32_t first = 4 * i + 1;
        if (first >= h->len)
            break;
        uint32_t last = first + 4 < h->len ? first + 4 : h->len;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < last; c++)
            if (eddy__heap_less(&h->v[c], &h->v[best]))
                best = c;
        if (!eddy__heap_less(&h->v[best], &e))
            break;
        eddy__heap_place(h, i, h->v[best]);
        i = best;
    }
    eddy__heap_place(h, i, e);
}

/* Inserts node with key. Returns 0 or -ENOMEM (the heap is unchanged). */
static inline int eddy__heap_push(struct eddy__heap *h, struct eddy__heap_node *node, int64_t key)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct eddy__heap_entry *v = eddy__realloc(h->v, (size_t)cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    node->key = key;
    node->seq = h->next_seq++;
    struct eddy__heap_entry e = {key, node};
    eddy__heap_sift_up(h, h->len++, e);
    return 0;
}

static inline struct eddy__heap_node *eddy__heap_peek(const struct eddy__heap *h)
{
    return h->len ? h->v[0].node : NULL;
}

/* Removes node, which must be in h. */
static inline void eddy__heap_remove(struct eddy__heap *h, struct eddy__heap_node *node)
{
    uint32_t i = node->slot - 1;
    node->slot = 0;
    struct eddy__heap_entry last = h->v[--h->len];
    if (i == h->len)
        return;
    if (i > 0 && eddy__heap_less(&last, &h->v[(i - 1) / 4]))
        eddy__heap_sift_up(h, i, last);
    else
        eddy__heap_sift_down(h, i, last);
}

static inline struct eddy__heap_node *eddy__heap_pop(struct eddy__heap *h)
{
    struct eddy__heap_node *top = eddy__heap_peek(h);
    if (top)
        eddy__heap_remove(h, top);
    return top;
}

#endif
