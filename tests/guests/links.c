/* path_link, path_symlink, path_readlink (also into small buffers), and following or not
 * following symlinks in open and stat, including loops. */
#include "wasi_util.h"

static __wasi_fd_t data;

static void readlink_(const char *path, size_t len) {
    char buf[64];
    memset(buf, '#', sizeof buf);
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_path_readlink(data, path, (uint8_t *)buf, len, &n);
    printf("readlink %s (buffer %zu): %s", path, len, errno_name(e));
    if (e == 0) printf(", %u bytes [%.*s] next byte %s", (unsigned)n, (int)n, buf, buf[n] == '#' ? "untouched" : "WRITTEN");
    printf("\n");
}

static void symlink_(const char *target, const char *path) {
    char label[160];
    snprintf(label, sizeof label, "symlink %s -> %s", path, target);
    show(label, __wasi_path_symlink(target, data, path));
}

static void link_(__wasi_lookupflags_t flags, const char *from, const char *to) {
    char label[160];
    snprintf(label, sizeof label, "link %s%s -> %s", from, flags ? " (follow)" : "", to);
    show(label, __wasi_path_link(data, flags, from, data, to));
}

int main(void) {
    data = preopen("/data");
    link_(0, "hello.txt", "hard.txt");
    show_stat(data, "hello.txt", 0);
    show_stat(data, "hard.txt", 0);
    /* Writes through one name show through the other. */
    __wasi_fd_t fd;
    must("open", open_at(data, "hard.txt", 0, RIGHTS_RW, __WASI_FDFLAGS_APPEND, &fd));
    must("write", write_all(fd, "via hard link\n", 14));
    must("close", __wasi_fd_close(fd));
    show_file(data, "hello.txt");
    link_(0, "hello.txt", "hard.txt");
    link_(0, "missing", "x");
    link_(0, "sub", "sub-hardlink");
    link_(0, "hello.txt", "nodir/x");
    link_(FOLLOW, "link-to-hello", "followed");
    link_(0, "link-to-hello", "link-to-link");
    show_stat(data, "link-to-link", 0);
    link_(0, "hello.txt", "sub/deeper/hard-in-deeper.txt");
    show_stat(data, "sub/deeper/hard-in-deeper.txt", 0);
    show("unlink hard.txt", __wasi_path_unlink_file(data, "hard.txt"));
    show_stat(data, "hello.txt", 0);
    __wasi_fd_t sub;
    must("open sub", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &sub));
    show("link across dir fds", __wasi_path_link(sub, 0, "a.txt", data, "a-hard.txt"));
    show_file(data, "a-hard.txt");
    __wasi_fd_t file;
    must("open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &file));
    show("link with a file fd as the source dir", __wasi_path_link(file, 0, "a.txt", data, "y"));
    show("link with a file fd as the target dir", __wasi_path_link(data, 0, "hello.txt", file, "y"));

    symlink_("hello.txt", "s1");
    symlink_("hello.txt", "s1");
    symlink_("sub/deeper", "s-deeper");
    symlink_("no/such/target", "s-dangling");
    symlink_("../outside.txt", "s-escaping");
    symlink_("/etc/passwd", "s-absolute");
    symlink_("", "s-empty");
    symlink_("x", "hello.txt");
    symlink_("x", "nodir/s");
    symlink_("../hello.txt", "sub/s-up");
    show_file(data, "s1");
    show_file(data, "s-deeper/c.txt");
    show_file(data, "sub/s-up");
    show_file(data, "s-dangling");

    readlink_("s1", 64);
    readlink_("s1", 4);
    readlink_("s1", 0);
    readlink_("s-deeper", 64);
    readlink_("s-dangling", 64);
    readlink_("sub/s-up", 64);
    readlink_("escape-link", 64);
    readlink_("abs-link", 64);
    readlink_("hello.txt", 64);
    readlink_("sub", 64);
    readlink_("missing", 64);
    readlink_("link-to-sub/../link-to-hello", 64);
    readlink_("s1/", 64);

    /* Loops and chains. */
    symlink_("loop-b", "loop-a");
    symlink_("loop-a", "loop-b");
    symlink_("loop-self", "loop-self");
    symlink_("s1", "chain-1");
    symlink_("chain-1", "chain-2");
    show_stat(data, "loop-a", 0);
    show_stat(data, "loop-a", FOLLOW);
    show_stat(data, "loop-self", FOLLOW);
    show_stat(data, "chain-2", FOLLOW);
    show_file(data, "chain-2");
    show_file(data, "loop-a");
    show("open loop-a/x with create", open_at(data, "loop-a/x", __WASI_OFLAGS_CREAT, RIGHTS_RW, 0, &fd));
    show("open s1 without following", __wasi_path_open(data, 0, "s1", 0, RIGHTS_R, RIGHTS_R, 0, &fd));
    show("open s-deeper/ without following", __wasi_path_open(data, 0, "s-deeper/", 0, RIGHTS_R, RIGHTS_R, 0, &fd));
    show("mkdir through a dangling symlink's name", __wasi_path_create_directory(data, "s-dangling"));
    show("unlink s1", __wasi_path_unlink_file(data, "s1"));
    show_stat(data, "s1", 0);
    show_stat(data, "hello.txt", 0);
    show("rmdir a symlink to a dir", __wasi_path_remove_directory(data, "s-deeper"));
    show("unlink a symlink to a dir", __wasi_path_unlink_file(data, "s-deeper"));
    show_stat(data, "sub/deeper", 0);
    return 0;
}
