/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest for the whole-system tests: several copies run at once under one
 * Linux kernel (scripts/make-system-guest.sh puts it in the initramfs).
 *
 *   sysprog ID DIR
 *   sysprog end
 *   sysprog spawn N
 *
 * Each copy waits at a barrier (it creates DIR/ready.ID, then waits for
 * DIR/go, which init creates once every copy is ready), so all copies are
 * alive, each with its own address space, before any of them does its work. Then it follows a call
 * pattern that depends on ID and that the tests know: run -> rec(ID+2 times)
 * -> checkpoint, then many calls through function pointers so that timer
 * interrupts and context switches land in the middle of its calls.
 *
 * It prints what its own frames saw: every frame on the path to
 * checkpoint() records its return address (__builtin_return_address(0)),
 * top first, which is exactly the shadow stack expected at checkpoint's
 * entry down to main's frame.
 *
 * `sysprog end` only calls the_end(): init runs it once every copy has
 * exited, as a mark in the event stream (a record/replay comparison stops
 * there, before the power-off, whose last instructions only the recording
 * executes).
 *
 * `sysprog spawn N` runs N short-lived processes, one after another (fork,
 * exec of `sysprog end`, wait), each with its own address space and kernel
 * stack, and prints how many exited with status 0: SPAWN n=N ok=K.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_REC 64
#define SPINS 10000

static void *seen[MAX_REC + 4];
static int depth;
static int cpu_at_checkpoint;

__attribute__((noinline)) void checkpoint(void)
{
    seen[0] = __builtin_return_address(0);
    cpu_at_checkpoint = sched_getcpu();
}

/* rec(n) holds slot n + 1: checkpoint is slot 0, rec(0) slot 1, ... */
__attribute__((noinline)) void rec(int n)
{
    seen[n + 1] = __builtin_return_address(0);
    if (n > 0) {
        rec(n - 1);
    } else {
        checkpoint();
    }
    __asm__ volatile("" ::: "memory");   /* no tail call */
}

__attribute__((noinline)) int add_one(int x) { return x + 1; }
__attribute__((noinline)) int twice(int x) { return 2 * x; }
static int (*volatile ops[2])(int) = { add_one, twice };

__attribute__((noinline)) int spin(int n)
{
    int acc = 0;
    for (int i = 0; i < n; i++) {
        acc = ops[i & 1](acc) & 0xffff;
    }
    return acc;
}

__attribute__((noinline)) void run(int id)
{
    seen[depth + 2] = __builtin_return_address(0);
    rec(depth);
    spin(SPINS + id);
}

__attribute__((noinline)) void the_end(void)
{
    __asm__ volatile("" ::: "memory");
}

static int spawn(const char *self, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl(self, self, "end", (char *)NULL);
            _exit(127);
        }
        int status;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0) {
            ok++;
        }
    }
    printf("SPAWN n=%d ok=%d\n", n, ok);
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "spawn") == 0) {
        return spawn(argv[0], atoi(argv[2]));
    }
    if (argc == 2 && strcmp(argv[1], "end") == 0) {
        the_end();
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: sysprog ID DIR | sysprog end | sysprog spawn N\n");
        return 2;
    }
    int id = atoi(argv[1]);
    depth = id + 2;
    if (depth > MAX_REC) {
        return 2;
    }
    seen[depth + 3] = __builtin_return_address(0);
    char path[256];
    snprintf(path, sizeof path, "%s/ready.%d", argv[2], id);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
        perror("sysprog: ready");
        return 1;
    }
    close(fd);
    snprintf(path, sizeof path, "%s/go", argv[2]);
    while (access(path, F_OK) != 0) {
        usleep(10000);
    }

    run(id);

    /* One write() per line: copies print concurrently on one console. */
    char line[2048];
    int len = snprintf(line, sizeof line, "SYSPROG id=%d depth=%d cpu=%d checkpoint=%p rec=%p "
                       "run=%p spin=%p add_one=%p twice=%p main=%p chain=", id, depth,
                       cpu_at_checkpoint, (void *)checkpoint,
                       (void *)rec, (void *)run, (void *)spin, (void *)add_one, (void *)twice,
                       (void *)main);
    for (int i = 0; i <= depth + 3 && len < (int)sizeof line - 24; i++) {
        len += snprintf(line + len, sizeof line - (size_t)len, "%s%p", i ? "," : "", seen[i]);
    }
    line[len++] = '\n';
    if (write(1, line, (size_t)len) != len) {
        return 1;
    }
    return 0;
}
