/* fd_readdir through the raw call: small buffers, cookies, partial entries, the "." and ".."
 * entries, and listing a directory while it changes. Names are sorted before printing. */
#include "wasi_util.h"

#define HEADER sizeof(__wasi_dirent_t)

struct entry {
    char name[64];
    __wasi_filetype_t type;
    __wasi_dircookie_t next;
};

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Lists a directory with a buffer of buf_len bytes, continuing from the cookie of the last
 * whole entry each time, and growing the buffer when not even one entry fits. */
static size_t list(__wasi_fd_t fd, size_t buf_len, struct entry *out, size_t cap, int *calls) {
    uint8_t *buf = malloc(4096);
    __wasi_dircookie_t cookie = 0;
    size_t count = 0;
    *calls = 0;
    for (;;) {
        __wasi_size_t used;
        must("readdir", __wasi_fd_readdir(fd, buf, buf_len, cookie, &used));
        (*calls)++;
        size_t off = 0, whole = 0;
        while (off + HEADER <= used) {
            __wasi_dirent_t d;
            memcpy(&d, buf + off, HEADER);
            if (off + HEADER + d.d_namlen > used) break;
            if (count < cap) {
                size_t len = d.d_namlen < 63 ? d.d_namlen : 63;
                memcpy(out[count].name, buf + off + HEADER, len);
                out[count].name[len] = 0;
                out[count].type = d.d_type;
                out[count].next = d.d_next;
                count++;
            }
            cookie = d.d_next;
            off += HEADER + d.d_namlen;
            whole++;
        }
        if (used < buf_len) break; /* a short buffer means the end */
        if (whole == 0) buf_len *= 2;
    }
    free(buf);
    return count;
}

static void show_listing(__wasi_fd_t fd, const char *label, size_t buf_len) {
    struct entry entries[64];
    int calls;
    size_t n = list(fd, buf_len, entries, 64, &calls);
    qsort(entries, n, sizeof entries[0], by_name);
    printf("%s (buffer %zu): %zu entries:", label, buf_len, n);
    for (size_t i = 0; i < n; i++) printf(" %s(%s)", entries[i].name, filetype_name(entries[i].type));
    printf("\n");
    /* Cookies are 1..n in some order: check they are all distinct and non-zero. */
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) bad += entries[i].next == entries[j].next;
    for (size_t i = 0; i < n; i++) bad += entries[i].next == 0;
    printf("  cookies distinct and non-zero: %s\n", bad ? "NO" : "yes");
}

/* Prints the bytes a readdir of the one-entry directory wrote, with d_ino and the header padding
 * masked ("..") because they are host-specific. Headers start at 0, 25 and 51 there. */
static void dump(const uint8_t *buf, size_t len) {
    static const size_t headers[] = {0, 25, 51};
    printf("  bytes:");
    for (size_t i = 0; i < len; i++) {
        int masked = 0;
        for (int h = 0; h < 3; h++) {
            size_t rel = i - headers[h];
            if (i >= headers[h] && ((rel >= 8 && rel < 16) || (rel >= 21 && rel < 24))) masked = 1;
        }
        if (masked) printf(" ..");
        else printf(" %02x", buf[i]);
    }
    printf("\n");
}

int main(void) {
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t fd, single;
    uint8_t buf[512];
    __wasi_size_t used;

    show_listing(data, "preopen root", 4096);
    show_listing(data, "preopen root", 30);
    must("open sub", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &fd));
    show_listing(fd, "sub", 25);
    show_listing(fd, "sub", 1024);

    /* An empty directory still lists "." and "..", with cookies 1 and 2. */
    must("mkdir", __wasi_path_create_directory(data, "one"));
    must("open one", open_at(data, "one", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &single));
    must("readdir", __wasi_fd_readdir(single, buf, sizeof buf, 0, &used));
    printf("empty dir: %u bytes\n", (unsigned)used);
    /* Then exactly one entry: the byte layout is fully determined except the inode numbers. */
    put_file(data, "one/entry-name", "");
    memset(buf, 0xEE, sizeof buf);
    must("readdir", __wasi_fd_readdir(single, buf, sizeof buf, 0, &used));
    printf("one entry: %u bytes\n", (unsigned)used);
    for (size_t off = 0; off + HEADER <= used;) {
        __wasi_dirent_t d;
        memcpy(&d, buf + off, HEADER);
        printf("  d_next=%llu d_namlen=%u d_type=%s name=[%.*s]\n", (unsigned long long)d.d_next,
               (unsigned)d.d_namlen, filetype_name(d.d_type), (int)d.d_namlen, buf + off + HEADER);
        off += HEADER + d.d_namlen;
    }
    /* Buffers that end inside a header or a name: hosts fill them and report them full. */
    size_t sizes[] = {0, 1, 10, 24, 25, 26, 30, 49, 50, 51, 60, 75, 76, 86, 87, 200};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        memset(buf, 0xEE, sizeof buf);
        must("readdir", __wasi_fd_readdir(single, buf, sizes[i], 0, &used));
        size_t untouched = 0;
        for (size_t j = used; j < sizeof buf; j++) untouched += buf[j] == 0xEE;
        printf("buffer %zu: used %u, bytes after it untouched: %s\n", sizes[i], (unsigned)used,
               untouched == sizeof buf - used ? "yes" : "NO");
        dump(buf, used);
    }
    /* Cookies: start after ".", after "..", after the entry, and far past the end. */
    __wasi_dircookie_t cookies[] = {1, 2, 3, 4, 1000};
    for (size_t i = 0; i < 5; i++) {
        must("readdir", __wasi_fd_readdir(single, buf, sizeof buf, cookies[i], &used));
        printf("cookie %llu: %u bytes", (unsigned long long)cookies[i], (unsigned)used);
        if (used >= HEADER) {
            __wasi_dirent_t d;
            memcpy(&d, buf, HEADER);
            printf(", first [%.*s] d_next=%llu", (int)d.d_namlen, buf + HEADER, (unsigned long long)d.d_next);
        }
        printf("\n");
    }
    /* The names of "." and ".." carry the same d_ino; print only that they are equal. */
    must("readdir", __wasi_fd_readdir(single, buf, sizeof buf, 0, &used));
    __wasi_dirent_t dot, dotdot;
    memcpy(&dot, buf, HEADER);
    memcpy(&dotdot, buf + HEADER + 1, HEADER);
    printf(". and .. have the same d_ino: %s\n", dot.d_ino == dotdot.d_ino ? "yes" : "no");

    /* Entries of each type. */
    must("mkdir", __wasi_path_create_directory(data, "one/subdir"));
    must("symlink", __wasi_path_symlink("entry-name", data, "one/a-link"));
    show_listing(single, "one, with a file, a dir and a symlink", 4096);
    /* A listing made after a change sees the change. */
    must("unlink", __wasi_path_unlink_file(data, "one/entry-name"));
    show_listing(single, "one, after unlinking the file", 4096);

    show("readdir on a file", __wasi_fd_readdir(0, buf, sizeof buf, 0, &used));
    __wasi_fd_t file;
    must("open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &file));
    show("readdir on a regular file", __wasi_fd_readdir(file, buf, sizeof buf, 0, &used));
    show("readdir on a closed fd", __wasi_fd_readdir(99, buf, sizeof buf, 0, &used));
    return 0;
}
