/*
 * eddy/common.h: what every layer shares: symbol visibility, branch hints,
 * and the one list of error codes the library returns.
 *
 * Errors are negative errno values. EDDY_ERRORS is the single source of
 * truth: eddy_strerror() and the error table in the docs are generated from
 * it, and a code that is not in the list is never returned.
 */
#ifndef EDDY_COMMON_H
#define EDDY_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_API __attribute__((visibility("default")))
#define EDDY_LIKELY(x) __builtin_expect(!!(x), 1)
#define EDDY_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Every code eddy returns, with the meaning it has in eddy. */
#define EDDY_ERRORS(X)                                                                             \
    X(EPERM, "operation not permitted")                                                            \
    X(ENOENT, "no such file or directory")                                                         \
    X(EINTR, "interrupted")                                                                        \
    X(EIO, "input/output error")                                                                   \
    X(EBADF, "bad file descriptor, or it was closed while a task waited on it")                    \
    X(EAGAIN, "try again (parsers: need more bytes)")                                              \
    X(ENOMEM, "out of memory; the loop keeps running")                                             \
    X(EACCES, "permission denied")                                                                 \
    X(EBUSY, "resource busy (already running, already being joined)")                              \
    X(EEXIST, "already exists")                                                                    \
    X(EINVAL, "invalid argument or misuse (for example: not called from a task)")                  \
    X(EMFILE, "too many open files")                                                               \
    X(ENOSPC, "no space left")                                                                     \
    X(EOVERFLOW, "value too large (a bounded semaphore released above its initial value)")         \
    X(EPIPE, "broken pipe")                                                                        \
    X(EDEADLK, "would deadlock (a task joining itself)")                                           \
    X(ENOSYS, "not supported by this kernel")                                                      \
    X(ESHUTDOWN, "the loop is shutting down")                                                      \
    X(EPROTO, "protocol error in peer input")                                                      \
    X(EBADMSG, "malformed message from peer")                                                      \
    X(ECONNRESET, "connection reset by peer")                                                      \
    X(ECONNREFUSED, "connection refused")                                                          \
    X(ETIMEDOUT, "deadline passed")                                                                \
    X(EALREADY, "already done (for example: cancelling a finished task)")                          \
    X(ECANCELED, "the task was cancelled")                                                         \
    X(ESRCH, "no such process")                                                                    \
    X(E2BIG, "argument list too long")                                                             \
    X(ENOEXEC, "not an executable format")                                                         \
    X(ECHILD, "no such child process (already reaped)")                                            \
    X(ENXIO, "no such address (DNS: the name does not resolve)")                                   \
    X(EFAULT, "bad address")                                                                       \
    X(EXDEV, "cross-device link")                                                                  \
    X(ENOTDIR, "not a directory")                                                                  \
    X(EISDIR, "is a directory")                                                                    \
    X(ENFILE, "too many open files in the system")                                                 \
    X(ENOTTY, "inappropriate ioctl for device")                                                    \
    X(ETXTBSY, "text file busy")                                                                   \
    X(EFBIG, "file too large")                                                                     \
    X(ESPIPE, "illegal seek (a pipe or socket)")                                                   \
    X(EROFS, "read-only file system")                                                              \
    X(EMLINK, "too many links")                                                                    \
    X(ERANGE, "result out of range")                                                               \
    X(ENAMETOOLONG, "file name too long")                                                          \
    X(ENOTEMPTY, "directory not empty")                                                            \
    X(ELOOP, "too many levels of symbolic links")                                                  \
    X(ENODATA, "no data: a stream ended before the expected bytes, or a database value is NULL")   \
    X(ENOTSOCK, "not a socket")                                                                    \
    X(EDESTADDRREQ, "destination address required")                                                \
    X(EMSGSIZE, "message too long (a line above its maximum length)")                              \
    X(EPROTOTYPE, "wrong protocol type for socket")                                                \
    X(ENOPROTOOPT, "protocol option not available")                                                \
    X(EPROTONOSUPPORT, "protocol not supported")                                                   \
    X(EOPNOTSUPP, "operation not supported")                                                       \
    X(EAFNOSUPPORT, "address family not supported")                                                \
    X(EADDRINUSE, "address already in use")                                                        \
    X(EADDRNOTAVAIL, "address not available")                                                      \
    X(ENETDOWN, "network is down")                                                                 \
    X(ENETUNREACH, "network unreachable")                                                          \
    X(ECONNABORTED, "connection aborted")                                                          \
    X(ENOBUFS, "no buffer space available")                                                        \
    X(EISCONN, "already connected")                                                                \
    X(ENOTCONN, "not connected")                                                                   \
    X(EHOSTDOWN, "host is down")                                                                   \
    X(EHOSTUNREACH, "no route to host")                                                            \
    X(EINPROGRESS, "operation in progress")                                                        \
    X(EDQUOT, "disk quota exceeded")                                                               \
    X(EREMOTEIO, "the database server reported an error (its SQLSTATE: eddy_pg_error)")

/*
 * Names a code returned by eddy. Accepts the negative form (-ETIMEDOUT) and
 * the positive one. Returns a static string "ETIMEDOUT: deadline passed";
 * codes outside EDDY_ERRORS get "unknown error".
 * Suspends: no. Thread rules: any thread.
 */
EDDY_API const char *eddy_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
