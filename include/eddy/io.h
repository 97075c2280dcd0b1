/*
 * eddy/io.h: the outside world: fd reads and writes, socket addresses,
 * TCP/Unix/UDP sockets, name resolution, buffered streams, files, pipes and
 * subprocesses. Every call looks blocking and parks only the calling task.
 *
 * The asyncio picture, in C:
 *   asyncio.open_connection(h, p)    eddy_dns_resolve + eddy_sock_connect
 *                                    + eddy_stream_open
 *   asyncio.start_server(cb, h, p)   eddy_sock_listen + eddy_sock_accept loop
 *   reader.read(n)                   eddy_stream_read_some
 *   reader.readexactly(n)            eddy_stream_read_exactly
 *   reader.readuntil(sep)            eddy_stream_read_until
 *   reader.readline()                eddy_stream_read_line
 *   writer.write(b); drain()         eddy_stream_write (drains by itself)
 *   loop.sendfile(transport, f)      eddy_stream_sendfile
 *   aiofiles.open(...)               eddy_file_open / eddy_file_read_all ...
 *   asyncio.create_subprocess_exec   eddy_process_spawn
 *
 * Errors are negative errno values as everywhere in eddy; kernel codes pass
 * through unchanged (-ECONNREFUSED, -ECONNRESET, -EPIPE, -ENOENT, -EACCES,
 * -EMFILE...). Deadlines come from timeout scopes (eddy_timeout_enter),
 * which cover every call here; a few calls also take a timeout argument for
 * convenience. Every blocking call returns -ECANCELED once its task is
 * cancelled.
 *
 * Descriptors: every fd eddy creates is non-blocking and close-on-exec. An
 * fd on which a task waited must be closed with eddy_fd_close (reactor.h),
 * which wakes the tasks still parked on it with -EBADF first; the close
 * functions here do that.
 *
 * Thread rules: one loop per thread. fds, streams and processes belong to
 * the loop whose tasks use them.
 */
#ifndef EDDY_IO_H
#define EDDY_IO_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <eddy/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fd reads and writes ---------------------------------------------------
 * For any non-blocking fd epoll can watch (sockets, pipes, ttys, eventfds):
 * try the syscall, and park on EAGAIN until the fd is ready. EINTR is
 * retried inside.
 */

/* Reads up to len bytes. Returns: the count (>= 1; 0 at end of file, or
 * when len is 0); -errno of read (-ECONNRESET...); -EBADF when the fd was
 * closed while waiting; -ECANCELED; -ETIMEDOUT. buf: borrowed. Suspends:
 * yes. */
EDDY_API ssize_t eddy_fd_read(int fd, void *buf, size_t len);

/* Writes up to len bytes, at least one unless len is 0. Returns: the count
 * written; -errno of write (-EPIPE once the reader is gone, without
 * SIGPIPE: see "pipes and subprocesses"); -EBADF; -ECANCELED; -ETIMEDOUT.
 * buf: borrowed. Suspends: yes. */
EDDY_API ssize_t eddy_fd_write(int fd, const void *buf, size_t len);

/*
 * Writes all len bytes, waiting as often as the fd needs. Sockets are
 * written with send(MSG_NOSIGNAL), other fds with write(2) under eddy's
 * SIGPIPE guard, so a vanished reader gives -EPIPE, never SIGPIPE.
 * Returns: len; or an error as eddy_fd_write, after which an unknown
 * prefix of buf was written. buf: borrowed. Suspends: yes.
 */
EDDY_API ssize_t eddy_fd_write_all(int fd, const void *buf, size_t len);

/* As eddy_fd_write_all for an array of buffers, with writev; iov is not
 * modified. Returns: the total length; an error as eddy_fd_write (-EINVAL
 * when iovcnt is negative or above IOV_MAX, or the total overflows).
 * iov: borrowed. Suspends: yes. */
EDDY_API ssize_t eddy_fd_writev_all(int fd, const struct iovec *iov, int iovcnt);

/* ---- socket addresses ------------------------------------------------------ */

/* An IPv4, IPv6 or Unix socket address with its length. */
struct eddy_addr {
    socklen_t len;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
    } u;
};

/* Longest text eddy_addr_format writes, with its NUL. */
#define EDDY_ADDR_TEXT_MAX 128

/*
 * Parses a numeric address: "127.0.0.1:8080", "[::1]:8080",
 * "[fe80::1%eth0]:80", "unix:/run/app.sock" (or any text starting with '/'),
 * and "unix:@name" for the Linux abstract namespace. Host names are not
 * resolved here (see eddy_dns_resolve). Ports are 0 to 65535; port 0 asks
 * the kernel for a free one when listening.
 * Returns: 0; -EINVAL for text that is not such an address (missing or bad
 * port, bad IP literal, brackets missing around IPv6); -ENAMETOOLONG for a
 * Unix path longer than sun_path. text: borrowed. Suspends: no.
 */
EDDY_API int eddy_addr_parse(const char *text, struct eddy_addr *out);

/* Fills *out with an IPv4 or IPv6 address from a literal and a port.
 * Returns: 0; -EINVAL. Suspends: no. */
EDDY_API int eddy_addr_from_ip(const char *ip, uint16_t port, struct eddy_addr *out);

/* Writes addr as eddy_addr_parse reads it ("127.0.0.1:80", "[::1]:80",
 * "unix:/path") into buf. Returns: the length written (without the NUL);
 * -ENOSPC when buf is too small (EDDY_ADDR_TEXT_MAX always suffices);
 * -EAFNOSUPPORT for another family. Suspends: no. */
EDDY_API int eddy_addr_format(const struct eddy_addr *addr, char *buf, size_t len);

/* The port of an IPv4/IPv6 address (0 for other families). */
EDDY_API uint16_t eddy_addr_port(const struct eddy_addr *addr);

/* ---- stream sockets: TCP over IPv4/IPv6, Unix --------------------------- */

