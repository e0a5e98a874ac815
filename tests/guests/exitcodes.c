/* Exit statuses: `return N` from main, `exit(N)`, and the raw proc_exit(N), which skips libc's
 * exit handlers, so a stdio line without a newline is lost. Statuses of 126 and more are refused
 * by wasmtime's proc_exit (a trap). Usage: exitcodes return|exit|proc_exit N */
#include "wasi_util.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: exitcodes return|exit|proc_exit N\n");
        return 64;
    }
    int code = atoi(argv[2]);
    const char *how = argv[1];
    /* Written raw, so it reaches stdout whatever happens next. */
    char line[96];
    int n = snprintf(line, sizeof line, "about to %s %d\n", how, code);
    must("write", write_all(1, line, (size_t)n));
    printf("a line printed through stdio\n");
    printf("[unterminated stdio text, flushed at exit]");
    fprintf(stderr, "stderr line before exiting\n");
    if (strcmp(how, "exit") == 0) exit(code);
    if (strcmp(how, "proc_exit") == 0) __wasi_proc_exit((__wasi_exitcode_t)code);
    return code;
}
