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
    X(ECANCELED, "the task was cancelled")

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
