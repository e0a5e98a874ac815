/* fd_filestat_get/set_size/set_times, path_filestat_get/set_times, fd_allocate, fd_advise,
 * fd_sync and fd_datasync. Times are printed only when the guest set them itself. */
#include "wasi_util.h"

#define T1 1600000000123456789ULL /* 2020-09-13, with nanoseconds */
#define T2 1234567890000000001ULL
#define T3 1700000000000000000ULL

static void show_fd_stat(__wasi_fd_t fd, const char *label) {
    __wasi_filestat_t st;
    __wasi_errno_t e = __wasi_fd_filestat_get(fd, &st);
    if (e) {
        printf("fstat %s: %s\n", label, errno_name(e));
        return;
    }
    printf("fstat %s: %s", label, filetype_name(st.filetype));
    if (st.filetype == __WASI_FILETYPE_REGULAR_FILE)
        printf(" size=%llu nlink=%llu", (unsigned long long)st.size, (unsigned long long)st.nlink);
    printf("\n");
}

static void show_times(__wasi_fd_t dir, __wasi_lookupflags_t flags, const char *path) {
    __wasi_filestat_t st;
    __wasi_errno_t e = __wasi_path_filestat_get(dir, flags, path, &st);
    if (e) printf("times %s: %s\n", path, errno_name(e));
    else printf("times %s%s: atim=%llu mtim=%llu\n", path, flags ? " (follow)" : "",
                (unsigned long long)st.atim, (unsigned long long)st.mtim);
}

