/*
 * io/internal.h: what the io layer's files share: the syscall wrappers
 * that convert to negative errno at once and retry EINTR, and the check
 * that an fd is a socket (send with MSG_NOSIGNAL) or not (write).
 */
#ifndef EDDY_IO_INTERNAL_H
#define EDDY_IO_INTERNAL_H

#include <signal.h>

#include "alloc/internal.h"
#include <eddy/io.h>

/* Makes fd non-blocking (a no-op when it already is). Returns 0 or -errno. */
int eddy__fd_set_nonblocking(int fd);

/* What a stream needs to know of its fd (eddy__fd_kind). */
enum {
    EDDY__FD_SOCKET = 1u, /* a socket: writes use MSG_NOSIGNAL */
    /* A byte stream (a SOCK_STREAM socket, a pipe not in O_DIRECT packet
     * mode): a read shorter than asked leaves nothing behind, so the fd can
     * be marked drained (eddy_fd_mark_drained). */
    EDDY__FD_BYTE_STREAM = 2u,
};

/* EDDY__FD_* bits of fd: an fstat, plus a getsockopt for a socket or an
 * fcntl for a pipe. 0 when fstat fails. */
unsigned eddy__fd_kind(int fd);

/* One write attempt without waiting: send(MSG_NOSIGNAL) on a socket,
 * writev under the SIGPIPE guard otherwise. is_socket may be a guess: a
 * sendmsg that answers ENOTSOCK falls back to writev. The public fd calls
 * guess "socket", which costs a pipe one failed syscall per write instead
 * of an fstat per write for everyone. Returns the count, or -errno
 * (-EAGAIN included). */
ssize_t eddy__fd_try_writev(int fd, bool is_socket, const struct iovec *iov, int iovcnt);

/* As eddy_fd_writev_all with the socket test done by the caller; iov is
 * copied into a scratch array of its own. */
ssize_t eddy__fd_writev_all(int fd, bool is_socket, const struct iovec *iov, int iovcnt);

/*
 * The SIGPIPE guard, for the writes that have no MSG_NOSIGNAL (pipes,
 * sendfile): a reader that went away raises SIGPIPE in the calling thread,
 * whose default action kills the process. Unless the process ignores
 * SIGPIPE or the thread blocks it already, block blocks it for one syscall
 * (never across a park) and restore consumes a SIGPIPE that the syscall
 * raised (also after a partial write: the kernel raises it when the reader
 * vanishes midway) before the mask comes back. The signal is thread-
 * directed, so no other thread sees it. Cost: four syscalls around the
 * write (one when the process ignores SIGPIPE).
 */
struct eddy__sigpipe_guard {
    bool active;
    sigset_t old;
};
void eddy__sigpipe_block(struct eddy__sigpipe_guard *g);
void eddy__sigpipe_restore(struct eddy__sigpipe_guard *g);

/* ---- io/process.c ----------------------------------------------------------- */

/* Tests only: false makes later spawns poll waitpid as on a kernel without
 * pidfd_open; true probes pidfd_open again at the next spawn. */
void eddy__process_use_pidfd(bool on);

#endif
