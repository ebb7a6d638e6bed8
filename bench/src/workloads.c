/* The bench's own workloads (the rename storm and everyday work are in
 * rename-audit/tests/e2e/support/renamer.c):
 *   getppid <workers> <secs>   getppid(2) in a loop on <workers> threads;
 *                              prints done=<calls> and rate=<calls per second>
 *   sleepers <n>               forks <n> children that pause(); prints
 *                              ready=<n>, then on a line (or EOF) on stdin
 *                              kills and reaps them all. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *getppid_loop(void *arg) {
    unsigned long *calls = arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* The raw call: libc must not answer from a cache. */
        for (int i = 0; i < 256; i++) syscall(SYS_getppid);
        n += 256;
    }
    *calls = n;
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "getppid")) {
        int workers = atoi(argv[2]);
        double secs = atof(argv[3]);
        if (workers < 1 || workers > 1024) return 2;
        pthread_t t[1024];
        unsigned long calls[1024] = {0};
        double start = now();
        for (int i = 0; i < workers; i++) pthread_create(&t[i], NULL, getppid_loop, &calls[i]);
        struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
        nanosleep(&ts, NULL);
        atomic_store(&stop, 1);
        unsigned long total = 0;
        for (int i = 0; i < workers; i++) {
            pthread_join(t[i], NULL);
            total += calls[i];
        }
        double elapsed = now() - start;
        printf("done=%lu\nrate=%.0f\n", total, total / elapsed);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "sleepers")) {
        long n = atol(argv[2]);
        pid_t *pids = calloc(n, sizeof *pids);
        if (!pids) return 3;
        for (long i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0) {
                /* Die with the parent whatever happens to it. */
                prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                if (getppid() == 1) _exit(0);
                for (;;) pause();
            }
            if (child < 0) {
                perror("fork");
                for (long j = 0; j < i; j++) kill(pids[j], SIGKILL);
                while (wait(NULL) > 0) {}
                return 4;
            }
            pids[i] = child;
        }
        printf("ready=%ld\n", n);
        fflush(stdout);
        char line[16];
        (void)!fgets(line, sizeof line, stdin);
        for (long i = 0; i < n; i++) kill(pids[i], SIGKILL);
        while (wait(NULL) > 0) {}
        return 0;
    }
    fprintf(stderr, "usage: workloads getppid <workers> <secs> | sleepers <n>\n");
    return 2;
}