struct eddy_listen_opts {
    int backlog;    /* 0: SOMAXCONN */
    bool reuseport; /* SO_REUSEPORT: one listener per loop on the same port */
    bool v6only;    /* IPV6_V6ONLY on an IPv6 listener (default: dual stack) */
    bool keep_unix; /* do not unlink an existing Unix socket file first */
};

/*
 * Creates a listening stream socket bound to addr (SO_REUSEADDR for TCP;
 * for a Unix path, a stale socket file is removed first unless keep_unix).
 * opts may be NULL. Returns: the fd (non-blocking, close-on-exec);
 * -EADDRINUSE; -EACCES; -EAFNOSUPPORT; -EINVAL; -EMFILE... addr, opts:
 * borrowed. Suspends: no.
 */
EDDY_API int eddy_sock_listen(const struct eddy_addr *addr, const struct eddy_listen_opts *opts);

/*
 * Accepts one connection, parking until one arrives. Each call tries
 * accept4 first, so a task that calls it in a loop drains the backlog of
 * one wakeup before it parks again. When the process is out of fds
 * (EMFILE/ENFILE), the connection stays in the backlog and the call backs
 * off (10 ms, doubling to 200 ms) and tries again, so the listener resumes
 * by itself once fds are freed; a timeout scope or cancellation ends the
 * wait. Connections the peer aborted before accept are skipped.
 * peer (may be NULL) receives the peer's address.
 * Returns: the new fd (non-blocking, close-on-exec); -EBADF when the
 * listener was closed; -EINVAL (not listening); -ECANCELED; -ETIMEDOUT;
 * -ENOMEM/-ENOBUFS. Suspends: yes.
 */
EDDY_API int eddy_sock_accept(int listen_fd, struct eddy_addr *peer);

/*
 * Connects a new stream socket to addr, parking until the connection is
 * established, refused or timeout_ns (< 0: no limit beyond the enclosing
 * timeout scope) has passed. TCP sockets get TCP_NODELAY.
 * Returns: the fd (non-blocking, close-on-exec); -ECONNREFUSED; -ETIMEDOUT;
 * -ENETUNREACH/-EHOSTUNREACH; -ENOENT (Unix path); -ECANCELED; -EMFILE...
 * No fd is left open on failure. addr: borrowed. Suspends: yes.
 */
EDDY_API int eddy_sock_connect(const struct eddy_addr *addr, int64_t timeout_ns);

/* shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR. Returns: 0; -ENOTCONN;
 * -EBADF; -EINVAL. Suspends: no. */
EDDY_API int eddy_sock_shutdown(int fd, int how);

/* The local / peer address of a socket. Returns: 0; -errno of
 * getsockname/getpeername (-ENOTCONN). Suspends: no. */
EDDY_API int eddy_sock_local_addr(int fd, struct eddy_addr *out);
EDDY_API int eddy_sock_peer_addr(int fd, struct eddy_addr *out);

/* Socket options that services reach for. Each returns 0 or -errno of
 * setsockopt. Suspends: no. */
EDDY_API int eddy_sock_set_nodelay(int fd, bool on);
EDDY_API int eddy_sock_set_keepalive(int fd, bool on);
EDDY_API int eddy_sock_set_buffer_sizes(int fd, int rcvbuf_bytes, int sndbuf_bytes);

/* A connected pair of Unix stream sockets (socketpair), non-blocking and
 * close-on-exec. Returns: 0; -EMFILE... Suspends: no. */
EDDY_API int eddy_sock_pair(int fds[2]);

/* ---- datagram sockets: UDP ---------------------------------------------- */

/* Opens a UDP socket of addr's family bound to addr (port 0: any free
 * port). Returns: the fd; -EADDRINUSE; -EAFNOSUPPORT... Suspends: no. */
EDDY_API int eddy_udp_open(const struct eddy_addr *addr);

/* Sends one datagram to `to` (NULL on a connected socket). Returns: len;
 * -EMSGSIZE; -ECONNREFUSED (an ICMP error from an earlier send); -ECANCELED;
 * -ETIMEDOUT. Suspends: yes (while the socket buffer is full). */
EDDY_API ssize_t eddy_udp_send(int fd, const void *buf, size_t len, const struct eddy_addr *to);

/* Receives one datagram into buf; a longer one is truncated to len (the
 * rest is dropped by the kernel, as recvfrom does) and reported with
 * -EMSGSIZE. from (may be NULL) receives the sender. Returns: the datagram's
 * length; -EMSGSIZE; -ECONNREFUSED; -ECANCELED; -ETIMEDOUT. Suspends: yes. */
EDDY_API ssize_t eddy_udp_recv(int fd, void *buf, size_t len, struct eddy_addr *from);

/* ---- name resolution -------------------------------------------------------
 * getaddrinfo run on the offload pool, so a slow resolver parks only the
 * calling task. Results come in the resolver's order (RFC 6724).
 */

/* The resolver's failures, as eddy codes: EAI_NONAME, EAI_NODATA and
 * EAI_ADDRFAMILY give -ENXIO (the name does not exist); EAI_AGAIN -EAGAIN
 * (temporary failure, try later); EAI_FAIL -EIO; EAI_MEMORY -ENOMEM;
 * EAI_FAMILY -EAFNOSUPPORT; EAI_SERVICE -EINVAL. */

/*
 * Resolves host (a name or an IP literal; IPv6 literals may be bracketed)
 * for TCP, with port filled in, into out[0..max). family is AF_UNSPEC,
 * AF_INET or AF_INET6. timeout_ns (< 0: none beyond the timeout scope)
 * bounds the wait; a lookup that outlives it finishes on its worker and is
 * discarded. Returns: the number of addresses (>= 1); the codes above;
 * -ETIMEDOUT; -ECANCELED; -EINVAL (NULL, empty or over-long host, max 0).
 * host: borrowed. Suspends: yes.
 */
EDDY_API int eddy_dns_resolve(const char *host, uint16_t port, int family, int64_t timeout_ns,
                              struct eddy_addr *out, size_t max);

