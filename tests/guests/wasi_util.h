/* Shared helpers for the test guests: WASI errno and filetype names, finding a preopen by its
 * guest path, and small wrappers over the raw wasi_snapshot_preview1 calls.
 *
 * Guests print what they observe through these helpers so that two runs (wasmtime's own WASI and
 * wasitrace) can be compared byte for byte. Everything is `static inline` so a guest only pays
 * for what it uses. */
#ifndef WASI_UTIL_H
#define WASI_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static const char *const ERRNO_NAMES[] = {
    [__WASI_ERRNO_SUCCESS] = "ok",
    [__WASI_ERRNO_2BIG] = "E2BIG",
    [__WASI_ERRNO_ACCES] = "EACCES",
    [__WASI_ERRNO_ADDRINUSE] = "EADDRINUSE",
    [__WASI_ERRNO_ADDRNOTAVAIL] = "EADDRNOTAVAIL",
    [__WASI_ERRNO_AFNOSUPPORT] = "EAFNOSUPPORT",
    [__WASI_ERRNO_AGAIN] = "EAGAIN",
    [__WASI_ERRNO_ALREADY] = "EALREADY",
    [__WASI_ERRNO_BADF] = "EBADF",
    [__WASI_ERRNO_BADMSG] = "EBADMSG",
    [__WASI_ERRNO_BUSY] = "EBUSY",
    [__WASI_ERRNO_CANCELED] = "ECANCELED",
    [__WASI_ERRNO_CHILD] = "ECHILD",
    [__WASI_ERRNO_CONNABORTED] = "ECONNABORTED",
    [__WASI_ERRNO_CONNREFUSED] = "ECONNREFUSED",
    [__WASI_ERRNO_CONNRESET] = "ECONNRESET",
    [__WASI_ERRNO_DEADLK] = "EDEADLK",
    [__WASI_ERRNO_DESTADDRREQ] = "EDESTADDRREQ",
    [__WASI_ERRNO_DOM] = "EDOM",
    [__WASI_ERRNO_DQUOT] = "EDQUOT",
    [__WASI_ERRNO_EXIST] = "EEXIST",
    [__WASI_ERRNO_FAULT] = "EFAULT",
    [__WASI_ERRNO_FBIG] = "EFBIG",
    [__WASI_ERRNO_HOSTUNREACH] = "EHOSTUNREACH",
    [__WASI_ERRNO_IDRM] = "EIDRM",
    [__WASI_ERRNO_ILSEQ] = "EILSEQ",
    [__WASI_ERRNO_INPROGRESS] = "EINPROGRESS",
    [__WASI_ERRNO_INTR] = "EINTR",
    [__WASI_ERRNO_INVAL] = "EINVAL",
    [__WASI_ERRNO_IO] = "EIO",
    [__WASI_ERRNO_ISCONN] = "EISCONN",
    [__WASI_ERRNO_ISDIR] = "EISDIR",
    [__WASI_ERRNO_LOOP] = "ELOOP",
    [__WASI_ERRNO_MFILE] = "EMFILE",
    [__WASI_ERRNO_MLINK] = "EMLINK",
    [__WASI_ERRNO_MSGSIZE] = "EMSGSIZE",
    [__WASI_ERRNO_MULTIHOP] = "EMULTIHOP",
    [__WASI_ERRNO_NAMETOOLONG] = "ENAMETOOLONG",
    [__WASI_ERRNO_NETDOWN] = "ENETDOWN",
    [__WASI_ERRNO_NETRESET] = "ENETRESET",
    [__WASI_ERRNO_NETUNREACH] = "ENETUNREACH",
    [__WASI_ERRNO_NFILE] = "ENFILE",
    [__WASI_ERRNO_NOBUFS] = "ENOBUFS",
    [__WASI_ERRNO_NODEV] = "ENODEV",
    [__WASI_ERRNO_NOENT] = "ENOENT",
    [__WASI_ERRNO_NOEXEC] = "ENOEXEC",
    [__WASI_ERRNO_NOLCK] = "ENOLCK",
    [__WASI_ERRNO_NOLINK] = "ENOLINK",
    [__WASI_ERRNO_NOMEM] = "ENOMEM",
    [__WASI_ERRNO_NOMSG] = "ENOMSG",
    [__WASI_ERRNO_NOPROTOOPT] = "ENOPROTOOPT",
    [__WASI_ERRNO_NOSPC] = "ENOSPC",
    [__WASI_ERRNO_NOSYS] = "ENOSYS",
    [__WASI_ERRNO_NOTCONN] = "ENOTCONN",
    [__WASI_ERRNO_NOTDIR] = "ENOTDIR",
    [__WASI_ERRNO_NOTEMPTY] = "ENOTEMPTY",
    [__WASI_ERRNO_NOTRECOVERABLE] = "ENOTRECOVERABLE",
    [__WASI_ERRNO_NOTSOCK] = "ENOTSOCK",
    [__WASI_ERRNO_NOTSUP] = "ENOTSUP",
    [__WASI_ERRNO_NOTTY] = "ENOTTY",
    [__WASI_ERRNO_NXIO] = "ENXIO",
    [__WASI_ERRNO_OVERFLOW] = "EOVERFLOW",
    [__WASI_ERRNO_OWNERDEAD] = "EOWNERDEAD",
    [__WASI_ERRNO_PERM] = "EPERM",
    [__WASI_ERRNO_PIPE] = "EPIPE",
    [__WASI_ERRNO_PROTO] = "EPROTO",
    [__WASI_ERRNO_PROTONOSUPPORT] = "EPROTONOSUPPORT",
    [__WASI_ERRNO_PROTOTYPE] = "EPROTOTYPE",
    [__WASI_ERRNO_RANGE] = "ERANGE",
    [__WASI_ERRNO_ROFS] = "EROFS",
    [__WASI_ERRNO_SPIPE] = "ESPIPE",
    [__WASI_ERRNO_SRCH] = "ESRCH",
    [__WASI_ERRNO_STALE] = "ESTALE",
    [__WASI_ERRNO_TIMEDOUT] = "ETIMEDOUT",
    [__WASI_ERRNO_TXTBSY] = "ETXTBSY",
    [__WASI_ERRNO_XDEV] = "EXDEV",
    [__WASI_ERRNO_NOTCAPABLE] = "ENOTCAPABLE",
};

