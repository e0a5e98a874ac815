/* Benchmark guest: makes N host calls of one kind, so per-call cost = (t(N) - t(0)) / N.
 * usage: bench_calls OP N     OP: seek | stat | write1 | read4k | mix
 * Expects a writable preopened directory at /data. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

int main(int argc, char** argv) {
    if (argc < 3) { fprintf(stderr, "usage: bench_calls OP N\n"); return 2; }
    const char* op = argv[1];
    long n = atol(argv[2]);
    int fd = open("/data/bench.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    static char buf[4096];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 4; i++) write(fd, buf, sizeof buf);
    __wasi_filesize_t off;
    __wasi_filestat_t st;
    __wasi_size_t done;
    __wasi_ciovec_t one = {(const uint8_t*)buf, 1};
    __wasi_iovec_t block = {(uint8_t*)buf, sizeof buf};
    int dirfd = 3;  /* the preopen */
    long errors = 0;
    for (long i = 0; i < n; i++) {
        if (!strcmp(op, "seek")) {
            errors += __wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &off) != 0;
        } else if (!strcmp(op, "stat")) {
            errors += __wasi_path_filestat_get(dirfd, 0, "bench.bin", &st) != 0;
        } else if (!strcmp(op, "write1")) {
            errors += __wasi_fd_write(fd, &one, 1, &done) != 0;
        } else if (!strcmp(op, "read4k")) {
            errors += __wasi_fd_pread(fd, &block, 1, (i % 4) * 4096, &done) != 0;
        } else if (!strcmp(op, "mix")) {
            errors += __wasi_fd_seek(fd, (i % 4) * 4096, __WASI_WHENCE_SET, &off) != 0;
            errors += __wasi_fd_read(fd, &block, 1, &done) != 0;
            errors += __wasi_fd_filestat_get(fd, &st) != 0;
            errors += __wasi_path_filestat_get(dirfd, 0, "bench.bin", &st) != 0;
            errors += __wasi_fd_seek(fd, 0, __WASI_WHENCE_END, &off) != 0;
            errors += __wasi_fd_write(fd, &one, 1, &done) != 0;
        } else {
            fprintf(stderr, "unknown op %s\n", op);
            return 2;
        }
    }
    close(fd);
    if (errors) { fprintf(stderr, "%ld calls failed\n", errors); return 1; }
    return 0;
}
