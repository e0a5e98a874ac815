/* Reading and writing: fd_read/fd_write with several iovecs, pread/pwrite, seek and tell. */
#include "wasi_util.h"

static void show_pos(__wasi_fd_t fd, const char *label) {
    __wasi_filesize_t pos;
    __wasi_errno_t e = __wasi_fd_tell(fd, &pos);
    if (e) printf("tell after %s: %s\n", label, errno_name(e));
    else printf("tell after %s: %llu\n", label, (unsigned long long)pos);
}

static void seek(__wasi_fd_t fd, __wasi_filedelta_t off, __wasi_whence_t whence, const char *label) {
    __wasi_filesize_t pos = 12345;
    __wasi_errno_t e = __wasi_fd_seek(fd, off, whence, &pos);
    if (e) printf("seek %s: %s\n", label, errno_name(e));
    else printf("seek %s: -> %llu\n", label, (unsigned long long)pos);
}

static void read_some(__wasi_fd_t fd, size_t len, const char *label) {
    char buf[256];
    __wasi_iovec_t iov = {(uint8_t *)buf, len};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_read(fd, &iov, 1, &n);
    printf("read %zu %s: %s, %u bytes [%.*s]\n", len, label, errno_name(e), (unsigned)n, (int)n, buf);
}

int main(void) {
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t fd;
    __wasi_size_t n;
    must("create", open_at(data, "rw.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));

    /* A gather write with an empty iovec first: hosts may write only part of the iovecs; what
     * they report is what counts. */
    __wasi_ciovec_t out[] = {{(const uint8_t *)"", 0}, {(const uint8_t *)"abc", 3}, {(const uint8_t *)"defg", 4},
                             {(const uint8_t *)"hij", 3}};
    show("writev 4 iovecs", __wasi_fd_write(fd, out, 4, &n));
    printf("writev wrote %u bytes\n", (unsigned)n);
    show("writev 0 iovecs", __wasi_fd_write(fd, out, 0, &n));
    printf("writev 0 iovecs wrote %u bytes\n", (unsigned)n);
    /* libc's writev loops until everything is written. */
    struct { const char *p; size_t l; } parts[] = {{"KLM", 3}, {"", 0}, {"NOPQ", 4}};
    for (int i = 0; i < 3; i++) must("write_all", write_all(fd, parts[i].p, parts[i].l));
    show_pos(fd, "writes");

    seek(fd, 0, __WASI_WHENCE_SET, "SET 0");
    char a[2], b[3], c[100];
    __wasi_iovec_t in[] = {{(uint8_t *)a, 2}, {(uint8_t *)b, 3}, {(uint8_t *)c, 100}};
    show("readv 3 iovecs", __wasi_fd_read(fd, in, 3, &n));
    printf("readv read %u bytes, first iovec [%.2s]\n", (unsigned)n, a);
    show_pos(fd, "readv");
    __wasi_iovec_t empty_first[] = {{(uint8_t *)a, 0}, {(uint8_t *)c, 4}};
    show("readv with empty first iovec", __wasi_fd_read(fd, empty_first, 2, &n));
    printf("  read %u bytes [%.*s]\n", (unsigned)n, (int)n, c);

    seek(fd, 3, __WASI_WHENCE_SET, "SET 3");
    read_some(fd, 4, "at 3");
    seek(fd, 2, __WASI_WHENCE_CUR, "CUR +2");
    read_some(fd, 2, "at 9");
    seek(fd, -3, __WASI_WHENCE_CUR, "CUR -3");
    seek(fd, -4, __WASI_WHENCE_END, "END -4");
    read_some(fd, 10, "near end");
    read_some(fd, 10, "at end");
    seek(fd, 0, __WASI_WHENCE_END, "END 0");
    seek(fd, -1, __WASI_WHENCE_SET, "SET -1");
    seek(fd, -100, __WASI_WHENCE_CUR, "CUR -100");
    seek(fd, -100, __WASI_WHENCE_END, "END -100");
    show_pos(fd, "failed seeks");
    seek(fd, 5, __WASI_WHENCE_END, "END +5 (past the end)");
    must("write", write_all(fd, "Z", 1));
    show_pos(fd, "write past end");

    /* pread and pwrite leave the position alone. */
    char pbuf[32];
    __wasi_iovec_t piov = {(uint8_t *)pbuf, 6};
    show("pread 6 at 1", __wasi_fd_pread(fd, &piov, 1, 1, &n));
    printf("  got %u bytes [%.*s]\n", (unsigned)n, (int)n, pbuf);
    show("pread at 1000", __wasi_fd_pread(fd, &piov, 1, 1000, &n));
    printf("  got %u bytes\n", (unsigned)n);
    __wasi_ciovec_t pw = {(const uint8_t *)"pw", 2};
    show("pwrite 2 at 0", __wasi_fd_pwrite(fd, &pw, 1, 0, &n));
    printf("  wrote %u bytes\n", (unsigned)n);
    show("pwrite 2 at 40 (past end)", __wasi_fd_pwrite(fd, &pw, 1, 40, &n));
    show_pos(fd, "pread/pwrite");
    __wasi_filestat_t st;
    must("stat", __wasi_fd_filestat_get(fd, &st));
    printf("size now %llu\n", (unsigned long long)st.size);
    must("close", __wasi_fd_close(fd));

    /* The hole reads back as zeros; show_file escapes them. */
    show_file(data, "rw.bin");

    /* Large transfers: 200 KiB written in one call, read back in 4 KiB chunks. */
    static uint8_t big[200 * 1024];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + i / 251);
    must("create big", open_at(data, "big.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    must("write big", write_all(fd, big, sizeof big));
    seek(fd, 0, __WASI_WHENCE_SET, "big SET 0");
    size_t total = 0, mismatches = 0;
    for (;;) {
        uint8_t chunk[4096];
        __wasi_iovec_t iov = {chunk, sizeof chunk};
        must("read big", __wasi_fd_read(fd, &iov, 1, &n));
        if (n == 0) break;
        for (__wasi_size_t i = 0; i < n; i++) mismatches += chunk[i] != big[total + i];
        total += n;
    }
    printf("big file: read back %zu bytes, %zu mismatches\n", total, mismatches);
    must("close", __wasi_fd_close(fd));

    /* Streams cannot seek; stdin cannot pread, stdout cannot pwrite. */
    __wasi_filesize_t pos;
    show("seek stdin", __wasi_fd_seek(0, 0, __WASI_WHENCE_CUR, &pos));
    show("seek stdout", __wasi_fd_seek(1, 0, __WASI_WHENCE_SET, &pos));
    show("tell stderr", __wasi_fd_tell(2, &pos));
    show("pread stdin", __wasi_fd_pread(0, &piov, 1, 0, &n));
    fflush(stdout);
    show("pwrite stdout", __wasi_fd_pwrite(1, &pw, 1, 0, &n));
    show("seek dir", __wasi_fd_seek(data, 0, __WASI_WHENCE_SET, &pos));
    show("tell dir", __wasi_fd_tell(data, &pos));
    show("read dir", __wasi_fd_read(data, &piov, 1, &n));
    show("write dir", __wasi_fd_write(data, &pw, 1, &n));
    show("pread dir", __wasi_fd_pread(data, &piov, 1, 0, &n));
    show("write stdin", __wasi_fd_write(0, &pw, 1, &n));
    show("read stdout", __wasi_fd_read(1, &piov, 1, &n));
    return 0;
}
