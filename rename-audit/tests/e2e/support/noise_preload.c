/* The noise corpus's systemd helpers: preloaded (LD_PRELOAD) into a real
 * systemd binary, this forks a child per name in RA_NOISE_NAMES
 * (comma-separated) that names itself with prctl(PR_SET_NAME) the way
 * systemd's helpers do: the user manager's "(sd-pam)", "(sd-rmrf)", ... A
 * name "(<program>)" followed by "=<path>" then execs <path>, as PID 1 does
 * with a service's process. With RA_NOISE_HOLD set the children print
 * "ready <name>" and wait for stdin to close; otherwise they exit and the
 * parent waits for them before the program runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((constructor)) static void helpers(void) {
    const char *names = getenv("RA_NOISE_NAMES");
    if (!names) return;
    int hold = getenv("RA_NOISE_HOLD") != NULL;
    char list[512];
    snprintf(list, sizeof list, "%s", names);
    unsetenv("RA_NOISE_NAMES");
    unsetenv("LD_PRELOAD");
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        char *exec_path = strchr(name, '=');
        if (exec_path) *exec_path++ = 0;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) exit(90);
        if (pid == 0) {
            prctl(PR_SET_NAME, name, 0, 0, 0);
            if (exec_path) {
                execl(exec_path, exec_path, (char *)NULL);
                _exit(91);
            }
            if (hold) {
                printf("ready %s\n", name);
                fflush(stdout);
                char buf[64];
                while (read(0, buf, sizeof buf) > 0) {
                }
            }
            _exit(0);
        }
        if (!hold) {
            int status;
            waitpid(pid, &status, 0);
        }
    }
}
