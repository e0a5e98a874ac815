/* The bundled example guest: catalogues the text files under /data.
 *
 * It lists the directory, reads every regular file, counts lines and words, writes a summary
 * to /data/catalog.txt, reads it back, renames it, and prints what it did. Every step is a
 * WASI call that wasitrace serves from a backend and can record. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp(const void* a, const void* b) {
    return strcmp(*(const char* const*)a, *(const char* const*)b);
}

static void count(const char* path, long* lines, long* words, long* bytes) {
    FILE* f = fopen(path, "r");
    *lines = *words = *bytes = 0;
    if (!f) return;
    int c, in_word = 0;
    while ((c = fgetc(f)) != EOF) {
        (*bytes)++;
        if (c == '\n') (*lines)++;
        if (c == ' ' || c == '\n' || c == '\t') in_word = 0;
        else if (!in_word) { in_word = 1; (*words)++; }
    }
    fclose(f);
}

static int walk(const char* dir, char** names, int n, int cap) {
    DIR* d = opendir(dir);
    if (!d) { fprintf(stderr, "catalog: cannot open %s: %s\n", dir, strerror(errno)); return n; }
    struct dirent* e;
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) n = walk(path, names, n, cap);
        else if (S_ISREG(st.st_mode) && strcmp(e->d_name, "catalog.txt") != 0) names[n++] = strdup(path);
    }
    closedir(d);
    return n;
}

int main(int argc, char** argv) {
    const char* root = argc > 1 ? argv[1] : "/data";
    char* names[256];
    int n = walk(root, names, 0, 256);
    qsort(names, n, sizeof names[0], cmp);

    char out[512];
    snprintf(out, sizeof out, "%s/catalog.txt", root);
    FILE* summary = fopen(out, "w");
    if (!summary) { fprintf(stderr, "catalog: cannot write %s: %s\n", out, strerror(errno)); return 1; }
    long total_words = 0;
    for (int i = 0; i < n; i++) {
        long lines, words, bytes;
        count(names[i], &lines, &words, &bytes);
        total_words += words;
        fprintf(summary, "%-32s %5ld lines %6ld words %7ld bytes\n", names[i], lines, words, bytes);
    }
    fprintf(summary, "%d files, %ld words\n", n, total_words);
    fclose(summary);

    FILE* check = fopen(out, "r");
    char line[256];
    while (check && fgets(line, sizeof line, check)) fputs(line, stdout);
    if (check) fclose(check);

    char renamed[512];
    snprintf(renamed, sizeof renamed, "%s/catalog.old", root);
    if (rename(out, renamed) != 0) { fprintf(stderr, "catalog: rename failed: %s\n", strerror(errno)); return 1; }
    printf("summary kept as %s\n", renamed);
    return 0;
}
