/*
 * tests/alloc/test_obj_slab.c: the fixed-size object slab of alloc/obj_slab.c.
 *
 * Covers init's limits, live counts, LIFO reuse, 16-byte alignment and
 * rounding, many objects spread over many chunks (none overlapping, every
 * one keeping its contents), fini giving all memory back (the leak checks
 * of `make asan` and `make valgrind` see it), and the debug fill patterns.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/alloc.h>

#include "tests/support/test.h"

#define MAX_OBJ_BYTES 4096 /* the limit eddy/alloc.h states */

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

EDDY_TEST(obj_slab, init_rejects_zero_and_oversized_objects)
{
    struct eddy_obj_slab slab;
    cr_expect_eq(eddy_obj_slab_init(&slab, 0), -EINVAL);
    cr_expect_eq(eddy_obj_slab_init(&slab, MAX_OBJ_BYTES + 1), -EINVAL);
    cr_expect_eq(eddy_obj_slab_init(&slab, SIZE_MAX), -EINVAL);
    cr_expect_eq(eddy_obj_slab_init(&slab, 1), 0);
    eddy_obj_slab_fini(&slab);
    cr_expect_eq(eddy_obj_slab_init(&slab, MAX_OBJ_BYTES), 0);
    eddy_obj_slab_fini(&slab);
}

EDDY_TEST(obj_slab, fini_of_a_slab_that_never_allocated_is_fine)
{
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, 64), 0);
    cr_expect_eq(eddy_obj_slab_live(&slab), 0);
    eddy_obj_slab_fini(&slab);
    eddy_obj_slab_fini(&slab); /* twice: fini leaves an empty slab */
}

EDDY_TEST(obj_slab, alloc_and_free_keep_the_live_count)
{
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, 40), 0);
    void *obj[10];
    for (size_t i = 0; i < 10; i++) {
        obj[i] = eddy_obj_slab_alloc(&slab);
        cr_assert_not_null(obj[i]);
        cr_expect_eq(eddy_obj_slab_live(&slab), i + 1);
    }
    for (size_t i = 0; i < 10; i++) {
        eddy_obj_slab_free(&slab, obj[i]);
        cr_expect_eq(eddy_obj_slab_live(&slab), 9 - i);
    }
    eddy_obj_slab_free(&slab, NULL);
    cr_expect_eq(eddy_obj_slab_live(&slab), 0, "freeing NULL changes nothing");
    eddy_obj_slab_fini(&slab);
    cr_expect_eq(eddy_obj_slab_live(&slab), 0);
}

EDDY_TEST(obj_slab, freed_objects_are_reused_newest_first)
{
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, 32), 0);
    void *a = eddy_obj_slab_alloc(&slab);
    void *b = eddy_obj_slab_alloc(&slab);
    void *c = eddy_obj_slab_alloc(&slab);
    cr_assert(a && b && c);
    eddy_obj_slab_free(&slab, a);
    eddy_obj_slab_free(&slab, c);
    eddy_obj_slab_free(&slab, b);
    cr_expect_eq(eddy_obj_slab_alloc(&slab), b, "the last object freed comes back first");
    cr_expect_eq(eddy_obj_slab_alloc(&slab), c);
    cr_expect_eq(eddy_obj_slab_alloc(&slab), a);
    cr_expect_eq(eddy_obj_slab_live(&slab), 3);
    eddy_obj_slab_fini(&slab);
}

EDDY_TEST(obj_slab, objects_are_16_byte_aligned_and_sized_to_a_multiple_of_16)
{
    static const size_t sizes[] = {1, 8, 15, 16, 17, 24, 33, 100, 1000, 4095, MAX_OBJ_BYTES};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct eddy_obj_slab slab;
        cr_assert_eq(eddy_obj_slab_init(&slab, sizes[k]), 0);
        char *prev = NULL;
        for (int i = 0; i < 8; i++) {
            char *p = eddy_obj_slab_alloc(&slab);
            cr_assert_not_null(p);
            cr_expect_eq((uintptr_t)p % 16, 0, "size %zu: object %p is not 16-aligned", sizes[k],
                         (void *)p);
            /* A fresh chunk hands objects out in address order, back to back. */
            if (prev)
                cr_expect_eq((size_t)(p - prev), round16(sizes[k]), "size %zu: stride %td",
                             sizes[k], p - prev);
            /* The whole requested size is usable. */
            memset(p, 0xab, sizes[k]);
            prev = p;
        }
        eddy_obj_slab_fini(&slab);
    }
}

