/*
 * reactor/fd.c: waiting for fd readiness, and the fd-indexed waiter table.
 *
 * The table is two-level (chunks of 1024 slots) so slots never move: their
 * list heads are linked into parked tasks. An fd is added to epoll on its
 * first wait and stays until eddy_fd_close/eddy_fd_forget. Each readiness
 * edge wakes the waiters that asked for it (an error or hangup wakes them
 * all); they retry their syscall, so a spurious wakeup only costs a retry,
 * while an edge that arrives with nobody waiting needs no memory: the next
 * caller tries the syscall before it waits.
 */
#include "reactor/internal.h"

#include <errno.h>
#include <unistd.h>

static struct eddy__fd_slot *slot_get(struct eddy_loop *loop, int fd, bool create)
{
    size_t chunk = (size_t)fd / EDDY__FD_CHUNK;
    if (chunk >= loop->fd_nchunks) {
        if (!create)
            return NULL;
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
        if (!create)
            return NULL;
        slots = eddy__malloc(EDDY__FD_CHUNK * sizeof(*slots));
        if (!slots)
            return NULL;
        for (size_t i = 0; i < EDDY__FD_CHUNK; i++) {
            eddy__list_init(&slots[i].waiters);
            slots[i].registered = false;
        }
        loop->fd_chunks[chunk] = slots;
    }
    return &slots[(size_t)fd % EDDY__FD_CHUNK];
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

void eddy__fd_event(struct eddy_loop *loop, int fd, uint32_t events)
{
    struct eddy__fd_slot *slot = slot_get(loop, fd, false);
    if (slot)
        wake_waiters(slot, events, 0);
}

EDDY_API int eddy_fd_wait(int fd, uint32_t events)
{
    struct eddy_task *self = eddy__task_self();
    if (!self || fd < 0 || events == 0 || (events & ~(EDDY_FD_READ | EDDY_FD_WRITE)))
        return -EINVAL;
    struct eddy_loop *loop = self->loop;
    struct eddy__fd_slot *slot = slot_get(loop, fd, true);
    if (!slot)
        return -ENOMEM;
    if (!slot->registered) {
        int rc = eddy__poller_add(&loop->poller, fd);
        /* EEXIST: the fd was added through another loop-owned path; the
         * registration is what we want either way. */
        if (rc < 0 && rc != -EEXIST)
            return rc;
        slot->registered = true;
    }
    self->wait_events = events;
    eddy__list_push_back(&slot->waiters, &self->wait_link);
    int rc = eddy__task_park(self, EDDY_DEADLINE_NEVER);
    eddy__list_remove(&self->wait_link);
    return rc;
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
