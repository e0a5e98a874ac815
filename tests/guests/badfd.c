/* Every call that takes a descriptor, given one of the wrong kind: a closed fd, stdin, stdout, a
 * preopened directory, an opened directory and a regular file. One line per call, one column per
 * kind, so a single difference stands out. */
#include "wasi_util.h"

#define KINDS 6
static const char *const KIND_NAMES[KINDS] = {"closed", "stdin", "stdout", "preopen", "dir", "file"};
static __wasi_fd_t fds[KINDS];

typedef __wasi_errno_t (*call_fn)(__wasi_fd_t fd);

static uint8_t buf[256];
static __wasi_size_t n;
static __wasi_filesize_t pos;

static __wasi_errno_t c_advise(__wasi_fd_t fd) { return __wasi_fd_advise(fd, 0, 1, __WASI_ADVICE_NORMAL); }
static __wasi_errno_t c_allocate(__wasi_fd_t fd) { return __wasi_fd_allocate(fd, 0, 1); }
static __wasi_errno_t c_datasync(__wasi_fd_t fd) { return __wasi_fd_datasync(fd); }
static __wasi_errno_t c_fdstat_get(__wasi_fd_t fd) { __wasi_fdstat_t st; return __wasi_fd_fdstat_get(fd, &st); }
static __wasi_errno_t c_fdstat_set_flags(__wasi_fd_t fd) { return __wasi_fd_fdstat_set_flags(fd, 0); }
static __wasi_errno_t c_fdstat_set_rights(__wasi_fd_t fd) { return __wasi_fd_fdstat_set_rights(fd, 0, 0); }
static __wasi_errno_t c_filestat_get(__wasi_fd_t fd) { __wasi_filestat_t st; return __wasi_fd_filestat_get(fd, &st); }
static __wasi_errno_t c_set_size(__wasi_fd_t fd) { return __wasi_fd_filestat_set_size(fd, 13); }
static __wasi_errno_t c_set_times(__wasi_fd_t fd) { return __wasi_fd_filestat_set_times(fd, 0, 0, 0); }
static __wasi_errno_t c_pread(__wasi_fd_t fd) { __wasi_iovec_t v = {buf, 4}; return __wasi_fd_pread(fd, &v, 1, 0, &n); }
static __wasi_errno_t c_prestat_get(__wasi_fd_t fd) { __wasi_prestat_t p; return __wasi_fd_prestat_get(fd, &p); }
static __wasi_errno_t c_prestat_dir_name(__wasi_fd_t fd) { return __wasi_fd_prestat_dir_name(fd, buf, sizeof buf); }
static __wasi_errno_t c_pwrite(__wasi_fd_t fd) { __wasi_ciovec_t v = {(const uint8_t *)"", 0}; return __wasi_fd_pwrite(fd, &v, 1, 0, &n); }
/* Not tried on stdin: an empty read there waits for input (and wasmtime then says EINTR). */
#define SKIPPED 0xFFFF
static __wasi_errno_t c_read0(__wasi_fd_t fd) { __wasi_iovec_t v = {buf, 0}; return fd == 0 ? SKIPPED : __wasi_fd_read(fd, &v, 1, &n); }
static __wasi_errno_t c_readdir(__wasi_fd_t fd) { return __wasi_fd_readdir(fd, buf, sizeof buf, 0, &n); }
static __wasi_errno_t c_seek(__wasi_fd_t fd) { return __wasi_fd_seek(fd, 0, __WASI_WHENCE_CUR, &pos); }
static __wasi_errno_t c_sync(__wasi_fd_t fd) { return __wasi_fd_sync(fd); }
static __wasi_errno_t c_tell(__wasi_fd_t fd) { return __wasi_fd_tell(fd, &pos); }
static __wasi_errno_t c_write0(__wasi_fd_t fd) { __wasi_ciovec_t v = {(const uint8_t *)"", 0}; return __wasi_fd_write(fd, &v, 1, &n); }
static __wasi_errno_t c_mkdir(__wasi_fd_t fd) { return __wasi_path_create_directory(fd, "badfd-made"); }
static __wasi_errno_t c_path_stat(__wasi_fd_t fd) { __wasi_filestat_t st; return __wasi_path_filestat_get(fd, 0, "hello.txt", &st); }
static __wasi_errno_t c_path_times(__wasi_fd_t fd) { return __wasi_path_filestat_set_times(fd, 0, "hello.txt", 0, 0, 0); }
static __wasi_errno_t c_link_src(__wasi_fd_t fd) { return __wasi_path_link(fd, 0, "hello.txt", fds[3], "badfd-link"); }
static __wasi_errno_t c_link_dst(__wasi_fd_t fd) { return __wasi_path_link(fds[3], 0, "nonexistent", fd, "badfd-link"); }
static __wasi_errno_t c_open(__wasi_fd_t fd) { __wasi_fd_t o; __wasi_errno_t e = __wasi_path_open(fd, 0, "hello.txt", 0, RIGHTS_R, RIGHTS_R, 0, &o); if (!e) __wasi_fd_close(o); return e; }
static __wasi_errno_t c_readlink(__wasi_fd_t fd) { return __wasi_path_readlink(fd, "link-to-hello", buf, sizeof buf, &n); }
static __wasi_errno_t c_rmdir(__wasi_fd_t fd) { return __wasi_path_remove_directory(fd, "nonexistent"); }
static __wasi_errno_t c_rename_src(__wasi_fd_t fd) { return __wasi_path_rename(fd, "nonexistent", fds[3], "x"); }
static __wasi_errno_t c_rename_dst(__wasi_fd_t fd) { return __wasi_path_rename(fds[3], "nonexistent", fd, "x"); }
static __wasi_errno_t c_symlink(__wasi_fd_t fd) { return __wasi_path_symlink("target", fd, "nonexistent/x"); }
static __wasi_errno_t c_unlink(__wasi_fd_t fd) { return __wasi_path_unlink_file(fd, "nonexistent"); }

