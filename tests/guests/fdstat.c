/* fd_fdstat_get (filetype and flags only, never rights), fd_fdstat_set_flags and
 * fd_fdstat_set_rights on every kind of descriptor. */
#include "wasi_util.h"

static void show_fdstat(__wasi_fd_t fd, const char *label) {
    __wasi_fdstat_t st;
    __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
    if (e) {
        printf("fdstat %s: %s\n", label, errno_name(e));
        return;
    }
    printf("fdstat %s: %s flags=%s%s%s%s%s%s\n", label, filetype_name(st.fs_filetype),
           st.fs_flags ? "" : "none", st.fs_flags & __WASI_FDFLAGS_APPEND ? "append " : "",
           st.fs_flags & __WASI_FDFLAGS_DSYNC ? "dsync " : "", st.fs_flags & __WASI_FDFLAGS_NONBLOCK ? "nonblock " : "",
           st.fs_flags & __WASI_FDFLAGS_RSYNC ? "rsync " : "", st.fs_flags & __WASI_FDFLAGS_SYNC ? "sync " : "");
}

int main(void) {
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t file, dir, appendfd;
    show_fdstat(0, "stdin");
    show_fdstat(1, "stdout");
    show_fdstat(2, "stderr");
    show_fdstat(data, "preopen");
    must("open", open_at(data, "hello.txt", 0, RIGHTS_RW, 0, &file));
    show_fdstat(file, "file");
    must("open", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &dir));
    show_fdstat(dir, "opened dir");
    must("open", open_at(data, "hello.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_APPEND | __WASI_FDFLAGS_NONBLOCK, &appendfd));
    show_fdstat(appendfd, "file opened append|nonblock");
    show_fdstat(77, "closed fd 77");

    show("set_flags file append", __wasi_fd_fdstat_set_flags(file, __WASI_FDFLAGS_APPEND));
    show_fdstat(file, "file");
    /* The append flag now decides where writes go. */
    must("write", write_all(file, "[appended]", 10));
    show("set_flags file nonblock", __wasi_fd_fdstat_set_flags(file, __WASI_FDFLAGS_NONBLOCK));
    show_fdstat(file, "file");
    show("set_flags file none", __wasi_fd_fdstat_set_flags(file, 0));
    show_fdstat(file, "file");
    __wasi_filesize_t pos;
    must("seek", __wasi_fd_seek(file, 0, __WASI_WHENCE_SET, &pos));
    must("write", write_all(file, "H", 1));
    show("set_flags file sync", __wasi_fd_fdstat_set_flags(file, __WASI_FDFLAGS_SYNC));
    show("set_flags file dsync", __wasi_fd_fdstat_set_flags(file, __WASI_FDFLAGS_DSYNC));
    show("set_flags file rsync", __wasi_fd_fdstat_set_flags(file, __WASI_FDFLAGS_RSYNC));
    show_fdstat(file, "file after refused sync flags");
    show("set_flags dir", __wasi_fd_fdstat_set_flags(dir, 0));
    show("set_flags preopen", __wasi_fd_fdstat_set_flags(data, __WASI_FDFLAGS_APPEND));
    show("set_flags stdout", __wasi_fd_fdstat_set_flags(1, __WASI_FDFLAGS_APPEND));
    show("set_flags closed fd", __wasi_fd_fdstat_set_flags(77, 0));
    show_fdstat(appendfd, "append fd, untouched by the other fd's flags");

    show("set_rights file", __wasi_fd_fdstat_set_rights(file, 0, 0));
    show("set_rights dir", __wasi_fd_fdstat_set_rights(dir, 0, 0));
    show("set_rights stdin", __wasi_fd_fdstat_set_rights(0, 0, 0));
    show("set_rights closed fd", __wasi_fd_fdstat_set_rights(77, 0, 0));
    must("close", __wasi_fd_close(file));
    must("close", __wasi_fd_close(dir));
    must("close", __wasi_fd_close(appendfd));
    show_file(data, "hello.txt");
    return 0;
}
