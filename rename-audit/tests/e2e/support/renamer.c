/* Test workload for rename-audit's end-to-end tests: performs one rename
 * scenario and prints what it did as key=value lines. Names are given in hex
 * so any byte but NUL can be passed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static char name[64];
static size_t name_len;

static void unhex(const char *hex) {
    name_len = strlen(hex) / 2;
    if (name_len >= sizeof name) name_len = sizeof name - 1;
    for (size_t i = 0; i < name_len; i++) sscanf(hex + 2 * i, "%2hhx", (unsigned char *)&name[i]);
    name[name_len] = 0;
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static int write_comm(const char *path) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, name, name_len);
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

static void wait_line(void) {
    char buf[16];
    if (!fgets(buf, sizeof buf, stdin)) exit(3);
}

static void *thread_prctl(void *arg) {
    (void)arg;
    printf("tid=%d\n", gettid_());
    prctl(PR_SET_NAME, name, 0, 0, 0);
    return NULL;
}

static void *thread_sibling(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", getpid());
    printf("tid=%d\n", gettid_());
    int err = write_comm(path);
    printf("write=%d\n", err);
    return NULL;
}

static volatile long storm_count;
static volatile int storm_stop;
static void *thread_storm(void *arg) {
    long n = (long)arg;
    char buf[16];
    printf("storm_tid=%d\n", gettid_());
    fflush(stdout);
    for (long i = 0; n < 0 ? !storm_stop : i < n; i++) {
        snprintf(buf, sizeof buf, "storm-%ld", i % 1000);
        prctl(PR_SET_NAME, buf, 0, 0, 0);
        __atomic_add_fetch(&storm_count, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static volatile int hold_release;
static void *thread_storm_hold(void *arg) {
    long n = (long)arg;
    char buf[16];
    printf("storm_tid=%d\n", gettid_());
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "hold-%ld", i % 1000);
        prctl(PR_SET_NAME, buf, 0, 0, 0);
    }
    while (!hold_release) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static double rate_until;
static void *thread_rate(void *arg) {
    (void)arg;
    char buf[16];
    long i = 0;
    for (;; i++) {
        if ((i & 1023) == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            if (ts.tv_sec + ts.tv_nsec / 1e9 >= rate_until) break;
        }
        snprintf(buf, sizeof buf, "r-%ld", i & 1023);
        prctl(PR_SET_NAME, buf, 0, 0, 0);
    }
    __atomic_add_fetch(&storm_count, i, __ATOMIC_RELAXED);
    return NULL;
}

/* One round of `race`: the thread renames itself with prctl while the main
 * thread renames it through procfs. Both spin until the same moment, so
 * they run on two CPUs at once. */
static long race_n;
static volatile pid_t race_tid;
static volatile int race_go, race_done;
static void *thread_race(void *arg) {
    (void)arg;
    char buf[16];
    printf("race_tid=%d\n", gettid_());
    __atomic_store_n(&race_tid, gettid_(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&race_go, __ATOMIC_ACQUIRE)) {}
    for (long i = 0; i < race_n; i++) {
        snprintf(buf, sizeof buf, "race-p-%ld", i % 1000);
        prctl(PR_SET_NAME, buf, 0, 0, 0);
    }
    /* stay alive until the sibling's writes are done: a write to an exited
     * thread's comm fails */
    while (!__atomic_load_n(&race_done, __ATOMIC_ACQUIRE)) sched_yield();
    return NULL;
}