/*
 * Resolves host and connects to its addresses in order until one accepts
 * (the first error is kept and returned when all fail). timeout_ns bounds
 * the whole call. Returns: the connected fd; the codes of eddy_dns_resolve
 * and eddy_sock_connect. Suspends: yes.
 */
EDDY_API int eddy_tcp_connect_host(const char *host, uint16_t port, int64_t timeout_ns);

/* ---- buffered streams --------------------------------------------------------
 * A stream wraps a connected fd (a socket or a pipe end) with a read buffer
 * and a write buffer: asyncio's StreamReader and StreamWriter in one object.
 *
 * Reading: read_some returns what is buffered or one read's worth;
 * read_exactly, read_until and read_line wait until their condition holds.
 * When the peer ends the stream first they return -ENODATA and consume
 * nothing: the bytes that did arrive stay buffered for read_some, so no
 * data is lost. A delimiter search gives up with -EMSGSIZE once max bytes
 * are buffered without the delimiter (asyncio's LimitOverrunError), again
 * consuming nothing. The same holds for every other error (-ECANCELED,
 * -ETIMEDOUT, -ECONNRESET...): a read that fails consumes nothing, and the
 * next call sees the same bytes. The parser-facing calls (fill, peek, consume) let a
 * protocol parse in place, without copying.
 *
 * Writing: eddy_stream_write copies small writes into the write buffer and
 * sends when it passes the high-water mark; larger writes go out directly
 * with one writev of the buffered bytes and the new ones. So a write
 * returns once its bytes are either in the kernel or in a buffer below the
 * high-water mark: a peer that does not read blocks the writer there
 * (backpressure), until a timeout scope ends the wait. Nothing is sent
 * implicitly later: call eddy_stream_flush (or close, which flushes) to push
 * the buffered tail out. A successful write is never dropped silently: a
 * later flush or close reports the error that kept it from the peer.
 * Writes never raise SIGPIPE: sockets are written with MSG_NOSIGNAL, and
 * pipe writes and sendfile block SIGPIPE in the calling thread for the
 * call and consume the one it raised, so a vanished reader is -EPIPE.
 *
 * Thread rules: a stream belongs to its loop. One task reads and one task
 * writes at a time (reading and writing from two tasks is fine).
 */
struct eddy_stream;

struct eddy_stream_opts {
    size_t read_buffer_bytes;  /* initial read buffer; 0: 16 KiB */
    size_t write_buffer_bytes; /* write high-water mark; 0: 64 KiB */
    bool own_fd;               /* the stream closes fd at eddy_stream_close */
};

/* opts NULL means these defaults (the stream owns its fd). */
#define EDDY_STREAM_OPTS_DEFAULT                                                                   \
    ((struct eddy_stream_opts){.read_buffer_bytes = 0, .write_buffer_bytes = 0, .own_fd = true})

/*
 * Wraps fd (made non-blocking here when it is not yet) in a stream.
 * Returns: 0; -EINVAL (negative fd, NULL out); -ENOMEM; -errno of fcntl
 * (-EBADF). fd: transferred when opts->own_fd (or opts is NULL), else
 * borrowed until close; on failure it stays the caller's. Suspends: no.
 */
EDDY_API int eddy_stream_open(int fd, const struct eddy_stream_opts *opts,
                              struct eddy_stream **out);

/*
 * Flushes what is buffered (bounded by the task's timeout scope), closes
 * the fd when the stream owns it, and frees the stream, even when the flush
 * fails. Returns: 0; the flush's error (the peer may have missed the tail);
 * -EINVAL for NULL. Suspends: yes (the flush).
 */
EDDY_API int eddy_stream_close(struct eddy_stream *s);

/* As eddy_stream_close without flushing (buffered output is discarded):
 * for connections being aborted. Suspends: no. */
EDDY_API void eddy_stream_abort(struct eddy_stream *s);

/* The stream's fd. */
EDDY_API int eddy_stream_fd(const struct eddy_stream *s);

/* Reads up to len bytes: buffered ones first, else one read(2).
 * Returns: 1..len; 0 at end of stream; -errno (-ECONNRESET); -ECANCELED;
 * -ETIMEDOUT; -EINVAL. buf: borrowed. Suspends: yes. */
EDDY_API ssize_t eddy_stream_read_some(struct eddy_stream *s, void *buf, size_t len);

/* Reads exactly len bytes. Returns: len; -ENODATA when the stream ended
 * first; other errors as read_some. On any error nothing is consumed: the
 * bytes that arrived stay buffered (-ENOMEM when there was no memory to
 * keep them). Reads of half the read buffer or more go straight into buf.
 * buf: borrowed. Suspends: yes. */
EDDY_API ssize_t eddy_stream_read_exactly(struct eddy_stream *s, void *buf, size_t len);

/*
 * Reads up to and including the first occurrence of delim (delim_len >= 1)
 * into buf, and NUL-terminates it. Looks at no more than cap - 1 bytes.
 * Returns: the length with the delimiter (without the NUL); -EMSGSIZE when
 * cap - 1 bytes arrived without the delimiter; -ENODATA when the stream
 * ended first; other errors as read_some (none of them consumes anything);
 * -EINVAL (NULL arguments, delim_len 0, cap < delim_len + 1).
 * buf, delim: borrowed. Suspends: yes.
 */
EDDY_API ssize_t eddy_stream_read_until(struct eddy_stream *s, const void *delim, size_t delim_len,
                                        char *buf, size_t cap);

/* read_until "\n": a line with its newline, NUL-terminated, of at most
 * cap - 1 bytes. A last line without a newline is returned at end of
 * stream, also one of exactly cap - 1 bytes (the call reads once more to
 * see that the end follows). Returns: the length; -EMSGSIZE when cap - 1
 * bytes hold no newline and more follow; -ENODATA only when nothing is
 * left; other errors as read_until (cap < 2: -EINVAL). Suspends: yes. */
EDDY_API ssize_t eddy_stream_read_line(struct eddy_stream *s, char *buf, size_t cap);

