/* SPDX-License-Identifier: GPL-2.0-or-later */
/* execve from a deep stack: dive() recurses argv[1] levels (default 1000),
 * then execs argv[2] (default /bin/true) with argument "exec'd". With
 * argv[3] = "vfork" the exec happens in a vfork child instead, and the
 * parent waits and reports. The guest prints how deep it went. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long depth_reached;
static const char *prog = "/bin/true";
static int use_vfork;

__attribute__((noinline)) static void do_exec(void)
{
    printf("depth %ld\n", depth_reached);
    fflush(stdout);
    if (!use_vfork) {
        execl(prog, prog, "exec'd", (char *)NULL);
        perror("execl");
        exit(1);
    }
    pid_t pid = vfork();
    if (pid == 0) {
        execl(prog, prog, "exec'd", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

__attribute__((noinline)) static long dive(long n)
{
    depth_reached++;
    if (n == 0) {
        do_exec();
        return 0;
    }
    return dive(n - 1) + 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    if (argc > 2) {
        prog = argv[2];
    }
    use_vfork = argc > 3 && strcmp(argv[3], "vfork") == 0;
    long r = dive(n - 1);
    printf("back from %ld\n", r + 1);
    return 0;
}
