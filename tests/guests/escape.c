/* Attempts to leave the preopened directory: "..", absolute paths, and symlinks that point
 * outside. Each prints the errno; nothing outside may change (the test checks the host tree). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "wasi_util.h"

static __wasi_fd_t data;

static void try_open(const char *path, __wasi_lookupflags_t lookup, __wasi_oflags_t oflags) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(data, lookup, path, oflags, RIGHTS_RW, RIGHTS_RW, 0, &fd);
    printf("open %s%s%s: %s\n", path, lookup ? "" : " (nofollow)", oflags & __WASI_OFLAGS_CREAT ? " (create)" : "",
           errno_name(e));
    if (e == 0) __wasi_fd_close(fd);
}

int main(void) {
    data = preopen("/data");
    __wasi_filestat_t st;
    try_open("..", FOLLOW, 0);
    try_open("../outside.txt", FOLLOW, 0);
    try_open("../evil.txt", FOLLOW, __WASI_OFLAGS_CREAT);
    try_open("sub/../../outside.txt", FOLLOW, 0);
    try_open("sub/..", FOLLOW, 0);
    try_open("sub/../hello.txt", FOLLOW, 0);
    try_open("/etc/passwd", FOLLOW, 0);
    try_open("/data/hello.txt", FOLLOW, 0);
    try_open("/", FOLLOW, 0);
    try_open("escape-link", FOLLOW, 0);
    try_open("escape-link", 0, 0);
    try_open("abs-link", FOLLOW, 0);
    try_open("link-to-sub/../../outside.txt", FOLLOW, 0);
    try_open("link-to-sub/../hello.txt", FOLLOW, 0);

    show("stat ..", __wasi_path_filestat_get(data, FOLLOW, "..", &st));
    show("stat ../outside.txt", __wasi_path_filestat_get(data, FOLLOW, "../outside.txt", &st));
    show("stat escape-link (follow)", __wasi_path_filestat_get(data, FOLLOW, "escape-link", &st));
    show("stat escape-link (nofollow)", __wasi_path_filestat_get(data, 0, "escape-link", &st));
    show("stat abs-link (follow)", __wasi_path_filestat_get(data, FOLLOW, "abs-link", &st));
    show("stat /etc", __wasi_path_filestat_get(data, FOLLOW, "/etc", &st));
    show("mkdir ../evil", __wasi_path_create_directory(data, "../evil"));
    show("mkdir /evil", __wasi_path_create_directory(data, "/evil"));
    show("rmdir ..", __wasi_path_remove_directory(data, ".."));
    show("unlink ../outside.txt", __wasi_path_unlink_file(data, "../outside.txt"));
    show("unlink escape-link/x", __wasi_path_unlink_file(data, "escape-link/x"));
    show("rename hello.txt -> ../stolen.txt", __wasi_path_rename(data, "hello.txt", data, "../stolen.txt"));
    show("rename ../outside.txt -> in.txt", __wasi_path_rename(data, "../outside.txt", data, "in.txt"));
    show("link ../outside.txt -> in.txt", __wasi_path_link(data, 0, "../outside.txt", data, "in.txt"));
    show("link hello.txt -> ../hard.txt", __wasi_path_link(data, 0, "hello.txt", data, "../hard.txt"));
    show("symlink ../../etc -> up (stored as is)", __wasi_path_symlink("../../etc", data, "up"));
    show("symlink x -> ../made-outside", __wasi_path_symlink("x", data, "../made-outside"));
    try_open("up/passwd", FOLLOW, 0);
    show("readlink ../x", __wasi_path_readlink(data, "../x", (uint8_t[16]){0}, 16, &(__wasi_size_t){0}));
    show("set_times ../outside.txt", __wasi_path_filestat_set_times(data, 0, "../outside.txt", 1, 1,
                                                                    __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show("set_times escape-link (follow)", __wasi_path_filestat_set_times(data, FOLLOW, "escape-link", 1, 1,
                                                                           __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    /* From a subdirectory opened with path_open, ".." stays forbidden even though it is inside. */
    __wasi_fd_t sub;
    must("open sub", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &sub));
    __wasi_fd_t fd;
    show("open ../hello.txt from sub", __wasi_path_open(sub, FOLLOW, "../hello.txt", 0, RIGHTS_R, RIGHTS_R, 0, &fd));
    show("stat .. from sub", __wasi_path_filestat_get(sub, FOLLOW, "..", &st));
    show("open deeper/../a.txt from sub", __wasi_path_open(sub, FOLLOW, "deeper/../a.txt", 0, RIGHTS_R, RIGHTS_R, 0, &fd));

    /* Through libc: absolute paths outside every preopen. */
    printf("libc open /etc/passwd: %s\n", open("/etc/passwd", O_RDONLY) < 0 ? errno_name(errno) : "opened?!");
    printf("libc open /data/../outside.txt: %s\n", open("/data/../outside.txt", O_RDONLY) < 0 ? errno_name(errno) : "opened?!");
    printf("libc open /data/escape-link: %s\n", open("/data/escape-link", O_RDONLY) < 0 ? errno_name(errno) : "opened?!");
    printf("libc mkdir /made: %s\n", mkdir("/made", 0777) < 0 ? errno_name(errno) : "made?!");
    show_file(data, "hello.txt");
    return 0;
}
