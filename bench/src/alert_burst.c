/* One process of the alert burst (bench/src/alerts.rs).
 *
 * The bench starts many of these, each from its own hard link (so each has
 * an executable of its own, and the Alertmanager sink, which deduplicates per
 * rule and executable, posts each one's alerts), all in one process group.
 * Each blocks SIGUSR1, says "r" on stdout, and waits for it; then, from its
 * own phase (argv[1] of argv[2] slots in a second) it renames its main thread
 * to a kernel thread's name once a second for argv[3] seconds: a
 * `kernel-thread-mimic` alert each time, spread evenly over every second.
 *
 * usage: alert_burst <slot> <slots> <seconds>
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fputs("usage: alert_burst <slot> <slots> <seconds>\n", stderr);
        return 2;
    }
    long slot = atol(argv[1]);
    long slots = atol(argv[2]);
    long secs = atol(argv[3]);
    if (slots < 1) slots = 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* One small write: atomic on the shared pipe. */
    if (write(1, "r\n", 2) != 2) return 1;
    int sig;
    sigwait(&set, &sig);
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    long long ns = (long long)at.tv_sec * 1000000000LL + at.tv_nsec;
    ns += slot * (1000000000LL / slots);
    char name[16];
    for (long k = 0; k < secs; k++) {
        long long t = ns + k * 1000000000LL;
        at.tv_sec = t / 1000000000LL;
        at.tv_nsec = t % 1000000000LL;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
        snprintf(name, sizeof name, "kworker/%ld:%ld", k % 8, slot % 100);
        prctl(PR_SET_NAME, name, 0, 0, 0);
    }
    return 0;
}
