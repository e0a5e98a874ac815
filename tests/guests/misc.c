/* random_get (lengths, never values), sched_yield, proc_raise and the sock_* calls on non-sockets. */
#include "wasi_util.h"

int main(void) {
    __wasi_fd_t data = preopen("/data");
    static uint8_t buf[70000];

    show("random_get 0 bytes", __wasi_random_get(buf, 0));
    size_t lengths[] = {1, 16, 4096, 65536 + 7};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        size_t len = lengths[i];
        memset(buf, 0, sizeof buf);
        buf[len] = 0x5A; /* must stay: the host may not write past len */
        __wasi_errno_t e = __wasi_random_get(buf, len);
        size_t zeros = 0;
        for (size_t j = 0; j < len; j++) zeros += buf[j] == 0;
        /* Over 1000+ random bytes, at most a few percent may be zero. */
        printf("random_get %zu bytes: %s, %s, guard %s\n", len, errno_name(e),
               len < 1000 ? "(too short to judge)" : zeros * 50 < len ? "looks random" : "TOO MANY ZEROS",
               buf[len] == 0x5A ? "intact" : "OVERWRITTEN");
    }
    uint8_t a[32], b[32];
    must("a", __wasi_random_get(a, sizeof a));
    must("b", __wasi_random_get(b, sizeof b));
    printf("two 32-byte draws differ: %s\n", memcmp(a, b, sizeof a) ? "yes" : "NO");

    for (int i = 0; i < 3; i++) show("sched_yield", __wasi_sched_yield());

    printf("proc_raise(SIGUSR1=10): %s\n", errno_name(raw_proc_raise(10)));
    printf("proc_raise(0): %s\n", errno_name(raw_proc_raise(0)));

    __wasi_fd_t file;
    must("open", open_at(data, "hello.txt", 0, RIGHTS_RW, 0, &file));
    __wasi_fd_t fds[] = {0, 1, file, data, 77};
    const char *names[] = {"stdin", "stdout", "file", "dir", "closed fd 77"};
    for (int i = 0; i < 5; i++) {
        __wasi_fd_t fd = fds[i], accepted;
        uint8_t rbuf[8];
        __wasi_iovec_t riov = {rbuf, sizeof rbuf};
        __wasi_ciovec_t siov = {(const uint8_t *)"x", 1};
        __wasi_size_t n;
        __wasi_roflags_t roflags;
        printf("%s: accept=%s", names[i], errno_name(__wasi_sock_accept(fd, 0, &accepted)));
        printf(" recv=%s", errno_name(__wasi_sock_recv(fd, &riov, 1, 0, &n, &roflags)));
        printf(" send=%s", errno_name(__wasi_sock_send(fd, &siov, 1, 0, &n)));
        printf(" shutdown=%s\n", errno_name(__wasi_sock_shutdown(fd, __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR)));
    }
    show_file(data, "hello.txt");
    return 0;
}
