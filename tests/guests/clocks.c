/* Clocks: clock_res_get and clock_time_get for every clock id, printing only what is stable. */
#include <time.h>
#include "wasi_util.h"

#define SECOND 1000000000ULL
/* 2020-01-01T00:00:00Z in nanoseconds since the epoch. */
#define YEAR_2020 (1577836800ULL * SECOND)

/* An id past 3 is not an errno but a trap in wasmtime (the enum fails to decode): see trap.c. */
static const char *const CLOCKS[] = {"realtime", "monotonic", "process-cputime", "thread-cputime"};

int main(void) {
    for (__wasi_clockid_t id = 0; id < 4; id++) {
        __wasi_timestamp_t res = 0, t1 = 0, t2 = 0;
        __wasi_errno_t e = __wasi_clock_res_get(id, &res);
        if (e) printf("%s res: %s\n", CLOCKS[id], errno_name(e));
        else printf("%s res: ok, %s\n", CLOCKS[id], res > 0 && res <= SECOND ? "between 1ns and 1s" : "OUT OF RANGE");
        e = __wasi_clock_time_get(id, 1, &t1);
        if (e) {
            printf("%s time: %s\n", CLOCKS[id], errno_name(e));
            continue;
        }
        must("second read", __wasi_clock_time_get(id, 0, &t2));
        printf("%s time: ok, %s\n", CLOCKS[id], t2 >= t1 ? "non-decreasing" : "WENT BACKWARDS");
        if (id == __WASI_CLOCKID_REALTIME)
            printf("realtime after 2020: %s\n", t1 > YEAR_2020 ? "yes" : "NO");
    }
    /* Monotonic time must keep going up across many reads. */
    __wasi_timestamp_t prev = 0, now;
    int backwards = 0;
    for (int i = 0; i < 1000; i++) {
        must("monotonic", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, &now));
        if (now < prev) backwards++;
        prev = now;
    }
    printf("monotonic went backwards %d times in 1000 reads\n", backwards);

    /* Realtime and monotonic both advance over a 20 ms sleep (poll_oneoff on a relative clock). */
    __wasi_timestamp_t r0, r1, m0, m1;
    must("rt", __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 0, &r0));
    must("mono", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, &m0));
    __wasi_subscription_t sub = {.userdata = 7, .u = {.tag = __WASI_EVENTTYPE_CLOCK}};
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = 20 * 1000 * 1000;
    __wasi_event_t ev;
    __wasi_size_t nevents;
    must("sleep", __wasi_poll_oneoff(&sub, &ev, 1, &nevents));
    must("rt", __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 0, &r1));
    must("mono", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 0, &m1));
    printf("monotonic advanced by >= 20 ms over the sleep: %s\n", m1 - m0 >= 20000000ULL ? "yes" : "NO");
    printf("realtime advanced by >= 15 ms over the sleep: %s\n", r1 >= r0 + 15000000ULL ? "yes" : "NO");
    printf("monotonic advanced by < 10 s: %s\n", m1 - m0 < 10 * SECOND ? "yes" : "NO");
    /* libc's view of the same clocks. */
    struct timespec ts;
    printf("clock_gettime(CLOCK_REALTIME) after 2020: %s\n",
           clock_gettime(CLOCK_REALTIME, &ts) == 0 && (unsigned long long)ts.tv_sec > YEAR_2020 / SECOND ? "yes" : "NO");
    printf("time(NULL) after 2020: %s\n", (unsigned long long)time(NULL) > YEAR_2020 / SECOND ? "yes" : "NO");
    return 0;
}
