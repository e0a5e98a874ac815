/* Guests that fail inside wasm or at the host boundary. Usage: trap MODE, MODE one of
 * unreachable, oob-load, oob-store, stack-overflow, bad-clock-id, bad-fdflags,
 * bad-whence, oob-pointer. Output written before the trap (raw, unbuffered) must survive. */
#include "wasi_util.h"

static int depth(volatile int n) {
    volatile char pad[256];
    pad[0] = (char)n;
    return depth(n + 1) + pad[0];
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "unreachable";
    const char before[] = "before the trap\n";
    must("write", write_all(1, before, sizeof before - 1));
    must("write", write_all(2, before, sizeof before - 1));
    printf("a line printed through stdio\n");
    if (strcmp(mode, "unreachable") == 0) __builtin_trap();
    if (strcmp(mode, "oob-load") == 0) {
        volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)0xFFFFFFF0u;
        return (int)*p;
    }
    if (strcmp(mode, "oob-store") == 0) {
        volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)0xFFFFFFF0u;
        *p = 1;
        return 0;
    }
    if (strcmp(mode, "stack-overflow") == 0) return depth(0);
    /* Values the host cannot decode: wasmtime traps rather than returning an errno. */
    __wasi_timestamp_t t;
    if (strcmp(mode, "bad-clock-id") == 0) return __wasi_clock_time_get(4, 0, &t);
    if (strcmp(mode, "bad-fdflags") == 0) return __wasi_fd_fdstat_set_flags(1, 0x100);
    if (strcmp(mode, "bad-whence") == 0) return __wasi_fd_seek(0, 0, 3, &t);
    /* A result pointer outside memory. */
    if (strcmp(mode, "oob-pointer") == 0)
        return __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, (__wasi_timestamp_t *)(uintptr_t)0xFFFFFFF0u);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 64;
}