/* Parser-facing reads. fill reads once more into the buffer (growing it up
 * to max_bytes of buffered data). Returns: bytes added (>= 1); 0 at end of
 * stream; -EMSGSIZE when max_bytes are already buffered; -EINVAL
 * (max_bytes 0); errors as read_some. Suspends: yes. */
EDDY_API ssize_t eddy_stream_fill(struct eddy_stream *s, size_t max_bytes);
/* The buffered bytes: *data points into the stream's buffer and stays valid
 * until the next fill, read or consume. Returns: their count. Suspends: no. */
EDDY_API size_t eddy_stream_peek(const struct eddy_stream *s, const char **data);
/* Drops n buffered bytes (n <= the count peek returned; a larger n drops
 * only what is buffered). Suspends: no. */
EDDY_API void eddy_stream_consume(struct eddy_stream *s, size_t n);
/* True once a read has seen end of stream. */
EDDY_API bool eddy_stream_is_eof(const struct eddy_stream *s);
/* Frees the read buffer when it holds no unconsumed bytes, and the write
 * buffer when it holds no unsent ones, for a stream about to sit idle (a
 * keep-alive connection between requests): the next read or write
 * allocates again. Released buffers go to a small per-thread cache (16 of
 * at most 64 KiB), so the round trip costs no malloc in steady state; a
 * fill that must wait for data waits before it allocates. Call it from the
 * task that uses the stream, not while another task is inside one of its
 * calls. Suspends: no. */
EDDY_API void eddy_stream_release_buffers(struct eddy_stream *s);

/* Writes len bytes (see "Writing" above). Returns: len; -EPIPE,
 * -ECONNRESET (peer gone); -ECANCELED; -ETIMEDOUT (a part may have been
 * sent); -EINVAL; -ENOMEM. After an error of the fd or of a wait the stream
 * accepts no more writes and returns that error again (-EINVAL and -ENOMEM
 * send nothing and do not stick). buf: borrowed. Suspends: yes. */
EDDY_API ssize_t eddy_stream_write(struct eddy_stream *s, const void *buf, size_t len);
/* As eddy_stream_write for several buffers (one writev when they go out
 * directly). Returns: their total length or an error. Suspends: yes. */
EDDY_API ssize_t eddy_stream_writev(struct eddy_stream *s, const struct iovec *iov, int iovcnt);
/* Sends everything buffered. Returns: 0; a write error. Suspends: yes. */
EDDY_API int eddy_stream_flush(struct eddy_stream *s);
/* Bytes waiting in the write buffer. */
EDDY_API size_t eddy_stream_write_buffered(const struct eddy_stream *s);

/*
 * Flushes, then sends len bytes of the regular file file_fd from offset
 * with sendfile(2), or with pread and write where sendfile refuses the pair
 * (-EINVAL: an O_APPEND output, an input without splice support).
 * file_fd's own offset is not used or moved.
 * Returns: len; -ENODATA when the file ends before offset + len (what was
 * sent stays sent); write errors as eddy_stream_write (-EPIPE,
 * -ECONNRESET, -ETIMEDOUT, -ECANCELED: these stick); -errno of sendfile or
 * pread for the file (-EBADF, -EISDIR, -EIO: these do not); -EINVAL.
 * Suspends: yes.
 */
EDDY_API ssize_t eddy_stream_sendfile(struct eddy_stream *s, int file_fd, off_t offset, size_t len);

/* ---- files ------------------------------------------------------------------ */
/*
 * aiofiles for eddy. epoll cannot wait on regular files, so every call here
 * runs its syscalls on the offload pool (eddy_offload_run, reactor.h) and
 * parks only the calling task. Calls of different tasks run on the pool's
 * threads side by side (4 by default): eddy queues no file call behind
 * another.
 *
 *   async with aiofiles.open(p) as f:    eddy_file_open(p, O_RDONLY, 0, &f)
 *       await f.read(n)                    eddy_file_read(f, buf, n)
 *       async for line in f:               while ((n = eddy_file_read_line(f, line, cap)) > 0)
 *   (await f.close())                    eddy_file_close(f)
 *   Path(p).read_bytes()                 eddy_file_read_all(p, max, &data, &len)
 *   Path(p).write_bytes(b)               eddy_file_write_all(p, b, len, &opts)
 *   aiofiles.os.stat / unlink / rename   eddy_file_stat / eddy_file_unlink / eddy_file_rename
 *   aiofiles.os.mkdir / rmdir / listdir  eddy_file_mkdir / eddy_file_rmdir / eddy_file_readdir
 *
 * Handles: an open file is a struct eddy_file, not a plain fd, for three
 * reasons. (1) A job whose caller was cancelled keeps running on its worker
 * and still uses the fd; the handle counts such jobs and closes the fd after
 * the last one, so the number is never reused (by the next open anywhere in
 * the process) under a late read or write. (2) The position belongs to the
 * handle: read and write use pread/pwrite at it and move it only when the
 * call succeeds, so a read cut short by a cancellation can simply be
 * repeated. (3) The line iterator's read-ahead buffer lives in it.
 *
 * Chunks: a transfer longer than EDDY_FILE_CHUNK_BYTES runs as one job per
 * chunk, so a 1 GiB read holds a worker for one chunk at a time, other
 * tasks' jobs run in between, and a cancelled caller stops at the chunk it
 * is in.
 *
 * Small cached reads: a read of up to 64 KiB (and each read-ahead of the
 * line iterator) first yields, then takes what the page cache holds on the
 * loop thread with preadv2(RWF_NOWAIT), which never waits for the disk;
 * only the rest goes to the pool. Such a copy costs about what a round trip
 * to a worker does, and the yield keeps a task reading a cached file in
 * small pieces from starving the others.
 *
 * Cancellation: a cancelled call (or one whose timeout scope expires) returns
 * -ECANCELED / -ETIMEDOUT at once, also while its job is running. From then
 * on that job never touches the caller's memory: workers copy into and out
 * of a caller's buffer only while the caller still waits, under a lock of the
 * call, so a cancelled caller waits at most for one such copy in progress (a
 * memcpy of up to a chunk, never for I/O). Reads that the page cache can
 * serve go straight into the caller's buffer (preadv2 with RWF_NOWAIT, under
 * that lock); what must come from the disk is read into a buffer of the job
 * and copied afterwards. Writes copy the caller's bytes into a buffer of the
 * job, then write. Whatever a late job opened or allocated (an fd, a buffer,
 * a temporary file) is released when it ends, on the loop's thread.
 *
 * Errors: the kernel's codes pass through (-ENOENT, -EACCES, -EISDIR,
 * -ENOTDIR, -EEXIST, -ENOTEMPTY, -ENOSPC, -EXDEV...); a code outside
 * EDDY_ERRORS is reported as -EIO. Every call that suspends can also return
 * -ECANCELED, -ETIMEDOUT (timeout scope), -ENOMEM, -EAGAIN (no worker thread
 * could be started) and -EINVAL (outside a task, NULL arguments).
 *
 * Thread rules: a handle belongs to the loop whose tasks use it. pread,
 * pwrite, fsync, fdatasync and fstat may run from several tasks at once on
 * one handle; read, write, seek and read_line use the position and the
 * read-ahead buffer, and a second task calling one of them while the first
 * is inside gets -EBUSY.
 */

