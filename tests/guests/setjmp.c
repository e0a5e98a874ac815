/* setjmp/longjmp, built for the exception-handling proposal (wasmtime: Config.wasm_exceptions).
 * Jumps out of nested calls, out of a loop that writes to a file, and back into a WASI loop. */
// build-flags: @sjlj
#include <setjmp.h>
#include "wasi_util.h"

/* zig's wasi-libc declares but does not define the tag that longjmp throws. */
__asm__(".globl __c_longjmp\n.tagtype __c_longjmp i32\n__c_longjmp:\n");

static jmp_buf env;
static int depth_reached = 0;

static void dive(int n) {
    depth_reached = n;
    if (n == 25) longjmp(env, n);
    dive(n + 1);
}

int main(void) {
    volatile int attempts = 0;
    int r = setjmp(env);
    printf("setjmp returned %d (attempt %d)\n", r, attempts);
    if (attempts++ < 3) dive(r);
    printf("depth reached %d\n", depth_reached);

    /* A longjmp from a loop that writes to a file: the writes before it stay. */
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t fd;
    must("open", open_at(data, "sjlj.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    jmp_buf inner;
    volatile int written = 0;
    if (setjmp(inner) == 0) {
        for (int i = 0;; i++) {
            char line[16];
            int n = snprintf(line, sizeof line, "line %d\n", i);
            must("write", write_all(fd, line, (size_t)n));
            written++;
            if (i == 4) longjmp(inner, 1);
        }
    }
    printf("lines written before the jump: %d\n", written);
    must("close", __wasi_fd_close(fd));
    show_file(data, "sjlj.txt");
    /* longjmp with 0 makes setjmp return 1. */
    jmp_buf zero;
    volatile int seen = 0;
    int z = setjmp(zero);
    if (!seen++) longjmp(zero, 0);
    printf("longjmp(env, 0) made setjmp return %d\n", z);
    return 0;
}
