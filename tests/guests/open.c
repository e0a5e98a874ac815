/* path_open: create, exclusive, truncate, append, open modes, and the errors each combination gives. */
#include "wasi_util.h"

static __wasi_fd_t data;

static void try_open(const char *label, __wasi_lookupflags_t lookup, const char *path, __wasi_oflags_t oflags,
                     __wasi_rights_t rights, __wasi_fdflags_t fdflags) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(data, lookup, path, oflags, rights, rights, fdflags, &fd);
    printf("%s: %s", label, errno_name(e));
    if (e == 0) {
        __wasi_fdstat_t st;
        must("fdstat", __wasi_fd_fdstat_get(fd, &st));
        printf(" (%s%s)", filetype_name(st.fs_filetype), st.fs_flags & __WASI_FDFLAGS_APPEND ? ", append" : "");
        must("close", __wasi_fd_close(fd));
    }
    printf("\n");
}

static void write_text(__wasi_fd_t fd, const char *label, const char *text) {
    __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_write(fd, &iov, 1, &n);
    printf("%s: %s, %u bytes\n", label, errno_name(e), (unsigned)n);
}

int main(void) {
    data = preopen("/data");
    __wasi_fd_t fd;

    try_open("open existing file", FOLLOW, "hello.txt", 0, RIGHTS_R, 0);
    try_open("open missing file", FOLLOW, "missing.txt", 0, RIGHTS_R, 0);
    try_open("open in missing dir", FOLLOW, "nodir/x.txt", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0);
    try_open("open through a file", FOLLOW, "hello.txt/x", 0, RIGHTS_R, 0);
    try_open("open file with trailing slash", FOLLOW, "hello.txt/", 0, RIGHTS_R, 0);
    try_open("open empty path", FOLLOW, "", 0, RIGHTS_R, 0);
    try_open("open dot", FOLLOW, ".", 0, RIGHTS_R, 0);
    try_open("open dir", FOLLOW, "sub", 0, RIGHTS_R, 0);
    try_open("open dir with O_DIRECTORY", FOLLOW, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0);
    try_open("open dir with trailing slash", FOLLOW, "sub/", 0, RIGHTS_R, 0);
    try_open("open file with O_DIRECTORY", FOLLOW, "hello.txt", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0);
    try_open("open dir for writing", FOLLOW, "sub", 0, RIGHTS_W, 0);
    try_open("create a dir name", FOLLOW, "sub", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0);
    try_open("O_DIRECTORY|O_CREAT", FOLLOW, "newdir", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_CREAT, RIGHTS_R, 0);
    try_open("O_DIRECTORY|O_TRUNC on a dir", FOLLOW, "sub", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_TRUNC, RIGHTS_R, 0);
    try_open("create exclusive, new", FOLLOW, "excl.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, RIGHTS_RW, 0);
    try_open("create exclusive, existing", FOLLOW, "excl.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, RIGHTS_RW, 0);
    try_open("exclusive without create", FOLLOW, "excl.txt", __WASI_OFLAGS_EXCL, RIGHTS_R, 0);
    try_open("create existing (no excl)", FOLLOW, "hello.txt", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0);
    try_open("open with append", FOLLOW, "hello.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_APPEND);
    try_open("open with nonblock", FOLLOW, "hello.txt", 0, RIGHTS_R, __WASI_FDFLAGS_NONBLOCK);
    try_open("open with sync", FOLLOW, "hello.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_SYNC);
    try_open("open with dsync", FOLLOW, "hello.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_DSYNC);
    try_open("open with rsync", FOLLOW, "hello.txt", 0, RIGHTS_R, __WASI_FDFLAGS_RSYNC);
    try_open("open with no rights", FOLLOW, "hello.txt", 0, 0, 0);
    try_open("open invalid utf-8 name", FOLLOW, "bad\xff.txt", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0);
    try_open("open symlink, following", FOLLOW, "link-to-hello", 0, RIGHTS_R, 0);
    try_open("open symlink, not following", 0, "link-to-hello", 0, RIGHTS_R, 0);
    try_open("open dangling symlink", FOLLOW, "dangling", 0, RIGHTS_R, 0);
    try_open("create through dangling symlink", FOLLOW, "dangling", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0);
    try_open("open through dir symlink", FOLLOW, "link-to-sub/a.txt", 0, RIGHTS_R, 0);
    try_open("open through dir symlink, not following last", 0, "link-to-sub/a.txt", 0, RIGHTS_R, 0);
    try_open("open dir symlink with O_DIRECTORY, not following", 0, "link-to-sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0);
    try_open("open subdir/.", FOLLOW, "sub/.", 0, RIGHTS_R, 0);
    try_open("open sub/../hello.txt", FOLLOW, "sub/../hello.txt", 0, RIGHTS_R, 0);
    try_open("open ./sub/./a.txt", FOLLOW, "./sub/./a.txt", 0, RIGHTS_R, 0);
    try_open("open sub//a.txt", FOLLOW, "sub//a.txt", 0, RIGHTS_R, 0);

    /* Truncation and creation observed through the content. */
    must("create", open_at(data, "trunc.txt", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &fd));
    write_text(fd, "write 10 bytes", "0123456789");
    must("close", __wasi_fd_close(fd));
    must("reopen", open_at(data, "trunc.txt", __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    write_text(fd, "write after O_TRUNC", "abc");
    must("close", __wasi_fd_close(fd));
    show_file(data, "trunc.txt");
    must("reopen", open_at(data, "trunc.txt", 0, RIGHTS_RW, 0, &fd));
    write_text(fd, "overwrite start without O_TRUNC", "X");
    must("close", __wasi_fd_close(fd));
    show_file(data, "trunc.txt");

    /* Append mode writes at the end whatever the position. */
    must("append open", open_at(data, "trunc.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_APPEND, &fd));
    __wasi_filesize_t pos;
    show("seek to 0 in append mode", __wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos));
    write_text(fd, "append write", "+tail");
    must("tell", __wasi_fd_tell(fd, &pos));
    printf("position after append write: %llu\n", (unsigned long long)pos);
    must("close", __wasi_fd_close(fd));
    show_file(data, "trunc.txt");

    /* Writing through a read-only descriptor, reading through a write-only one. */
    must("ro open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &fd));
    write_text(fd, "write to read-only fd", "nope");
    must("close", __wasi_fd_close(fd));
    must("wo open", open_at(data, "hello.txt", 0, RIGHTS_W, 0, &fd));
    char buf[16];
    __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
    __wasi_size_t n;
    show("read from write-only fd", __wasi_fd_read(fd, &iov, 1, &n));
    must("close", __wasi_fd_close(fd));
    /* O_CREAT makes the descriptor writable even without the FD_WRITE right. */
    must("creat open", open_at(data, "created-no-rights.txt", __WASI_OFLAGS_CREAT, 0, 0, &fd));
    write_text(fd, "write to fd created without rights", "made");
    must("close", __wasi_fd_close(fd));
    show_file(data, "created-no-rights.txt");
    show_file(data, "hello.txt");

    /* A file descriptor as the directory of path_open, and a closed one. */
    must("open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &fd));
    __wasi_fd_t other;
    show("path_open relative to a file fd", __wasi_path_open(fd, 0, "x", 0, RIGHTS_R, RIGHTS_R, 0, &other));
    must("close", __wasi_fd_close(fd));
    show("path_open relative to a closed fd", __wasi_path_open(fd, 0, "hello.txt", 0, RIGHTS_R, RIGHTS_R, 0, &other));
    show("path_open relative to stdout", __wasi_path_open(1, 0, "hello.txt", 0, RIGHTS_R, RIGHTS_R, 0, &other));
    /* A path with a NUL byte inside it. */
    int32_t raw_fd;
    printf("path with an embedded NUL: %s\n",
           errno_name(raw_path_open((int32_t)data, FOLLOW, "hello.txt\0junk", 14, 0, RIGHTS_R, RIGHTS_R, 0, &raw_fd)));
    return 0;
}
