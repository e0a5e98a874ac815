/* stdout and stderr with large writes (64 KiB and more) and many small ones, interleaved, through
 * the raw call and through stdio. Ends with a checksum of everything written to each stream. */
#include "wasi_util.h"

static uint32_t sum_out = 0, sum_err = 0;

static void raw(__wasi_fd_t fd, const uint8_t *p, size_t len) {
    /* A single fd_write of the whole buffer: a host may take it all or report a short count. */
    size_t done = 0;
    int calls = 0;
    while (done < len) {
        __wasi_ciovec_t iov = {p + done, len - done};
        __wasi_size_t n;
        must("write", __wasi_fd_write(fd, &iov, 1, &n));
        done += n;
        calls++;
    }
    for (size_t i = 0; i < len; i++) *(fd == 1 ? &sum_out : &sum_err) += p[i] * (uint32_t)(i % 997 + 1);
    (void)calls;
}

int main(int argc, char **argv) {
    size_t big = argc > 1 ? (size_t)atoi(argv[1]) : 100000;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (uint8_t)('a' + i % 26);
    buf[big - 1] = '\n';
    const char hdr_out[] = "== stdout: one raw write of the big buffer\n";
    const char hdr_err[] = "== stderr: one raw write of the big buffer\n";
    raw(1, (const uint8_t *)hdr_out, sizeof hdr_out - 1);
    raw(1, buf, big);
    raw(2, (const uint8_t *)hdr_err, sizeof hdr_err - 1);
    raw(2, buf, big);
    /* 64 KiB exactly, then 64 KiB + 1, to each stream. */
    for (size_t size = 65536; size <= 65537; size++) {
        uint8_t *b = malloc(size);
        for (size_t i = 0; i < size; i++) b[i] = (uint8_t)('A' + i % 26);
        b[size - 1] = '\n';
        raw(1, b, size);
        raw(2, b, size);
        free(b);
    }
    /* Many small writes alternating between the streams. */
    for (int i = 0; i < 500; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "small %d to %s\n", i, i % 2 ? "stderr" : "stdout");
        raw(i % 2 ? 2 : 1, (const uint8_t *)line, (size_t)n);
    }
    /* stdio: a big fwrite, printf pieces and an explicit flush. */
    fwrite(buf, 1, big, stdout);
    for (int i = 0; i < 100; i++) printf("printf line %d\n", i);
    fflush(stdout);
    fprintf(stderr, "stderr via stdio, unbuffered\n");
    /* Writes with several iovecs and with empty ones. */
    __wasi_ciovec_t iovs[] = {{(const uint8_t *)"", 0}, {(const uint8_t *)"iov-a ", 6}, {(const uint8_t *)"iov-b\n", 6}};
    __wasi_size_t n;
    must("writev", __wasi_fd_write(1, iovs, 3, &n));
    printf("\nwritev of 3 iovecs (first empty) to stdout reported %u bytes\n", (unsigned)n);
    must("empty write", __wasi_fd_write(1, iovs, 1, &n));
    printf("empty write to stdout reported %u bytes\n", (unsigned)n);
    must("no iovecs", __wasi_fd_write(1, iovs, 0, &n));
    printf("write of no iovecs to stdout reported %u bytes\n", (unsigned)n);
    printf("checksums: stdout %08x stderr %08x\n", (unsigned)sum_out, (unsigned)sum_err);
    free(buf);
    return 0;
}
