/* The noise corpus's stand-in for sshd's session process: installed as
 * `sshd` in a root-owned directory, it rewrites its argv in place to
 * "sshd: <user>@pts/0", as OpenSSH's setproctitle does on Linux (it does
 * not call prctl, so the comm stays "sshd"), prints "ready" and waits for
 * stdin to close. Run it with a long enough argv to hold the title. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *title = argc > 1 ? argv[1] : "sshd: root@pts/0";
    char title_copy[128];
    snprintf(title_copy, sizeof title_copy, "%s", title);
    /* The argv strings are contiguous: the area runs from argv[0] to the
     * end of the last one. */
    char *start = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    size_t room = (size_t)(end - start);
    memset(start, 0, room);
    strncpy(start, title_copy, room);
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}
