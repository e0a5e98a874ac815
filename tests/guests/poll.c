/* poll_oneoff: a relative clock (a ~10 ms sleep), an absolute monotonic clock, fd_read on a file,
 * fd_write on stdout and on a file, mixed subscriptions, and the errors. */
#include <time.h>
#include "wasi_util.h"

#define MS 1000000ULL

static __wasi_subscription_t clock_sub(__wasi_userdata_t ud, __wasi_clockid_t id, __wasi_timestamp_t timeout,
                                       __wasi_subclockflags_t flags) {
    __wasi_subscription_t s;
    memset(&s, 0, sizeof s);
    s.userdata = ud;
    s.u.tag = __WASI_EVENTTYPE_CLOCK;
    s.u.u.clock.id = id;
    s.u.u.clock.timeout = timeout;
    s.u.u.clock.precision = 0;
    s.u.u.clock.flags = flags;
    return s;
}

static __wasi_subscription_t fd_sub(__wasi_userdata_t ud, __wasi_eventtype_t type, __wasi_fd_t fd) {
    __wasi_subscription_t s;
    memset(&s, 0, sizeof s);
    s.userdata = ud;
    s.u.tag = type;
    s.u.u.fd_read.file_descriptor = fd;
    return s;
}

static __wasi_timestamp_t now(void) {
    __wasi_timestamp_t t;
    must("clock", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, &t));
    return t;
}

static void poll_(const char *label, __wasi_subscription_t *subs, size_t n) {
    __wasi_event_t events[8];
    memset(events, 0xCC, sizeof events);
    __wasi_size_t count = 0;
    __wasi_errno_t e = __wasi_poll_oneoff(subs, events, n, &count);
    printf("%s: %s", label, errno_name(e));
    if (e) {
        printf("\n");
        return;
    }
    printf(", %u events\n", (unsigned)count);
    for (__wasi_size_t i = 0; i < count; i++) {
        const __wasi_event_t *ev = &events[i];
        printf("  userdata=%llu error=%s type=%u", (unsigned long long)ev->userdata, errno_name(ev->error),
               (unsigned)ev->type);
        if (ev->type != __WASI_EVENTTYPE_CLOCK)
            printf(" nbytes=%llu flags=%u", (unsigned long long)ev->fd_readwrite.nbytes,
                   (unsigned)ev->fd_readwrite.flags);
        printf("\n");
    }
}

int main(void) {
    __wasi_fd_t data = preopen("/data");
    __wasi_subscription_t subs[4];

    /* One relative clock: a sleep. */
    __wasi_timestamp_t t0 = now();
    subs[0] = clock_sub(11, __WASI_CLOCKID_MONOTONIC, 10 * MS, 0);
    poll_("sleep 10 ms (monotonic)", subs, 1);
    __wasi_timestamp_t slept = now() - t0;
    printf("  slept at least 10 ms: %s, less than 5 s: %s\n", slept >= 10 * MS ? "yes" : "NO", slept < 5000 * MS ? "yes" : "NO");
    t0 = now();
    subs[0] = clock_sub(12, __WASI_CLOCKID_REALTIME, 10 * MS, 0);
    poll_("sleep 10 ms (realtime, relative)", subs, 1);
    printf("  slept at least 10 ms: %s\n", now() - t0 >= 10 * MS ? "yes" : "NO");
    subs[0] = clock_sub(13, __WASI_CLOCKID_MONOTONIC, 0, 0);
    poll_("sleep 0", subs, 1);
    /* libc's nanosleep is built on the same call. */
    t0 = now();
    struct timespec ts = {0, 10 * 1000 * 1000};
    printf("nanosleep 10 ms: %s", nanosleep(&ts, NULL) == 0 ? "ok" : "failed");
    printf(", slept at least 10 ms: %s\n", now() - t0 >= 10 * MS ? "yes" : "NO");

    /* An absolute monotonic deadline 10 ms ahead, alongside a far relative one. */
    t0 = now();
    subs[0] = clock_sub(21, __WASI_CLOCKID_MONOTONIC, t0 + 10 * MS, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME);
    subs[1] = clock_sub(22, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    poll_("absolute deadline in 10 ms vs relative 5 s", subs, 2);
    printf("  waited at least 10 ms: %s\n", now() - t0 >= 10 * MS ? "yes" : "NO");
    subs[0] = clock_sub(23, __WASI_CLOCKID_MONOTONIC, 1, __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME);
    poll_("absolute deadline in the past", subs, 1);

    /* File descriptors: a readable file (with data, and at its end), writable stdout. */
    __wasi_fd_t file, wfile;
    must("open", open_at(data, "hello.txt", 0, RIGHTS_R, 0, &file));
    subs[0] = fd_sub(31, __WASI_EVENTTYPE_FD_READ, file);
    subs[1] = clock_sub(32, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    poll_("fd_read on a file vs clock 5 s", subs, 2);
    __wasi_filesize_t pos;
    must("seek", __wasi_fd_seek(file, 0, __WASI_WHENCE_END, &pos));
    subs[0] = fd_sub(33, __WASI_EVENTTYPE_FD_READ, file);
    poll_("fd_read on a file at its end", subs, 1);
    fflush(stdout);
    subs[0] = fd_sub(41, __WASI_EVENTTYPE_FD_WRITE, 1);
    subs[1] = clock_sub(42, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    poll_("fd_write on stdout vs clock 5 s", subs, 2);
    must("open", open_at(data, "poll-out.txt", __WASI_OFLAGS_CREAT, RIGHTS_W, 0, &wfile));
    subs[0] = fd_sub(51, __WASI_EVENTTYPE_FD_WRITE, wfile);
    subs[1] = clock_sub(52, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    subs[2] = fd_sub(53, __WASI_EVENTTYPE_FD_WRITE, 2);
    poll_("fd_write on a file, clock 5 s, fd_write on stderr", subs, 3);

    /* Errors. */
    poll_("no subscriptions", subs, 0);
    subs[0] = fd_sub(61, __WASI_EVENTTYPE_FD_READ, 99);
    poll_("fd_read on a closed fd", subs, 1);
    subs[0] = fd_sub(62, __WASI_EVENTTYPE_FD_READ, data);
    poll_("fd_read on a directory", subs, 1);
    subs[0] = fd_sub(63, __WASI_EVENTTYPE_FD_READ, 1);
    poll_("fd_read on stdout", subs, 1);
    subs[0] = fd_sub(64, __WASI_EVENTTYPE_FD_WRITE, file);
    subs[1] = clock_sub(65, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    poll_("fd_write on a read-only file", subs, 2);
    subs[0] = clock_sub(66, __WASI_CLOCKID_PROCESS_CPUTIME_ID, 1 * MS, 0);
    subs[1] = clock_sub(67, __WASI_CLOCKID_MONOTONIC, 1 * MS, 0);
    poll_("process cputime clock among others", subs, 2);
    subs[0] = fd_sub(68, __WASI_EVENTTYPE_FD_READ, data);
    subs[1] = clock_sub(69, __WASI_CLOCKID_MONOTONIC, 1 * MS, 0);
    poll_("fd_read on a directory among others", subs, 2);
    return 0;
}
