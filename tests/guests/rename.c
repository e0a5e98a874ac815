/* path_rename: file over file, dir over empty dir, across directories, and the errors for every
 * mismatch of types. With the argument `across-preopens`, it instead moves files between the
 * preopens /data and /other (wasmtime allows it when both are on one host filesystem). */
#include "wasi_util.h"

static __wasi_fd_t data;

static void rename_(const char *from, const char *to) {
    char label[160];
    snprintf(label, sizeof label, "rename %s -> %s", from, to);
    show(label, __wasi_path_rename(data, from, data, to));
}

static void across_preopens(void) {
    __wasi_fd_t other = preopen("/other");
    show("rename hello.txt -> /other/hello-moved.txt", __wasi_path_rename(data, "hello.txt", other, "hello-moved.txt"));
    show_file(other, "hello-moved.txt");
    show_stat(data, "hello.txt", 0);
    show("rename /other/o.txt -> sub/o.txt", __wasi_path_rename(other, "o.txt", data, "sub/o.txt"));
    show_file(data, "sub/o.txt");
    show("link sub/a.txt -> /other/a-hard.txt", __wasi_path_link(data, 0, "sub/a.txt", other, "a-hard.txt"));
    show_stat(other, "a-hard.txt", 0);
}

int main(int argc, char **argv) {
    data = preopen("/data");
    if (argc > 1 && strcmp(argv[1], "across-preopens") == 0) {
        across_preopens();
        return 0;
    }
    put_file(data, "f1.txt", "one");
    put_file(data, "f2.txt", "two");
    rename_("f1.txt", "f2.txt");
    show_file(data, "f1.txt");
    show_file(data, "f2.txt");
    rename_("f2.txt", "f2.txt");
    show_file(data, "f2.txt");
    rename_("missing.txt", "x.txt");
    rename_("f2.txt", "missing-dir/x.txt");
    rename_("f2.txt", "sub/moved.txt");
    show_file(data, "sub/moved.txt");
    rename_("sub/moved.txt", "sub/deeper/moved-again.txt");
    show_file(data, "sub/deeper/moved-again.txt");

    must("mkdir", __wasi_path_create_directory(data, "d1"));
    must("mkdir", __wasi_path_create_directory(data, "d2"));
    put_file(data, "d1/inside.txt", "in d1");
    rename_("d1", "d2");
    show_stat(data, "d1", 0);
    show_file(data, "d2/inside.txt");
    must("mkdir", __wasi_path_create_directory(data, "d3"));
    put_file(data, "d3/blocker.txt", "b");
    rename_("d2", "d3");
    rename_("d2", "hello.txt");
    rename_("hello.txt", "d2");
    rename_("hello.txt", "d2/");
    rename_("hello.txt/", "greeting.txt");
    rename_("d2", "d2/inner");
    rename_("d2", "d2-renamed/");
    show_file(data, "d2-renamed/inside.txt");
    rename_("d2-renamed", "emptydir");
    show_stat(data, "emptydir/inside.txt", 0);
    rename_(".", "dot");
    rename_("emptydir", ".");
    rename_("", "x");
    rename_("empty.txt", "");

    /* Symlinks are renamed themselves, not followed. */
    rename_("link-to-hello", "renamed-link");
    show_stat(data, "renamed-link", 0);
    show_file(data, "renamed-link");
    rename_("dangling", "renamed-dangling");
    show_stat(data, "renamed-dangling", 0);
    rename_("empty.txt", "link-to-sub");
    show_stat(data, "link-to-sub", 0);
    show_stat(data, "sub", 0);

    /* Across two directory fds: an opened subdirectory and the preopen. */
    __wasi_fd_t sub;
    must("open sub", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &sub));
    show("rename sub/a.txt -> (root)/a-from-sub.txt", __wasi_path_rename(sub, "a.txt", data, "a-from-sub.txt"));
    show_file(data, "a-from-sub.txt");
    show("rename hello.txt -> sub/hello-moved.txt", __wasi_path_rename(data, "hello.txt", sub, "hello-moved.txt"));
    show_file(data, "sub/hello-moved.txt");
    __wasi_fd_t file;
    must("open", open_at(data, "sub/b.txt", 0, RIGHTS_R, 0, &file));
    show("rename with a file fd as the source dir", __wasi_path_rename(file, "x", data, "y"));
    show("rename with a file fd as the target dir", __wasi_path_rename(data, "sub/b.txt", file, "y"));
    show("rename with a closed fd", __wasi_path_rename(99, "x", data, "y"));
    /* An open fd survives the rename of its file. */
    rename_("sub/b.txt", "b-renamed.txt");
    char buf[32];
    __wasi_errno_t e;
    size_t n = read_all(file, buf, sizeof buf, &e);
    printf("read through fd opened before rename: %s [%.*s]\n", errno_name(e), (int)n, buf);
    return 0;
}
