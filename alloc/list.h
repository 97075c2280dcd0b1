/*
 * alloc/list.h: the intrusive doubly linked list every layer uses.
 *
 * A list is a sentinel head; elements embed a struct eddy__list and are
 * recovered with eddy__container_of. Removal re-initialises the node, so
 * eddy__list_is_linked() is a cheap test and removing twice is harmless.
 * All operations are O(1) and allocate nothing.
 */
#ifndef EDDY_ALLOC_LIST_H
#define EDDY_ALLOC_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct eddy__list {
    struct eddy__list *next;
    struct eddy__list *prev;
};

/* The object of type `type` whose member `member` is at ptr. The assignment
 * to a typed pointer makes the compiler check that ptr has the member's type. */
#define eddy__container_of(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(1 ? (ptr) : &((type *)0)->member) - offsetof(type, member)))

static inline void eddy__list_init(struct eddy__list *l)
{
    l->next = l;
    l->prev = l;
}

static inline bool eddy__list_is_empty(const struct eddy__list *head)
{
    return head->next == head;
}

/* True while the node is in some list (nodes are self-linked when out). */
static inline bool eddy__list_is_linked(const struct eddy__list *node)
{
    return node->next != node;
}

static inline void eddy__list_insert_before(struct eddy__list *pos, struct eddy__list *node)
{
    node->prev = pos->prev;
    node->next = pos;
    pos->prev->next = node;
    pos->prev = node;
}

static inline void eddy__list_push_back(struct eddy__list *head, struct eddy__list *node)
{
    eddy__list_insert_before(head, node);
}

static inline void eddy__list_push_front(struct eddy__list *head, struct eddy__list *node)
{
    eddy__list_insert_before(head->next, node);
}

static inline void eddy__list_remove(struct eddy__list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node;
    node->prev = node;
}

/* The first node, or NULL when empty. */
static inline struct eddy__list *eddy__list_first(const struct eddy__list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline struct eddy__list *eddy__list_pop_front(struct eddy__list *head)
{
    struct eddy__list *n = eddy__list_first(head);
    if (n)
        eddy__list_remove(n);
    return n;
}

/* Moves every node of src to the end of dst; src becomes empty. */
static inline void eddy__list_splice_back(struct eddy__list *dst, struct eddy__list *src)
{
    if (eddy__list_is_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    eddy__list_init(src);
}

#define eddy__list_for_each(pos, head) for (pos = (head)->next; pos != (head); pos = pos->next)

/* Walk that tolerates removal of pos. */
#define eddy__list_for_each_safe(pos, tmp, head)                                                   \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
