/* Arguments and environment, read both through the raw calls and through libc. */
#include "wasi_util.h"

extern char **environ;

static void show_raw_list(const char *what, __wasi_errno_t (*sizes)(__wasi_size_t *, __wasi_size_t *),
                          __wasi_errno_t (*get)(uint8_t **, uint8_t *)) {
    __wasi_size_t count, bytes;
    must(what, sizes(&count, &bytes));
    printf("%s: count=%u bytes=%u\n", what, (unsigned)count, (unsigned)bytes);
    uint8_t **ptrs = calloc(count + 1, sizeof *ptrs);
    uint8_t *buf = malloc(bytes + 1);
    /* A canary after the data shows whether the host writes past what it announced. */
    buf[bytes] = 0xAA;
    must(what, get(ptrs, buf));
    for (__wasi_size_t i = 0; i < count; i++) {
        size_t offset = (size_t)(ptrs[i] - buf);
        printf("  %s[%u] at +%zu: [%s]\n", what, (unsigned)i, offset, (char *)ptrs[i]);
    }
    printf("  canary %s\n", buf[bytes] == 0xAA ? "intact" : "overwritten");
    free(ptrs);
    free(buf);
}

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));
    int n = 0;
    for (char **e = environ; *e; e++) printf("environ[%d]=[%s]\n", n++, *e);
    printf("getenv(GREETING)=[%s]\n", getenv("GREETING") ? getenv("GREETING") : "(null)");
    printf("getenv(MISSING)=[%s]\n", getenv("MISSING") ? getenv("MISSING") : "(null)");
    show_raw_list("args", __wasi_args_sizes_get, __wasi_args_get);
    show_raw_list("environ", __wasi_environ_sizes_get, __wasi_environ_get);
    return 0;
}
