/* A read-only preopen (`--dir HOST::/ro:ro`) next to a writable one: reads work, every change is
 * refused, and moving things between the two is refused too. */
#include "wasi_util.h"

int main(void) {
    __wasi_fd_t ro = preopen("/ro");
    __wasi_fd_t rw = preopen("/data");
    __wasi_fd_t fd;
    show_file(ro, "hello.txt");
    show_stat(ro, "sub/a.txt", 0);
    show("open for reading", open_at(ro, "hello.txt", 0, RIGHTS_R, 0, &fd));
    uint8_t buf[128];
    __wasi_size_t n;
    show("readdir", __wasi_fd_readdir(ro, buf, sizeof buf, 0, &n));
    show("readlink", __wasi_path_readlink(ro, "link-to-hello", buf, sizeof buf, &n));
    show("write to a file opened for reading", write_all(fd, "x", 1));
    show("set_size on a file opened for reading", __wasi_fd_filestat_set_size(fd, 0));
    show("set_times on a file opened for reading", __wasi_fd_filestat_set_times(fd, 1, 1, __WASI_FSTFLAGS_ATIM));
    __wasi_fd_t wfd;
    show("open for writing", open_at(ro, "hello.txt", 0, RIGHTS_W, 0, &wfd));
    show("open with O_TRUNC", open_at(ro, "hello.txt", __WASI_OFLAGS_TRUNC, RIGHTS_R, 0, &wfd));
    show("open with O_CREAT (existing)", open_at(ro, "hello.txt", __WASI_OFLAGS_CREAT, RIGHTS_R, 0, &wfd));
    show("open with O_CREAT (new)", open_at(ro, "new.txt", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &wfd));
    show("open with append", open_at(ro, "hello.txt", 0, RIGHTS_R, __WASI_FDFLAGS_APPEND, &wfd));
    show("mkdir", __wasi_path_create_directory(ro, "made"));
    show("rmdir", __wasi_path_remove_directory(ro, "emptydir"));
    show("unlink", __wasi_path_unlink_file(ro, "empty.txt"));
    show("rename within", __wasi_path_rename(ro, "hello.txt", ro, "renamed.txt"));
    show("rename ro -> rw", __wasi_path_rename(ro, "hello.txt", rw, "stolen.txt"));
    show("rename rw -> ro", __wasi_path_rename(rw, "hello.txt", ro, "planted.txt"));
    show("link within", __wasi_path_link(ro, 0, "hello.txt", ro, "hard.txt"));
    show("link ro -> rw", __wasi_path_link(ro, 0, "hello.txt", rw, "hard.txt"));
    show("symlink", __wasi_path_symlink("hello.txt", ro, "new-link"));
    show("path set_times", __wasi_path_filestat_set_times(ro, 0, "hello.txt", 1, 1, __WASI_FSTFLAGS_ATIM));
    show("fd set_times on the preopen", __wasi_fd_filestat_set_times(ro, 1, 1, __WASI_FSTFLAGS_ATIM));
    __wasi_fd_t sub;
    show("open a subdirectory", open_at(ro, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &sub));
    show("mkdir in the opened subdirectory", __wasi_path_create_directory(sub, "made"));
    show("sync a file opened for reading", __wasi_fd_sync(fd));
    show_file(ro, "hello.txt");
    show_stat(ro, "made", 0);
    show_stat(rw, "stolen.txt", 0);
    return 0;
}
