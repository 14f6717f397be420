/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Nested signal handlers on an alternate signal stack: SIGUSR1's handler
 * (SA_ONSTACK) recurses a little and raises SIGUSR2, whose handler
 * (SA_ONSTACK, SA_NODEFER) recurses and raises SIGUSR1 again until NEST
 * handlers are active at once on the alternate stack. Repeated ROUNDS
 * times; the handlers count themselves and the guest prints the counts. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEST 6
#define ROUNDS 20

static volatile sig_atomic_t active, max_active, n_usr1, n_usr2, off_stack;

__attribute__((noinline)) static int spin(int n) { return n ? spin(n - 1) + 1 : 0; }

static void check_on_altstack(void)
{
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_ONSTACK)) {
        off_stack++;
    }
}

static void handler(int sig)
{
    active++;
    if (active > max_active) {
        max_active = active;
    }
    if (sig == SIGUSR1) {
        n_usr1++;
    } else {
        n_usr2++;
    }
    check_on_altstack();
    spin(5);
    if (active < NEST) {
        raise(sig == SIGUSR1 ? SIGUSR2 : SIGUSR1);
    }
    active--;
}

int main(void)
{
    stack_t ss;
    ss.ss_sp = malloc(1 << 16);
    ss.ss_size = 1 << 16;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        spin(3);
        raise(SIGUSR1);
    }
    printf("usr1 %d usr2 %d max nested %d off the alternate stack %d\n", (int)n_usr1,
           (int)n_usr2, (int)max_active, (int)off_stack);
    return 0;
}
