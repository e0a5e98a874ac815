/* The descriptor table: which numbers new fds get, fd_renumber, closing twice, closing stdio and
 * preopens, and the preopen enumeration (fd_prestat_get / fd_prestat_dir_name). This is the one
 * guest that prints fd numbers. */
#include "wasi_util.h"

static __wasi_fd_t data;

static __wasi_fd_t open_hello(const char *label) {
    __wasi_fd_t fd = 0;
    __wasi_errno_t e = open_at(data, "hello.txt", 0, RIGHTS_R, 0, &fd);
    if (e) printf("open %s: %s\n", label, errno_name(e));
    else printf("open %s: fd %u\n", label, (unsigned)fd);
    return fd;
}

static void read_first(__wasi_fd_t fd, const char *label) {
    char buf[6];
    __wasi_iovec_t iov = {(uint8_t *)buf, 5};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_read(fd, &iov, 1, &n);
    printf("read fd %u (%s): %s [%.*s]\n", (unsigned)fd, label, errno_name(e), (int)n, buf);
}

static void list_preopens(void) {
    for (__wasi_fd_t fd = 0; fd < 12; fd++) {
        __wasi_prestat_t st;
        __wasi_errno_t e = __wasi_fd_prestat_get(fd, &st);
        if (e) {
            printf("  prestat %u: %s\n", (unsigned)fd, errno_name(e));
            continue;
        }
        char name[64] = {0};
        e = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, st.u.dir.pr_name_len);
        printf("  prestat %u: tag=%u len=%u name=[%s] %s\n", (unsigned)fd, (unsigned)st.tag,
               (unsigned)st.u.dir.pr_name_len, name, errno_name(e));
    }
}

int main(void) {
    data = preopen("/data");
    printf("preopens:\n");
    list_preopens();

    char name[16];
    memset(name, '#', sizeof name);
    show("prestat_dir_name with a short buffer", __wasi_fd_prestat_dir_name(data, (uint8_t *)name, 2));
    show("prestat_dir_name with a long buffer", __wasi_fd_prestat_dir_name(data, (uint8_t *)name, sizeof name));
    printf("  buffer now [%.16s]\n", name);
    show("prestat_dir_name on stdout", __wasi_fd_prestat_dir_name(1, (uint8_t *)name, sizeof name));

    __wasi_fd_t a = open_hello("a"), b = open_hello("b"), c = open_hello("c");
    printf("prestat of a plain file: %s\n", errno_name(__wasi_fd_prestat_get(a, &(__wasi_prestat_t){0})));
    show("prestat_dir_name of a plain file", __wasi_fd_prestat_dir_name(a, (uint8_t *)name, sizeof name));
    show("close a", __wasi_fd_close(a));
    show("close b", __wasi_fd_close(b));
    show("close a again", __wasi_fd_close(a));
    __wasi_fd_t d = open_hello("d (after closing a then b)");
    __wasi_fd_t e = open_hello("e");
    __wasi_fd_t f = open_hello("f");

    /* fd_renumber: errors first, then a real move over an open fd. */
    show("renumber c -> 99 (target not open)", __wasi_fd_renumber(c, 99));
    show("renumber 98 -> c (source not open)", __wasi_fd_renumber(98, c));
    show("renumber c -> c", __wasi_fd_renumber(c, c));
    must("seek", __wasi_fd_seek(d, 7, __WASI_WHENCE_SET, &(__wasi_filesize_t){0}));
    show("renumber d -> f", __wasi_fd_renumber(d, f));
    read_first(f, "was d, at offset 7");
    read_first(d, "moved away");
    show("close d", __wasi_fd_close(d));
    __wasi_fd_t g = open_hello("g (after renumbering d away)");

    /* Renumbering a preopen keeps it a preopen under its new number. */
    show("renumber preopen -> e", __wasi_fd_renumber(data, e));
    printf("after moving the preopen:\n");
    list_preopens();
    data = e;
    show_file(data, "sub/a.txt");

    show("close c", __wasi_fd_close(c));
    show("close f", __wasi_fd_close(f));
    show("close g", __wasi_fd_close(g));
    show("close g again", __wasi_fd_close(g));
    show("close 1000", __wasi_fd_close(1000));

    /* stdin is an fd like the others. */
    show("renumber stdin -> 30 (not open)", __wasi_fd_renumber(0, 30));
    show("close stdin", __wasi_fd_close(0));
    read_first(0, "closed stdin");
    __wasi_fd_t h = open_hello("h (after closing stdin)");
    read_first(h, "h");
    show("close the preopen", __wasi_fd_close(data));
    printf("after closing the preopen:\n");
    list_preopens();
    show("open relative to the closed preopen", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &(__wasi_fd_t){0}));
    fflush(stdout);
    show("renumber stderr -> stdout", __wasi_fd_renumber(2, 1));
    const char msg[] = "this line went to fd 1, which is now the old stderr\n";
    must("write", write_all(1, msg, sizeof msg - 1));
    show("write to fd 2 after moving it", write_all(2, "x", 1));
    fflush(stdout);
    return 0;
}