EDDY_TEST(obj_slab, many_objects_across_chunks_are_distinct_and_keep_their_contents)
{
    /* 200,000 objects of 48 bytes need about 150 chunks of 64 KiB. */
    enum { N = 200000, SIZE = 48 };
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, SIZE), 0);
    uint64_t **obj = malloc(N * sizeof(*obj));
    cr_assert_not_null(obj);
    for (size_t i = 0; i < N; i++) {
        obj[i] = eddy_obj_slab_alloc(&slab);
        cr_assert_not_null(obj[i], "object %zu", i);
        for (size_t w = 0; w < SIZE / 8; w++)
            obj[i][w] = i * 8 + w;
    }
    cr_expect_eq(eddy_obj_slab_live(&slab), N);
    for (size_t i = 0; i < N; i++)
        for (size_t w = 0; w < SIZE / 8; w++)
            cr_assert_eq(obj[i][w], i * 8 + w, "object %zu word %zu was overwritten", i, w);

    /* Free every other object, then allocate as many again: all of them
     * come from the free list (LIFO), none from a new chunk. */
    for (size_t i = 0; i < N; i += 2)
        eddy_obj_slab_free(&slab, obj[i]);
    cr_expect_eq(eddy_obj_slab_live(&slab), N / 2);
    for (size_t i = N; i >= 2; i -= 2) {
        uint64_t *again = eddy_obj_slab_alloc(&slab);
        cr_assert_eq(again, obj[i - 2], "reuse order broke at object %zu", i - 2);
    }
    cr_expect_eq(eddy_obj_slab_live(&slab), N);
    /* The odd objects were never touched by all this. */
    for (size_t i = 1; i < N; i += 2)
        cr_assert_eq(obj[i][0], i * 8, "object %zu was overwritten", i);

    for (size_t i = 0; i < N; i++)
        eddy_obj_slab_free(&slab, obj[i]);
    cr_expect_eq(eddy_obj_slab_live(&slab), 0);
    free(obj);
    eddy_obj_slab_fini(&slab);
}

EDDY_TEST(obj_slab, fini_frees_chunks_with_objects_still_allocated)
{
    /* Objects left allocated at fini belong to the slab's chunks: fini
     * frees them all. The leak checkers of `make asan` (LSan, at exit of
     * this test's process) and `make valgrind` would report any chunk lost. */
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, 256), 0);
    for (int i = 0; i < 5000; i++)
        cr_assert_not_null(eddy_obj_slab_alloc(&slab));
    cr_expect_eq(eddy_obj_slab_live(&slab), 5000);
    eddy_obj_slab_fini(&slab);
    cr_expect_eq(eddy_obj_slab_live(&slab), 0);

    /* The slab can be initialised and used again after fini. */
    cr_assert_eq(eddy_obj_slab_init(&slab, 16), 0);
    void *p = eddy_obj_slab_alloc(&slab);
    cr_assert_not_null(p);
    eddy_obj_slab_free(&slab, p);
    eddy_obj_slab_fini(&slab);
}

EDDY_TEST(obj_slab, two_slabs_are_independent)
{
    struct eddy_obj_slab a, b;
    cr_assert_eq(eddy_obj_slab_init(&a, 24), 0);
    cr_assert_eq(eddy_obj_slab_init(&b, 24), 0);
    void *pa = eddy_obj_slab_alloc(&a);
    void *pb = eddy_obj_slab_alloc(&b);
    cr_expect_neq(pa, pb);
    eddy_obj_slab_free(&a, pa);
    cr_expect_eq(eddy_obj_slab_live(&a), 0);
    cr_expect_eq(eddy_obj_slab_live(&b), 1);
    cr_expect_neq(eddy_obj_slab_alloc(&b), pa, "b does not hand out a's free object");
    eddy_obj_slab_fini(&a);
    eddy_obj_slab_fini(&b);
}

#ifdef EDDY_DEBUG_BUILD
EDDY_TEST(obj_slab, debug_build_fills_fresh_and_freed_objects_with_patterns)
{
    enum { SIZE = 64 };
    struct eddy_obj_slab slab;
    cr_assert_eq(eddy_obj_slab_init(&slab, SIZE), 0);
    unsigned char *p = eddy_obj_slab_alloc(&slab);
    cr_assert_not_null(p);
    for (size_t i = 0; i < SIZE; i++)
        cr_assert_eq(p[i], 0xA5, "fresh byte %zu is %#x", i, p[i]);
    memset(p, 0, SIZE);
    eddy_obj_slab_free(&slab, p);
    /* The first word links the free list; the rest carries the freed pattern. */
    for (size_t i = sizeof(void *); i < SIZE; i++)
        cr_assert_eq(p[i], 0xDE, "freed byte %zu is %#x", i, p[i]);
    eddy_obj_slab_fini(&slab);
}
#endif
