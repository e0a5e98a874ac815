/* A recursive walk through libc: opendir/readdir/closedir, stat/lstat, readlink, fopen and
 * scandir, with paths resolved by wasi-libc against the preopens. Listings are sorted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "wasi_util.h"

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *kind(mode_t m) {
    return S_ISDIR(m) ? "dir" : S_ISREG(m) ? "file" : S_ISLNK(m) ? "symlink" : "other";
}

static void walk(const char *path, int depth) {
    DIR *dir = opendir(path);
    if (!dir) {
        printf("%*sopendir %s: %s\n", depth * 2, "", path, errno_name(errno));
        return;
    }
    char *names[128];
    size_t n = 0;
    struct dirent *d;
    errno = 0;
    while ((d = readdir(dir)) != NULL && n < 128) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
        names[n++] = strdup(d->d_name);
    }
    if (errno) printf("%*sreaddir %s: %s\n", depth * 2, "", path, errno_name(errno));
    closedir(dir);
    qsort(names, n, sizeof names[0], cmp);
    for (size_t i = 0; i < n; i++) {
        char child[512];
        snprintf(child, sizeof child, "%s/%s", path, names[i]);
        struct stat st;
        if (lstat(child, &st) != 0) {
            printf("%*s%s: lstat %s\n", depth * 2, "", names[i], errno_name(errno));
        } else if (S_ISLNK(st.st_mode)) {
            char target[256];
            ssize_t len = readlink(child, target, sizeof target - 1);
            target[len < 0 ? 0 : len] = 0;
            struct stat follow;
            int ok = stat(child, &follow);
            printf("%*s%s -> %s (%s)\n", depth * 2, "", names[i], len < 0 ? errno_name(errno) : target,
                   ok == 0 ? kind(follow.st_mode) : errno_name(errno));
        } else if (S_ISDIR(st.st_mode)) {
            printf("%*s%s/\n", depth * 2, "", names[i]);
            walk(child, depth + 1);
        } else {
            printf("%*s%s (%s, %lld bytes)\n", depth * 2, "", names[i], kind(st.st_mode), (long long)st.st_size);
        }
        free(names[i]);
    }
}

static int no_dots(const struct dirent *d) { return d->d_name[0] != '.'; }

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "/data";
    printf("walk %s:\n", root);
    walk(root, 1);

    struct dirent **list;
    int n = scandir(root, &list, no_dots, alphasort);
    printf("scandir %s: %d entries\n", root, n);
    for (int i = 0; i < n; i++) {
        printf("  %s\n", list[i]->d_name);
        free(list[i]);
    }
    if (n >= 0) free(list);

    /* rewinddir gives the same entries again. */
    DIR *dir = opendir(root);
    int first = 0, second = 0;
    while (readdir(dir)) first++;
    rewinddir(dir);
    while (readdir(dir)) second++;
    closedir(dir);
    printf("entries before and after rewinddir: %d %d\n", first, second);

    /* Relative paths resolve against the working directory, which wasi-libc starts at "/". */
    char cwd[256];
    printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : errno_name(errno));
    FILE *f = fopen("data/sub/a.txt", "r");
    char line[64] = "";
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    printf("fopen data/sub/a.txt: %s", f ? line : "failed\n");
    printf("chdir /data/sub: %s\n", chdir("/data/sub") == 0 ? "ok" : errno_name(errno));
    printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : errno_name(errno));
    f = fopen("deeper/c.txt", "r");
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    printf("fopen deeper/c.txt: %s", f ? line : "failed\n");
    printf("access ../hello.txt: %s\n", access("../hello.txt", R_OK) == 0 ? "ok" : errno_name(errno));
    printf("opendir /nonexistent: %s\n", opendir("/nonexistent") ? "opened?!" : errno_name(errno));
    printf("opendir /data/hello.txt: %s\n", opendir("/data/hello.txt") ? "opened?!" : errno_name(errno));
    return 0;
}