/* Bytes one offload job moves at most. */
#define EDDY_FILE_CHUNK_BYTES (1u << 20)

struct eddy_file;

enum eddy_file_type {
    EDDY_FILE_TYPE_REGULAR,
    EDDY_FILE_TYPE_DIRECTORY,
    EDDY_FILE_TYPE_SYMLINK,
    EDDY_FILE_TYPE_FIFO,
    EDDY_FILE_TYPE_SOCKET,
    EDDY_FILE_TYPE_CHAR_DEVICE,
    EDDY_FILE_TYPE_BLOCK_DEVICE,
    EDDY_FILE_TYPE_OTHER,
};

/* What eddy_file_stat reports. */
struct eddy_file_stat {
    uint64_t size_bytes;
    int64_t mtime_ns; /* last modification, ns since the Unix epoch (CLOCK_REALTIME) */
    uint32_t mode;    /* permission bits with setuid/setgid/sticky (st_mode & 07777) */
    enum eddy_file_type type;
};

/*
 * Opens path as open(2) does (flags: O_RDONLY, O_WRONLY|O_CREAT|O_TRUNC,
 * O_RDWR, O_APPEND, O_EXCL...; mode for a created file, umask applied),
 * close-on-exec always. The position starts at 0. With O_APPEND every write
 * goes to the end of the file and moves the position there.
 * Meant for regular files (and block devices): a FIFO can be opened, but
 * reads and writes on it fail with -ESPIPE (use the fd functions instead).
 * Returns: 0 and *out; -ENOENT, -EACCES, -EISDIR (writing a directory),
 * -EEXIST (O_EXCL), -EMFILE...; the common codes above. A cancelled open
 * whose job still completes closes the fd it opened. path: borrowed (copied).
 * Suspends: yes.
 */
EDDY_API int eddy_file_open(const char *path, int flags, mode_t mode, struct eddy_file **out);

/*
 * Closes the file and frees the handle, which is invalid afterwards, whatever
 * the result. The close(2) itself runs on a worker (network file systems
 * report deferred write errors there and may take long); outside a task it
 * runs inline. When jobs of cancelled calls still use the fd, it is closed
 * after the last of them, on the loop's thread, and this returns 0.
 * Returns: 0; -EIO (and other close errors: data may not have reached the
 * file); -ECANCELED (the fd is closed all the same); -EINVAL for NULL.
 * Suspends: yes (inside a task).
 */
EDDY_API int eddy_file_close(struct eddy_file *f);

/* The handle's fd, for calls eddy does not wrap (it stays owned by the
 * handle: do not close it). Suspends: no. */
EDDY_API int eddy_file_fd(const struct eddy_file *f);

/*
 * Reads up to len bytes at the position and moves the position past them.
 * Reads until len bytes or end of file, one job per chunk; bytes buffered by
 * eddy_file_read_line come first.
 * Returns: the count (less than len only at end of file, 0 there, or when
 * an I/O error came after some bytes: the next call reports it);
 * -EISDIR; -ESPIPE (not a seekable file); -EIO; -EBADF (closed handle, or
 * not opened for reading); -EBUSY (another task is inside read, write, seek
 * or read_line of this handle); the common codes. On an error the position
 * is unchanged and an unknown part of buf may have been written.
 * buf: borrowed (never touched after the call returns). Suspends: yes
 * (not when buffered bytes cover len).
 */
EDDY_API ssize_t eddy_file_read(struct eddy_file *f, void *buf, size_t len);

/*
 * Writes len bytes at the position (at the end with O_APPEND) and moves the
 * position past them, one job per chunk. Drops read-ahead buffered by
 * eddy_file_read_line.
 * Returns: len; -ENOSPC, -EDQUOT, -EFBIG, -EIO; -EBADF (not opened for
 * writing); -EBUSY; the common codes. On an error the position is unchanged
 * and an unknown prefix of buf may have been written.
 * buf: borrowed (copied by the workers while the caller waits).
 * Suspends: yes (not for len 0).
 */
EDDY_API ssize_t eddy_file_write(struct eddy_file *f, const void *buf, size_t len);

/* As eddy_file_read at offset, without using or moving the position.
 * Returns: as eddy_file_read (never -EBUSY); -EINVAL for a negative offset.
 * Suspends: yes (not for len 0). */
EDDY_API ssize_t eddy_file_pread(struct eddy_file *f, void *buf, size_t len, off_t offset);

/* As eddy_file_write at offset, without using or moving the position. On
 * Linux a file opened with O_APPEND appends whatever the offset (pwrite(2),
 * BUGS). Returns: as eddy_file_write (never -EBUSY); -EINVAL for a negative
 * offset. Suspends: yes (not for len 0). */