/* `spawn` and `threads`: the everyday work of a host, for the benchmark. */
static volatile int bench_stop;
static void *thread_nothing(void *arg) { return arg; }
static void *worker_threads(void *arg) {
    (void)arg;
    long n = 0;
    while (!bench_stop) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_nothing, NULL) == 0) {
            pthread_join(t, NULL);
            n++;
        }
    }
    __atomic_add_fetch(&storm_count, n, __ATOMIC_RELAXED);
    return NULL;
}
static const char *spawn_path;
static void *worker_spawn(void *arg) {
    (void)arg;
    long n = 0;
    while (!bench_stop) {
        pid_t child = fork();
        if (child == 0) {
            execl(spawn_path, spawn_path, (char *)NULL);
            _exit(127);
        }
        if (child > 0 && waitpid(child, NULL, 0) == child) n++;
    }
    __atomic_add_fetch(&storm_count, n, __ATOMIC_RELAXED);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) return 2;
    const char *cmd = argv[1];
    if (argc >= 3) unhex(argv[2]);
    printf("pid=%d\n", getpid());
    if (!strcmp(cmd, "prctl")) {
        prctl(PR_SET_NAME, name, 0, 0, 0);
    } else if (!strcmp(cmd, "wait-prctl")) {
        printf("waiting=1\n");
        wait_line();
        prctl(PR_SET_NAME, name, 0, 0, 0);
    } else if (!strcmp(cmd, "wait-prctl-hold")) {
        /* rename when told, then stay alive until told again or stdin closes */
        printf("waiting=1\n");
        wait_line();
        prctl(PR_SET_NAME, name, 0, 0, 0);
        printf("renamed=1\n");
        char buf[16];
        if (!fgets(buf, sizeof buf, stdin)) buf[0] = 0;
    } else if (!strcmp(cmd, "memfd-exec")) {
        /* copy this binary into a memfd and run command argv[3] from there
         * with the same name, as a fileless payload does */
        int mfd = memfd_create("payload", 0);
        int src = open("/proc/self/exe", O_RDONLY);
        if (mfd < 0 || src < 0) return 5;
        char buf[65536];
        ssize_t n;
        while ((n = read(src, buf, sizeof buf)) > 0)
            if (write(mfd, buf, (size_t)n) != n) return 5;
        close(src);
        char *args[] = {"payload", argv[3], argv[2], NULL};
        fflush(stdout);
        fexecve(mfd, args, environ);
        return 5;
    } else if (!strcmp(cmd, "thread-prctl") || !strcmp(cmd, "sibling")) {
        pthread_t t;
        pthread_create(&t, NULL, !strcmp(cmd, "sibling") ? thread_sibling : thread_prctl, NULL);
        pthread_join(t, NULL);
    } else if (!strcmp(cmd, "self-comm")) {
        printf("write=%d\n", write_comm("/proc/self/comm"));
    } else if (!strcmp(cmd, "thread-self-comm")) {
        printf("write=%d\n", write_comm("/proc/thread-self/comm"));
    } else if (!strcmp(cmd, "pid-comm")) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", getpid());
        printf("write=%d\n", write_comm(path));
    } else if (!strcmp(cmd, "other-comm")) {
        /* argv[3]: another process's pid. Then the same name to its own comm
         * (allowed): the control that shows this process's writes are seen */
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/comm", argv[3]);
        printf("write=%d\n", write_comm(path));
        printf("own_write=%d\n", write_comm("/proc/self/comm"));
    } else if (!strcmp(cmd, "fork")) {
        pid_t child = fork();
        if (child == 0) {
            prctl(PR_SET_NAME, name, 0, 0, 0);
            _exit(0);
        }
        printf("child=%d\n", child);
        waitpid(child, NULL, 0);
    } else if (!strcmp(cmd, "forks")) {
        /* argv[3] short-lived children, one after another; with argv[4] =
         * "wait", only after a line on stdin (more arguments are padding) */
        long n = atol(argv[3]);
        if (argc > 4 && !strcmp(argv[4], "wait")) {
            printf("waiting=1\n");
            wait_line();
        }
        for (long i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0) _exit(0);
            if (child < 0) return 6;
            waitpid(child, NULL, 0);
        }
        printf("forked=%ld\n", n);
    } else if (!strcmp(cmd, "daemonize")) {
        /* rename, fork, and let the parent exit at once; the child runs on
         * and renames itself to "daemon-child" */
        prctl(PR_SET_NAME, name, 0, 0, 0);
        pid_t child = fork();
        if (child == 0) {
            usleep(100000);
            prctl(PR_SET_NAME, "daemon-child", 0, 0, 0);
            printf("child-renamed=%d\n", getpid());
            _exit(0);
        }
        printf("child=%d\n", child);
        _exit(0);
    } else if (!strcmp(cmd, "prctl-exec")) {
        /* rename, then exec argv[3] with the rest as its arguments */
        prctl(PR_SET_NAME, name, 0, 0, 0);
        fflush(stdout);
        execv(argv[3], argv + 3);
        return 4;
    } else if (!strcmp(cmd, "exec")) {
        fflush(stdout);
        execl("/bin/true", "true", (char *)NULL);
        return 4;
    } else if (!strcmp(cmd, "loop-prctl")) {
        /* argv[3]: renames; argv[4]: renames per second (0 = as fast as possible) */
        long n = atol(argv[3]);
        double rate = argc > 4 ? atof(argv[4]) : 0;
        double start = now();
        char buf[16];
        for (long i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "%.*s-%ld", 6, name, i % 100000);
            prctl(PR_SET_NAME, buf, 0, 0, 0);
            if (rate > 0) {
                double due = start + (i + 1) / rate;
                while (now() < due) {
                    struct timespec ts = {0, 50000};
                    nanosleep(&ts, NULL);
                }
            }
        }
        printf("done=%ld\n", n);
    } else if (!strcmp(cmd, "storm")) {
        /* argv[3]: threads; argv[4]: renames per thread; then the threads exit */
        int threads = atoi(argv[3]);
        long n = atol(argv[4]);
        pthread_t t[64];
        for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], NULL, thread_storm, (void *)n);
        for (int i = 0; i < threads && i < 64; i++) pthread_join(t[i], NULL);
        printf("renamed=%ld\n", storm_count);
    } else if (!strcmp(cmd, "storm-until")) {
        /* argv[3]: threads; storm until a line arrives on stdin */
        int threads = atoi(argv[3]);
        pthread_t t[64];
        for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], NULL, thread_storm, (void *)-1L);
        wait_line();
        storm_stop = 1;
        for (int i = 0; i < threads && i < 64; i++) pthread_join(t[i], NULL);
        printf("renamed=%ld\n", storm_count);
    } else if (!strcmp(cmd, "rate")) {
        /* argv[3]: threads; argv[4]: seconds. Non-main threads rename as
         * fast as they can; prints the total and the rate. */
        int threads = atoi(argv[3]);
        double secs = atof(argv[4]);
        pthread_t t[64];
        double start = now();
        rate_until = start + secs;
        for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], NULL, thread_rate, NULL);
        for (int i = 0; i < threads && i < 64; i++) pthread_join(t[i], NULL);
        double took = now() - start;
        printf("renamed=%ld\nrate=%.0f\n", storm_count, storm_count / took);
    } else if (!strcmp(cmd, "probe")) {
        /* argv[3]: renames; argv[4]: milliseconds between them */
        long n = atol(argv[3]);
        long ms = atol(argv[4]);
        char buf[16];
        for (long i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "probe-%ld", i);
            prctl(PR_SET_NAME, buf, 0, 0, 0);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    } else if (!strcmp(cmd, "race")) {
        /* argv[3]: rounds; argv[4]: renames per side per round. Each round a
         * new thread prctl's itself argv[4] times while the main thread writes
         * its /proc/self/task/<tid>/comm argv[4] times, at the same time. */
        int rounds = atoi(argv[3]);
        race_n = atol(argv[4]);
        long writes = 0, failed = 0;
        for (int r = 0; r < rounds; r++) {
            pthread_t t;
            race_tid = 0;
            race_go = 0;
            race_done = 0;
            pthread_create(&t, NULL, thread_race, NULL);
            pid_t tid;
            while (!(tid = __atomic_load_n(&race_tid, __ATOMIC_ACQUIRE))) sched_yield();
            char path[64], buf[16];
            snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
            int fd = open(path, O_WRONLY);
            __atomic_store_n(&race_go, 1, __ATOMIC_RELEASE);
            for (long i = 0; i < race_n; i++) {
                int len = snprintf(buf, sizeof buf, "race-s-%ld", i % 1000);
                if (fd < 0 || write(fd, buf, (size_t)len) != len) failed++;
                else writes++;
            }
            if (fd >= 0) close(fd);
            __atomic_store_n(&race_done, 1, __ATOMIC_RELEASE);
            pthread_join(t, NULL);
        }
        printf("writes=%ld\nwrite_failed=%ld\n", writes, failed);
    } else if (!strcmp(cmd, "spawn") || !strcmp(cmd, "threads")) {
        /* argv[3]: workers; argv[4]: seconds; spawn: argv[5] is the program
         * each worker forks and execs in a loop; threads: each worker creates
         * and joins a thread in a loop. Prints the total and the rate. */
        int workers = atoi(argv[3]);
        double secs = atof(argv[4]);
        spawn_path = argc > 5 ? argv[5] : "/bin/true";
        int spawn = !strcmp(cmd, "spawn");
        pthread_t t[64];
        double start = now();
        for (int i = 0; i < workers && i < 64; i++)
            pthread_create(&t[i], NULL, spawn ? worker_spawn : worker_threads, NULL);
        struct timespec ts = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
        nanosleep(&ts, NULL);
        bench_stop = 1;
        for (int i = 0; i < workers && i < 64; i++) pthread_join(t[i], NULL);
        double took = now() - start;
        printf("done=%ld\nrate=%.0f\n", storm_count, storm_count / took);
    } else if (!strcmp(cmd, "storm-hold")) {
        /* argv[3]: threads; argv[4]: renames per thread; the threads stay
         * alive until a line arrives on stdin, then exit */
        int threads = atoi(argv[3]);
        long n = atol(argv[4]);
        pthread_t t[64];
        for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], NULL, thread_storm_hold, (void *)n);
        wait_line();
        hold_release = 1;
        for (int i = 0; i < threads && i < 64; i++) pthread_join(t[i], NULL);
    } else {
        return 2;
    }
    printf("end=1\n");
    return 0;
}
