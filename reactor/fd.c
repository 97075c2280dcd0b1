/*
 * reactor/fd.c: waiting for fd readiness, and the fd-indexed waiter table.
 *
 * The table is two-level (chunks of 1024 slots) so slots never move: their
 * list heads are linked into parked tasks. An fd is added to epoll on its
 * first wait and stays until eddy_fd_close/eddy_fd_forget. Each readiness
 * edge wakes the waiters that asked for it (an error or hangup wakes them
 * all); they retry their syscall, so a spurious wakeup only costs a retry.
 *
 * Readiness memory (nginx's `ready` flag). Each edge also sets the slot's
 * ready bits for its directions. A caller that saw the fd drained (a read
 * shorter than asked on a byte stream, or EAGAIN) clears them at once, with
 * no suspension between its syscall and the clear: eddy_fd_mark_drained,
 * or eddy_fd_wait, which is only called after EAGAIN. A later
 * eddy_fd_wait_ready then returns at once when a bit is set and parks
 * without a syscall when none is. That is sound with edge-triggered epoll:
 *   - bytes that arrive after the drain queue an edge, which sets the bit
 *     or wakes the parked waiter;
 *   - an edge handled before the drain is cleared by it (the syscall saw
 *     those bytes);
 *   - an edge queued before the drain but handled after it sets the bit
 *     spuriously: one wasted syscall, as before this memory existed;
 *   - a FIN or an error does not repeat, and reads after it never block,
 *     so it makes the direction sticky: no drain clears it (nginx keeps
 *     `pending_eof` for the same reason);
 *   - an fd added to epoll reports its current state as a first edge, so
 *     bits start clear at registration, and eddy_fd_forget clears them
 *     (a reused fd number starts afresh);
 *   - the bits belong to the fd, not to a task: several tasks reading one
 *     fd share them, and a drain seen by any of them is true for all.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <unistd.h>

/* The slot of fd, or NULL when its chunk does not exist yet. */
static inline struct eddy__fd_slot *slot_find(struct eddy_loop *loop, int fd)
{
    size_t chunk = (size_t)fd / EDDY__FD_CHUNK;
    if (chunk >= loop->fd_nchunks)
        return NULL;
    struct eddy__fd_slot *slots = loop->fd_chunks[chunk];
    return slots ? &slots[(size_t)fd % EDDY__FD_CHUNK] : NULL;
}

/* Grows the table so that fd has a slot. Out of the hot path (every call
 * above looks a slot up once or twice per request). */
static __attribute__((noinline)) struct eddy__fd_slot *slot_create(struct eddy_loop *loop, int fd)
{
    size_t chunk = (size_t)fd / EDDY__FD_CHUNK;
    if (chunk >= loop->fd_nchunks) {
        size_t n = loop->fd_nchunks ? loop->fd_nchunks : 4;
        while (n <= chunk)
            n *= 2;
        struct eddy__fd_slot **chunks = eddy__realloc(loop->fd_chunks, n * sizeof(*chunks));
        if (!chunks)
            return NULL;
        for (size_t i = loop->fd_nchunks; i < n; i++)
            chunks[i] = NULL;
        loop->fd_chunks = chunks;
        loop->fd_nchunks = n;
    }
    struct eddy__fd_slot *slots = loop->fd_chunks[chunk];
    if (!slots) {
        slots = eddy__malloc(EDDY__FD_CHUNK * sizeof(*slots));
        if (!slots)
            return NULL;
        for (size_t i = 0; i < EDDY__FD_CHUNK; i++) {
            eddy__list_init(&slots[i].waiters);
            slots[i].registered = false;
            slots[i].ready = 0;
            slots[i].sticky = 0;
        }
        loop->fd_chunks[chunk] = slots;
    }
    return &slots[(size_t)fd % EDDY__FD_CHUNK];
}

static inline struct eddy__fd_slot *slot_get(struct eddy_loop *loop, int fd, bool create)
{
    struct eddy__fd_slot *slot = slot_find(loop, fd);
    if (EDDY_UNLIKELY(!slot) && create)
        slot = slot_create(loop, fd);
    return slot;
}

void eddy__fd_table_fini(struct eddy_loop *loop)
{
    for (size_t i = 0; i < loop->fd_nchunks; i++)
        eddy__free(loop->fd_chunks[i]);
    eddy__free(loop->fd_chunks);
    loop->fd_chunks = NULL;
    loop->fd_nchunks = 0;
}

static void wake_waiters(struct eddy__fd_slot *slot, uint32_t events, int rc)
{
    struct eddy__list *pos;
    eddy__list_for_each (pos, &slot->waiters) {
        struct eddy_task *t = eddy__container_of(pos, struct eddy_task, wait_link);
        if ((events & EDDY__EV_ERROR) || (t->wait_events & events))
            eddy__task_wake(t, rc);
    }
}

