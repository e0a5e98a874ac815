/* A call-heavy guest for benchmarks: N rounds of fd_seek + fd_filestat_get + a 1-byte fd_write +
 * a 4 KiB fd_read on one file. Usage: callheavy [N] (default 1000). Prints a summary. */
#include "wasi_util.h"

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t fd;
    must("open", open_at(data, "callheavy.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    static uint8_t block[4096];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (uint8_t)i;
    must("fill", write_all(fd, block, sizeof block));
    unsigned long long read_total = 0, checksum = 0;
    for (long i = 0; i < rounds; i++) {
        __wasi_filesize_t pos;
        __wasi_filestat_t st;
        __wasi_size_t n;
        must("seek", __wasi_fd_seek(fd, (__wasi_filedelta_t)(i % 4096), __WASI_WHENCE_SET, &pos));
        must("stat", __wasi_fd_filestat_get(fd, &st));
        uint8_t byte = (uint8_t)(i * 31);
        __wasi_ciovec_t out = {&byte, 1};
        must("write", __wasi_fd_write(fd, &out, 1, &n));
        __wasi_iovec_t in = {block, sizeof block};
        must("read", __wasi_fd_read(fd, &in, 1, &n));
        read_total += n;
        checksum = checksum * 1099511628211ULL + st.size + pos + (n ? block[0] : 0);
    }
    __wasi_filestat_t st;
    must("stat", __wasi_fd_filestat_get(fd, &st));
    printf("rounds=%ld size=%llu read=%llu checksum=%016llx\n", rounds, (unsigned long long)st.size, read_total, checksum);
    must("close", __wasi_fd_close(fd));
    return 0;
}
