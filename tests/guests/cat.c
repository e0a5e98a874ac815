/* cat: copies stdin to stdout with raw fd_read/fd_write in 4 KiB chunks, then reports the byte
 * count on stderr. */
#include "wasi_util.h"

int main(void) {
    static uint8_t buf[4096];
    unsigned long long total = 0;
    for (;;) {
        __wasi_iovec_t iov = {buf, sizeof buf};
        __wasi_size_t n;
        __wasi_errno_t e = __wasi_fd_read(0, &iov, 1, &n);
        if (e) {
            fprintf(stderr, "cat: read: %s\n", errno_name(e));
            return 1;
        }
        if (n == 0) break;
        e = write_all(1, buf, n);
        if (e) {
            fprintf(stderr, "cat: write: %s\n", errno_name(e));
            return 1;
        }
        total += n;
    }
    fprintf(stderr, "cat: %llu bytes\n", total);
    return 0;
}