int main(void) {
    __wasi_fd_t data = preopen("/data");
    __wasi_fd_t fd, rofd;
    __wasi_filestat_t st;

    show_fd_stat(data, "preopen");
    show_fd_stat(0, "stdin");
    show_fd_stat(1, "stdout");
    show_fd_stat(2, "stderr");
    must("fstat stdout", __wasi_fd_filestat_get(1, &st));
    printf("stdout stat is all zero besides the type: %s\n",
           st.dev == 0 && st.ino == 0 && st.nlink == 0 && st.size == 0 && st.atim == 0 && st.mtim == 0 ? "yes" : "no");

    must("open", open_at(data, "sized.bin", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, RIGHTS_RW, 0, &fd));
    must("write", write_all(fd, "0123456789", 10));
    show_fd_stat(fd, "after writing 10 bytes");
    show("set_size 4", __wasi_fd_filestat_set_size(fd, 4));
    show_fd_stat(fd, "after set_size 4");
    show("set_size 12", __wasi_fd_filestat_set_size(fd, 12));
    show_fd_stat(fd, "after set_size 12");
    __wasi_filesize_t pos;
    must("tell", __wasi_fd_tell(fd, &pos));
    printf("position is still %llu\n", (unsigned long long)pos);
    show("set_size 2^63 (too big)", __wasi_fd_filestat_set_size(fd, 1ULL << 63));
    show("set_size on preopen", __wasi_fd_filestat_set_size(data, 0));
    show("set_size on stdout", __wasi_fd_filestat_set_size(1, 0));
    must("close", __wasi_fd_close(fd));
    show_file(data, "sized.bin");
    must("open ro", open_at(data, "sized.bin", 0, RIGHTS_R, 0, &rofd));
    show("set_size on a read-only fd", __wasi_fd_filestat_set_size(rofd, 1));

    /* fd_filestat_set_times: explicit values read back exactly; flag conflicts are EINVAL. */
    must("open", open_at(data, "sized.bin", 0, RIGHTS_RW, 0, &fd));
    show("set_times atim+mtim", __wasi_fd_filestat_set_times(fd, T1, T2, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "sized.bin");
    show("set_times mtim only", __wasi_fd_filestat_set_times(fd, 0, T3, __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "sized.bin");
    show("set_times nothing", __wasi_fd_filestat_set_times(fd, 5, 5, 0));
    show_times(data, 0, "sized.bin");
    show("set_times ATIM|ATIM_NOW", __wasi_fd_filestat_set_times(fd, T1, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
    show("set_times MTIM|MTIM_NOW", __wasi_fd_filestat_set_times(fd, 0, T1, __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW));
    show("set_times ATIM|ATIM_NOW on closed fd 99", __wasi_fd_filestat_set_times(99, T1, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
    show("set_times on closed fd 99", __wasi_fd_filestat_set_times(99, T1, 0, __WASI_FSTFLAGS_ATIM));
    show("set_times on stdout", __wasi_fd_filestat_set_times(1, T1, 0, __WASI_FSTFLAGS_ATIM));
    show("set_times on a read-only fd", __wasi_fd_filestat_set_times(rofd, T2, T2, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "sized.bin");
    /* NOW sets a time after 2020; print only that. */
    show("set_times MTIM_NOW", __wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
    must("stat", __wasi_fd_filestat_get(fd, &st));
    printf("mtim after MTIM_NOW is after 2020 and atim kept: %s %s\n", st.mtim > 1577836800ULL * 1000000000ULL ? "yes" : "NO",
           st.atim == T2 ? "yes" : "NO");

    /* The same through paths, following symlinks and not. */
    show("path set_times on file", __wasi_path_filestat_set_times(data, 0, "hello.txt", T1, T2, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "hello.txt");
    show("path set_times through symlink (follow)", __wasi_path_filestat_set_times(data, FOLLOW, "link-to-hello", T3, T3, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "hello.txt");
    show("path set_times on the symlink itself", __wasi_path_filestat_set_times(data, 0, "link-to-hello", T2, T1, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "link-to-hello");
    show_times(data, 0, "hello.txt");
    show_times(data, FOLLOW, "link-to-hello");
    show("path set_times on a dir", __wasi_path_filestat_set_times(data, 0, "emptydir", T1, T1, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, "emptydir");
    show("path set_times on missing", __wasi_path_filestat_set_times(data, 0, "missing", T1, T1, __WASI_FSTFLAGS_ATIM));
    show("path set_times MTIM|MTIM_NOW", __wasi_path_filestat_set_times(data, 0, "hello.txt", 0, T1, __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW));
    show("path set_times relative to a file fd", __wasi_path_filestat_set_times(fd, 0, "x", T1, T1, __WASI_FSTFLAGS_ATIM));
    show("fd set_times on the preopen", __wasi_fd_filestat_set_times(data, T1, T2, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    show_times(data, 0, ".");

    /* path_filestat_get, with and without following. */
    show_stat(data, "hello.txt", 0);
    show_stat(data, "link-to-hello", 0);
    show_stat(data, "link-to-hello", FOLLOW);
    show_stat(data, "link-to-sub", 0);
    show_stat(data, "link-to-sub", FOLLOW);
    show_stat(data, "dangling", 0);
    show_stat(data, "dangling", FOLLOW);
    show_stat(data, "sub", 0);
    show_stat(data, "sub/deeper/c.txt", 0);
    show_stat(data, "link-to-sub/a.txt", 0);
    show_stat(data, "missing", 0);
    show_stat(data, "hello.txt/x", 0);
    show_stat(data, "", 0);
    show_stat(data, ".", 0);
    __wasi_filestat_t st2;
    show("path_filestat_get relative to a file fd", __wasi_path_filestat_get(fd, 0, "x", &st2));
    show("path_filestat_get relative to stdin", __wasi_path_filestat_get(0, 0, "x", &st2));
    /* A file's identity is stable: the same dev and ino through the fd and through the path. */
    must("fstat", __wasi_fd_filestat_get(fd, &st));
    must("stat", __wasi_path_filestat_get(data, 0, "sized.bin", &st2));
    printf("fd and path agree on dev/ino: %s\n", st.dev == st2.dev && st.ino == st2.ino ? "yes" : "NO");
    must("stat", __wasi_path_filestat_get(data, 0, "hello.txt", &st2));
    printf("two files have different ino: %s\n", st.ino != st2.ino ? "yes" : "NO");

    /* fd_allocate, fd_advise, fd_sync, fd_datasync on files, dirs and stdio. */
    show("allocate file", __wasi_fd_allocate(fd, 0, 100));
    show_fd_stat(fd, "after allocate");
    show("allocate dir", __wasi_fd_allocate(data, 0, 100));
    show("allocate stdout", __wasi_fd_allocate(1, 0, 100));
    for (__wasi_advice_t a = 0; a <= __WASI_ADVICE_NOREUSE; a++) {
        char label[32];
        snprintf(label, sizeof label, "advise %u", (unsigned)a);
        show(label, __wasi_fd_advise(fd, 0, 4, a));
    }
    show("advise len 0", __wasi_fd_advise(fd, 0, 0, __WASI_ADVICE_NORMAL));
    show("advise dir", __wasi_fd_advise(data, 0, 4, __WASI_ADVICE_NORMAL));
    show("advise stdout", __wasi_fd_advise(1, 0, 4, __WASI_ADVICE_NORMAL));
    show("sync file", __wasi_fd_sync(fd));
    show("datasync file", __wasi_fd_datasync(fd));
    show("sync read-only file", __wasi_fd_sync(rofd));
    show("sync dir", __wasi_fd_sync(data));
    show("datasync dir", __wasi_fd_datasync(data));
    fflush(stdout);
    show("sync stdout", __wasi_fd_sync(1));
    show("datasync stdout", __wasi_fd_datasync(1));
    must("close", __wasi_fd_close(fd));
    must("close", __wasi_fd_close(rofd));
    show("sync closed fd", __wasi_fd_sync(fd));
    return 0;
}