/* wasi-libc's errno values are the WASI ones, so this also names a libc `errno`. */
static inline const char *errno_name(int e) {
    static char unknown[24];
    if (e >= 0 && (size_t)e < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0] && ERRNO_NAMES[e])
        return ERRNO_NAMES[e];
    snprintf(unknown, sizeof unknown, "E?%d", e);
    return unknown;
}

static inline const char *filetype_name(__wasi_filetype_t t) {
    switch (t) {
    case __WASI_FILETYPE_UNKNOWN: return "unknown";
    case __WASI_FILETYPE_BLOCK_DEVICE: return "block-device";
    case __WASI_FILETYPE_CHARACTER_DEVICE: return "character-device";
    case __WASI_FILETYPE_DIRECTORY: return "directory";
    case __WASI_FILETYPE_REGULAR_FILE: return "regular-file";
    case __WASI_FILETYPE_SOCKET_DGRAM: return "socket-dgram";
    case __WASI_FILETYPE_SOCKET_STREAM: return "socket-stream";
    case __WASI_FILETYPE_SYMBOLIC_LINK: return "symbolic-link";
    default: return "filetype?";
    }
}

/* Prints "label: ok" or "label: ENAME" and passes the errno on. */
static inline __wasi_errno_t show(const char *label, __wasi_errno_t e) {
    printf("%s: %s\n", label, errno_name(e));
    return e;
}

/* Stops the guest with status 2 on an errno that the scenario does not allow. */
static inline void must(const char *label, __wasi_errno_t e) {
    if (e != 0) {
        printf("FATAL %s: %s\n", label, errno_name(e));
        fflush(stdout);
        exit(2);
    }
}

/* The fd of the preopened directory whose guest path is `name`, found the way wasi-libc does:
 * by asking fd_prestat_get of fds 3, 4, ... until EBADF. */
static inline __wasi_fd_t preopen(const char *name) {
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t st;
        __wasi_errno_t e = __wasi_fd_prestat_get(fd, &st);
        if (e == __WASI_ERRNO_BADF) break;
        if (e != 0 || st.tag != __WASI_PREOPENTYPE_DIR) continue;
        char buf[256];
        size_t len = st.u.dir.pr_name_len;
        if (len >= sizeof buf) continue;
        if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)buf, len) != 0) continue;
        buf[len] = 0;
        if (strcmp(buf, name) == 0) return fd;
    }
    printf("FATAL no preopen %s\n", name);
    fflush(stdout);
    exit(2);
}

