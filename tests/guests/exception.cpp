// SPDX-License-Identifier: GPL-2.0-or-later
// A C++ exception thrown through several frames and caught, then more calls.
#include <cstdio>
#include <stdexcept>

extern "C" __attribute__((noinline)) void checkpoint(int tag) { __asm__ volatile("" ::"r"(tag) : "memory"); }

__attribute__((noinline)) int thrower(int n)
{
    if (n == 0) {
        throw std::runtime_error("deep");
    }
    return thrower(n - 1) + 1;
}

__attribute__((noinline)) int catcher(int n)
{
    try {
        return thrower(n);
    } catch (const std::exception &e) {
        checkpoint(3);
        return -1;
    }
}

__attribute__((noinline)) int after(int x) { return x * 3; }

int main()
{
    int a = catcher(12);
    int b = after(a);
    int c = catcher(3);
    std::printf("%d %d %d\n", a, b, c);
    return 0;
}
