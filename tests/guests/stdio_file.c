/* libc stdio on files: fopen modes (r, w, a, r+, w+, x), fprintf/fscanf, fseek/ftell/rewind,
 * ftruncate, fileno, tmp-style names, and remove/rename through libc. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "wasi_util.h"

static void dump(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: %s\n", path, errno_name(errno));
        return;
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("%s: %zu bytes [", path, n);
    for (size_t i = 0; i < n; i++) buf[i] == '\n' ? printf("\\n") : putchar(buf[i]);
    printf("]\n");
}

int main(void) {
    FILE *f = fopen("/data/notes.txt", "w");
    fprintf(f, "%s %d %.2f\n", "numbers", 42, 3.14159);
    fputs("second line\n", f);
    printf("ftell after writing: %ld\n", ftell(f));
    fclose(f);
    dump("/data/notes.txt");

    f = fopen("/data/notes.txt", "a");
    fputs("appended\n", f);
    fclose(f);
    dump("/data/notes.txt");

    f = fopen("/data/notes.txt", "r+");
    char word[32];
    int num;
    float fl;
    printf("fscanf: %d", fscanf(f, "%31s %d %f", word, &num, &fl));
    printf(" -> %s %d %.2f\n", word, num, fl);
    fseek(f, 0, SEEK_SET);
    fputs("NUMBERS", f);
    fseek(f, -9, SEEK_END);
    printf("ftell after fseek(-9, END): %ld\n", ftell(f));
    fputs("APPENDED", f);
    rewind(f);
    printf("ftell after rewind: %ld\n", ftell(f));
    printf("ftruncate to 20: %s\n", ftruncate(fileno(f), 20) == 0 ? "ok" : errno_name(errno));
    fclose(f);
    dump("/data/notes.txt");

    printf("fopen x on existing: %s\n", fopen("/data/notes.txt", "wx") ? "opened?!" : errno_name(errno));
    f = fopen("/data/exclusive.txt", "wx");
    printf("fopen x on new: %s\n", f ? "ok" : errno_name(errno));
    if (f) fclose(f);
    printf("fopen r on missing: %s\n", fopen("/data/missing.txt", "r") ? "opened?!" : errno_name(errno));
    printf("fopen w on a directory: %s\n", fopen("/data/sub", "w") ? "opened?!" : errno_name(errno));

    f = fopen("/data/wplus.txt", "w+");
    for (int i = 0; i < 1000; i++) fprintf(f, "%04d\n", i);
    fflush(f);
    fseek(f, 5 * 500, SEEK_SET);
    char line[16];
    fgets(line, sizeof line, f);
    printf("line 500 of w+ file: %s", line);
    struct stat st;
    fstat(fileno(f), &st);
    printf("fstat size: %lld, regular: %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    fclose(f);

    printf("rename: %s\n", rename("/data/wplus.txt", "/data/sub/moved.txt") == 0 ? "ok" : errno_name(errno));
    printf("remove file: %s\n", remove("/data/exclusive.txt") == 0 ? "ok" : errno_name(errno));
    printf("remove empty dir: %s\n", remove("/data/emptydir") == 0 ? "ok" : errno_name(errno));
    printf("remove missing: %s\n", remove("/data/missing.txt") == 0 ? "ok" : errno_name(errno));
    printf("mkdir: %s\n", mkdir("/data/made", 0755) == 0 ? "ok" : errno_name(errno));
    printf("rmdir non-empty: %s\n", rmdir("/data/sub") == 0 ? "ok" : errno_name(errno));
    printf("stat moved file size: %lld\n", stat("/data/sub/moved.txt", &st) == 0 ? (long long)st.st_size : -1LL);
    int fd = open("/data/sub/moved.txt", O_RDONLY);
    printf("lseek to end: %lld\n", (long long)lseek(fd, 0, SEEK_END));
    printf("pread at 10: %zd [", pread(fd, line, 4, 10));
    printf("%.4s]\n", line);
    close(fd);
    printf("close twice: %s\n", close(fd) == 0 ? "ok" : errno_name(errno));
    printf("symlink: %s\n", symlink("notes.txt", "/data/notes-link") == 0 ? "ok" : errno_name(errno));
    char target[64];
    ssize_t len = readlink("/data/notes-link", target, sizeof target);
    printf("readlink: %.*s\n", (int)(len < 0 ? 0 : len), target);
    printf("link: %s\n", link("/data/notes.txt", "/data/notes-hard") == 0 ? "ok" : errno_name(errno));
    printf("unlink: %s\n", unlink("/data/notes-link") == 0 ? "ok" : errno_name(errno));
    printf("truncate: %s\n", truncate("/data/notes-hard", 7) == 0 ? "ok" : errno_name(errno));
    dump("/data/notes.txt");
    return 0;
}