EDDY_API ssize_t eddy_file_pwrite(struct eddy_file *f, const void *buf, size_t len, off_t offset);

/*
 * Moves the position as lseek(2) does: whence is SEEK_SET, SEEK_CUR, or
 * SEEK_END (which reads the size on a worker). Read-ahead that covers the
 * new position is kept. Returns: the new position; -EINVAL (another whence,
 * a negative result); -EBUSY; for SEEK_END the codes of eddy_file_fstat.
 * Suspends: only for SEEK_END.
 */
EDDY_API off_t eddy_file_seek(struct eddy_file *f, off_t offset, int whence);

/* The position. Suspends: no. */
EDDY_API off_t eddy_file_tell(const struct eddy_file *f);

/*
 * The line iterator (`async for line in f`): reads the next line at the
 * position, with its '\n', into buf, NUL-terminates it and moves the
 * position past it. Lines are at most cap - 1 bytes; the file is read ahead
 * in blocks of 64 KiB (more for longer lines) into a buffer of the handle.
 * A last line without a newline is returned as it is.
 *   while ((n = eddy_file_read_line(f, line, sizeof(line))) > 0)
 *       handle(line, n);
 * Returns: the line's length with the newline (>= 1; a line may contain NUL
 * bytes, the length counts them); 0 at end of file; -EMSGSIZE when the line,
 * its newline included, is longer than cap - 1 bytes (nothing is consumed:
 * eddy_file_read, or a larger cap, continues from the start of that line);
 * -EINVAL for cap < 2;
 * the codes of eddy_file_read. buf: borrowed. Suspends: yes (not when the
 * line is already buffered).
 */
EDDY_API ssize_t eddy_file_read_line(struct eddy_file *f, char *buf, size_t cap);

/* fsync(2) / fdatasync(2): the file's data (and metadata) reach the disk.
 * Returns: 0; -EIO, -ENOSPC, -EDQUOT; -EROFS or -EINVAL (a file that cannot
 * be synced); -EBADF; the common codes. Suspends: yes. */
EDDY_API int eddy_file_fsync(struct eddy_file *f);
EDDY_API int eddy_file_fdatasync(struct eddy_file *f);

/* The open file's size, mtime, mode and type (fstat). Returns: 0; -EBADF;
 * the common codes. out: borrowed. Suspends: yes. */
EDDY_API int eddy_file_fstat(struct eddy_file *f, struct eddy_file_stat *out);

/*
 * Reads the whole file at path into a new buffer (open, read, close; a file
 * of up to a chunk takes one job). *data receives len + 1 bytes, the last
 * one a NUL that len does not count, to free with eddy_free; files whose
 * stat size is 0 (procfs) are read to their end too.
 * max_bytes (0: no limit) bounds the length.
 * Returns: 0 with *data and *len; -EFBIG when the file is longer than
 * max_bytes; -ENOENT, -EACCES, -EISDIR...; the common codes. On an error
 * nothing is allocated and *data is NULL. path: borrowed (copied).
 * Suspends: yes.
 */
EDDY_API int eddy_file_read_all(const char *path, size_t max_bytes, char **data, size_t *len);

struct eddy_file_write_opts {
    mode_t mode; /* permissions of a created file, umask applied; 0: 0666 */
    bool atomic; /* write a temporary file beside path, fsync it, rename it
                  * over path: readers see the old file or the new one */
    bool sync;   /* fsync the file (and, when atomic, its directory) first */
};

/*
 * Writes data as the whole content of path (created or truncated; opts may
 * be NULL). Without opts->atomic an error can leave a partly written file;
 * with it, the temporary file (path + ".tmp." + 8 hex digits, mode
 * opts->mode) is removed on every error, including a cancellation, and path
 * is untouched. The new file gets opts->mode, not the old file's.
 * Returns: 0; -ENOENT (no such directory), -EACCES, -EISDIR, -ENOSPC...;
 * the common codes. path, data, opts: borrowed. Suspends: yes.
 */
EDDY_API int eddy_file_write_all(const char *path, const void *data, size_t len,
                                 const struct eddy_file_write_opts *opts);

/* Appends data to path (created with mode 0666 & ~umask when missing), with
 * O_APPEND, one write per chunk. Returns: 0; as eddy_file_write_all; after an
 * error an unknown prefix may have been appended. Suspends: yes. */
EDDY_API int eddy_file_append(const char *path, const void *data, size_t len);

/* The size, mtime, mode and type of path, following symbolic links (stat)
 * or not (lstat). Returns: 0; -ENOENT, -ENOTDIR, -EACCES, -ELOOP...; the
 * common codes. Suspends: yes. */
EDDY_API int eddy_file_stat(const char *path, struct eddy_file_stat *out);
EDDY_API int eddy_file_lstat(const char *path, struct eddy_file_stat *out);

/* unlink(2), rename(2), mkdir(2) (mode: umask applied), rmdir(2).
 * Returns: 0; the kernel's codes (-ENOENT, -EEXIST, -EISDIR, -ENOTDIR,
 * -ENOTEMPTY, -EXDEV, -EACCES...); the common codes. Paths: borrowed
 * (copied). Suspends: yes. */
EDDY_API int eddy_file_unlink(const char *path);
EDDY_API int eddy_file_rename(const char *from, const char *to);
EDDY_API int eddy_file_mkdir(const char *path, mode_t mode);
EDDY_API int eddy_file_rmdir(const char *path);

/*
 * Lists the directory at path ("." and ".." left out), sorted by strcmp.
 * *names receives count + 1 pointers, the last one NULL, and the strings
 * they point to, all in one block to free with eddy_free (once).
 * Returns: 0 with *names and *count; -ENOENT, -ENOTDIR, -EACCES...; the
 * common codes. On an error *names is NULL. Suspends: yes.
 */
EDDY_API int eddy_file_readdir(const char *path, char ***names, size_t *count);