_Static_assert(EDDY__EV_READ == EDDY_FD_READ && EDDY__EV_WRITE == EDDY_FD_WRITE,
               "the slot's ready bits are the public direction bits");

#define BOTH_DIRECTIONS (EDDY_FD_READ | EDDY_FD_WRITE)

void eddy__fd_event(struct eddy_loop *loop, int fd, uint32_t events)
{
    struct eddy__fd_slot *slot = slot_get(loop, fd, false);
    if (!slot || !slot->registered)
        return;
    if (events & EDDY__EV_ERROR)
        slot->sticky = BOTH_DIRECTIONS;
    else if (events & EDDY__EV_RDHUP)
        slot->sticky |= EDDY_FD_READ;
    slot->ready |= (uint8_t)((events & BOTH_DIRECTIONS) | slot->sticky);
    wake_waiters(slot, events, 0);
}

static bool bad_events(uint32_t events)
{
    return events == 0 || (events & ~BOTH_DIRECTIONS);
}

/* Parks self on fd's slot, adding the fd to epoll first when needed. */
static int park_on(struct eddy_task *self, struct eddy__fd_slot *slot, int fd, uint32_t events)
{
    struct eddy_loop *loop = self->loop;
    if (!slot->registered) {
        int rc = eddy__poller_add(&loop->poller, fd);
        /* EEXIST: the fd was added through another loop-owned path; the
         * registration is what we want either way. */
        if (rc < 0 && rc != -EEXIST)
            return rc;
        slot->registered = true;
        slot->ready = 0;
        slot->sticky = 0;
    }
    self->wait_events = events;
    eddy__list_push_back(&slot->waiters, &self->wait_link);
    int rc = eddy__task_park(self, EDDY_DEADLINE_NEVER);
    eddy__list_remove(&self->wait_link);
    return rc;
}

EDDY_API int eddy_fd_wait(int fd, uint32_t events)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || fd < 0 || bad_events(events))
        return -EINVAL;
    struct eddy__fd_slot *slot = slot_get(self->loop, fd, true);
    if (!slot)
        return -ENOMEM;
    /* The caller just saw EAGAIN: whatever edge is remembered is spent. */
    slot->ready &= (uint8_t) ~(events & ~slot->sticky);
    return park_on(self, slot, fd, events);
}

EDDY_API int eddy_fd_wait_ready(int fd, uint32_t events)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || fd < 0 || bad_events(events))
        return -EINVAL;
    struct eddy__fd_slot *slot = slot_get(self->loop, fd, true);
    if (!slot)
        return -ENOMEM;
    if (slot->registered && (slot->ready & events)) {
        /* As a park would: a cancelled task does not go on. */
        if (self->flags & EDDY__TASK_CANCEL)
            return -ECANCELED;
        return 0;
    }
    return park_on(self, slot, fd, events);
}

EDDY_API void eddy_fd_mark_drained(int fd, uint32_t events)
{
    struct eddy_loop *loop = eddy__loop_tls;
    if (!loop || fd < 0)
        return;
    struct eddy__fd_slot *slot = slot_get(loop, fd, false);
    if (slot)
        slot->ready &= (uint8_t) ~(events & BOTH_DIRECTIONS & ~slot->sticky);
}

EDDY_API bool eddy_fd_is_ready(int fd, uint32_t events)
{
    struct eddy_loop *loop = eddy__loop_tls ? eddy__loop_tls : eddy__loop_owned_tls;
    if (!loop || fd < 0)
        return false;
    struct eddy__fd_slot *slot = slot_get(loop, fd, false);
    return slot && slot->registered && (slot->ready & events);
}

EDDY_API int eddy_fd_forget(int fd)
{
    /* Outside a run, the fd may still be registered with this thread's loop. */
    struct eddy_loop *loop = eddy__loop_tls ? eddy__loop_tls : eddy__loop_owned_tls;
    if (!loop || fd < 0)
        return 0;
    struct eddy__fd_slot *slot = slot_get(loop, fd, false);
    if (!slot)
        return 0;
    if (slot->registered) {
        /* The kernel may already have dropped it (fd closed elsewhere). */
        (void)eddy__poller_remove(&loop->poller, fd);
        slot->registered = false;
    }
    slot->ready = 0;
    slot->sticky = 0;
    wake_waiters(slot, EDDY__EV_ERROR, -EBADF);
    return 0;
}

EDDY_API int eddy_fd_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    eddy_fd_forget(fd);
    /* Linux releases the fd even when close reports EINTR: never retry. */
    if (close(fd) != 0 && errno != EINTR)
        return -errno;
    return 0;
}
