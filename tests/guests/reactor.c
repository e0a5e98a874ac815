/* A reactor: no main, `_initialize` runs the constructors, and the host calls exports.
 * `run` prints what it sees (args, env, a value set by a constructor, a file); `answer` returns 42.
 * Stdio is flushed by hand: nothing flushes it at exit in a reactor. */
// build-flags: -mexec-model=reactor
#include "wasi_util.h"

extern char **environ;
static int initialized_by_constructor = 0;
static int calls = 0;

__attribute__((constructor)) static void setup(void) { initialized_by_constructor = 1234; }

__attribute__((export_name("run"))) void run(void) {
    calls++;
    printf("reactor run: constructor value %d, call %d\n", initialized_by_constructor, calls);
    __wasi_size_t argc, argv_bytes;
    must("args", __wasi_args_sizes_get(&argc, &argv_bytes));
    printf("args: %u (%u bytes)\n", (unsigned)argc, (unsigned)argv_bytes);
    for (char **e = environ; e && *e; e++) printf("env: %s\n", *e);
    FILE *f = fopen("/data/hello.txt", "r");
    char line[64] = "";
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    printf("hello.txt: %s", f ? line : "(not found)\n");
    fflush(stdout);
}

__attribute__((export_name("answer"))) int answer(void) { return 42; }