/* ---- pipes and subprocesses ------------------------------------------------ */
/*
 * Pipes are plain non-blocking, close-on-exec fds: read them with
 * eddy_fd_read, write them with eddy_fd_write_all, or wrap them in a
 * stream with eddy_stream_open.
 *
 * SIGPIPE: write(2) to a pipe whose reader has gone raises SIGPIPE, whose
 * default action ends the process; only sockets have MSG_NOSIGNAL. eddy
 * never changes the process's signal dispositions. Its writes to pipes
 * (eddy_fd_write, eddy_fd_write_all, streams, eddy_process_communicate)
 * block SIGPIPE in the calling thread around each write(2) and consume the
 * SIGPIPE that write raised, so they return -EPIPE instead; this costs
 * three syscalls per write(2) unless the process ignores SIGPIPE
 * (signal(SIGPIPE, SIG_IGN), as most servers do: children started here get
 * the default action back). When the calling thread already blocks
 * SIGPIPE, a SIGPIPE raised is left pending, as a plain write leaves it.
 */

/* Creates a pipe (pipe2): fds[0] the read end, fds[1] the write end, both
 * non-blocking and close-on-exec. Returns: 0; -EINVAL for NULL; -EMFILE;
 * -ENFILE. Suspends: no. */
EDDY_API int eddy_pipe(int fds[2]);

/*
 * Subprocesses (asyncio.create_subprocess_exec):
 *
 *   const char *argv[] = {"sort", "-r", NULL};
 *   struct eddy_process_opts o = EDDY_PROCESS_OPTS_DEFAULT;
 *   o.stdin_mode = o.stdout_mode = EDDY_STDIO_PIPE;
 *   struct eddy_process *p;
 *   int rc = eddy_process_spawn(argv, &o, &p);
 *   if (rc < 0) return rc;                    // -ENOENT, -EACCES, -ENOEXEC...
 *   struct eddy_process_output out;
 *   rc = eddy_process_communicate(p, "b\na\n", 4, 1 << 20, &out);
 *   // out.out_buf is "b\na\n", out.returncode 0
 *   eddy_process_output_fini(&out);
 *   eddy_process_destroy(p);
 *
 * Spawning is vfork and exec (cheap in a big process, unlike fork), with
 * an exec failure brought back as its errno. The child starts with an
 * empty signal mask and SIGPIPE and SIGXFSZ at their default action,
 * whatever the loop's thread blocks or the process ignores (as Python's
 * subprocess does); other dispositions and the resource limits are
 * inherited. Every fd eddy creates is
 * close-on-exec, so the child gets only its three standard fds (plus any
 * fd the program left inheritable).
 *
 * Exit: the process is watched through a pidfd (pidfd_open, Linux 5.3),
 * which becomes readable in the loop's epoll when the child exits, so no
 * SIGCHLD handler is involved. Without pidfd_open (older kernels,
 * Valgrind), waits poll waitpid every 1 to 50 ms instead. The program must
 * not reap eddy's children behind its back (waitpid(-1), SIGCHLD set to
 * SIG_IGN): waits then give -ECHILD. The exit status is reported as
 * Python's Popen.returncode: the exit code 0..255, or -N when signal N
 * killed the process.
 *
 * Pipes: each standard fd set to EDDY_STDIO_PIPE gets a pipe whose parent
 * end is non-blocking and close-on-exec (the child's end is blocking, as
 * programs expect). The process owns these ends until eddy_process_take_fd
 * transfers one; eddy_process_destroy closes the ones it still owns.
 *
 * Thread rules: a process belongs to the loop whose tasks wait on it;
 * spawn, poll, kill and destroy need no task.
 */
struct eddy_process;

/* What a child's standard fd is connected to. */
enum eddy_stdio {
    EDDY_STDIO_INHERIT = 0, /* the parent's same fd */
    EDDY_STDIO_PIPE,        /* a new pipe to the parent (eddy_process_fd) */
    EDDY_STDIO_NULL,        /* /dev/null */
    EDDY_STDIO_FD,          /* the fd given in the opts (borrowed during spawn; it keeps
                               its file status flags: a non-blocking fd is non-blocking
                               in the child too) */
    EDDY_STDIO_STDOUT,      /* stderr only: wherever stdout goes (2>&1) */
};

struct eddy_process_opts {
    enum eddy_stdio stdin_mode, stdout_mode, stderr_mode;
    int stdin_fd, stdout_fd, stderr_fd; /* for EDDY_STDIO_FD */
    const char *cwd;                    /* NULL: the parent's working directory */
    char *const *env;                   /* "NAME=value" array ending in NULL; NULL: environ */
};

/* Every fd inherited, the parent's cwd and environment (opts NULL). */
#define EDDY_PROCESS_OPTS_DEFAULT                                                                  \
    ((struct eddy_process_opts){.stdin_mode = EDDY_STDIO_INHERIT,                                  \
                                .stdout_mode = EDDY_STDIO_INHERIT,                                 \
                                .stderr_mode = EDDY_STDIO_INHERIT,                                 \
                                .stdin_fd = -1,                                                    \
                                .stdout_fd = -1,                                                   \
                                .stderr_fd = -1,                                                   \
                                .cwd = NULL,                                                       \
                                .env = NULL})

/*
 * Starts argv[0] with arguments argv (ending in NULL). A name without '/'
 * is searched in the parent's PATH (execvp rules; a file without a #! line
 * that is not a binary fails with -ENOEXEC rather than running under sh).
 * opts (NULL: EDDY_PROCESS_OPTS_DEFAULT) picks the standard fds, the
 * working directory and the environment.
 * Returns: 0 with *out set; the exec's failure: -ENOENT (no such program,
 * or no such cwd), -EACCES (not executable, or a directory), -ENOEXEC (not
 * an executable format), -E2BIG, -ENOTDIR, -ETXTBSY...; -EBADF (a given
 * fd that is not open); -EINVAL (NULL or empty argv, bad mode,
 * EDDY_STDIO_STDOUT for stdin or stdout, a negative fd with EDDY_STDIO_FD);
 * -EMFILE/-ENFILE; -ENOMEM; -EAGAIN (process limit). Nothing is left
 * behind on failure (no fd, no zombie). argv, opts and what they point to:
 * borrowed.
 * Suspends: no. Thread rules: any thread with a loop or none.
 */
