/* Reads stdin line by line through stdio (getline and fgets with a small buffer), numbering
 * lines and showing their lengths; then reads again at EOF. */
#include "wasi_util.h"

static void put_escaped(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) s[i] == '\r' ? printf("\\r") : putchar(s[i]);
}

int main(int argc, char **argv) {
    int use_fgets = argc > 1 && strcmp(argv[1], "fgets") == 0;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, bytes = 0;
    if (use_fgets) {
        char small[16];
        while (fgets(small, sizeof small, stdin)) {
            size_t len = strlen(small);
            int whole = len > 0 && small[len - 1] == '\n';
            printf("piece %ld: %zu bytes%s [", ++lineno, len, whole ? " (line end)" : "");
            put_escaped(small, len - whole);
            printf("]\n");
            bytes += (long)len;
        }
    } else {
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            int nl = len > 0 && line[len - 1] == '\n';
            int cr = len > 1 + nl - 1 && nl && line[len - 2] == '\r';
            printf("line %ld: %zd bytes%s%s", ++lineno, len, nl ? "" : " (no newline)", cr ? " (crlf)" : "");
            if (len <= 60) printf(" [%.*s]", (int)(len - nl - cr), line);
            else printf(" [%.20s...%.20s]", line, line + len - nl - cr - 20);
            printf("\n");
            bytes += len;
        }
    }
    printf("total: %ld %s, %ld bytes, eof=%d error=%d\n", lineno, use_fgets ? "pieces" : "lines", bytes,
           feof(stdin) != 0, ferror(stdin) != 0);
    /* Reading again after EOF returns EOF again. */
    printf("getchar after EOF: %d\n", getchar());
    __wasi_iovec_t iov = {(uint8_t *)&(char[8]){0}, 8};
    __wasi_size_t n = 99;
    __wasi_errno_t e = __wasi_fd_read(0, &iov, 1, &n);
    printf("raw read after EOF: %s, %u bytes\n", errno_name(e), (unsigned)n);
    free(line);
    return 0;
}
