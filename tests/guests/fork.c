/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A process that forks: parent and child call different functions, and
 * both return through the frame that called fork(). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) int child_work(int n) { return n ? child_work(n - 1) + 2 : 0; }
__attribute__((noinline)) int parent_work(int n) { return n ? parent_work(n - 1) + 3 : 0; }

__attribute__((noinline)) int split(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        return child_work(5);
    }
    int st;
    waitpid(pid, &st, 0);
    return parent_work(4);
}

int main(void)
{
    int r = split();
    printf("%d\n", r);
    fflush(stdout);
    return 0;
}