EDDY_API int eddy_process_spawn(const char *const argv[], const struct eddy_process_opts *opts,
                                struct eddy_process **out);

/*
 * Kills the process with SIGKILL unless it has been reaped, reaps it
 * (blocking the thread until the kernel has ended it: microseconds, unless
 * the child is stuck in uninterruptible sleep), closes the pipe ends the
 * process still owns and its pidfd with eddy_fd_close (tasks parked on them
 * get -EBADF), and frees p. So no zombie is left: to let a child outlive
 * its eddy_process, start a program that detaches itself (setsid, double
 * fork). A task parked in eddy_process_wait on p returns -EBADF and does not
 * touch p again. NULL is a no-op. Suspends: no.
 */
EDDY_API void eddy_process_destroy(struct eddy_process *p);

/* The child's process id (still valid after exit until destroy; do not
 * signal it with kill(2), which could reach a recycled pid: use
 * eddy_process_kill). Suspends: no. */
EDDY_API pid_t eddy_process_pid(const struct eddy_process *p);

/* The parent's end of the pipe to the child's standard fd child_fd (0, 1
 * or 2), still owned by p. Returns: the fd; -EBADF when that fd is not a
 * pipe, or was taken or closed; -EINVAL for another child_fd.
 * Suspends: no. */
EDDY_API int eddy_process_fd(const struct eddy_process *p, int child_fd);

/* As eddy_process_fd, transferring the fd to the caller (who closes it with
 * eddy_fd_close, or hands it to eddy_stream_open). Suspends: no. */
EDDY_API int eddy_process_take_fd(struct eddy_process *p, int child_fd);

/* Closes the parent's end of the pipe to child_fd with eddy_fd_close:
 * closing stdin is how the child sees end of input. Returns: 0; -EBADF
 * (not a pipe, or taken or closed already); -EINVAL. Suspends: no. */
EDDY_API int eddy_process_close_fd(struct eddy_process *p, int child_fd);

/*
 * Waits until the process exits and stores its returncode (exit code, or
 * -signal) in *returncode (may be NULL). Every task waiting on the process
 * is woken at its exit and gets the same code; once reaped, the code is
 * returned at once. timeout_ns < 0 waits without limit beyond the task's
 * timeout scope.
 * Returns: 0; -ETIMEDOUT (timeout_ns or a scope: the process keeps
 * running); -ECANCELED (idem); -EBADF when p was destroyed while waiting;
 * -ECHILD when something else reaped the child; -EINVAL outside a task or
 * for NULL. Suspends: yes.
 */
EDDY_API int eddy_process_wait(struct eddy_process *p, int64_t timeout_ns, int *returncode);

/* Checks without waiting (Popen.poll): reaps the process when it has
 * exited. Returns: 0 with *returncode set (may be NULL); -EAGAIN while it
 * runs; -ECHILD; -EINVAL. Suspends: no. */
EDDY_API int eddy_process_poll(struct eddy_process *p, int *returncode);

/* Sends signal sig (pidfd_send_signal: never a recycled pid). sig 0 checks
 * that the process can be signalled. Returns: 0 (also for a child that has
 * exited and is not yet reaped: the signal has no effect); -ESRCH once it
 * has been reaped; -EINVAL (bad signal, NULL); -EPERM. Suspends: no. */
EDDY_API int eddy_process_kill(struct eddy_process *p, int sig);

/* What eddy_process_communicate collected. The buffers are NUL-terminated
 * (the NUL is not counted) and allocated with eddy_malloc; NULL (length 0)
 * for a standard fd that was not a pipe. */
struct eddy_process_output {
    char *out_buf;
    size_t out_len;
    char *err_buf;
    size_t err_len;
    int returncode;
};

/*
 * Popen.communicate: writes input_len bytes of input to the child's stdin
 * and closes it, reads its stdout and stderr until end of file, all three
 * at once (helper tasks, so a child that fills one pipe while the parent
 * writes another cannot deadlock), then waits for the exit. Each of
 * stdout and stderr may bring at most max_output_bytes. The pipes it used
 * are closed afterwards (eddy_process_fd then gives -EBADF). A child that
 * closes its stdin early is not an error: the rest of the input is
 * dropped, and no SIGPIPE is raised (see above). A grandchild that keeps
 * stdout open keeps the call waiting, as in Python. Bound it with a timeout
 * scope (eddy_timeout_enter).
 * Returns: 0 with *out filled (free with eddy_process_output_fini);
 * -EMSGSIZE when stdout or stderr passed max_output_bytes; -EINVAL (input
 * given but stdin is not a pipe that p still owns, NULL p or out, outside a
 * task); -ETIMEDOUT; -ECANCELED; -ENOMEM; read errors. After an error *out
 * holds no buffers, the pipes are closed (or will be, as the helpers end)
 * and the process may still run: kill it or destroy it. input: borrowed.
 * Suspends: yes.
 */
EDDY_API int eddy_process_communicate(struct eddy_process *p, const void *input, size_t input_len,
                                      size_t max_output_bytes, struct eddy_process_output *out);

/* Frees the buffers of out and zeroes it. Suspends: no. */
EDDY_API void eddy_process_output_fini(struct eddy_process_output *out);

/*
 * subprocess.run in one call: spawns argv with opts, communicates and
 * destroys the process (on an error after the spawn, the process is killed
 * and reaped). opts NULL means stdout and stderr piped, and stdin piped
 * when input_len > 0, else /dev/null.
 * Returns: as eddy_process_spawn and eddy_process_communicate.
 * Suspends: yes.
 */
EDDY_API int eddy_process_run(const char *const argv[], const struct eddy_process_opts *opts,
                              const void *input, size_t input_len, size_t max_output_bytes,
                              struct eddy_process_output *out);

#ifdef __cplusplus
}
#endif
#endif