static const struct { const char *name; call_fn fn; } CALLS[] = {
    {"fd_advise", c_advise}, {"fd_allocate", c_allocate}, {"fd_datasync", c_datasync},
    {"fd_fdstat_get", c_fdstat_get}, {"fd_fdstat_set_flags", c_fdstat_set_flags},
    {"fd_fdstat_set_rights", c_fdstat_set_rights}, {"fd_filestat_get", c_filestat_get},
    {"fd_filestat_set_size", c_set_size}, {"fd_filestat_set_times", c_set_times}, {"fd_pread", c_pread},
    {"fd_prestat_get", c_prestat_get}, {"fd_prestat_dir_name", c_prestat_dir_name}, {"fd_pwrite", c_pwrite},
    {"fd_read (0 bytes)", c_read0}, {"fd_readdir", c_readdir}, {"fd_seek", c_seek}, {"fd_sync", c_sync},
    {"fd_tell", c_tell}, {"fd_write (0 bytes)", c_write0}, {"path_create_directory", c_mkdir},
    {"path_filestat_get", c_path_stat}, {"path_filestat_set_times", c_path_times},
    {"path_link (source dir)", c_link_src}, {"path_link (target dir)", c_link_dst}, {"path_open", c_open},
    {"path_readlink", c_readlink}, {"path_remove_directory", c_rmdir}, {"path_rename (source dir)", c_rename_src},
    {"path_rename (target dir)", c_rename_dst}, {"path_symlink", c_symlink}, {"path_unlink_file", c_unlink},
};

int main(void) {
    __wasi_fd_t data = preopen("/data");
    fds[0] = 40;
    fds[1] = 0;
    fds[2] = 1;
    fds[3] = data;
    must("open dir", open_at(data, "sub", __WASI_OFLAGS_DIRECTORY, RIGHTS_R, 0, &fds[4]));
    must("open file", open_at(data, "hello.txt", 0, RIGHTS_RW, 0, &fds[5]));
    printf("%-26s", "call");
    for (int k = 0; k < KINDS; k++) printf(" %-8s", KIND_NAMES[k]);
    printf("\n");
    fflush(stdout);
    for (size_t i = 0; i < sizeof CALLS / sizeof CALLS[0]; i++) {
        __wasi_errno_t results[KINDS];
        for (int k = 0; k < KINDS; k++) results[k] = CALLS[i].fn(fds[k]);
        printf("%-26s", CALLS[i].name);
        for (int k = 0; k < KINDS; k++) printf(" %-8s", results[k] == SKIPPED ? "-" : errno_name(results[k]));
        printf("\n");
        fflush(stdout);
    }
    show_file(data, "hello.txt");
    show_stat(data, "badfd-made", 0);
    show_stat(data, "sub/badfd-made", 0);
    return 0;
}
