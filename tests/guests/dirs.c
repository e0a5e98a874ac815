/* Directories: path_create_directory, path_remove_directory, path_unlink_file and their errors. */
#include "wasi_util.h"

static __wasi_fd_t data;

static void mkdir_(const char *path) {
    char label[128];
    snprintf(label, sizeof label, "mkdir %s", path);
    show(label, __wasi_path_create_directory(data, path));
}

static void rmdir_(const char *path) {
    char label[128];
    snprintf(label, sizeof label, "rmdir %s", path);
    show(label, __wasi_path_remove_directory(data, path));
}

static void unlink_(const char *path) {
    char label[128];
    snprintf(label, sizeof label, "unlink %s", path);
    show(label, __wasi_path_unlink_file(data, path));
}

int main(void) {
    data = preopen("/data");
    mkdir_("made");
    mkdir_("made");
    mkdir_("made/inner");
    mkdir_("made/inner/deepest/");
    mkdir_("hello.txt");
    mkdir_("missing/child");
    mkdir_("hello.txt/child");
    mkdir_("");
    mkdir_(".");
    mkdir_("link-to-sub");
    mkdir_("dangling");
    mkdir_("link-to-sub/via-link");
    show_stat(data, "sub/via-link", 0);
    show_stat(data, "made/inner/deepest", 0);
    put_file(data, "made/inner/file.txt", "x");

    rmdir_("made");
    rmdir_("made/inner");
    rmdir_("made/inner/file.txt");
    rmdir_("missing");
    rmdir_("");
    rmdir_(".");
    rmdir_("made/.");
    rmdir_("made/inner/deepest/");
    rmdir_("link-to-sub");
    rmdir_("emptydir");
    show_stat(data, "emptydir", 0);

    unlink_("made/inner");
    unlink_("made/inner/file.txt");
    unlink_("made/inner/file.txt");
    unlink_("hello.txt/");
    unlink_("link-to-sub");
    show_stat(data, "link-to-sub", 0);
    show_stat(data, "sub", 0);
    unlink_("dangling");
    unlink_("");
    unlink_(".");
    rmdir_("made/inner");
    rmdir_("made");
    show_stat(data, "made", 0);

    /* A directory created here reads as empty and takes files. */
    mkdir_("fresh");
    put_file(data, "fresh/one.txt", "1");
    show_file(data, "fresh/one.txt");
    __wasi_fd_t dirfd;
    must("open fresh", open_at(data, "fresh", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &dirfd));
    /* Paths relative to a directory opened with path_open work the same way. */
    show("mkdir via opened dir", __wasi_path_create_directory(dirfd, "nested"));
    show("unlink via opened dir", __wasi_path_unlink_file(dirfd, "one.txt"));
    show("rmdir via opened dir", __wasi_path_remove_directory(dirfd, "nested"));
    show("rmdir of the opened dir itself", __wasi_path_remove_directory(data, "fresh"));
    show("mkdir inside the removed dir", __wasi_path_create_directory(dirfd, "ghost"));
    show("path calls relative to a file fd", __wasi_path_create_directory(1, "x"));
    __wasi_fd_t file;
    must("open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &file));
    show("mkdir relative to a file fd", __wasi_path_create_directory(file, "x"));
    show("rmdir relative to a file fd", __wasi_path_remove_directory(file, "x"));
    show("unlink relative to a file fd", __wasi_path_unlink_file(file, "x"));
    /* Unlinking an open file: the open fd still reads it. */
    put_file(data, "doomed.txt", "still readable");
    __wasi_fd_t doomed;
    must("open", open_at(data, "doomed.txt", 0, RIGHTS_R, 0, &doomed));
    unlink_("doomed.txt");
    show_stat(data, "doomed.txt", 0);
    char buf[64];
    __wasi_errno_t e;
    size_t n = read_all(doomed, buf, sizeof buf, &e);
    printf("read unlinked open file: %s [%.*s]\n", errno_name(e), (int)n, buf);
    __wasi_filestat_t st;
    must("fstat", __wasi_fd_filestat_get(doomed, &st));
    printf("unlinked open file: size=%llu nlink=%llu\n", (unsigned long long)st.size, (unsigned long long)st.nlink);
    return 0;
}