#define RIGHTS_RW ((__wasi_rights_t)(__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE))
#define RIGHTS_R ((__wasi_rights_t)__WASI_RIGHTS_FD_READ)
#define RIGHTS_W ((__wasi_rights_t)__WASI_RIGHTS_FD_WRITE)
#define FOLLOW __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW

static inline __wasi_errno_t open_at(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                                     __wasi_rights_t rights, __wasi_fdflags_t fdflags,
                                     __wasi_fd_t *out) {
    return __wasi_path_open(dir, FOLLOW, path, oflags, rights, rights, fdflags, out);
}

static inline __wasi_errno_t write_all(__wasi_fd_t fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        __wasi_ciovec_t iov = {p, len};
        __wasi_size_t n;
        __wasi_errno_t e = __wasi_fd_write(fd, &iov, 1, &n);
        if (e != 0) return e;
        if (n == 0) return __WASI_ERRNO_IO;
        p += n;
        len -= n;
    }
    return 0;
}

/* Creates or truncates `path` under `dir` and writes `text` to it. */
static inline void put_file(__wasi_fd_t dir, const char *path, const char *text) {
    __wasi_fd_t fd;
    must(path, open_at(dir, path, __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    must(path, write_all(fd, text, strlen(text)));
    must(path, __wasi_fd_close(fd));
}

/* Reads all of an fd from its current position into buf (NUL-terminated); returns the length. */
static inline size_t read_all(__wasi_fd_t fd, char *buf, size_t cap, __wasi_errno_t *err) {
    size_t got = 0;
    *err = 0;
    while (got + 1 < cap) {
        __wasi_iovec_t iov = {(uint8_t *)buf + got, cap - 1 - got};
        __wasi_size_t n;
        *err = __wasi_fd_read(fd, &iov, 1, &n);
        if (*err != 0 || n == 0) break;
        got += n;
    }
    buf[got] = 0;
    return got;
}

/* Prints `label: [content]` of a file, escaping newlines, or `label: ENAME`. */
static inline void show_file(__wasi_fd_t dir, const char *path) {
    __wasi_fd_t fd;
    __wasi_errno_t e = open_at(dir, path, 0, RIGHTS_R, 0, &fd);
    if (e != 0) {
        printf("file %s: %s\n", path, errno_name(e));
        return;
    }
    char buf[4096];
    size_t n = read_all(fd, buf, sizeof buf, &e);
    __wasi_fd_close(fd);
    printf("file %s: %zu bytes [", path, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') printf("\\n");
        else if (c < 32 || c > 126) printf("\\x%02x", c);
        else putchar(c);
    }
    printf("]%s%s\n", e ? " then " : "", e ? errno_name(e) : "");
}

/* Prints the type (and, for files, size) of the entry at path, without following a symlink. */
static inline void show_stat(__wasi_fd_t dir, const char *path, __wasi_lookupflags_t flags) {
    __wasi_filestat_t st;
    __wasi_errno_t e = __wasi_path_filestat_get(dir, flags, path, &st);
    if (e != 0) {
        printf("stat %s%s: %s\n", path, flags ? " (follow)" : "", errno_name(e));
        return;
    }
    printf("stat %s%s: %s", path, flags ? " (follow)" : "", filetype_name(st.filetype));
    if (st.filetype == __WASI_FILETYPE_REGULAR_FILE || st.filetype == __WASI_FILETYPE_SYMBOLIC_LINK)
        printf(" size=%llu", (unsigned long long)st.size);
    if (st.filetype == __WASI_FILETYPE_REGULAR_FILE)
        printf(" nlink=%llu", (unsigned long long)st.nlink);
    printf("\n");
}

/* Raw imports that wasi-libc does not declare (proc_raise left the witx after preview 1 was cut)
 * or that need a length the libc wrapper computes with strlen. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
int32_t raw_proc_raise(int32_t sig);

__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open")))
int32_t raw_path_open(int32_t fd, int32_t dirflags, const char *path, int32_t path_len,
                      int32_t oflags, int64_t rights_base, int64_t rights_inheriting,
                      int32_t fdflags, int32_t *opened);

#endif
